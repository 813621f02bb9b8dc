'use strict';

// Send-side backpressure (beyond ws): `send()` tells whether bufferedAmount
// is still at or below `sendHighWaterMark`, 'drain' comes once it is back to
// 0 after a `false`, and a server's `maxBufferedAmount` closes a consumer
// that lets more than that pile up (1008) instead of growing without bound.

const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

function mark(value, name, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0)) {
    throw new RangeError(`The "${name}" option must be a number greater than or equal to 0`);
  }
  return value;
}

/**
 * `[sendHighWaterMark, maxBufferedAmount]` from a WebSocket's (or its
 * server's) options; the limit is the server's only, 0 when off.
 */
function sendMarks(options, isServer) {
  // Loads by name (a keyed load of the name was megamorphic: a handshake's
  // option objects come in many shapes).
  const high = mark(options.sendHighWaterMark, 'sendHighWaterMark', DEFAULT_HIGH_WATER_MARK);
  const max = isServer ? mark(options.maxBufferedAmount, 'maxBufferedAmount', 0) : 0;
  return [high, max];
}

module.exports = { DEFAULT_HIGH_WATER_MARK, sendMarks };
