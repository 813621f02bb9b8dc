'use strict';

// The native transport: a plain TCP (or IPC) socket whose fd the Rust engine
// has adopted. The engine delivers one batch of events per loop turn; this
// file turns the batch into calls on each WebSocket and on its socket, which
// stays the application's live connection (adopted-socket.js).

// Bound here, not read through the global's accessor at every use.
const { Buffer } = require('buffer');
const process = require('process');

const net = require('net');
const { getSystemErrorName } = require('util');

const CLOSING = 2;

const binding = require('./binding');
const sendTape = require('./send-tape');

// What is asked of one connection goes through plain functions
// (src/bindings/conn.rs); those but a data frame's send take the send tape
// first (sendingAtOnce() does for a send).
const { engineSend } = binding;
const engineArmDrain = sendTape.guarded(binding.engineArmDrain);
const engineBufferedAmount = sendTape.guarded(binding.engineBufferedAmount);
const engineCompressing = sendTape.guarded(binding.engineCompressing);
const engineControl = sendTape.guarded(binding.engineControl);
const engineCounters = sendTape.guarded(binding.engineCounters);
const engineDestroy = sendTape.guarded(binding.engineDestroy);
const engineEnd = sendTape.guarded(binding.engineEnd);
const engineSendRaw = sendTape.guarded(binding.engineSendRaw);
const engineSetPaused = sendTape.guarded(binding.engineSetPaused);
const { EV, deliverFrame } = require('./event-batch');
const { FastBuffer } = require('./buffer-util');
const { ackFlags, frameFlags, maskKey } = require('./frame-flags');

// What a send became (src/bindings/args.rs, sent_code).
const GONE = 0;
const WRITTEN = 2;
/** Queued, with bufferedAmount above the connection's mark. */
const FULL = 4;
const { keepLive } = require('./adopted-socket');
const { watch } = require('./socket-events');

const transports = new Map();
/** Native listeners (native-listener.js), and their connections' pending handshakes, by id. */
const listeners = new Map();
const handshakes = new Map();
let engine = null;

/** Socket-less transports whose 'close' waits for their handle's close. */
const closing = new Map();

function getEngine() {
  if (engine === null) engine = sendTape.guard(new binding.NativeEngine(onBatch, onHandleClosed), onTapedFull);
  return engine;
}

/** A send on the tape left its connection above its mark. */
function onTapedFull(id) {
  const tr = transports.get(id);
  if (tr !== undefined) tr.ws._backpressure();
}

/** A listener's connection's handle closed: a socket-less transport's 'close'. */
function onHandleClosed(id) {
  const tr = closing.get(id);
  if (tr !== undefined) {
    closing.delete(id);
    tr.socketClosed();
  }
}

// The batch being delivered. Kept in module state so that, when a listener
// throws, the engine can report the error and call `onBatch()` again to go
// on with the rest. Null when no batch is half-delivered: a call without a
// batch then comes after a throw in a nextTick or microtask, with nothing
// left to deliver.
let tape = null;
// The arena's ArrayBuffer, where the arena starts in it and its length; the
// arena as a Buffer is made only for the records that read it so.
let arenaBuffer = null;
let arenaBase = 0;
let arenaLength = 0;
let arena = null;
// Where the batch's pending bytes are (a record flagged EV.PENDING): after
// the arena in the pool, or a Buffer of their own.
let pendingBuffer = null;
let pendingBase = 0;
let bigs = null;
// Where the next record is on the tape, and where the batch's records end.
let pos = 0;
let end = 0;
let clean = false;

// The pool the last batch came in, its ArrayBuffer and its words: the
// batches that follow it there need no view of their own.
let lastPool = null;
let poolBuffer = null;
let poolWords = null;

/**
 * A batch (src/engine/dispatch.rs): its tape is `words` u32 at `at` in
 * `pool`, a Buffer the engine copies small batches into one after another;
 * the arena follows the tape there, `arenaBytes` bytes, then the pending
 * bytes (payloads made while the arena was parsed), unless they were too
 * big to copy and came as Buffers of their own (`ar`, `pend`). `isClean`: no
 * connection waits for the kernel to take a write, so sends may go on the
 * send tape.
 */
