'use strict';

// The native transport: a plain TCP (or IPC) socket whose fd the Rust engine
// has adopted. The engine delivers one batch of events per loop turn; this
// file turns the batch into calls on each WebSocket.

const binding = require('./binding');
const { EV, deliverFrame, frameFlags, maskKey } = require('./event-batch');

const transports = new Map();
let engine = null;

// The batch being delivered. Kept in module state so that, when a listener
// throws, the engine can report the error and call `onBatch()` again to go
// on with the rest.
let tape = null;
let arena = null;
let bigs = null;
let pos = 0;

function onBatch(t, ar, bg) {
  if (t !== undefined) {
    tape = t;
    arena = ar;
    bigs = bg;
    pos = 0;
  }
  while (pos < tape.length) {
    const word = tape[pos];
    const tr = transports.get(tape[pos + 1]);
    const a = tape[pos + 2];
    const b = tape[pos + 3];
    pos += 4;
    if (tr === undefined || deliverFrame(tr.ws, word, a, b, arena, bigs)) continue;
    switch (word & 0x7f) {
      case EV.ACK:
        tr._ack(a, b);
        break;
      case EV.EOF:
        tr.ws._onEnd();
        break;
      case EV.FINISH:
        tr._finish();
        break;
      case EV.CLOSED:
        // A net socket emits 'close' after its 'finish' listeners (queued
        // with process.nextTick) have run; so does this transport.
        transports.delete(tr.id);
        tr.closed = true;
        process.nextTick(onClosed, tr.ws);
        break;
    }
  }
  tape = arena = bigs = null;
}

function onClosed(ws) {
  ws._onClose();
}

function destroyedError() {
  const err = new Error('Cannot call write after a stream was destroyed');
  err.code = 'ERR_STREAM_DESTROYED';
  return err;
}

class NativeTransport {
  constructor(id, ws) {
    this.id = id;
    this.ws = ws;
    this.closed = false;
    this.finished = false;
    this.callbacks = null;
    this.onFinish = null;
  }

  /** Runs `cb` once the write side is shut down (`socket.once('finish')`). */
  whenFinished(cb) {
    (this.onFinish || (this.onFinish = [])).push(cb);
  }

  _finish() {
    this.finished = true;
    const waiting = this.onFinish;
    this.onFinish = null;
    if (waiting) for (const cb of waiting) cb();
  }

  get bufferedAmount() {
    return this.closed ? 0 : engine.bufferedAmount(this.id);
  }

  /**
   * Queues a data frame. `mask` is false, true (random key) or a 4-byte key.
   */
  send(data, binary, fin, compress, mask, cb) {
    const flags = frameFlags(fin, compress, mask, cb);
    const ok = !this.closed && engine.send(this.id, data, binary ? 2 : 1, flags, maskKey(mask));
    this._queued(ok, cb);
  }

  /** Queues a close (8), ping (9) or pong (10) frame. */
  control(opcode, data, mask, cb) {
    const flags = frameFlags(false, false, mask, cb);
    const ok = !this.closed && engine.control(this.id, opcode, data, flags, maskKey(mask));
    this._queued(ok, cb);
  }

  /** Writes buffers that already form frames (ws's `sender.sendFrame`). */
  raw(list, cb) {
    let ok = !this.closed;
    for (let i = 0; i < list.length && ok; i++) {
      ok = engine.sendRaw(this.id, list[i], !!cb && i === list.length - 1);
    }
    this._queued(ok, cb);
  }

  _queued(ok, cb) {
    if (!cb) return;
    if (!ok) process.nextTick(cb, destroyedError());
    else if (this.callbacks === null) this.callbacks = [cb];
    else this.callbacks.push(cb);
  }

  _ack(ok, failed) {
    const callbacks = this.callbacks;
    let err = null;
    try {
      for (; ok > 0; ok--) callbacks.shift()(null);
      for (err = failed > 0 ? destroyedError() : null; failed > 0; failed--) callbacks.shift()(err);
    } finally {
      // When a callback threw (it was taken but not counted), the rest
      // still run, after the error is reported.
      const restOk = ok > 0 ? ok - 1 : 0;
      const restFailed = ok > 0 ? failed : Math.max(failed - 1, 0);
      if (restOk + restFailed > 0) process.nextTick(() => this._ack(restOk, restFailed));
      if (callbacks.length === 0 && this.callbacks === callbacks) this.callbacks = null;
    }
  }

  end() {
    if (!this.closed) engine.end(this.id);
  }

  destroy() {
    if (!this.closed) engine.destroy(this.id);
  }

  pause() {
    if (!this.closed) engine.pause(this.id);
  }

  resume() {
    if (!this.closed) engine.resume(this.id);
  }
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
    socket.writableLength === 0
  );
}

/**
 * Hands `socket` to the engine. Bytes Node already read (`head`, then the
 * socket's readable buffer) are parsed first; `initial` is written first.
 * Returns null, with the socket untouched, when the engine refuses it.
 */
function adopt(socket, ws, { isServer, limits, deflate, head, initial }) {
  if (engine === null) engine = new binding.NativeEngine(onBatch);

  const parts = head && head.length ? [head] : [];
  let chunk;
  while ((chunk = socket.read()) !== null) parts.push(chunk);
  const pending = parts.length ? Buffer.concat(parts) : undefined;

  let id;
  try {
    id = engine.adopt(socket._handle.fd, isServer, limits, deflate, pending, initial);
  } catch {
    if (pending) socket.unshift(pending);
    return null;
  }

  // Cache the addresses while the handle is still there.
  void socket.remoteAddress, socket.remotePort, socket.remoteFamily;
  void socket.localAddress, socket.localPort;

  const tr = new NativeTransport(id, ws);
  transports.set(id, tr);

  socket.on('error', () => {});
  socket.destroy();
  return tr;
}

function engineStats() {
  return engine === null ? [0, 0, 0, 0] : engine.stats();
}

module.exports = { adopt, canAdopt, engineStats };
