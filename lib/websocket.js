'use strict';

// The WebSocket class: ws's state machine and API over a transport (the
// native engine, or a JS stream driving the same Rust core).

// Node's `Buffer` and `process` globals are accessors, a call at every use:
// the hot paths use bindings of their own.
const { Buffer } = require('buffer');
const process = require('process');

const EventEmitter = require('events');
const { isUint8Array } = require('util').types;

// Every module is loaded up front: a require() at the first connection
// could meet a process out of fds (EMFILE) and throw from inside a handshake.
const PerMessageDeflate = require('./permessage-deflate');
const Sender = require('./sender');
const clientHandshake = require('./client-handshake');
const nativeTransport = require('./native-transport');
const streamTransport = require('./stream-transport');
const { toArrayBuffer, toBuffer } = require('./buffer-util');
const {
  BINARY_TYPES,
  CLOSE_TIMEOUT,
  EMPTY_BUFFER,
  kForOnEventAttribute,
  kListener,
  kServer,
  kStatusCode,
  MAX_PENDING_AUTO_PONGS
} = require('./constants');
const { DEFAULT_HIGH_WATER_MARK, sendMarks } = require('./backpressure');
const { EventTarget } = require('./event-target');
const { isBlob, isValidStatusCode } = require('./validation');

/** The extensions of a connection that negotiated none (shared, so frozen). */
const NO_EXTENSIONS = Object.freeze({});
// EventEmitter's own emit, and the per-emitter flag of captureRejections
// (undefined on a Node that names it otherwise: then emit() always runs).
const emit = EventEmitter.prototype.emit;
const kCapture = Object.getOwnPropertySymbols(EventEmitter.prototype).find((s) => s.description === 'kCapture');

const READY_STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const [CONNECTING, OPEN, CLOSING, CLOSED] = [0, 1, 2, 3];
const OP_CLOSE = 8;
const OP_PING = 9;
const OP_PONG = 10;

class WebSocket extends EventEmitter {
  /**
   * @param {(String|URL|null)} address The URL to connect to; null on the server side
   * @param {(String|String[])} [protocols] Subprotocols
   * @param {Object} [options] Connection options
   */
  constructor(address, protocols, options) {
    super();

    // The rest of the state starts as the prototype's defaults (below), and
    // becomes the object's own once it changes: an idle connection carries
    // only what it uses.
    this._readyState = CONNECTING;
    this._transport = null;

    if (address !== null) {
      this._isServer = false;
      this._redirects = 0;
      const args = clientHandshake.normalizeArgs(protocols, options);
      this._setMarks(args.options);
      options = clientHandshake.initAsClient(this, address, args.protocols, args.options);
    } else {
      this._setMarks(options);
    }

    // Each field is set only where it differs from the prototype's default
    // (STATE), by name: a helper taking the key made these loads and
    // stores megamorphic (1.4% of a handshake's CPU).
    if (!options.autoPong) this._autoPong = false;
    else if ((options.maxPendingAutoPongs | 0) !== STATE._maxPendingAutoPongs) this._maxPendingAutoPongs = options.maxPendingAutoPongs | 0;
    if (options.closeTimeout !== STATE._closeTimeout) this._closeTimeout = options.closeTimeout;
  }

  /** Backpressure options. */
  _setMarks(options) {
    const [high, max] = sendMarks(options || {}, this._isServer);
    const checkAt = max > 0 ? Math.min(high, max) : high;
    if (high !== STATE._sendHighWaterMark) this._sendHighWaterMark = high;
    if (max !== STATE._maxBufferedAmount) this._maxBufferedAmount = max;
    if (checkAt !== STATE._checkAt) this._checkAt = checkAt;
  }

  get binaryType() {
    return this._binaryType;
  }

  set binaryType(type) {
    if (BINARY_TYPES.includes(type)) this._binaryType = type;
  }

  get bufferedAmount() {
    if (!this._transport) return this._bufferedAmount;
    return this._transport.bufferedAmount + this._bufferedAmount;
  }

  get extensions() {
    return Object.keys(this._extensions).join();
  }

  get isPaused() {
    return this._paused;
  }

  get protocol() {
    return this._protocol;
  }

  get readyState() {
    return this._readyState;
  }

  get url() {
    return this._url;
  }