function onBatch(pool, at, words, arenaBytes, ar, bg, isClean, pend) {
  if (pool !== undefined) {
    if (pool !== lastPool) {
      lastPool = pool;
      poolBuffer = pool.buffer;
      poolWords = new Uint32Array(poolBuffer, pool.byteOffset, pool.length >>> 2);
    }
    tape = poolWords;
    pos = at >>> 2;
    end = pos + words;
    // What the engine copied follows the tape in the pool: the arena, then
    // the pending bytes, each unless it came as a Buffer of its own.
    const after = pool.byteOffset + at + words * 4;
    if (ar !== undefined) {
      arena = ar;
      arenaBuffer = ar.buffer;
      arenaBase = ar.byteOffset;
    } else {
      arena = null;
      arenaBuffer = poolBuffer;
      arenaBase = after;
      arenaLength = arenaBytes;
    }
    if (pend !== undefined) {
      pendingBuffer = pend.buffer;
      pendingBase = pend.byteOffset;
    } else {
      pendingBuffer = poolBuffer;
      pendingBase = after + arenaBytes;
    }
    bigs = bg;
    clean = isClean;
  } else if (tape === null) {
    return;
  }
  sendTape.batch(clean, pool !== undefined);
  try {
    deliver();
  } finally {
    sendTape.batchDone();
  }
  tape = arena = arenaBuffer = pendingBuffer = bigs = null;
}

/** The batch's arena, as a Buffer. */
function arenaView() {
  if (arena === null) arena = new FastBuffer(arenaBuffer, arenaBase, arenaLength);
  return arena;
}

function deliver() {
  // A connection's records mostly come in runs (all it read in one go):
  // the map is asked once per run. A transport stays its id's until its
  // CLOSED record; before one is found, a record may make one (a listener's
  // upgrade), so the map is asked again.
  let tr;
  while (pos < end) {
    const word = tape[pos];
    const id = tape[pos + 1];
    if (tr === undefined || tr.id !== id || tr.engineClosed) tr = transports.get(id);
    const a = tape[pos + 2];
    const b = tape[pos + 3];
    pos += 4;
    if (tr === undefined) {
      listenerRecord(word, id, a, b);
      continue;
    }
    if (tr.timed) tr.socket._unrefTimer();
    const pending = (word & EV.PENDING) !== 0;
    if (deliverFrame(tr.ws, word, a, b, pending ? pendingBuffer : arenaBuffer, pending ? pendingBase : arenaBase, bigs)) continue;
    switch (word & 0x3f) {
      case EV.ACK:
        tr._ack(a, b, word >>> 8);
        break;
      case EV.EOF:
        if (tr.socket !== null) tr.socket.push(null);
        else process.nextTick(emitEnd, tr);
        break;
      case EV.FINISH:
        tr._finish();
        break;
      case EV.DRAIN:
        tr.ws._onDrain();
        break;
      case EV.CLOSED:
        tr._closed(a);
        break;
    }
  }
}

/** A record of a native listener or of a connection before its upgrade. */
function listenerRecord(word, id, a, b) {
  switch (word & 0x3f) {
    case EV.REQUEST: {
      const l = listeners.get(word >>> 8);
      if (l !== undefined) l.onRequest(id, arenaView().latin1Slice(a, a + b));
      break;
    }
    case EV.HANDOFF: {
      const view = arenaView();
      const l = listeners.get(view.readUInt32LE(a));
      if (l !== undefined) l.onHandoff(word >>> 8, Buffer.from(view.subarray(a + 4, a + b)));
      break;
    }
    case EV.DRAINED: {
      const l = listeners.get(word >>> 8);
      if (l !== undefined) l.onDrained();
      break;
    }
    case EV.CLOSED: {
      const hs = handshakes.get(id);
      if (hs !== undefined) {
        handshakes.delete(id);
        hs.gone = true;
        if (hs.sock !== null) hs.sock.destroy();
      }
      break;
    }
  }
}

