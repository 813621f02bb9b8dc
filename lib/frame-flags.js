'use strict';

// How a frame goes out: as one number for the Rust side (src/bindings/args.rs
// has the same bits), used by both transports' send paths; and the header
// of a frame framed in JS (Sender.frame(), the stream transport's plain
// messages).

const F = { FIN: 1, COMPRESS: 2, MASK: 4, ACK: 8, MASK_KEY: 16, ACK_NOW: 32 };

/** Flags for a frame; `mask` is false, true (random key) or a 4-byte key. */
function frameFlags(fin, compress, mask) {
  const flags = (fin ? F.FIN : 0) | (compress ? F.COMPRESS : 0);
  return mask === true ? flags | F.MASK : mask ? flags | F.MASK_KEY : flags;
}

/** The masking key as a number, when the caller chose one. */
function maskKey(mask) {
  return mask && mask !== true ? mask.readUInt32BE(0) : undefined;
}

/**
 * The acknowledgement bits for a send with callback `cb`: when no earlier
 * callback waits (`first`), the engine may report the frame as written at
 * once and leave the callback to the caller.
 */
function ackFlags(cb, first) {
  return !cb ? 0 : first ? F.ACK | F.ACK_NOW : F.ACK;
}

/** The bytes of a frame header: 2, the extended length, a masking key. */
function headerLength(length, masked) {
  return 2 + (length >= 65536 ? 8 : length > 125 ? 2 : 0) + (masked ? 4 : 0);
}

/**
 * Writes a frame header into `target` at `at`: `first` is the byte with
 * FIN, RSV1 and the opcode. Returns where the masking key (when `masked`)
 * or else the payload goes.
 */
function writeHeader(target, at, first, length, masked) {
  target[at] = first;
  const mask = masked ? 0x80 : 0;
  if (length <= 125) {
    target[at + 1] = mask | length;
    return at + 2;
  }
  if (length < 65536) {
    target[at + 1] = mask | 126;
    target[at + 2] = length >>> 8;
    target[at + 3] = length & 0xff;
    return at + 4;
  }
  target[at + 1] = mask | 127;
  // Lengths stay below 2^48 (Buffers do).
  target[at + 2] = 0;
  target[at + 3] = 0;
  target.writeUIntBE(length, at + 4, 6);
  return at + 10;
}

module.exports = { ackFlags, frameFlags, headerLength, maskKey, writeHeader };
