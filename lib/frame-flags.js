'use strict';

// How a frame goes out, as one number for the Rust side (src/bindings/args.rs
// has the same bits). Used by both transports' send paths.

const F = { FIN: 1, COMPRESS: 2, MASK: 4, ACK: 8, MASK_KEY: 16 };

/** Flags for a frame; `mask` is false, true (random key) or a 4-byte key. */
function frameFlags(fin, compress, mask, cb) {
  const flags = (fin ? F.FIN : 0) | (compress ? F.COMPRESS : 0) | (cb ? F.ACK : 0);
  return mask === true ? flags | F.MASK : mask ? flags | F.MASK_KEY : flags;
}

/** The masking key as a number, when the caller chose one. */
function maskKey(mask) {
  return mask && mask !== true ? mask.readUInt32BE(0) : undefined;
}

module.exports = { frameFlags, maskKey };