  /**
   * The net.Socket under the connection. A `{ port }` server's connections
   * (native listener) have one only once it is asked for.
   */
  get _socket() {
    const tr = this._transport;
    if (this._sock === null && tr !== null && tr.native === true) {
      this._sock = tr.socket === null ? tr.materialize() : tr.socket;
    }
    return this._sock;
  }

  set _socket(socket) {
    this._sock = socket;
  }

  /**
   * Starts the open connection on `socket`, after a completed handshake.
   * @param {Object} options limits from the server or client options
   * @param {Buffer} [initial] bytes to write first (the server's 101 response)
   */
  setSocket(socket, head, options, initial) {
    const config = this._config(options);
    config.head = head;
    config.initial = initial;
    this._sock = socket;

    if (nativeTransport.canAdopt(socket)) {
      this._transport = nativeTransport.adopt(socket, this, config);
      // Refused: the bytes read so far went back into the socket.
      config.head = undefined;
    }
    if (!this._transport) {
      this._transport = streamTransport.attach(socket, this, config);
    }
    this._opened();
  }

  /**
   * Starts the open connection on a transport `attach(this)` makes (a
   * native listener's upgraded connection, native-listener.js).
   */
  _setTransport(attach) {
    this._transport = attach(this);
    this._opened();
  }

  /** The limits and deflate parameters of the connection, for a transport. */
  _config(options) {
    const pmd = this._extensions[PerMessageDeflate.extensionName];
    const maxPayload = options.maxPayload === undefined ? 100 * 1024 * 1024 : options.maxPayload;
    if (options.generateMask !== STATE._generateMask) this._generateMask = options.generateMask;
    if (options.allowSynchronousEvents === false) this._allowSynchronousEvents = false;
    return {
      isServer: this._isServer,
      limits: [
        maxPayload > 0 ? maxPayload : 0,
        options.maxFragments | 0,
        options.maxBufferedChunks | 0,
        options.skipUTF8Validation ? 1 : 0,
        this._checkAt,
        this._maxBufferedAmount
      ],
      deflate: pmd ? pmd.engineConfig() : undefined,
      head: undefined,
      initial: undefined
    };
  }

  _opened() {
    this._readyState = OPEN;
    this.emit('open');
  }

  emitClose() {
    if (this._topics !== null) this[kServer]._topics.leaveAll(this);
    this._readyState = CLOSED;
    this.emit('close', this._closeCode, this._closeMessage);
  }

  /**
   * Starts the closing handshake.
   * @param {Number} [code] Status code
   * @param {(String|Buffer)} [data] Reason
   */
  close(code, data) {
    if (this._readyState === CLOSED) return;
    if (this._readyState === CONNECTING) {
      const msg = 'WebSocket was closed before the connection was established';
      clientHandshake.abortHandshake(this, this._req, msg);
      return;
    }
    if (this._readyState === CLOSING) {
      if (this._closeFrameSent && (this._closeFrameReceived || this._receiverErrored)) {
        this._transport.end();
      }
      return;
    }

    this._sendClose(closePayload(code, data));
  }

  /** Sends a close frame with `payload` (already validated) and starts the close timer. */
  _sendClose(payload) {
    const key = this._maskFor(!this._isServer);
    this._write(() =>
      this._transport.control(OP_CLOSE, payload, key, (err) => {
        if (err) return;
        this._closeFrameSent = true;
        if (this._closeFrameReceived || this._receiverErrored) this._transport.end();
      })
    );

    this._readyState = CLOSING;
    this._closeTimer = setTimeout(() => this._transport.destroy(), this._closeTimeout);
  }

