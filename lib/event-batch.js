'use strict';

// Decoding of the Rust side's event batches (src/engine/batch.rs): a tape of
// four-word records plus an arena of payload bytes, used by both transports.
// Incoming only; how frames go out is in frame-flags.js.

// Bound here, not read through the global's accessor at every use.
const { Buffer } = require('buffer');

const { FastBuffer } = require('./buffer-util');
const { EMPTY_BUFFER, kStatusCode } = require('./constants');

const EV = {
  TEXT: 1,
  BINARY: 2,
  PING: 3,
  PONG: 4,
  CLOSE_FRAME: 5,
  ERROR: 6,
  ACK: 7,
  EOF: 8,
  CLOSED: 9,
  FINISH: 10,
  REQUEST: 11,
  HANDOFF: 12,
  DRAINED: 13,
  DRAIN: 14,
  // Flags. PENDING: the payload is in the batch's pending bytes, not its
  // arena (native-transport.js). BIG: it is a Buffer of its own in `bigs`.
  PENDING: 0x40,
  BIG: 0x80
};

/**
 * A record's payload: a big one by its index in `bigs`, else a view of the
 * arena, which starts at `base` in the ArrayBuffer `ab` (read once per
 * batch by the caller: a typed array's `buffer` getter is a call into C++).
 */
function payload(word, a, b, ab, base, bigs) {
  return word & EV.BIG ? bigs[a] : new FastBuffer(ab, base + a, b);
}

/**
 * A control frame's payload, copied, so that keeping it keeps none of the
 * memory the arena is in; an empty one is the shared empty Buffer, as ws
 * gives it.
 */
function copied(word, a, b, ab, base, bigs) {
  return b === 0 && !(word & EV.BIG) ? EMPTY_BUFFER : Buffer.from(payload(word, a, b, ab, base, bigs));
}

const CODES = require('./binding').errorCodes();
/** zlib's errno for its codes, as Node's zlib errors carry it. */
const ZLIB_ERRNO = { Z_DATA_ERROR: -3, Z_BUF_ERROR: -5 };

/**
 * An error record: `extra` is `closeCode | class << 11 | codeIndex << 12`
 * (src/engine/batch.rs), the payload is the message.
 */
function protocolError(extra, message) {
  const err = extra & 0x800 ? new RangeError(message) : new Error(message);
  const code = CODES[extra >>> 12];
  err.code = code;
  if (code in ZLIB_ERRNO) err.errno = ZLIB_ERRNO[code];
  err[kStatusCode] = extra & 0x7ff;
  return err;
}

/**
 * Delivers one frame-level record to `ws`. Returns false for the records
 * that are the transport's business (ACK, EOF, CLOSED).
 */
function deliverFrame(ws, word, a, b, ab, base, bigs) {
  switch (word & 0x3f) {
    case EV.TEXT:
      ws._onMessage(payload(word, a, b, ab, base, bigs), false);
      return true;
    case EV.BINARY:
      ws._onMessage(payload(word, a, b, ab, base, bigs), true);
      return true;
    case EV.PING:
      ws._onPing(copied(word, a, b, ab, base, bigs));
      return true;
    case EV.PONG:
      ws._onPong(copied(word, a, b, ab, base, bigs));
      return true;
    case EV.CLOSE_FRAME:
      ws._onConclude(word >>> 8, copied(word, a, b, ab, base, bigs));
      return true;
    case EV.ERROR:
      ws._onProtocolError(protocolError(word >>> 8, payload(word, a, b, ab, base, bigs).toString()));
      return true;
    default:
      return false;
  }
}

module.exports = { EV, deliverFrame };
