import createWebSocketStream from './lib/stream.js';
import extension from './lib/extension.js';
import Sender from './lib/sender.js';
import subprotocol from './lib/subprotocol.js';
import WebSocket from './lib/websocket.js';
import WebSocketServer from './lib/websocket-server.js';

export { createWebSocketStream, extension, Sender, subprotocol, WebSocket, WebSocketServer };
export default WebSocket;
