'use strict';

// The send tape. The data frames JS sends while it handles a batch of the
// engine's events go on a tape in JS memory, their payloads copied one after
// another beside it, and reach the engine in one call when the batch is
// done, not in a call each. Any other call into the engine takes the tape
// first, so that everything still reaches the engine in the order it was
// made.
//
// Only sends whose outcome JS knows in advance go on the tape: small,
// unmasked and uncompressed, with no callback, on a connection without
// permessage-deflate, in a batch in which no connection waits for the
// kernel to take a write. Such a send is queued and leaves bufferedAmount
// where it was, as the engine would have answered (src/engine/batch.rs,
// `blocked`; src/bindings/engine.rs, `send_tape`).

const { Buffer } = require('buffer');

/** Records on the tape: id, opcode | flags << 8, offset and length in `area`. */
const RECORDS = 1024;
/** Payloads up to this size go on the tape; a bigger one is sent at once. */
const MAX_PAYLOAD = 1024;
const AREA_BYTES = 64 * 1024;
/** The frame's FIN bit, as src/bindings/args.rs reads the flags. */
const FIN = 1 << 8;

const records = new Uint32Array(RECORDS * 4);
const tape = Buffer.from(records.buffer);
const area = Buffer.allocUnsafeSlow(AREA_BYTES);
let count = 0;
let used = 0;
let open = false;
let native = null;
let onFull = null;

/** Hands the tape to the engine. */
function flush() {
  const n = count;
  count = 0;
  used = 0;
  const full = native.sendTape(tape, area, n);
  // None, as JS made sure of; were there one, the WebSocket still hears.
  for (let i = 0; i < full.length; i++) onFull(full[i]);
}

/** Before any other call into the engine: what the tape holds goes first. */
function settle() {
  if (count !== 0) flush();
}

/**
 * Puts a data frame on the tape; false when it has to be sent at once
 * (outside a batch, or too big).
 */
function put(id, opcode, fin, data) {
  if (!open) return false;
  let len;
  if (typeof data === 'string') {
    // At most three bytes of UTF-8 for each UTF-16 unit.
    if (data.length > MAX_PAYLOAD / 3) return false;
    if (used + data.length * 3 > AREA_BYTES || count === RECORDS) flush();
    len = area.utf8Write(data, used);
  } else {
    len = data.length;
    if (len > MAX_PAYLOAD) return false;
    if (used + len > AREA_BYTES || count === RECORDS) flush();
    area.set(data, used);
  }
  const r = count * 4;
  records[r] = id;
  records[r + 1] = fin ? opcode | FIN : opcode;
  records[r + 2] = used;
  records[r + 3] = len;
  count++;
  used += len;
  return true;
}

/** A batch is being handled (`clean`: the tape may be used) or is done. */
function batch(clean) {
  open = clean;
}

function batchDone() {
  open = false;
  settle();
}

/**
 * The engine, as JS calls it: every method takes the tape first. `full`
 * hears of a connection a taped send left above its mark.
 */
function guard(engine, full) {
  native = engine;
  onFull = full;
  const guarded = {};
  for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(engine))) {
    const fn = engine[name];
    if (name === 'constructor' || typeof fn !== 'function') continue;
    guarded[name] = (...args) => {
      if (count !== 0) flush();
      return fn.apply(engine, args);
    };
  }
  return guarded;
}

module.exports = { batch, batchDone, guard, put, settle };
