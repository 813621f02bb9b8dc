// Runs under vitest's jsdom environment, as graphql-ws's own tests do. There
// the globals (Uint8Array, ArrayBuffer, ...) are jsdom's, from another V8
// context, while Node's Buffers keep Node's: a Buffer is not an instance of
// the global Uint8Array. ws and ws-native are loaded the way a dependency in
// node_modules is, by Node's own require. Every scenario runs on both and
// must give what ws gives.
//
// Run by __test__/dep-jsdom.test.js.

import { createRequire } from 'node:module';
import { afterEach, describe, expect, test } from 'vitest';

const require = createRequire(import.meta.url);

const IMPLS = { ws: require('ws'), native: require('../..') };
const graphql = require('graphql');
const { createClient } = require('graphql-ws');
const { useServer } = require('graphql-ws/use/ws');

// Cleanups run after each test, also after one that failed or timed out.
const cleanups = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

async function startServer(impl) {
  const { WebSocketServer } = IMPLS[impl];
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  cleanups.push(
    () =>
      new Promise((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        wss.close(() => resolve());
      })
  );
  await new Promise((resolve) => wss.once('listening', resolve));
  return wss;
}

function connect(impl, url, protocols) {
  const ws = new IMPLS[impl](url, protocols);
  cleanups.push(() => {
    if (ws.readyState !== ws.CLOSED) ws.terminate();
  });
  return ws;
}

function urlOf(wss) {
  return `ws://127.0.0.1:${wss.address().port}`;
}

/** Records close and error events of `ws` under `side` in `log`. */
function watch(ws, log, side) {
  const closed = deferred();
  ws.on('error', (err) => log.push([side, 'error', err.message]));
  ws.on('close', (code, reason) => {
    log.push([side, 'close', code, String(reason)]);
    closed.resolve();
  });
  return closed.promise;
}

function makeSchema() {
  const Query = new graphql.GraphQLObjectType({
    name: 'Query',
    fields: { hello: { type: graphql.GraphQLString, resolve: () => 'world' } }
  });
  const Subscription = new graphql.GraphQLObjectType({
    name: 'Subscription',
    fields: {
      count: {
        type: graphql.GraphQLInt,
        subscribe: async function* () {
          for (let i = 1; i <= 3; i++) yield { count: i };
        }
      }
    }
  });
  return new graphql.GraphQLSchema({ query: Query, subscription: Subscription });
}

function graphqlServer(wss, log) {
  const serverClosed = deferred();
  const server = useServer(
    {
      schema: makeSchema(),
      onClose: (ctx, code, reason) => {
        log.push(['server', 'onClose', code, reason]);
        serverClosed.resolve();
      }
    },
    wss
  );
  cleanups.push(() => server.dispose());
  return serverClosed.promise;
}

function operation(client, query, log) {
  return new Promise((resolve) => {
    client.subscribe(
      { query },
      {
        next: (value) => log.push(['client', 'next', value]),
        error: (err) => {
          log.push(['client', 'error', err]);
          resolve();
        },
        complete: () => {
          log.push(['client', 'complete']);
          resolve();
        }
      }
    );
  });
}

/** The log of one side. */
const side = (log, name) => log.filter((e) => e[0] === name);

test('the environment: a Node Buffer is not an instance of the global Uint8Array', () => {
  expect(typeof window).toBe('object');
  expect(Buffer.alloc(1) instanceof Uint8Array).toBe(false);
});

