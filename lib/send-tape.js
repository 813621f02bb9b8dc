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
// kernel to take a write, up to 32 KiB a connection and until anything
// else is sent on it. Such a send is queued and leaves bufferedAmount
// where it was, as the engine would have answered: a connection's queue is
// written early (and may then wait for the kernel) only past 64 KiB queued
// in one batch (src/engine/batch.rs, `blocked`; src/engine/mod.rs,
// FLUSH_EARLY; src/bindings/engine.rs, `send_tape`).

const { Buffer } = require('buffer');

const { engineSendTape } = require('./binding');

/** Records on the tape: id, opcode | flags << 8, offset and length in `area`. */
const RECORDS = 1024;
/** Payloads up to this size go on the tape; a bigger one is sent at once. */
const MAX_PAYLOAD = 1024;
const AREA_BYTES = 64 * 1024;
/** The frame's FIN bit, as src/bindings/args.rs reads the flags. */
const FIN = 1 << 8;
/** What one connection may have on the tape in one batch, headers counted. */
const PER_CONNECTION = 32 * 1024;
/** A frame header's bytes, at most, for a payload that goes on the tape. */
const HEADER = 4;

const records = new Uint32Array(RECORDS * 4);
const tape = Buffer.from(records.buffer);
const area = Buffer.allocUnsafeSlow(AREA_BYTES);
let count = 0;
let used = 0;
let open = false;
/** The batch being handled, as a number: a transport's tape count is its. */
let turn = 0;
let onFull = null;

/** Hands the tape to the engine. */
function flush() {
  const n = count;
  count = 0;
  used = 0;
  const full = engineSendTape(tape, area, n);
  // None, as JS made sure of; were there one, the WebSocket still hears.
  for (let i = 0; i < full; i++) onFull(records[i]);
}

/** Before any other call into the engine: what the tape holds goes first. */
function settle() {
  if (count !== 0) flush();
}

/**
 * Something else is sent on `tr` at once: what the tape holds goes first,
 * and the rest of the batch's sends on `tr` go at once too (whether they
 * take it past its mark is the engine's to say).
 */
function sendingAtOnce(tr) {
  if (count !== 0) flush();
  if (open) {
    tr.tapeTurn = turn;
    tr.tapeBytes = PER_CONNECTION;
  }
}

/**
 * Puts a data frame for transport `tr` on the tape; false when it has to be
 * sent at once (outside a batch, too big, or past the connection's share).
 */
function put(tr, opcode, fin, data) {
  if (!open) return false;
  if (tr.tapeTurn !== turn) {
    tr.tapeTurn = turn;
    tr.tapeBytes = 0;
  }
  const string = typeof data === 'string';
  // At most three bytes of UTF-8 for each UTF-16 unit.
  const most = string ? data.length * 3 : data.length;
  if (most > MAX_PAYLOAD || tr.tapeBytes + most + HEADER > PER_CONNECTION) return false;
  if (used + most > AREA_BYTES || count === RECORDS) flush();
  let len;
  if (string) {
    len = area.utf8Write(data, used);
  } else {
    len = most;
    area.set(data, used);
  }
  tr.tapeBytes += len + HEADER;
  const r = count * 4;
  records[r] = tr.id;
  records[r + 1] = fin ? opcode | FIN : opcode;
  records[r + 2] = used;
  records[r + 3] = len;
  count++;
  used += len;
  return true;
}

/**
 * A batch is being handled (`clean`: the tape may be used); `fresh`: a new
 * one, not the rest of one a listener threw in.
 */
function batch(clean, fresh) {
  open = clean;
  if (fresh) turn++;
}

function batchDone() {
  open = false;
  settle();
}

/**
 * `fn`, a function of the engine, called once the tape is handed over. It
 * passes on six arguments, as many as any engine function takes.
 */
function guarded(fn) {
  return (a, b, c, d, e, f) => {
    if (count !== 0) flush();
    return fn(a, b, c, d, e, f);
  };
}

/**
 * The engine, as JS calls it: every method takes the tape first. `full`
 * hears of a connection a taped send left above its mark.
 */
function guard(engine, full) {
  onFull = full;
  const methods = {};
  for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(engine))) {
    const fn = engine[name];
    if (name !== 'constructor' && typeof fn === 'function') methods[name] = guarded(fn.bind(engine));
  }
  return methods;
}

module.exports = { batch, batchDone, guard, guarded, put, sendingAtOnce, settle };
