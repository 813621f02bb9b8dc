'use strict';

// The stream transport: TLS sockets and any other Duplex (as
// @fastify/websocket's injectWS uses). The same Rust core parses and frames;
// JS moves the bytes through the Node stream, as ws does.

const {
  streamCore,
  streamEncode,
  streamEncodeControl,
  streamEncodeHeader,
  streamEncodeInto,
  streamFeed,
  streamTakeBigs,
  streamTakeFrame,
  streamTakeTape
} = require('./binding');
const { deliverFrame } = require('./event-batch');
const { frameFlags, maskKey } = require('./frame-flags');
const { kWebSocket } = require('./constants');
const { watch } = require('./socket-events');

const RSV1 = 0x40;
/** Payloads from this size on are written without a copy into the frame. */
const BY_REFERENCE = 64 * 1024;

// Frames up to this size are framed straight into a shared pool (as Node's
// Buffer.allocUnsafe pool works: a slice per frame, never reused, a new pool
// when one is full), larger ones into a Buffer of their own.
const POOL_SIZE = 64 * 1024;
const SMALL_FRAME = POOL_SIZE / 4;
let pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let poolOffset = 0;

/** Frames `data` with `core` into pooled memory; returns the frame. */
function framePooled(core, data, opcode, flags, key) {
  let n = streamEncodeInto(core, data, opcode, flags, key, pool, poolOffset);
  if (n < 0) {
    n = -n;
    if (n > SMALL_FRAME) {
      const own = Buffer.allocUnsafeSlow(n);
      streamTakeFrame(core, own, 0);
      return own;
    }
    pool = Buffer.allocUnsafeSlow(POOL_SIZE);
    poolOffset = 0;
    streamTakeFrame(core, pool, 0);
  }
  const frame = pool.subarray(poolOffset, poolOffset + n);
  // Keep slices 8-byte aligned, as Node's pool does.
  poolOffset = (poolOffset + n + 7) & ~7;
  return frame;
}

/** Whether `data` may be framed in the pool: not too big to copy. */
function small(data) {
  return typeof data === 'string' ? data.length <= SMALL_FRAME / 3 : data.length <= SMALL_FRAME;
}

class StreamTransport {
  constructor(socket, ws, config) {
    this.socket = socket;
    this.ws = ws;
    this.closed = false;
    this.core = streamCore(config.isServer, config.limits, config.deflate);
    // ws compresses on a thread pool: a compressed message, and what is sent
    // after it, reach the socket a turn later. The Rust core compresses at
    // once; the frames wait here for a setImmediate the same way.
    this.held = null;
    this.heldBytes = 0;
    this.inCompressed = false;
    // Where feedInPlace writes the records of a chunk; a nested feed (a
    // listener that makes the socket emit data) gets a tape of its own.
    this.tape = new Uint32Array(64);
    this.feeding = false;
    this.drainArmed = false;
    this.onSocketDrain = null;
  }

  get bufferedAmount() {
    const state = this.socket._writableState;
    return (state ? state.length : this.socket.writableLength || 0) + this.heldBytes;
  }

  send(data, binary, fin, compress, mask, cb) {
    const flags = frameFlags(fin, compress, mask);
    // A big unmasked payload is written as it is, behind its header, as ws
    // does: over TLS a copy in the frame would be held beside the ciphertext.
    if (!mask && typeof data !== 'string' && data.length >= BY_REFERENCE && this.held === null && !this.inCompressed) {
      const header = streamEncodeHeader(this.core, data.length, binary ? 2 : 1, flags);
      if (header !== undefined) {
        this.raw([header, data], cb);
        return this.bufferedAmount > this.ws._checkAt;
      }
    }
    const frame = small(data) ? framePooled(this.core, data, binary ? 2 : 1, flags, maskKey(mask)) : streamEncode(this.core, data, binary ? 2 : 1, flags, maskKey(mask));
    // The first frame of a compressed message has RSV1; its continuations
    // are compressed too.
    const compressed = this.inCompressed || (frame[0] & RSV1) !== 0;
    this.inCompressed = compressed && !fin;
    if (compressed || this.held !== null) this._hold([frame], cb, byteLength(data));
    else this.socket.write(frame, cb);
    return this.bufferedAmount > this.ws._checkAt;
  }

  /** 'drain' on the WebSocket once bufferedAmount is back to 0. */
  armDrain() {
    if (this.drainArmed) return;
    this.drainArmed = true;
    checkDrain(this);
  }