/** A socket-less connection's peer ended: as a net.Socket's 'end' would. */
function emitEnd(tr) {
  tr.ws._onEnd();
}

function destroyedError() {
  const err = new Error('Cannot call write after a stream was destroyed');
  err.code = 'ERR_STREAM_DESTROYED';
  return err;
}

// From Node 22 on, destroying a net.Socket with a write in flight cancels it
// in libuv, and every write still waiting calls back with that error.
const CANCELED_ON_DESTROY = Number(process.versions.node.split('.')[0]) >= 22;
const ECANCELED = 125;

/** The error of sends that failed; `reason` as in src/engine/connection.rs. */
function failedError(reason) {
  if (reason === 1) return new Error('The socket was closed while data was being compressed');
  return CANCELED_ON_DESTROY ? errnoError(ECANCELED, 'write') : destroyedError();
}

/** The error a socket operation failed with, as Node words it (`details` ends the message). */
function errnoError(errno, syscall, details = '') {
  const code = getSystemErrorName(-errno);
  const err = new Error(`${syscall} ${code}${details}`);
  err.errno = -errno;
  err.code = code;
  err.syscall = syscall;
  return err;
}

const counts = new Float64Array(2);

/** `[bytesRead, bytesWritten]` of the engine's own I/O on connection `id`. */
function countersOf(id) {
  engineCounters(id, counts);
  return [counts[0], counts[1]];
}

class NativeTransport {
  constructor(id, ws, socket) {
    this.id = id;
    this.ws = ws;
    this.socket = socket;
    /** No more writes: the socket was destroyed or the engine closed it. */
    this.closed = false;
    // Compressed sends wait behind one another: none go on the send tape.
    if (ws._extensions['permessage-deflate'] !== undefined) this.plain = false;
    // The send tape's (lib/send-tape.js): the batch its count is of, and the
    // bytes this connection put on the tape in it. Own from the start, so a
    // transport keeps its map at its first send and the loads of the batch
    // loop stay monomorphic.
    this.tapeTurn = 0;
    this.tapeBytes = 0;
    // The rest starts as the prototype's defaults (after the class).
  }

  get bufferedAmount() {
    return this.closed ? 0 : engineBufferedAmount(this.id);
  }

  /**
   * Queues a data frame. `mask` is false, true (random key) or a 4-byte key.
   * Returns whether bufferedAmount may now be above the WebSocket's mark.
   */
  send(data, binary, fin, compress, mask, cb) {
    if (!cb && mask === false && !compress && this.plain && !this.closed && sendTape.put(this, binary ? 2 : 1, fin, data)) {
      if (this.timed) this.socket._unrefTimer();
      return false;
    }
    sendTape.sendingAtOnce(this);
    const flags = frameFlags(fin, compress, mask) | ackFlags(cb, this.callbacks === null);
    const sent = this.closed ? GONE : engineSend(this.id, data, binary ? 2 : 1, flags, maskKey(mask));
    this._queued(sent, cb);
    return sent === FULL;
  }

  /** 'drain' on the WebSocket once bufferedAmount is back to 0. */
  armDrain() {
    if (!this.closed) engineArmDrain(this.id);
  }

  /** Queues a close (8), ping (9) or pong (10) frame. */
  control(opcode, data, mask, cb) {
    sendTape.sendingAtOnce(this);
    const flags = frameFlags(false, false, mask) | ackFlags(cb, this.callbacks === null);
    const sent = this.closed ? GONE : engineControl(this.id, opcode, data, flags, maskKey(mask));
    this._queued(sent, cb);
  }