  pause() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    this._paused = true;
    this._transport.pause();
  }

  resume() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    this._paused = false;
    this._transport.resume();
  }

  ping(data, mask, cb) {
    this._control(OP_PING, data, mask, cb);
  }

  pong(data, mask, cb) {
    this._control(OP_PONG, data, mask, cb);
  }

  _control(opcode, data, mask, cb) {
    if (this._readyState === CONNECTING) {
      throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    }
    if (typeof data === 'function') {
      cb = data;
      data = mask = undefined;
    } else if (typeof mask === 'function') {
      cb = mask;
      mask = undefined;
    }
    if (typeof data === 'number') data = data.toString();

    if (this._readyState !== OPEN) {
      this._sendAfterClose(data, cb);
      return;
    }

    if (mask === undefined) mask = !this._isServer;
    const payload = data || EMPTY_BUFFER;
    const size = typeof payload === 'string' ? Buffer.byteLength(payload) : isBlob(payload) ? payload.size : toBuffer(payload).length;
    if (size > 125) {
      throw new RangeError('The data size must not be greater than 125 bytes');
    }
    if (isBlob(payload)) {
      this._sendBlob(payload, (buf) => this._transport.control(opcode, buf, this._maskFor(mask), cb), cb);
      return;
    }
    const bytes = typeof payload === 'string' ? payload : toBuffer(payload);
    const key = this._maskFor(mask);
    this._write(() => this._transport.control(opcode, bytes, key, cb), cb, bytes);
  }

  /**
   * Sends a data message.
   * @param {*} data The message
   * @param {Object} [options] binary, compress, fin, mask
   * @param {Function} [cb] Called when the data is written out
   */
  send(data, options, cb) {
    if (this._readyState === CONNECTING) {
      throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    }
    if (typeof options === 'function') {
      cb = options;
      options = undefined;
    }
    if (typeof data === 'number') data = data.toString();

    if (this._readyState !== OPEN) return this._sendAfterClose(data, cb);

    let binary = typeof data !== 'string';
    let fin = true;
    let wanted = true;
    let masked = !this._isServer;
    if (options !== undefined) {
      // A spread over the defaults, as ws does (an own key set to undefined
      // overrides its default): V8 makes it cheaper than checking each key
      // (measured). Without options, the defaults as they are.
      ({ binary, fin, compress: wanted, mask: masked } = { binary, mask: masked, compress: true, fin: true, ...options });
    }
    const compress = !!wanted && !!this._extensions[PerMessageDeflate.extensionName];
    const mask = this._maskFor(masked);

    if (isBlob(data)) {
      this._sendBlob(data, (buf) => this._transport.send(buf, binary, fin, compress, mask, cb), cb);
      return this._backpressure();
    }
    const payload = !data ? EMPTY_BUFFER : typeof data === 'string' ? data : toBuffer(data);
    if (!this._deferred) {
      // The transport tells when bufferedAmount may be above the mark.
      if (!this._transport.send(payload, binary, fin, compress, mask, cb)) return true;
    } else {
      this._write(() => this._transport.send(payload, binary, fin, compress, mask, cb), cb, payload);
    }
    return this._backpressure();
  }

  /**
   * What `send()` returns once bufferedAmount may be above the high-water
   * mark: false when it is, and then 'drain' comes once it is back to 0.
   * Past maxBufferedAmount, the connection is closed instead.
   */
  _backpressure() {
    const amount = this.bufferedAmount;
    if (this._maxBufferedAmount > 0 && amount > this._maxBufferedAmount) {
      this._overflowed();
      return false;
    }
    if (amount <= this._sendHighWaterMark) return true;
    if (!this._needDrain) {
      this._needDrain = true;
      // Behind a blob being read, drainDeferred asks once the sends are made.
      if (!this._deferred) this._transport.armDrain();
    }
    return false;
  }

  _onDrain() {
    if (!this._needDrain || this._deferred) return;
    this._needDrain = false;
    if (this._readyState === OPEN) this.emit('drain');
  }

  /** More than maxBufferedAmount waits to be written: the peer is too slow. */
  _overflowed() {
    if (this._readyState === OPEN) this.close(1008, 'Too much data waiting to be sent');
  }

  // ---- Publish/subscribe (topics.js); server side only. ----

  subscribe(topic) {
    const hub = topicsOf(this, topic);
    if (this._readyState === OPEN) hub.subscribe(this, topic);
  }

  unsubscribe(topic) {
    topicsOf(this, topic).unsubscribe(this, topic);
  }

  isSubscribed(topic) {
    const t = topicsOf(this, topic).byName.get(topic);
    return t !== undefined && this._topics !== null && this._topics.has(t);
  }

  /** The topics this WebSocket is subscribed to. */
  get subscriptions() {
    if (this._topics === null) return [];
    const everyone = this[kServer]._topics.everyone;
    const names = [];
    for (const t of this._topics) if (t !== everyone) names.push(t.name);
    return names;
  }

  /** A publish to this member of a topic, on the stream transport. */
  _publishOne(payload, binary, compress) {
    const deflate = compress && !!this._extensions[PerMessageDeflate.extensionName];
    const send = () => this._transport.send(payload, binary, true, deflate, false, undefined);
    if (this._deferred) this._write(send, undefined, payload);
    else if (send() && this._maxBufferedAmount > 0 && this.bufferedAmount > this._maxBufferedAmount) this._overflowed();
  }

  // Blobs are read asynchronously; frames sent after one wait for it, so
  // that everything goes out in the order it was sent.
  _sendBlob(blob, write, cb) {
    const job = { ready: false, run: null, cb };
    this._defer(job);
    this._bufferedAmount += blob.size;
    blob.arrayBuffer().then(
      (ab) => {
        this._bufferedAmount -= blob.size;
        if (job.failed) return;
        if (!this._transport || this._transport.closed || (this._sock !== null && this._sock.destroyed)) {
          this._failDeferred(new Error('The socket was closed while the blob was being read'));
          return;
        }
        const buf = Buffer.from(ab);
        job.run = () => write(buf);
        job.ready = true;
        this._drainDeferred();
      },
      (err) => {
        if (job.failed) return;
        this._failDeferred(err);
        process.nextTick(() => this._onSenderError(err));
      }
    );
  }

  /**
   * Runs `run` now, or after the blobs being read when there are any; then
   * `data` counts in bufferedAmount until it runs, as in ws.
   */
  _write(run, cb, data) {
    if (!this._deferred) return run();
    const size = data === undefined ? 0 : typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    this._bufferedAmount += size;
    this._defer({ ready: true, run, cb, size });
  }

  _defer(job) {
    (this._deferred || (this._deferred = [])).push(job);
  }

  _drainDeferred() {
    const queue = this._deferred;
    while (queue.length && queue[0].ready) {
      const job = queue.shift();
      if (job.size) this._bufferedAmount -= job.size;
      job.run();
    }
    if (!queue.length && this._deferred === queue) {
      this._deferred = null;
      if (this._needDrain) this._transport.armDrain();
    }
  }

  /** Every send waiting behind a blob fails with `err`, in order, as in ws. */
  _failDeferred(err) {
    const queue = this._deferred || [];
    this._deferred = null;
    for (const job of queue) job.failed = true;
    process.nextTick(() => {
      for (const job of queue) if (job.cb) job.cb(err);
    });
  }

  terminate() {
    if (this._readyState === CLOSED) return;
    if (this._readyState === CONNECTING) {
      const msg = 'WebSocket was closed before the connection was established';
      clientHandshake.abortHandshake(this, this._req, msg);
      return;
    }
    if (this._transport) {
      this._readyState = CLOSING;
      this._transport.destroy();
    }
  }

  _maskFor(mask) {
    if (!mask) return false;
    if (!this._generateMask) return true;
    const key = Buffer.alloc(4);
    this._generateMask(key);
    return key;
  }

  _sendAfterClose(data, cb) {
    if (data) {
      this._bufferedAmount += isBlob(data) ? data.size : toBuffer(data).length;
    }
    if (cb) {
      const state = this._readyState;
      const err = new Error(`WebSocket is not open: readyState ${state} (${READY_STATES[state]})`);
      // After the callbacks of the sends made before, as in ws.
      if (this._transport && this._transport.fail) this._transport.fail(cb, err);
      else process.nextTick(cb, err);
    }
    return false;
  }

  // ---- Events from the transport. ----

  // With `allowSynchronousEvents: false`, as in ws, every message, ping and
  // pong is emitted in a setImmediate of its own, and the events after it
  // (a close frame, an error, the end of the connection) wait for it.
  _inOrder(deferred, run) {
    if (this._allowSynchronousEvents) return run();
    const queue = this._eventQueue || (this._eventQueue = []);
    if (queue.length === 0 && !deferred) return run();
    queue.push({ deferred, run });
    if (queue.length === 1) setImmediate(drainEvents, this);
  }

  _onMessage(data, isBinary) {
    if (isBinary) data = this._binaryData(data);
    if (this._allowSynchronousEvents) this._emitMessage(data, isBinary);
    else this._inOrder(true, () => this._emitMessage(data, isBinary));
  }

  /**
   * emit('message'). A lone listener is called as emit() would call it, but
   * without emit()'s rest array and its keyed lookup: only while emit() is
   * EventEmitter's own (not patched, wrapped or spied on) and the socket
   * does not capture rejections.
   */
  _emitMessage(data, isBinary) {
    const listener = this._events.message;
    if (typeof listener === 'function' && this.emit === emit && kCapture !== undefined && this[kCapture] === false) {
      listener.call(this, data, isBinary);
    } else {
      this.emit('message', data, isBinary);
    }
  }

  _binaryData(buf) {
    switch (this._binaryType) {
      case 'arraybuffer':
        return toArrayBuffer(buf);
      case 'fragments':
        return [buf];
      case 'blob':
        return new Blob([buf]);
      default:
        return buf;
    }
  }

  _onPing(data) {
    this._inOrder(true, () => this._emitPing(data));
  }

  _emitPing(data) {
    if (this._autoPong && this._readyState === OPEN) {
      if (this._maxPendingAutoPongs > 0 && this._pendingAutoPongs >= this._maxPendingAutoPongs) {
        this.terminate();
      } else {
        this._pendingAutoPongs++;
        this.pong(data, !this._isServer, () => this._pendingAutoPongs--);
      }
    }
    this.emit('ping', data);
  }

  _onPong(data) {
    this._inOrder(true, () => this.emit('pong', data));
  }

  _onConclude(code, reason) {
    this._inOrder(false, () => this._conclude(code, reason));
  }

  _conclude(code, reason) {
    this._closeFrameReceived = true;
    this._closeCode = code;
    this._closeMessage = reason.length ? reason : EMPTY_BUFFER;
    // As ws: nothing after a close frame is parsed, but the socket reads on
    // (even when paused) to see the peer's FIN.
    if (!this._transport.closed) process.nextTick(readToEnd, this._transport);
    // The reply echoes the peer's code and reason; they were checked by the
    // parser, so they do not go through close()'s checks of user input.
    if (this._readyState !== OPEN) this.close();
    else if (code === 1005) this._sendClose(EMPTY_BUFFER);
    else this._sendClose(Buffer.concat([closeCode(code), reason]));
  }

  _onProtocolError(err) {
    this._inOrder(false, () => this._protocolError(err));
  }

  _protocolError(err) {
    this._receiverErrored = true;
    this.close(err[kStatusCode]);
    if (!this._errorEmitted) {
      this._errorEmitted = true;
      this.emit('error', err);
    }
  }

  _onSenderError(err) {
    if (this._readyState === CLOSED) return;
    if (this._readyState === OPEN) {
      this._readyState = CLOSING;
      this._closeTimer = setTimeout(() => this._transport.destroy(), this._closeTimeout);
    }
    this._transport.end();
    if (!this._errorEmitted) {
      this._errorEmitted = true;
      this.emit('error', err);
    }
  }

  _onEnd() {
    this._readyState = CLOSING;
    this._inputEnded = true;
    this._transport.end();
  }

  // The socket closed. As in ws, 'close' is emitted at once when the input
  // had already ended (or failed); otherwise after the socket's other
  // 'close' listeners, once the end of the input has been processed.
  _onClose() {
    this._readyState = CLOSING;
    clearTimeout(this._closeTimer);
    if (this._inputEnded || this._receiverErrored) this._inOrder(false, () => this.emitClose());
    else process.nextTick(emitCloseInOrder, this);
  }
}

