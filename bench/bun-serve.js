'use strict';

// The limit the bench compares against: Bun.serve's own WebSocket server
// (uWebSockets inside Bun), doing what bench/server.js does. Runs under Bun
// only: bun bench/bun-serve.js [--deflate]
/* global Bun */

const deflate = process.argv.includes('--deflate');

const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  fetch(req, srv) {
    const path = new URL(req.url).pathname;
    if (srv.upgrade(req, { data: { path } })) return undefined;
    return new Response('upgrade required', { status: 426 });
  },
  websocket: {
    perMessageDeflate: deflate,
    maxPayloadLength: 100 * 1024 * 1024,
    // As ws: no limit on what waits to be written.
    backpressureLimit: 2 ** 31 - 1,
    closeOnBackpressureLimit: false,
    open(ws) {
      if (ws.data.path === '/broadcast/recv') ws.subscribe('all');
    },
    message(ws, message) {
      if (ws.data.path === '/broadcast/send') server.publish('all', message);
      // Bun.serve compresses a send only when asked (its second argument);
      // ws, ws-native and Bun's ws compress every message once deflate is on.
      else if (ws.data.path !== '/broadcast/recv') ws.send(message, deflate);
    }
  }
});

console.log(`listening ${server.port}`);
require('./control').answerStdin();