  /** Writes buffers that already form frames (ws's `sender.sendFrame`). */
  raw(list, cb) {
    sendTape.sendingAtOnce(this);
    let sent = this.closed ? GONE : 1;
    for (let i = 0; i < list.length && sent !== GONE; i++) {
      sent = engineSendRaw(this.id, list[i], i === list.length - 1 ? ackFlags(cb, this.callbacks === null) : 0);
    }
    this._queued(sent, cb);
  }

  _queued(sent, cb) {
    if (this.timed) this.socket._unrefTimer();
    if (!cb) return;
    if (sent === WRITTEN) {
      // Written at once, with no earlier callback waiting: on the next
      // tick, as a net socket's write callback.
      process.nextTick(cb, null);
    } else if (sent !== GONE) {
      if (this.callbacks === null) this.callbacks = [cb];
      else this.callbacks.push(cb);
    } else if (this.closed) {
      this.fail(cb, this.failure || destroyedError());
    } else {
      // The engine closed the connection; its record, with the error, comes
      // later in this batch.
      (this.refused || (this.refused = [])).push(cb);
    }
  }

  /**
   * Calls `cb` with `err`, after the callbacks of earlier sends, as a net
   * socket's callbacks run in the order of the writes; but before them when
   * they wait behind a compression, as ws's do.
   */
  fail(cb, err) {
    const callbacks = this.callbacks;
    if (callbacks === null || (!this.closed && engineCompressing(this.id))) return process.nextTick(cb, err);
    const last = callbacks[callbacks.length - 1];
    callbacks[callbacks.length - 1] = (e) => {
      last(e);
      cb(err);
    };
  }

  /** `extra` of a failure: `reason | errno << 2` (src/engine/batch.rs). */
  _ack(ok, failed, extra) {
    const callbacks = this.callbacks;
    let err = null;
    try {
      for (; ok > 0; ok--) callbacks.shift()(null);
      if (failed > 0) err = (extra & 3) === 0 && extra >>> 2 ? this._socketError(extra >>> 2) : failedError(extra & 3);
      for (; failed > 0; failed--) callbacks.shift()(err);
    } finally {
      // When a callback threw (it was taken but not counted), the rest
      // still run, after the error is reported.
      const restOk = ok > 0 ? ok - 1 : 0;
      const restFailed = ok > 0 ? failed : Math.max(failed - 1, 0);
      if (restOk + restFailed > 0) process.nextTick(() => this._ack(restOk, restFailed, extra));
      if (callbacks.length === 0 && this.callbacks === callbacks) this.callbacks = null;
    }
  }

  end() {
    if (this.socket === null) {
      if (!this.ended) {
        this.ended = true;
        if (!this.closed) engineEnd(this.id);
      }
      return;
    }
    // Ending twice makes Node build (and drop) an error: skip it.
    if (!this.socket.writableEnded) this.socket.end();
  }

  destroy() {
    if (this.socket !== null) return this.socket.destroy();
    if (this.destroyed) return;
    // As a net.Socket's destroy(): 'close' comes from the handle's close.
    this.destroyed = true;
    if (!this.closed) closing.set(this.id, this);
    this.detach();
  }

  pause() {
    if (this.socket !== null) this.socket.pause();
    else this.setPaused(true);
  }

  resume() {
    if (this.socket !== null) this.socket.resume();
    else this.setPaused(false);
  }

  /** After a close frame: read on, paused or not (the parser ignores the rest). */
  readToEnd() {
    if (this.ws._paused) this.resume();
  }

  /**
   * The net.Socket of a connection a native listener accepted, made when
   * the application first asks for it (`ws._socket`, `req.socket`): a
   * socket over the engine's fd, adopted as any other.
   */
  materialize() {
    if (this.socket !== null) return this.socket;
    const socket = this.closed ? null : socketOver(this.id);
    if (socket === null) return goneSocket(this.engineClosed && this.failure === null);
    this.adoptSocket(socket);
    return socket;
  }

  /** Makes `socket` this connection's live socket (adopted-socket.js). */
  adoptSocket(socket) {
    this.socket = socket;
    keepLive(socket, this);
    watch(socket, this.ws);
    if (this.ended) socket.end();
  }

