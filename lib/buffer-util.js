'use strict';

const { isAnyArrayBuffer } = require('util').types;

// Bound here, not read through the global's accessor at every use.
const { Buffer } = require('buffer');

const { EMPTY_BUFFER } = require('./constants');

const FastBuffer = Buffer[Symbol.species];

/** Joins `list` into one Buffer of `totalLength` bytes. */
function concat(list, totalLength) {
  if (list.length === 0) return EMPTY_BUFFER;
  if (list.length === 1) return list[0];
  const out = Buffer.allocUnsafe(totalLength);
  let offset = 0;
  for (const b of list) {
    out.set(b, offset);
    offset += b.length;
  }
  return offset < totalLength ? new FastBuffer(out.buffer, out.byteOffset, offset) : out;
}

/** An ArrayBuffer holding exactly the bytes of `buf`. */
function toArrayBuffer(buf) {
  if (buf.length === buf.buffer.byteLength) return buf.buffer;
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
}

/**
 * Views `data` as a Buffer without copying where possible. Checks by
 * internal type, not instanceof, so that values from any realm (vm
 * contexts, jsdom) work.
 */
function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (isAnyArrayBuffer(data)) return new FastBuffer(data);
  if (ArrayBuffer.isView(data)) {
    return new FastBuffer(data.buffer, data.byteOffset, data.byteLength);
  }
  return Buffer.from(data);
}

module.exports = { concat, FastBuffer, toArrayBuffer, toBuffer };
