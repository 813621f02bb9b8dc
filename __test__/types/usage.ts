// Compiles against index.d.ts the way code typed for @types/ws is written.
import WebSocket, { WebSocketServer, createWebSocketStream } from 'ws-native';
import * as http from 'http';

const server = http.createServer();
const wss = new WebSocketServer({ server, perMessageDeflate: { threshold: 512 }, maxPayload: 1 << 20 });
const other: WebSocket.Server = new WebSocket.Server({ noServer: true });

wss.on('connection', (ws: WebSocket, req: http.IncomingMessage) => {
  ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
    ws.send(data, { binary: isBinary }, (err?: Error) => void err);
  });
  ws.on('close', (code: number, reason: Buffer) => void [code, reason.toString()]);
  ws.ping();
  void req.socket.remoteAddress;
});

server.on('upgrade', (req, socket, head) => {
  other.handleUpgrade(req, socket, head, (ws) => other.emit('connection', ws, req));
});

const client = new WebSocket('ws://localhost:1', ['chat'], { headers: { a: 'b' }, handshakeTimeout: 1000 });
client.binaryType = 'arraybuffer';
client.onmessage = (ev: WebSocket.MessageEvent) => void ev.data;
client.addEventListener('close', (ev) => void ev.code, { once: true });
if (client.readyState === WebSocket.OPEN) client.close(1000, 'bye');
const duplex = createWebSocketStream(client, { encoding: 'utf8' });
duplex.pipe(process.stdout);

// ws-native's additions (beyond ws): backpressure and publish/subscribe.
const hub = new WebSocketServer({ port: 0, sendHighWaterMark: 1 << 20, maxBufferedAmount: 8 << 20 });
hub.on('connection', (ws: WebSocket) => {
  ws.subscribe('news');
  const subscribed: boolean = ws.isSubscribed('news');
  const topics: string[] = ws.subscriptions;
  if (!ws.send('hello')) ws.once('drain', () => ws.unsubscribe('news'));
  void [subscribed, topics];
});
const reached: number = hub.publish('news', Buffer.from('x'), { binary: true, except: client });
const everyone: number = hub.broadcast('all', { compress: false });
const slow = new WebSocket('ws://localhost:1', { sendHighWaterMark: 64 * 1024 });
void [reached, everyone, slow];
