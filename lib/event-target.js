'use strict';

// The DOM-style event API of WebSocket: event classes and
// addEventListener/removeEventListener over the EventEmitter.

const { kForOnEventAttribute, kListener } = require('./constants');

const kTarget = Symbol('kTarget');
const kType = Symbol('kType');
const kFields = Symbol('kFields');

class Event {
  constructor(type) {
    this[kTarget] = null;
    this[kType] = type;
  }

  get target() {
    return this[kTarget];
  }

  get type() {
    return this[kType];
  }
}

/** Defines read-only, enumerable accessors for `defaults` on `Cls`. */
function defineFields(Cls, defaults) {
  for (const name of Object.keys(defaults)) {
    Object.defineProperty(Cls.prototype, name, {
      enumerable: true,
      configurable: true,
      get() {
        return this[kFields][name];
      }
    });
  }
}

function fields(options, defaults) {
  const out = {};
  for (const name of Object.keys(defaults)) {
    out[name] = options[name] === undefined ? defaults[name] : options[name];
  }
  return out;
}

const CLOSE_DEFAULTS = { code: 0, reason: '', wasClean: false };
const ERROR_DEFAULTS = { error: null, message: '' };
const MESSAGE_DEFAULTS = { data: null };

class CloseEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this[kFields] = fields(options, CLOSE_DEFAULTS);
  }
}

class ErrorEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this[kFields] = fields(options, ERROR_DEFAULTS);
  }
}

class MessageEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this[kFields] = fields(options, MESSAGE_DEFAULTS);
  }
}

Object.defineProperty(Event.prototype, 'target', { enumerable: true });
Object.defineProperty(Event.prototype, 'type', { enumerable: true });
defineFields(CloseEvent, CLOSE_DEFAULTS);
defineFields(ErrorEvent, ERROR_DEFAULTS);
defineFields(MessageEvent, MESSAGE_DEFAULTS);

// How each supported event type turns EventEmitter arguments into an Event.
const makers = {
  open: () => new Event('open'),
  message: (ws, data, isBinary) =>
    new MessageEvent('message', { data: isBinary ? data : data.toString() }),
  close: (ws, code, reason) =>
    new CloseEvent('close', {
      code,
      reason: reason.toString(),
      wasClean: ws._closeFrameReceived && ws._closeFrameSent
    }),
  error: (ws, error) => new ErrorEvent('error', { error, message: error.message })
};

function invoke(handler, thisArg, event) {
  if (typeof handler === 'object' && handler.handleEvent) {
    handler.handleEvent.call(handler, event);
  } else {
    handler.call(thisArg, event);
  }
}

const EventTarget = {
  addEventListener(type, handler, options = {}) {
    const forAttribute = !!options[kForOnEventAttribute];
    if (!forAttribute) {
      for (const l of this.listeners(type)) {
        if (l[kListener] === handler && !l[kForOnEventAttribute]) return;
      }
    }

    const make = makers[type];
    if (make === undefined) return;

    const wrapper = function (...args) {
      const event = make(this, ...args);
      event[kTarget] = this;
      invoke(handler, this, event);
    };
    wrapper[kForOnEventAttribute] = forAttribute;
    wrapper[kListener] = handler;

    if (options.once) this.once(type, wrapper);
    else this.on(type, wrapper);
  },

  removeEventListener(type, handler) {
    for (const l of this.listeners(type)) {
      if (l[kListener] === handler && !l[kForOnEventAttribute]) {
        this.removeListener(type, l);
        return;
      }
    }
  }
};

module.exports = { CloseEvent, ErrorEvent, Event, EventTarget, MessageEvent };
