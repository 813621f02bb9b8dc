'use strict';

// The server under test: echo on every path, plus a relay for the broadcast
// scenarios (/broadcast/recv subscribes, /broadcast/send messages go to
// every subscriber).
//
//   node bench/server.js native|ws [--deflate] [--tls] [--express]
//   bun bench/server.js ws [...]           (Bun's own `ws`, on uWebSockets)
//
// --tls serves wss:// ({ server: https.createServer() }); --express mounts
// the WebSocketServer on an Express app's HTTP server ({ server }).
// Prints `listening PORT`, then answers the runner's lines on standard
// input (bench/control.js).

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');

const impl = process.argv[2] === 'ws' ? require('ws') : require('..');
const deflate = process.argv.includes('--deflate');
const tls = process.argv.includes('--tls');
const express = process.argv.includes('--express');

let server;
if (express) {
  const app = require('express')();
  app.get('/', (req, res) => res.send('ok'));
  server = http.createServer(app);
} else if (tls) {
  const fixtures = path.join(__dirname, '..', '__test__', 'fixtures');
  server = https.createServer({ cert: fs.readFileSync(path.join(fixtures, 'cert.pem')), key: fs.readFileSync(path.join(fixtures, 'key.pem')) });
}
const wss = server
  ? new impl.WebSocketServer({ server, perMessageDeflate: deflate })
  : new impl.WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: deflate });

// ws-native relays a broadcast with its publish() (frame once, fan out in
// the engine); ws and Bun's ws, with what their users write: a send each.
const publish = process.argv[2] !== 'ws';
const receivers = new Set();
wss.on('connection', (ws, req) => {
  ws.on('error', () => {});
  if (req.url === '/broadcast/recv') {
    if (publish) {
      ws.subscribe('all');
    } else {
      receivers.add(ws);
      ws.on('close', () => receivers.delete(ws));
    }
  } else if (req.url === '/broadcast/send') {
    ws.on('message', (data, isBinary) => {
      if (publish) wss.publish('all', data, { binary: isBinary });
      else for (const r of receivers) r.send(data, { binary: isBinary });
    });
  } else {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});

const listening = (port) => console.log(`listening ${port}`);
if (server) server.listen(0, '127.0.0.1', () => listening(server.address().port));
else wss.on('listening', () => listening(wss.address().port));

let mallocKib;
if (process.argv[2] !== 'ws' && typeof globalThis.Bun === 'undefined') {
  const { engineStats } = require('../lib/native-transport');
  mallocKib = () => Math.round(engineStats()[2] / 1024);
}
require('./control').answerStdin({ mallocKib });