/** The server's topics, for a WebSocket of that server; `topic` checked. */
function topicsOf(ws, topic) {
  if (typeof topic !== 'string') throw new TypeError('The topic must be a string');
  const server = ws[kServer];
  if (server === undefined) throw new Error('Only the WebSockets of a WebSocketServer have topics');
  return server._topics;
}

function readToEnd(transport) {
  transport.readToEnd();
}

function emitCloseInOrder(ws) {
  ws._inputEnded = true;
  ws._inOrder(false, () => ws.emitClose());
}

function drainEvents(ws) {
  const queue = ws._eventQueue;
  try {
    queue.shift().run();
    while (queue.length && !queue[0].deferred) queue.shift().run();
  } finally {
    if (queue.length) setImmediate(drainEvents, ws);
  }
}

/** The payload of a close frame, validated as ws validates it. */
function closePayload(code, data) {
  if (code === undefined) return EMPTY_BUFFER;
  if (typeof code !== 'number' || !isValidStatusCode(code)) {
    throw new TypeError('First argument must be a valid error code number');
  }
  if (data === undefined || !data.length) return closeCode(code);
  // As ws: Buffer.byteLength's own TypeError for what has no byte length.
  const length = Buffer.byteLength(data);
  if (length > 123) {
    throw new RangeError('The message must not be greater than 123 bytes');
  }
  const buf = Buffer.allocUnsafe(2 + length);
  buf.writeUInt16BE(code, 0);
  // isUint8Array, unlike instanceof, holds for arrays of any realm (vm
  // contexts, jsdom).
  if (typeof data === 'string') buf.write(data, 2);
  else if (isUint8Array(data)) buf.set(data, 2);
  else throw new TypeError('Second argument must be a string or a Uint8Array');
  return buf;
}

