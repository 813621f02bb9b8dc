import createWebSocketStream from './lib/stream.js';
import WebSocket from './lib/websocket.js';
import WebSocketServer from './lib/websocket-server.js';

export { createWebSocketStream, WebSocket, WebSocketServer };
export default WebSocket;
