'use strict';

// The server under test: echo on every path, plus a relay for the broadcast
// scenario (/broadcast/recv joins, /broadcast/send messages go to everyone).
// Usage: node bench/server.js native|ws [--deflate]

const impl = process.argv[2] === 'ws' ? require('ws') : require('..');
const deflate = process.argv.includes('--deflate');

const receivers = new Set();
const wss = new impl.WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: deflate });

wss.on('connection', (ws, req) => {
  ws.on('error', () => {});
  if (req.url === '/broadcast/recv') {
    receivers.add(ws);
    ws.on('close', () => receivers.delete(ws));
  } else if (req.url === '/broadcast/send') {
    ws.on('message', (data, isBinary) => {
      for (const r of receivers) r.send(data, { binary: isBinary });
    });
  } else {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});

wss.on('listening', () => console.log(`listening ${wss.address().port}`));
