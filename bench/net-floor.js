'use strict';

// The floor for round-trip latency: a plain Node `net` server that does no
// WebSocket work. It answers the upgrade with a canned 101 and every chunk
// with one fixed 32-byte text frame, which is what the latency scenario
// expects back.

const net = require('net');

const reply = Buffer.concat([Buffer.from([0x81, 32]), Buffer.alloc(32, 0x78)]);
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let upgraded = false;
  socket.on('data', () => {
    if (upgraded) return socket.write(reply);
    upgraded = true;
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  });
  socket.on('error', () => {});
});

server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