function closeCode(code) {
  const buf = Buffer.allocUnsafe(2);
  buf.writeUInt16BE(code, 0);
  return buf;
}

// The state of a connection until it changes (see the constructor), with
// backpressure and topics: an idle connection carries none of it.
const STATE = {
  _allowSynchronousEvents: true,
  _autoPong: true,
  _binaryType: BINARY_TYPES[0],
  _bufferedAmount: 0,
  _checkAt: DEFAULT_HIGH_WATER_MARK,
  _closeCode: 1006,
  _closeFrameReceived: false,
  _closeFrameSent: false,
  _closeMessage: EMPTY_BUFFER,
  _closeTimeout: CLOSE_TIMEOUT,
  _closeTimer: null,
  _deferred: null,
  _errorEmitted: false,
  _extensions: NO_EXTENSIONS,
  _generateMask: undefined,
  _inputEnded: false,
  _isServer: true,
  _maxBufferedAmount: 0,
  _maxPendingAutoPongs: MAX_PENDING_AUTO_PONGS,
  _needDrain: false,
  _paused: false,
  _pendingAutoPongs: 0,
  _protocol: '',
  _receiverErrored: false,
  _sendHighWaterMark: DEFAULT_HIGH_WATER_MARK,
  _sock: null,
  _topics: null
};
Object.assign(WebSocket.prototype, STATE);

