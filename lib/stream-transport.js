'use strict';

// The stream transport: TLS sockets and any other Duplex (as
// @fastify/websocket's injectWS uses). The same Rust core parses and frames;
// JS moves the bytes through the Node stream, as ws does.

const binding = require('./binding');
const { deliverFrame } = require('./event-batch');
const { frameFlags, maskKey } = require('./frame-flags');
const { kWebSocket } = require('./constants');
const { watch } = require('./socket-events');

class StreamTransport {
  constructor(socket, ws, config) {
    this.socket = socket;
    this.ws = ws;
    this.closed = false;
    this.core = new binding.StreamCore(config.isServer, config.limits, config.deflate);
  }

  get bufferedAmount() {
    const state = this.socket._writableState;
    return state ? state.length : this.socket.writableLength || 0;
  }

  send(data, binary, fin, compress, mask, cb) {
    const flags = frameFlags(fin, compress, mask, false);
    this.socket.write(this.core.encode(data, binary ? 2 : 1, flags, maskKey(mask)), cb);
  }

  control(opcode, data, mask, cb) {
    const flags = frameFlags(false, false, mask, false);
    this.socket.write(this.core.encodeControl(opcode, data, flags, maskKey(mask)), cb);
  }

  raw(list, cb) {
    this.socket.cork();
    for (let i = 0; i < list.length - 1; i++) this.socket.write(list[i]);
    this.socket.write(list[list.length - 1], cb);
    this.socket.uncork();
  }

  end() {
    this.socket.end();
  }

  destroy() {
    this.socket.destroy();
  }

  pause() {
    this.socket.pause();
  }

  resume() {
    this.socket.resume();
  }

  /** The socket emitted 'close'. */
  socketClosed() {
    this.socket.removeListener('data', onData);
    this.closed = true;
    this.ws._onClose();
  }
}

function onData(chunk) {
  const tr = this[kWebSocket]._transport;
  const batch = tr.core.feed(chunk);
  if (batch === undefined) return;
  const [tape, arena, bigs] = batch;
  for (let i = 0; i < tape.length; i += 4) {
    deliverFrame(tr.ws, tape[i], tape[i + 2], tape[i + 3], arena, bigs);
  }
}

/** Drives `ws` over `socket`; `config.initial` is written first. */
function attach(socket, ws, config) {
  const tr = new StreamTransport(socket, ws, config);
  if (socket.setTimeout) socket.setTimeout(0);
  if (socket.setNoDelay) socket.setNoDelay();
  if (config.initial) socket.write(config.initial);
  if (config.head && config.head.length > 0) socket.unshift(config.head);
  watch(socket, ws, onData);
  return tr;
}

module.exports = { attach };
