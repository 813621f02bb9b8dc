'use strict';

// The stream transport: TLS sockets and any other Duplex (as
// @fastify/websocket's injectWS uses). The same Rust core parses and frames;
// JS moves the bytes through the Node stream, as ws does.

// Bound here, not read through the global's accessor at every use.
const { Buffer } = require('buffer');
const process = require('process');

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
const { frameFlags, headerLength, maskKey, writeHeader } = require('./frame-flags');
const { kWebSocket } = require('./constants');
const { watch } = require('./socket-events');

const RSV1 = 0x40;
/** Payloads from this size on are written without a copy into the frame. */
const BY_REFERENCE = 64 * 1024;

// Frames up to this size are framed straight into a shared pool (as Node's
// Buffer.allocUnsafe pool works: a slice per write, never reused, a new pool
// when one is full), larger ones into a Buffer of their own.
const POOL_SIZE = 64 * 1024;
const SMALL_FRAME = POOL_SIZE / 4;
let pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let poolOffset = 0;
// The transport whose run (see StreamTransport#run) may end the pool: when
// the pool is full, up to CARRY bytes of that run move to the new pool, so
// that what a chunk is answered with stays one write (a write more splits
// a peer's burst of messages in two for good, when it sends in reply to
// what it receives).
let lastRun = null;
const CARRY = POOL_SIZE / 4;

/**
 * Frames `data` with `core` at the end of the pool (a new pool when it is
 * full) and returns its length; the frame starts at `poolOffset - length`.
 * Frames framed one after another by one transport are one run of bytes.
 */
function framePooled(core, data, opcode, flags, key) {
  let n = streamEncodeInto(core, data, opcode, flags, key, pool, poolOffset);
  if (n < 0) {
    n = -n;
    newPool();
    streamTakeFrame(core, pool, poolOffset);
  }
  poolOffset += n;
  return n;
}

/**
 * Frames a whole, plain, unmasked message (what a server sends most) at the
 * end of the pool, here (the Rust encoder's state does not change for one).
 * Returns where the frame starts.
 */
function framePlain(data, opcode) {
  const text = typeof data === 'string';
  const len = text ? Buffer.byteLength(data) : data.length;
  if (poolOffset + headerLength(len, false) + len > POOL_SIZE) newPool();
  const at = poolOffset;
  const payloadAt = writeHeader(pool, at, 0x80 | opcode, len, false);
  if (text) pool.utf8Write(data, payloadAt, len);
  else pool.set(data, payloadAt);
  poolOffset = payloadAt + len;
  return at;
}

function newPool() {
  const old = pool;
  const end = poolOffset;
  pool = Buffer.allocUnsafeSlow(POOL_SIZE);
  poolOffset = 0;
  const tr = lastRun;
  if (tr !== null && tr.run === old && tr.runEnd === end && end - tr.runStart <= CARRY) {
    pool.set(old.subarray(tr.runStart, end));
    tr.run = pool;
    tr.runEnd = poolOffset = end - tr.runStart;
    tr.runStart = 0;
  }
}

/** Whether `data` may be framed in the pool: not too big to copy. */
function small(data) {
  return typeof data === 'string' ? data.length <= SMALL_FRAME / 3 : data.length <= SMALL_FRAME;
}

/**
 * The callback of a run's one write: calls each send's, the first seeing
 * `tail` bytes still buffered (see StreamTransport#runHead).
 */
