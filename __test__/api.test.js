'use strict';

// The WebSocket API in every state, compared with ws: argument validation,
// errors and callbacks, EventTarget, attributes and close paths.

const assert = require('assert');
const { describe } = require('node:test');
const { once } = require('events');

const { attempt, closeServer, describeError, it, record, sameForBoth, sent, startServer, track } = require('./helpers');

const same = (scenario) => sameForBoth(assert, scenario);


/** A connected pair: a server of `serverImpl` and a client of `impl`. */
async function pair(WebSocket, serverImpl = 'ws', options = {}) {
  const wss = await startServer(serverImpl, options.server);
  const client = track(new WebSocket(`ws://127.0.0.1:${wss.address().port}`, options.client));
  const [[server]] = await Promise.all([once(wss, 'connection'), once(client, 'open')]);
  return { wss, client, server };
}

describe('API parity', () => {
  it('refuses sends, pings and pongs while connecting', async () => {
    await same(async (WebSocket, log) => {
      const wss = await startServer('ws');
      const ws = track(new WebSocket(`ws://127.0.0.1:${wss.address().port}`));
      attempt(log, 'send', () => sent(ws.send('x')));
      attempt(log, 'ping', () => ws.ping());
      attempt(log, 'pong', () => ws.pong());
      log.push(['state', ws.readyState, ws.bufferedAmount, ws.protocol, ws.extensions, ws.isPaused]);
      ws.pause();
      ws.resume();
      log.push(['paused', ws.isPaused]);
      record(ws, log);
      ws.terminate();
      await new Promise((r) => ws.on('close', r));
      await closeServer(wss);
    });
  });

  it('closes before the connection is established with ws\'s error', async () => {
    await same(async (WebSocket, log) => {
      const wss = await startServer('ws');
      const ws = track(new WebSocket(`ws://127.0.0.1:${wss.address().port}`));
      record(ws, log);
      ws.close();
      log.push(['state after close', ws.readyState]);
      await new Promise((r) => ws.on('close', r));
      await closeServer(wss);
    });
  });

  it('validates close codes and reasons as ws does', async () => {
    await same(async (WebSocket, log) => {
      const { wss, client } = await pair(WebSocket);
      const bad = [['abc'], [1005], [1004], [999], [5000], [1000, 'x'.repeat(124)], [1000, 'é'.repeat(62)], [1000, {}], [1000, 42], [1000, { length: 3 }]];
      for (const args of bad) attempt(log, JSON.stringify(args), () => client.close(...args));
      log.push(['state', client.readyState]);
      record(client, log);
      client.close(4321, Buffer.from('buffer reason'));
      await new Promise((r) => client.on('close', r));
      await closeServer(wss);
    });
  });

  it('checks ping and pong sizes', async () => {
    await same(async (WebSocket, log) => {
      const { wss, client } = await pair(WebSocket);
      attempt(log, 'ping 126', () => client.ping(Buffer.alloc(126)));
      attempt(log, 'pong 126 string', () => client.pong('x'.repeat(126)));
      attempt(log, 'ping 125', () => client.ping(Buffer.alloc(125)));
      attempt(log, 'ping number', () => client.ping(12345));
      record(client, log);
      client.terminate();
      await new Promise((r) => client.on('close', r));
      await closeServer(wss);
    });
  });

  it('fails sends after close with ws\'s errors, in order', async () => {
    await same(async (WebSocket, log) => {
      const { wss, client } = await pair(WebSocket);
      client.close();
      const cb = (label) => (err) => log.push([label, err ? describeError(err) : null]);
      client.send('after close', cb('send'));
      client.ping('p', cb('ping'));
      client.pong(undefined, true, cb('pong'));
      client.send(Buffer.alloc(10));
      log.push(['buffered', client.bufferedAmount >= 10]);
      await new Promise((r) => client.on('close', r));
      client.send('closed', cb('send closed'));
      log.push(['after', client.readyState]);
      await new Promise((r) => setImmediate(r));
      await closeServer(wss);
    });
  });

  it('terminates in every state', async () => {
    await same(async (WebSocket, log) => {
      const { wss, client, server } = await pair(WebSocket);
      record(client, log);
      record(server, log);
      client.close(1000);
      client.terminate();
      client.terminate();
      await new Promise((r) => server.on('close', r));
      client.terminate();
      log.push(['state', client.readyState]);
      await closeServer(wss);
    });
  });

  it('times out a close handshake the peer never answers', async () => {
    await same(async (WebSocket, log) => {
      const wss = await startServer('ws');
      wss.on('connection', (ws) => ws._socket.pause());
      const ws = track(new WebSocket(`ws://127.0.0.1:${wss.address().port}`, { closeTimeout: 50 }));
      record(ws, log);
      await once(ws, 'open');
      ws.close(1000, 'bye');
      await new Promise((r) => ws.on('close', r));
      for (const c of wss.clients) c.terminate();
      await closeServer(wss);
    });
  });

  it('supports the EventTarget interface', async () => {
    await same(async (WebSocket, log) => {
      const { wss, client, server } = await pair(WebSocket);
      const describeEvent = (e) => {
        const fields = {};
        for (const k in e) if (k !== 'target') fields[k] = k === 'error' ? describeError(e[k]) : e[k];
        return [e.constructor.name, e.target === client, fields];
      };
      const handler = (e) => log.push(['handler', ...describeEvent(e)]);
      const object = { handleEvent: (e) => log.push(['object', ...describeEvent(e)]) };
      client.addEventListener('message', handler);
      client.addEventListener('message', handler);
      client.addEventListener('message', object, { once: true });
      client.addEventListener('close', handler);
      client.addEventListener('unknown', handler);
      client.onmessage = (e) => log.push(['onmessage', typeof e.data, String(e.data)]);
      client.onclose = (e) => log.push(['onclose', e.code, e.reason, e.wasClean]);
      client.onerror = 'not a function';
      log.push(['attributes', typeof client.onmessage, client.onerror, client.onopen, client.listenerCount('message')]);
      client.binaryType = 'arraybuffer';
      client.binaryType = 'bogus';
      log.push(['binaryType', client.binaryType]);
      const two = new Promise((resolve) => {
        let n = 0;
        client.on('message', () => ++n === 2 && resolve());
      });
      server.send('text one');
      server.send(Buffer.from('binary two'));
      await two;
      client.removeEventListener('message', handler);
      client.onmessage = null;
      log.push(['after remove', client.listenerCount('message'), client.onmessage]);
      server.close(4000, 'bye');
      await new Promise((r) => client.addEventListener('close', r));
      await closeServer(wss);
    });
  });

  it('emits error events through onerror with ErrorEvent fields', async () => {
    await same(async (WebSocket, log) => {
      const ws = track(new WebSocket('ws://127.0.0.1:1'));
      ws.onerror = (e) => log.push(['error', e.type, e.message === e.error.message, e.error.code]);
      await new Promise((r) => (ws.onclose = (e) => r(log.push(['close', e.code, e.wasClean]))));
    });
  });

  it('reports unexpected responses with and without a listener', async () => {
    const http = require('http');
    await same(async (WebSocket, log) => {
      const server = track(
        http.createServer((req, res) => {
          res.writeHead(401, { 'X-Reason': 'no' });
          res.end('denied');
        })
      );
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const url = `ws://127.0.0.1:${server.address().port}`;
      const a = track(new WebSocket(url));
      record(a, log);
      await new Promise((r) => a.on('close', r));
      const b = track(new WebSocket(url));
      b.on('unexpected-response', (req, res) => {
        log.push(['unexpected-response', res.statusCode, res.headers['x-reason']]);
        b.terminate();
      });
      record(b, log);
      await new Promise((r) => b.on('close', r));
      server.close();
    });
  });

  it('closes servers with ws 8 semantics', async () => {
    await same(async (WebSocket, log) => {
      const wss = track(new WebSocket.WebSocketServer({ port: 0, host: '127.0.0.1' }));
      await once(wss, 'listening');
      const client = track(new WebSocket(`ws://127.0.0.1:${wss.address().port}`));
      const [[server]] = await Promise.all([once(wss, 'connection'), once(client, 'open')]);
      wss.on('close', () => log.push(['server close event']));
      // The internal HTTP server closes once its connections have ended.
      const closed = new Promise((r) => wss.close((err) => r(log.push(['first close', err ? err.message : null]))));
      await new Promise((r) => setImmediate(r));
      log.push(['clients still open', server.readyState, client.readyState, wss.clients.size]);
      client.close();
      await closed;
      await new Promise((r) => wss.close((err) => r(log.push(['second close', err ? err.message : null]))));
      attempt(log, 'address', () => wss.address());
      const noServer = track(new WebSocket.WebSocketServer({ noServer: true }));
      attempt(log, 'noServer address', () => noServer.address());
      await new Promise((r) => noServer.close((err) => r(log.push(['noServer close', err ? err.message : null]))));
      attempt(log, 'bad options', () => new WebSocket.WebSocketServer({ port: 0, noServer: true }));
      attempt(log, 'no options', () => new WebSocket.WebSocketServer());
    });
  });

  it('reports EADDRINUSE through the error event', async () => {
    await same(async (WebSocket, log) => {
      const a = track(new WebSocket.WebSocketServer({ port: 0, host: '127.0.0.1' }));
      await once(a, 'listening');
      const b = track(new WebSocket.WebSocketServer({ port: a.address().port, host: '127.0.0.1' }));
      const [err] = await once(b, 'error');
      log.push(['error', err.code]);
      await new Promise((r) => a.close(r));
    });
  });
});
