'use strict';

const BINARY_TYPES = ['nodebuffer', 'arraybuffer', 'fragments'];

if (typeof Blob !== 'undefined') BINARY_TYPES.push('blob');

module.exports = {
  BINARY_TYPES,
  CLOSE_TIMEOUT: 30 * 1000,
  EMPTY_BUFFER: Buffer.alloc(0),
  GUID: '258EAFA5-E914-47DA-95CA-C5AB0DC85B11',
  kForOnEventAttribute: Symbol('kIsForOnEventAttribute'),
  kListener: Symbol('kListener'),
  /** The WebSocketServer a server-side WebSocket belongs to. */
  kServer: Symbol('ws-native server'),
  kStatusCode: Symbol('status-code'),
  MAX_PENDING_AUTO_PONGS: 60,
  kWebSocket: Symbol('websocket'),
  NOOP: () => {}
};