function callbacks(tr, cbs, tail) {
  if (cbs.length === 1 && tail === 0) return cbs[0];
  return (err) => {
    tr.tail = tail;
    try {
      cbs[0](err);
    } finally {
      tr.tail = 0;
    }
    for (let i = 1; i < cbs.length; i++) cbs[i](err);
  };
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
    // Within a fragmented message: its frames are framed by the Rust core.
    this.continuing = false;
    // Where feedInPlace writes the records of a chunk; a nested feed (a
    // listener that makes the socket emit data) gets a tape of its own.
    this.tape = new Uint32Array(64);
    this.feeding = false;
    // The frames sent while a chunk's records are delivered: one run of the
    // pool, written as one buffer when the chunk is done (the floor's one
    // write per chunk) instead of a write each.
    this.run = null;
    this.runStart = 0;
    this.runEnd = 0;
    this.runCallbacks = null;
    // A run begun on an idle socket with a callback on its first frame: ws
    // would have written that frame (`runHead` bytes) at once and the rest
    // behind it, so its callback sees the rest (`tail`) still buffered.
    this.runHead = 0;
    this.tail = 0;
    this.drainArmed = false;
    this.onSocketDrain = null;
  }

  get bufferedAmount() {
    const state = this.socket._writableState;
    const run = this.run === null ? 0 : this.runEnd - this.runStart;
    return (state ? state.length : this.socket.writableLength || 0) + this.heldBytes + run + this.tail;
  }

  send(data, binary, fin, compress, mask, cb) {
    if (fin && !compress && !mask && !this.continuing && small(data)) {
      this._pooled(framePlain(data, binary ? 2 : 1), cb, data);
      return this.bufferedAmount > this.ws._checkAt;
    }
    // The Rust encoder numbers the fragments of a message.
    this.continuing = !fin;
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
    const opcode = binary ? 2 : 1;
    let frame;
    if (small(data)) {
      const n = framePooled(this.core, data, opcode, flags, maskKey(mask));
      const start = poolOffset - n;
      if ((pool[start] & RSV1) === 0 && !this.inCompressed) {
        this._pooled(start, cb, data);
        return this.bufferedAmount > this.ws._checkAt;
      }
      frame = pool.subarray(start, poolOffset);
    } else {
      frame = streamEncode(this.core, data, opcode, flags, maskKey(mask));
    }
    // The first frame of a compressed message has RSV1; its continuations
    // are compressed too.
    const compressed = this.inCompressed || (frame[0] & RSV1) !== 0;
    this.inCompressed = compressed && !fin;
    if (compressed || this.held !== null) this._hold([frame], cb, byteLength(data));
    else this._write(frame, cb);
    return this.bufferedAmount > this.ws._checkAt;
  }

  /** Sends the uncompressed frame the pool ends with (from `start`). */
  _pooled(start, cb, data) {
    if (this.held !== null) this._hold([pool.subarray(start, poolOffset)], cb, byteLength(data));
    else if (this.feeding) this._append(start, cb);
    else this._write(pool.subarray(start, poolOffset), cb);
  }

  /** Adds the frame the pool ends with (from `start`) to the run. */
  _append(start, cb) {
    if (this.run !== pool || this.runEnd !== start) {
      // Another transport framed in between, or the pool was full.
      this.flushRun();
      this.run = pool;
      this.runStart = start;
      this.runHead = cb && this.socket.writableLength === 0 ? poolOffset - start : 0;
    }
    this.runEnd = poolOffset;
    lastRun = this;
    if (cb) {
      if (this.runCallbacks === null) this.runCallbacks = [cb];
      else this.runCallbacks.push(cb);
    }
  }

  /** Writes the run, if there is one. */
  flushRun() {
    const run = this.run;
    if (run === null) return;
    const cbs = this.runCallbacks;
    this.run = null;
    if (lastRun === this) lastRun = null;
    this.runCallbacks = null;
    const tail = this.runHead > 0 ? this.runEnd - this.runStart - this.runHead : 0;
    this.socket.write(run.subarray(this.runStart, this.runEnd), cbs === null ? undefined : callbacks(this, cbs, tail));
  }

  /** A write behind the run. */
  _write(buf, cb) {
    if (this.run !== null) this.flushRun();
    this.socket.write(buf, cb);
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
    else this._write(frame, cb);
  }

  raw(list, cb) {
    if (this.held !== null) return this._hold(list, cb, 0);
    this.flushRun();
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
    this.flushRun();
    // Ending twice makes Node build (and drop) an error: skip it.
    if (!this.socket.writableEnded) this.socket.end();
  }

  destroy() {
    this.closed = true;
    // Frames sent in this batch reach the socket first, as they would have
    // without the run.
    this.flushRun();
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
  // What waits in a run is the socket's to drain.
  tr.flushRun();
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
  const buffer = chunk.buffer;
  const base = chunk.byteOffset;
  tr.feeding = true;
  try {
    for (let i = 0; i < words; i += 4) {
      deliverFrame(tr.ws, tape[i], tape[i + 2], tape[i + 3], buffer, base, bigs);
    }
  } finally {
    tr.feeding = nested;
    if (!nested) tr.flushRun();
  }
}

/**
 * The application may write to the socket itself (ws._socket, req.socket):
 * its write() or end() goes out after the frames sent before it, so a run
 * is written first. Defined on the socket, as its own methods would be, and
 * calling what the socket had.
 */
function writesBehindRuns(socket, tr) {
  for (const name of ['write', 'end']) {
    const method = socket[name];
    const value = function () {
      if (tr.run !== null) tr.flushRun();
      return method.apply(this, arguments);
    };
    Object.defineProperty(socket, name, { value, writable: true, configurable: true, enumerable: false });
  }
}

/** Drives `ws` over `socket`; `config.initial` is written first. */
function attach(socket, ws, config) {
  const tr = new StreamTransport(socket, ws, config);
  if (socket.setTimeout) socket.setTimeout(0);
  if (socket.setNoDelay) socket.setNoDelay();
  if (config.initial) socket.write(config.initial);
  if (config.head && config.head.length > 0) socket.unshift(config.head);
  writesBehindRuns(socket, tr);
  watch(socket, ws, onData);
  return tr;
}

module.exports = { attach };
