'use strict';

// The WebSocket's listeners on its socket, for both transports: the socket's
// 'end', 'error' and 'close' drive the closing of the WebSocket as in ws,
// whether the socket is a Node stream (stream transport) or a net.Socket
// whose fd the engine has adopted (native transport).

const { kWebSocket } = require('./constants');

const CLOSING = 2;

function noop() {}

function onEnd() {
  this[kWebSocket]._onEnd();
}

function onError() {
  const ws = this[kWebSocket];
  this.removeListener('error', onError);
  this.on('error', noop);
  if (ws) {
    ws._readyState = CLOSING;
    this.destroy();
  }
}

function onClose() {
  const ws = this[kWebSocket];
  this.removeListener('close', onClose);
  this.removeListener('end', onEnd);
  ws._transport.socketClosed();
}

/** Listens on `socket` for `ws`; `onData`, when given, is the stream's data listener. */
function watch(socket, ws, onData) {
  socket[kWebSocket] = ws;
  socket.on('close', onClose);
  if (onData) socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', onError);
}

module.exports = { watch };