  // ---- The adopted socket's stream methods (adopted-socket.js). ----

  /** A raw `socket.write()`: queued behind the frames sent so far. */
  write(bytes) {
    if (this.timed) this.socket._unrefTimer();
    return !this.closed && engineSendRaw(this.id, bytes, 0) !== GONE;
  }

  writeError() {
    return destroyedError();
  }

  /** `socket.end()`: `cb` runs once the queue is written and the FIN sent. */
  final(cb) {
    if (this.closed) return cb();
    this.finalCb = cb;
    engineEnd(this.id);
  }

  /** `socket.destroy()`: the engine lets go of the connection too. */
  detach() {
    if (this.closed) return;
    this.closed = true;
    engineDestroy(this.id);
    this.counts = countersOf(this.id);
  }

  setPaused(paused) {
    if (this.closed) return;
    engineSetPaused(this.id, paused);
  }

  /** Bytes read (0) or written (1) on the socket, Node's and the engine's. */
  counter(i) {
    return this.base[i] + (this.counts || countersOf(this.id))[i];
  }

  // ---- Records from the engine. ----

  _finish() {
    const cb = this.finalCb;
    this.finalCb = null;
    if (cb) cb();
  }

  /** The socket's error for `errno`, made once. */
  _socketError(errno) {
    return this.failure || (this.failure = errnoError(errno, errno === 32 ? 'write' : 'read'));
  }

  /** The engine closed the connection (errno 0: both directions ended). */
  _closed(errno) {
    transports.delete(this.id);
    this.engineClosed = true;
    if (!this.closed) {
      this.closed = true;
      this.counts = countersOf(this.id);
      // An error is the socket's, as Node reports it; a clean end lets the
      // 'end' and 'finish' already queued come first.
      if (this.socket === null) {
        // As a net.Socket's: an error a tick later, 'close' from the
        // handle's close callback (onHandleClosed).
        this.destroyed = true;
        closing.set(this.id, this);
        if (errno) {
          this._socketError(errno);
          process.nextTick(failSocketless, this);
        }
      } else if (errno) this.socket.destroy(this._socketError(errno));
      else process.nextTick(destroySocket, this.socket);
    }
    const refused = this.refused;
    if (refused) {
      this.refused = null;
      const err = this.failure || destroyedError();
      process.nextTick(() => {
        for (const cb of refused) cb(err);
      });
    }
    if (this.socketGone) this.ws._onClose();
  }

  /**
   * The socket emitted 'close'. The WebSocket closes once the engine's last
   * records for the connection (send callbacks among them) are delivered.
   */
  socketClosed() {
    this.socketGone = true;
    if (this.engineClosed) this.ws._onClose();
  }
}

// A transport's state until it changes: an idle connection carries only
// what it uses.
Object.assign(NativeTransport.prototype, {
  /** Callbacks of sends in flight, in order. */
  callbacks: null,
  /** The socket's byte counts when the engine took it over. */
  base: Object.freeze([0, 0]),
  engineClosed: false,
  socketGone: false,
  timed: false,
  finalCb: null,
  counts: null,
  /** What sends fail with once the engine has closed the connection. */
  failure: null,
  /** Callbacks of sends refused before the engine's close was delivered. */
  refused: null,
  // Without a socket (a native listener's connection): end() called,
  // destroyed (or closed by the engine).
  ended: false,
  destroyed: false,
  /** Connections on the engine are topic members there (topics.js). */
  native: true,
  /** Without permessage-deflate: sends may go on the send tape. */
  plain: true
});

function topicJoin(id, topic) {
  engine.topicJoin(id, topic);
}

function topicLeave(id, topic) {
  engine.topicLeave(id, topic);
}

/**
 * Queues a message to every member of engine topic `topic` but connection
 * `except` (-1: none); returns how many it reached. Members it left above
 * their maxBufferedAmount are closed (WebSocket#_overflowed).
 */
