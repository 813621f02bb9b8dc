'use strict';

// Echo server for Autobahn's fuzzingclient. Usage: node echo-server.js PORT [ws]

const impl = process.argv[3] === 'ws' ? require('ws') : require('../..');

const wss = new impl.WebSocketServer({
  port: +process.argv[2],
  host: '127.0.0.1',
  perMessageDeflate: true,
  ...(process.env.AUTOBAHN_DEFAULT_LIMITS ? {} : { maxFragments: 1 << 20 })
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`echo server listening on ${wss.address().port}`));
process.on('SIGTERM', () => process.exit(0));
