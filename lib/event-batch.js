'use strict';

// Decoding of the Rust side's event batches (src/engine/batch.rs): a tape of
// four-word records plus an arena of payload bytes, used by both transports.
// Incoming only; how frames go out is in frame-flags.js.

const { FastBuffer } = require('./buffer-util');
const { kStatusCode } = require('./constants');

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
  BIG: 0x80
};

function payload(word, a, b, arena, bigs) {
  return word & EV.BIG ? bigs[a] : new FastBuffer(arena.buffer, arena.byteOffset + a, b);
}

function protocolError(text) {
  const [message, code, closeCode, cls] = text.split('\n');
  const err = cls === 'RangeError' ? new RangeError(message) : new Error(message);
  err.code = code;
  if (code.startsWith('Z_')) err.errno = -3;
  err[kStatusCode] = +closeCode;
  return err;
}

/**
 * Delivers one frame-level record to `ws`. Returns false for the records
 * that are the transport's business (ACK, EOF, CLOSED).
 */
function deliverFrame(ws, word, a, b, arena, bigs) {
  switch (word & 0x7f) {
    case EV.TEXT:
      ws._onMessage(payload(word, a, b, arena, bigs), false);
      return true;
    case EV.BINARY:
      ws._onMessage(payload(word, a, b, arena, bigs), true);
      return true;
    case EV.PING:
      ws._onPing(Buffer.from(payload(word, a, b, arena, bigs)));
      return true;
    case EV.PONG:
      ws._onPong(Buffer.from(payload(word, a, b, arena, bigs)));
      return true;
    case EV.CLOSE_FRAME:
      ws._onConclude(word >>> 8, Buffer.from(payload(word, a, b, arena, bigs)));
      return true;
    case EV.ERROR:
      ws._onProtocolError(protocolError(payload(word, a, b, arena, bigs).toString()));
      return true;
    default:
      return false;
  }
}

module.exports = { EV, deliverFrame };
