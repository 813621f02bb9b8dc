'use strict';

// How a frame goes out, as one number for the Rust side (src/bindings/args.rs
// has the same bits). Used by both transports' send paths.

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

module.exports = { ackFlags, frameFlags, maskKey };