// ws's `_sender`, which socket.io's adapter writes prebuilt frames through:
// null until the connection opens, made the first time it is asked for.
Object.defineProperty(WebSocket.prototype, '_sender', {
  configurable: true,
  get() {
    if (this._readyState === CONNECTING) return null;
    const sender = new Sender(this);
    ownSender(this, sender);
    return sender;
  },
  set(sender) {
    ownSender(this, sender);
  }
});

function ownSender(ws, sender) {
  Object.defineProperty(ws, '_sender', { value: sender, writable: true, enumerable: true, configurable: true });
}

for (const [i, name] of READY_STATES.entries()) {
  Object.defineProperty(WebSocket, name, { enumerable: true, value: i });
  Object.defineProperty(WebSocket.prototype, name, { enumerable: true, value: i });
}

for (const property of ['binaryType', 'bufferedAmount', 'extensions', 'isPaused', 'protocol', 'readyState', 'url']) {
  Object.defineProperty(WebSocket.prototype, property, { enumerable: true });
}

for (const type of ['open', 'error', 'close', 'message']) {
  Object.defineProperty(WebSocket.prototype, `on${type}`, {
    enumerable: true,
    configurable: true,
    get() {
      for (const l of this.listeners(type)) {
        if (l[kForOnEventAttribute]) return l[kListener];
      }
      return null;
    },
    set(handler) {
      for (const l of this.listeners(type)) {
        if (l[kForOnEventAttribute]) {
          this.removeListener(type, l);
          break;
        }
      }
      if (typeof handler !== 'function') return;
      this.addEventListener(type, handler, { [kForOnEventAttribute]: true });
    }
  });
}

WebSocket.prototype.addEventListener = EventTarget.addEventListener;
WebSocket.prototype.removeEventListener = EventTarget.removeEventListener;

module.exports = WebSocket;
