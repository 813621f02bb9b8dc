'use strict';

// createWebSocketStream over both implementations: data both ways, end,
// finish, close and error in the same order as ws.

const assert = require('assert');
const { describe } = require('node:test');

const { closeServer, describeError, it, sameForBoth, startServer, track } = require('./helpers');

function watch(duplex, ws, log, tag) {
  duplex.on('data', (d) => log.push([tag, 'data', String(d)]));
  duplex.on('end', () => log.push([tag, 'end']));
  duplex.on('finish', () => log.push([tag, 'finish']));
  duplex.on('close', () => log.push([tag, 'close']));
  duplex.on('error', (e) => log.push([tag, 'error', ...describeError(e)]));
  ws.on('close', (code) => log.push([tag, 'ws close', code]));
}

const same = (scenario) => sameForBoth(assert, scenario, { sides: ['client', 'server'] });

async function pairOf(WebSocket, impl) {
  const wss = await startServer(impl);
  const client = track(new WebSocket(`ws://127.0.0.1:${wss.address().port}`));
  const server = await new Promise((resolve) => wss.once('connection', resolve));
  return { wss, client, server };
}

describe('createWebSocketStream', () => {
  it('moves data both ways and ends cleanly from the client', async () => {
    await same(async (WebSocket, log, impl) => {
      const { wss, client, server } = await pairOf(WebSocket, impl);
      const c = WebSocket.createWebSocketStream(client, { encoding: 'utf8' });
      const s = WebSocket.createWebSocketStream(server);
      const done = Promise.all([new Promise((r) => c.on('close', r)), new Promise((r) => s.on('close', r))]);
      watch(c, client, log, 'client');
      watch(s, server, log, 'server');
      s.on('data', (d) => s.write(`echo ${d}`));
      c.write('one');
      c.write('two');
      let n = 0;
      c.on('data', () => ++n === 2 && c.end());
      s.on('end', () => s.end());
      await done;
      await closeServer(wss);
    });
  });

  it('destroys the socket when the stream is destroyed, and reports errors', async () => {
    await same(async (WebSocket, log, impl) => {
      const { wss, client, server } = await pairOf(WebSocket, impl);
      const c = WebSocket.createWebSocketStream(client);
      const s = WebSocket.createWebSocketStream(server);
      watch(c, client, log, 'client');
      watch(s, server, log, 'server');
      const done = Promise.all([new Promise((r) => c.on('close', r)), new Promise((r) => s.on('end', r))]);
      client.on('open', () => c.destroy(new Error('stop')));
      await done;
      await closeServer(wss);
    });
  });

  it('turns text into strings in objectMode and applies backpressure', async () => {
    await same(async (WebSocket, log, impl) => {
      const { wss, client, server } = await pairOf(WebSocket, impl);
      const c = WebSocket.createWebSocketStream(client, { readableObjectMode: true, readableHighWaterMark: 1 });
      c.pause();
      const arrived = new Promise((resolve) => {
        let n = 0;
        client.on('message', () => ++n === 6 && resolve());
      });
      for (let i = 0; i < 5; i++) server.send(`m${i}`);
      server.send('last');
      await arrived;
      log.push(['paused', client.isPaused]);
      const got = [];
      c.on('data', (d) => {
        got.push([typeof d, d]);
        if (d === 'last') server.close();
      });
      c.resume();
      await new Promise((r) => c.on('end', r));
      log.push(['got', got]);
      await closeServer(wss);
    });
  });
});
