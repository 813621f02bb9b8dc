'use strict';

// The stream transport's own cost, with no TLS and no kernel: a Duplex in
// place of the socket, fed chunks of 16 masked 32 B text frames; the server
// echoes each. Prints the CPU time per echoed message.
//
//   node bench/stream-cost.js [native|ws] [chunks]

const crypto = require('crypto');
const path = require('path');
const { Duplex } = require('stream');

const impl = process.argv[2] === 'ws' ? require('ws') : require(path.join(__dirname, '..'));
const chunks = Number(process.argv[3]) || 200000;
const PER_CHUNK = 16;

let written = 0;
const socket = new Duplex({
  read() {},
  write(chunk, encoding, cb) {
    written += chunk.length;
    cb();
  },
  writev(list, cb) {
    for (const { chunk } of list) written += chunk.length;
    cb();
  }
});
socket.setNoDelay = () => {};
socket.setTimeout = () => {};

function maskedText(payload) {
  const key = [1, 2, 3, 4];
  const f = Buffer.alloc(6 + payload.length);
  f[0] = 0x81;
  f[1] = 0x80 | payload.length;
  Buffer.from(key).copy(f, 2);
  for (let i = 0; i < payload.length; i++) f[6 + i] = payload[i] ^ key[i & 3];
  return f;
}
const chunk = Buffer.concat(Array(PER_CHUNK).fill(maskedText(Buffer.alloc(32, 0x61))));

const headers = {
  host: 'localhost',
  upgrade: 'websocket',
  connection: 'Upgrade',
  'sec-websocket-key': crypto.randomBytes(16).toString('base64'),
  'sec-websocket-version': '13'
};
const req = { method: 'GET', url: '/', httpVersion: '1.1', headers, socket };
const wss = new impl.WebSocketServer({ noServer: true });

/** Pushes `n` chunks, a thousand per turn; then calls `done`. */
function feed(n, done) {
  const k = Math.min(1000, n);
  for (let i = 0; i < k; i++) socket.push(chunk);
  if (n > k) setImmediate(feed, n - k, done);
  else setImmediate(done);
}

wss.handleUpgrade(req, socket, Buffer.alloc(0), (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  feed(20000, () => {
    const start = process.cpuUsage();
    feed(chunks, () => {
      const used = process.cpuUsage(start);
      const ns = ((used.user + used.system) * 1000) / (chunks * PER_CHUNK);
      console.log(`${process.argv[2] || 'native'}: ${ns.toFixed(0)} ns of CPU per echoed 32 B message (${written} bytes written)`);
      process.exit(0);
    });
  });
});
