'use strict';

// ws's Sender, as far as it can be honest here: the static `frame()` that
// socket.io's adapter uses to encode a broadcast once, and `sendFrame()` on a
// connection's `_sender` to write such frames. Framing of ordinary messages
// happens in Rust.

// Bound here, not read through the global's accessor at every use.
const { Buffer } = require('buffer');

const { randomFillSync } = require('crypto');

const { toBuffer } = require('./buffer-util');
const { headerLength, writeHeader } = require('./frame-flags');

class Sender {
  /**
   * @param {WebSocket} websocket The connection whose transport writes the frames
   */
  constructor(websocket) {
    this._websocket = websocket;
    this._bufferedBytes = 0;
  }

  /**
   * Frames `data`. Returns the buffers to write: the header and the payload,
   * or one buffer when the payload had to be copied anyway.
   * @param {(Buffer|String)} data The payload
   * @param {Object} options fin, opcode, rsv1, mask, maskBuffer, generateMask, readOnly
   * @return {Buffer[]}
   */
  static frame(data, options) {
    const payload = typeof data === 'string' ? Buffer.from(data) : toBuffer(data);
    const length = payload.length;
    let key = null;

    if (options.mask) {
      key = options.maskBuffer || Buffer.alloc(4);
      if (options.generateMask) options.generateMask(key);
      else randomFillSync(key, 0, 4);
    }

    const header = Buffer.allocUnsafe(headerLength(length, key !== null));
    const first = (options.fin ? 0x80 : 0) | (options.rsv1 ? 0x40 : 0) | options.opcode;
    const keyAt = writeHeader(header, 0, first, length, key !== null);

    if (!key) return length ? [header, payload] : [header];
    key.copy(header, keyAt);
    if (!length) return [header];
    if ((key[0] | key[1] | key[2] | key[3]) === 0) return [header, payload];

    // The caller's buffer is masked in place unless it is read-only, in which
    // case header and masked copy go out as one buffer.
    const merge = options.readOnly && typeof data !== 'string';
    const target = merge ? Buffer.concat([header, payload]) : payload;
    const start = merge ? header.length : 0;
    for (let i = 0; i < length; i++) target[start + i] ^= key[i & 3];
    return merge ? [target] : [header, target];
  }

  /**
   * Writes buffers that already form frames.
   * @param {Buffer[]} list As returned by `Sender.frame()`
   * @param {Function} [cb] Called once they are written
   */
  sendFrame(list, cb) {
    this._websocket._transport.raw(list, cb);
  }
}

module.exports = Sender;
