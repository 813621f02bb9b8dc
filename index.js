'use strict';

const WebSocket = require('./lib/websocket');

WebSocket.createWebSocketStream = require('./lib/stream');
WebSocket.extension = require('./lib/extension');
WebSocket.Sender = require('./lib/sender');
WebSocket.Server = require('./lib/websocket-server');
WebSocket.subprotocol = require('./lib/subprotocol');
WebSocket.WebSocket = WebSocket;
WebSocket.WebSocketServer = WebSocket.Server;

module.exports = WebSocket;