describe.each(['ws', 'native'])('%s', (impl) => {
  test('graphql-ws: query, subscription and dispose', async () => {
    const log = [];
    const wss = await startServer(impl);
    const serverClosed = graphqlServer(wss, log);
    const clientClosed = deferred();
    let n = 0;
    const client = createClient({
      url: urlOf(wss),
      webSocketImpl: IMPLS[impl],
      lazy: false,
      retryAttempts: 0,
      generateID: () => String(++n),
      onNonLazyError: (err) => log.push(['client', 'onNonLazyError', String(err)]),
      on: {
        closed: (event) => {
          log.push(['client', 'closed', event.code, event.reason, event.wasClean]);
          clientClosed.resolve();
        }
      }
    });
    await operation(client, '{ hello }', log);
    await operation(client, 'subscription { count }', log);
    await client.dispose();
    await Promise.all([clientClosed.promise, serverClosed]);

    expect(side(log, 'client')).toEqual([
      ['client', 'next', { data: { hello: 'world' } }],
      ['client', 'complete'],
      ['client', 'next', { data: { count: 1 } }],
      ['client', 'next', { data: { count: 2 } }],
      ['client', 'next', { data: { count: 3 } }],
      ['client', 'complete'],
      ['client', 'closed', 1000, 'Normal Closure', true]
    ]);
    expect(side(log, 'server')).toEqual([['server', 'onClose', 1000, 'Normal Closure']]);
  });

  test('graphql-ws: the server closes with 4400 and a reason', async () => {
    const log = [];
    const wss = await startServer(impl);
    const serverClosed = graphqlServer(wss, log);
    const ws = connect(impl, urlOf(wss), 'graphql-transport-ws');
    const clientClosed = watch(ws, log, 'client');
    ws.on('open', () => ws.send('{ not json'));
    await Promise.all([clientClosed, serverClosed]);

    expect(side(log, 'client')).toEqual([['client', 'close', 4400, 'Invalid message received']]);
    expect(side(log, 'server')).toEqual([['server', 'onClose', 4400, 'Invalid message received']]);
  });

  test('a server-initiated close with a reason completes on both ends', async () => {
    const log = [];
    const wss = await startServer(impl);
    const serverClosed = deferred();
    wss.on('connection', (socket) => {
      watch(socket, log, 'server').then(serverClosed.resolve);
      socket.close(4004, 'Welcome');
    });
    const ws = connect(impl, urlOf(wss));
    const events = [];
    ws.addEventListener('close', (e) => events.push([e.code, e.reason, e.wasClean]));
    const clientClosed = watch(ws, log, 'client');
    await Promise.all([clientClosed, serverClosed.promise]);

    expect(side(log, 'client')).toEqual([['client', 'close', 4004, 'Welcome']]);
    expect(side(log, 'server')).toEqual([['server', 'close', 4004, 'Welcome']]);
    expect(events).toEqual([[4004, 'Welcome', true]]);
  });

  test('a client-initiated close with a reason completes on both ends', async () => {
    const log = [];
    const wss = await startServer(impl);
    const serverClosed = deferred();
    wss.on('connection', (socket) => watch(socket, log, 'server').then(serverClosed.resolve));
    const ws = connect(impl, urlOf(wss));
    const clientClosed = watch(ws, log, 'client');
    ws.on('open', () => ws.close(4001, 'Goodbye'));
    await Promise.all([clientClosed, serverClosed.promise]);

    expect(side(log, 'client')).toEqual([['client', 'close', 4001, 'Goodbye']]);
    expect(side(log, 'server')).toEqual([['server', 'close', 4001, 'Goodbye']]);
  });

  test('close reasons given as Buffer and as a jsdom Uint8Array', async () => {
    const log = [];
    const wss = await startServer(impl);
    const serverClosed = deferred();
    let count = 0;
    wss.on('connection', (socket) => {
      watch(socket, log, 'server').then(() => {
        if (++count === 2) serverClosed.resolve();
      });
    });
    const closes = [];
    for (const reason of [Buffer.from('node buffer'), new TextEncoder().encode('jsdom array')]) {
      const ws = connect(impl, urlOf(wss));
      closes.push(watch(ws, log, 'client'));
      ws.on('open', () => ws.close(4002, reason));
      await closes[closes.length - 1];
    }
    await serverClosed.promise;

    expect(side(log, 'client')).toEqual([
      ['client', 'close', 4002, 'node buffer'],
      ['client', 'close', 4002, 'jsdom array']
    ]);
    expect(side(log, 'server')).toEqual([
      ['server', 'close', 4002, 'node buffer'],
      ['server', 'close', 4002, 'jsdom array']
    ]);
  });

  test('binary messages: Buffer, jsdom Uint8Array and ArrayBuffer, received as nodebuffer and arraybuffer', async () => {
    const log = [];
    const wss = await startServer(impl);
    wss.on('connection', (socket) => {
      socket.on('message', (data, isBinary) => {
        socket.send(data, { binary: isBinary });
      });
    });
    const ws = connect(impl, urlOf(wss));
    const clientClosed = watch(ws, log, 'client');
    const payloads = [Buffer.from([1, 2]), new Uint8Array([3, 4]), new Uint8Array([5, 6]).buffer, 'text'];
    let received = 0;
    ws.on('message', (data, isBinary) => {
      const kind = Buffer.isBuffer(data) ? 'Buffer' : Object.prototype.toString.call(data);
      log.push(['client', 'message', kind, isBinary, Buffer.from(data).toString('hex')]);
      if (++received === payloads.length) {
        if (ws.binaryType === 'nodebuffer') {
          ws.binaryType = 'arraybuffer';
          received = 0;
          for (const p of payloads) ws.send(p);
        } else {
          ws.close(1000);
        }
      }
    });
    ws.on('open', () => {
      for (const p of payloads) ws.send(p);
    });
    await clientClosed;

    const expected = (kind) => [
      ['client', 'message', kind, true, '0102'],
      ['client', 'message', kind, true, '0304'],
      ['client', 'message', kind, true, '0506'],
      ['client', 'message', kind, false, '74657874']
    ];
    expect(side(log, 'client')).toEqual([
      ...expected('Buffer'),
      ...expected('[object ArrayBuffer]').map((e, i) => (i === 3 ? ['client', 'message', 'Buffer', false, '74657874'] : e)),
      ['client', 'close', 1000, '']
    ]);
  });
});