function publishNative(topic, payload, binary, compress, except) {
  const n = engine.publish(topic, payload, binary ? 2 : 1, compress, except);
  if (n >= 0) return n;
  for (const id of engine.takeOverflowed()) {
    const tr = transports.get(id);
    if (tr !== undefined) tr.ws._overflowed();
  }
  return -n - 1;
}

function destroySocket(socket) {
  socket.destroy();
}

/** A socket-less connection failed: as a net.Socket's 'error' makes the WebSocket closing. */
function failSocketless(tr) {
  tr.ws._readyState = CLOSING;
}

/**
 * A net.Socket over connection `id`'s own fd, which the engine lends it (it
 * never reads or writes it itself; adopted-socket.js routes its I/O to the
 * engine). Null when the connection is gone.
 */
function socketOver(id) {
  const fd = getEngine().shareFd(id);
  if (fd < 0) return null;
  try {
    return new net.Socket({ fd, manualStart: true });
  } finally {
    engine.resumePoll(id);
  }
}

/**
 * A socket that has closed (it emits 'close' on the next tick); with
 * `ended`, one whose both sides ended first, as after a clean close.
 */
function goneSocket(ended) {
  const socket = new net.Socket();
  if (ended) {
    socket._writableState.ended = socket._writableState.finished = true;
    socket._readableState.ended = socket._readableState.endEmitted = true;
  }
  socket.destroy();
  return socket;
}

/** Whether the engine can take this socket over. */
function canAdopt(socket) {
  const handle = socket._handle;
  return (
    !socket.encrypted &&
    !socket.destroyed &&
    handle != null &&
    typeof handle.fd === 'number' &&
    handle.fd >= 0 &&
    typeof handle.readStop === 'function' &&
    socket.writableLength === 0
  );
}

/**
 * Hands `socket`'s fd to the engine. Bytes Node already read (`head`, then
 * the socket's readable buffer) are parsed first; `initial` is written first.
 * Returns null, with the socket untouched, when the engine refuses it.
 */
function adopt(socket, ws, { isServer, limits, deflate, head, initial }) {
  getEngine();

  const parts = head && head.length ? [head] : [];
  let chunk;
  while ((chunk = socket.read()) !== null) parts.push(chunk);
  const pending = parts.length ? Buffer.concat(parts) : undefined;

  // Nagle off, as ws does; through Node's socket, which skips the syscall
  // when its server already set it (http's noDelay) and keeps its own
  // state right.
  socket.setNoDelay(true);
  // Node's handle stops reading first: libuv takes one handle per fd, and
  // from now on the engine's poll is it (adopted-socket.js).
  const handle = socket._handle;
  handle.readStop();
  handle.reading = false;
  let id;
  sendTape.settle();
  try {
    id = binding.engineAdopt(handle.fd, isServer, limits, deflate, pending, initial);
  } catch {
    // Node's handle reads again, for the stream transport.
    handle.reading = true;
    handle.readStart();
    if (pending) socket.unshift(pending);
    return null;
  }

  const tr = new NativeTransport(id, ws, socket);
  transports.set(id, tr);
  socket.setTimeout(0);
  keepLive(socket, tr);
  watch(socket, ws);
  return tr;
}

/**
 * The transport of a connection a native listener accepted and the engine
 * just upgraded; `socket`, when the application already asked for one.
 */
function attachUpgraded(id, ws, socket) {
  const tr = new NativeTransport(id, ws, null);
  transports.set(id, tr);
  if (socket) {
    socket.setTimeout(0);
    tr.adoptSocket(socket);
  }
  return tr;
}

function engineStats() {
  return engine === null ? [0, 0, 0, 0, 0] : engine.stats();
}

module.exports = {
  adopt,
  attachUpgraded,
  canAdopt,
  engineDestroy,
  engineStats,
  errnoError,
  getEngine,
  goneSocket,
  handshakes,
  listeners,
  publishNative,
  socketOver,
  topicJoin,
  topicLeave
};