  control(opcode, data, mask, cb) {
    const flags = frameFlags(false, false, mask);
    const frame = streamEncodeControl(this.core, opcode, data, flags, maskKey(mask));
    if (this.held !== null) this._hold([frame], cb, byteLength(data));
    else this.socket.write(frame, cb);
  }

  raw(list, cb) {
    if (this.held !== null) return this._hold(list, cb, 0);
    this.socket.cork();
    for (let i = 0; i < list.length - 1; i++) this.socket.write(list[i]);
    this.socket.write(list[list.length - 1], cb);
    this.socket.uncork();
  }

  _hold(frames, cb, size) {
    if (this.held === null) {
      this.held = [];
      setImmediate(releaseHeld, this);
    }
    this.held.push({ frames, cb, size });
    this.heldBytes += size;
  }

  end() {
    // Ending twice makes Node build (and drop) an error: skip it.
    if (!this.socket.writableEnded) this.socket.end();
  }

  destroy() {
    this.closed = true;
    // Frames written in this batch reach the socket first, as they would
    // have without the batch's cork (see onData).
    uncork(this.socket);
    const held = this.held;
    if (held !== null) {
      // As ws: what waited for a compression is not sent.
      this.held = null;
      this.heldBytes = 0;
      const err = new Error('The socket was closed while data was being compressed');
      process.nextTick(() => {
        for (const h of held) if (h.cb) h.cb(err);
      });
    }
    this.socket.destroy();
  }

  pause() {
    this.socket.pause();
  }

  resume() {
    this.socket.resume();
  }

  /** After a close frame: read on, paused or not, parsing nothing more. */
  readToEnd() {
    this.socket.removeListener('data', onData);
    this.socket.resume();
  }

  /** The socket emitted 'close'. */
  socketClosed() {
    this.socket.removeListener('data', onData);
    this.closed = true;
    this.ws._onClose();
  }
}

function byteLength(data) {
  return data === undefined || data === null ? 0 : typeof data === 'string' ? Buffer.byteLength(data) : data.length;
}

/** Writes the frames that waited for a compression, in order. */
function releaseHeld(tr) {
  const held = tr.held;
  if (held === null) return;
  tr.held = null;
  tr.heldBytes = 0;
  const socket = tr.socket;
  socket.cork();
  for (const { frames, cb } of held) {
    for (let i = 0; i < frames.length - 1; i++) socket.write(frames[i]);
    socket.write(frames[frames.length - 1], cb);
  }
  socket.uncork();
  if (tr.drainArmed) checkDrain(tr);
}

/**
 * Emits 'drain' on the WebSocket once nothing is buffered: at once, or
 * when the socket's own buffer is written out (its 'drain', which a
 * Writable emits only after a write was refused, so it is asked for).
 */
function checkDrain(tr) {
  if (tr.closed || tr.held !== null) return;
  const socket = tr.socket;
  if (socket.writableLength === 0) {
    tr.drainArmed = false;
    process.nextTick(emitDrain, tr.ws);
    return;
  }
  const state = socket._writableState;
  if (state) state.needDrain = true;
  if (tr.onSocketDrain === null) {
    tr.onSocketDrain = () => {
      tr.onSocketDrain = null;
      if (tr.drainArmed) checkDrain(tr);
    };
    socket.once('drain', tr.onSocketDrain);
  }
}

function emitDrain(ws) {
  ws._onDrain();
}

function onData(chunk) {
  const tr = this[kWebSocket]._transport;
  const nested = tr.feeding;
  let tape = nested ? new Uint32Array(64) : tr.tape;
  let code = streamFeed(tr.core, chunk, tape);
  if (code === 0) return;
  if (code < 0) {
    code = -code;
    tape = new Uint32Array(code >>> 1);
    if (!nested && tape.length <= 4096) tr.tape = tape;
    streamTakeTape(tr.core, tape);
  }
  const words = code >>> 1;
  const bigs = code & 1 ? streamTakeBigs(tr.core) : undefined;
  // Sends made by the listeners of a chunk's records go out in one write
  // (over TLS, one record and one syscall) instead of one each.
  const socket = tr.socket;
  const corked = words > 4 && !nested && typeof socket.cork === 'function';
  if (corked) socket.cork();
  tr.feeding = true;
  try {
    for (let i = 0; i < words; i += 4) {
      deliverFrame(tr.ws, tape[i], tape[i + 2], tape[i + 3], chunk, bigs);
    }
  } finally {
    tr.feeding = nested;
    if (corked) uncork(socket);
  }
}

function uncork(socket) {
  if (socket.writableCorked > 0) socket.uncork();
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
