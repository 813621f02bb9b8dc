'use strict';

// graphql-ws on each implementation: its server (`useServer`) on a
// WebSocketServer of ws or ws-native, its client (`createClient`) with the
// same implementation as `webSocketImpl`. Queries, a subscription that
// streams and completes, error results, cancelling, dispose, and the
// protocol's close codes when a peer misbehaves. Both runs must log the same.

const assert = require('assert');
const { describe, it } = require('node:test');

const graphql = require('graphql');
const { createClient, CloseCode } = require('graphql-ws');
const { useServer } = require('graphql-ws/use/ws');

const { record, sameForBoth, serverUrl, startServer, waitFor } = require('./helpers');

const PROTOCOL = 'graphql-transport-ws';

const same = (scenario) => sameForBoth(assert, scenario, { sides: ['server', 'client'] });

/** A promise with its resolve function. */
function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * The schema. `parked` streams one value, then waits until the client
 * cancels; `returned` resolves when the server has let go of it.
 */
function makeSchema(log) {
  const parked = { returned: deferred() };
  const Query = new graphql.GraphQLObjectType({
    name: 'Query',
    fields: {
      hello: {
        type: graphql.GraphQLString,
        args: { name: { type: graphql.GraphQLString } },
        resolve: (_, { name }) => `hello ${name}`
      },
      boom: {
        type: graphql.GraphQLString,
        resolve: () => {
          throw new Error('kaboom');
        }
      }
    }
  });
  const Subscription = new graphql.GraphQLObjectType({
    name: 'Subscription',
    fields: {
      count: {
        type: graphql.GraphQLInt,
        args: { to: { type: new graphql.GraphQLNonNull(graphql.GraphQLInt) } },
        subscribe: async function* (_, { to }) {
          for (let i = 1; i <= to; i++) yield { count: i };
        }
      },
      parked: {
        type: graphql.GraphQLInt,
        subscribe: () => {
          let sent = false;
          let wake = null;
          return {
            [Symbol.asyncIterator]() {
              return this;
            },
            next() {
              if (!sent) {
                sent = true;
                return Promise.resolve({ value: { parked: 1 }, done: false });
              }
              return new Promise((resolve) => (wake = resolve));
            },
            return() {
              log.push(['server', 'parked iterator returned']);
              if (wake) wake({ value: undefined, done: true });
              parked.returned.resolve();
              return Promise.resolve({ value: undefined, done: true });
            }
          };
        }
      }
    }
  });
  return { schema: new graphql.GraphQLSchema({ query: Query, subscription: Subscription }), parked };
}

/** Operation ids 1, 2, 3…, so that the frames are the same on every run. */
function counterIds() {
  let n = 0;
  return () => String(++n);
}

/** JSON-safe form of what a sink received. */
function plain(value) {
  if (value && typeof value === 'object' && 'code' in value && 'reason' in value) {
    return { closeEvent: [value.code, value.reason, value.wasClean] };
  }
  return JSON.parse(JSON.stringify(value));
}

/** Runs one operation; resolves with what the sink received, in order. */
function operation(client, payload, log, label, { onNext } = {}) {
  return new Promise((resolve) => {
    const seen = [];
    const dispose = client.subscribe(payload, {
      next: (value) => {
        log.push(['client', label, 'next', plain(value)]);
        if (onNext) onNext(value, dispose);
      },
      error: (err) => {
        log.push(['client', label, 'error', plain(err)]);
        resolve(seen);
      },
      complete: () => {
        log.push(['client', label, 'complete']);
        resolve(seen);
      }
    });
  });
}

/** The server hooks graphql-ws calls, logged on the 'server' side. */
function serverHooks(log, closedOnServer) {
  return {
    onConnect: (ctx) => {
      log.push(['server', 'onConnect', ctx.connectionParams || null, ctx.extra.socket.protocol]);
      if (ctx.connectionParams && ctx.connectionParams.token === 'bad') return false;
      return { welcome: true };
    },
    onSubscribe: (ctx, id, payload) => {
      log.push(['server', 'onSubscribe', payload.query]);
      if (payload.operationName === 'Explode') throw new Error('onSubscribe exploded');
    },
    onComplete: (ctx, id, payload) => log.push(['server', 'onComplete', payload.query]),
    onDisconnect: (ctx, code, reason) => log.push(['server', 'onDisconnect', code, reason]),
    onClose: (ctx, code, reason) => {
      log.push(['server', 'onClose', code, reason]);
      closedOnServer();
    }
  };
}

/**
 * A graphql-ws server on a WebSocketServer of `impl`; `run(url)` runs
 * against it. Everything is closed afterwards, whatever happens.
 */
async function withServer(impl, log, options, run) {
  const wss = await startServer(impl);
  const { schema, parked } = makeSchema(log);
  let serverClosed = deferred();
  const closedOnServer = () => serverClosed.resolve();
  const server = useServer({ schema, connectionInitWaitTimeout: 0, ...serverHooks(log, closedOnServer), ...options }, wss);
  wss.on('connection', (socket) => record(socket, { push: (e) => log.push(['server', 'socket', ...e]) }));
  const clients = [];
  try {
    await run({
      url: serverUrl(wss),
      parked,
      track: (c) => (clients.push(c), c),
      serverClosed: () => serverClosed.promise,
      nextConnection: () => (serverClosed = deferred())
    });
  } finally {
    for (const c of clients) c.terminate();
    for (const socket of wss.clients) socket.terminate();
    await server.dispose();
  }
}

describe('graphql-ws', () => {
  it('query, subscription, error results, cancel and dispose over one connection', { timeout: 20000 }, async () => {
    await same(async (WebSocket, log, impl) => {
      await withServer(impl, log, {}, async ({ url, parked, serverClosed }) => {
        const connected = deferred();
        const clientClosed = deferred();
        const client = createClient({
            url,
            webSocketImpl: WebSocket,
            lazy: false,
            retryAttempts: 0,
            generateID: counterIds(),
            connectionParams: { token: 'good' },
            onNonLazyError: (err) => log.push(['client', 'onNonLazyError', plain(err)]),
            on: {
              connected: (socket, payload) => {
                log.push(['client', 'connected', socket instanceof WebSocket, socket.protocol, payload]);
                connected.resolve();
              },
              closed: (event) => {
                log.push(['client', 'closed', ...plain(event).closeEvent]);
                clientClosed.resolve();
              },
              error: (err) => log.push(['client', 'error event', String(err)])
            }
          });
        await waitFor(log, connected.promise, 'connected');

        await waitFor(log, operation(client, { query: '{ hello(name: "graphql") }' }, log, 'query'), 'query');
        await waitFor(log, operation(client, { query: 'subscription { count(to: 4) }' }, log, 'count'), 'count');
        await waitFor(log, operation(client, { query: '{ boom }' }, log, 'boom'), 'boom');
        await waitFor(log, operation(client, { query: '{ nope }' }, log, 'invalid'), 'invalid');

        // Cancelled by the client after its first value: the server lets go
        // of the source stream.
        const cancelled = operation(client, { query: 'subscription { parked }' }, log, 'parked', {
          onNext: (value, dispose) => dispose()
        });
        await waitFor(log, Promise.all([cancelled, parked.returned.promise]), 'cancel');

        await client.dispose();
        await waitFor(log, Promise.all([clientClosed.promise, serverClosed()]), 'dispose');
      });
    });
  });

  /** Sends connection_init, then runs `act` once the server acknowledged. */
  const afterAck = (act) => (ws) => {
    ws.on('message', (data) => {
      if (JSON.parse(data).type === 'connection_ack') act(ws);
    });
    ws.send(JSON.stringify({ type: 'connection_init' }));
  };

  it('close codes when the peer misbehaves', { timeout: 20000 }, async (t) => {
    // useServer reports the error behind a 4500 on the console.
    const reported = t.mock.method(console, 'error', () => {});
    const cases = [
      ['garbage instead of a message', {}, [PROTOCOL], (ws) => ws.send('this is not json')],
      ['no connection_init in time', { connectionInitWaitTimeout: 20 }, [PROTOCOL], () => {}],
      ['subscribe before connection_init', {}, [PROTOCOL], (ws) => ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ hello }' } }))],
      ['connection_init twice', {}, [PROTOCOL], (ws) => {
        ws.send(JSON.stringify({ type: 'connection_init' }));
        ws.send(JSON.stringify({ type: 'connection_init' }));
      }],
      ['the same subscription id twice', {}, [PROTOCOL], afterAck((ws) => {
        for (let i = 0; i < 2; i++) {
          ws.send(JSON.stringify({ id: 'same', type: 'subscribe', payload: { query: 'subscription { parked }' } }));
        }
      })],
      ['forbidden by onConnect', {}, [PROTOCOL], (ws) => ws.send(JSON.stringify({ type: 'connection_init', payload: { token: 'bad' } }))],
      ['onSubscribe throws', {}, [PROTOCOL], afterAck((ws) => {
        ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'query Explode { hello }', operationName: 'Explode' } }));
      })],
      ['no subprotocol', {}, undefined, () => {}],
      ['an unknown subprotocol only', {}, ['graphql-ws'], () => {}]
    ];
    await same(async (WebSocket, log, impl) => {
      for (const [name, options, protocols, act] of cases) {
        log.push(['client', 'case', name]);
        log.push(['server', 'case', name]);
        await withServer(impl, log, options, async ({ url, track, serverClosed }) => {
          const ws = track(new WebSocket(url, protocols));
          record(ws, { push: (e) => log.push(['client', ...e]) });
          ws.on('open', () => act(ws));
          const clientClosed = new Promise((resolve) => ws.on('close', resolve));
          await waitFor(log, Promise.all([clientClosed, serverClosed()]), name);
        });
      }
    });
    assert.deepStrictEqual(
      reported.mock.calls.map((c) => c.arguments[1].message),
      ['onSubscribe exploded', 'onSubscribe exploded']
    );
  });

  it('createClient gives up on the close codes it treats as fatal', { timeout: 20000 }, async () => {
    await same(async (WebSocket, log, impl) => {
      for (const [name, options, connectionParams] of [
        ['forbidden', {}, { token: 'bad' }],
        // The client's connectionParams never resolve, so it never sends
        // connection_init: the server closes with 4408 after 1 ms.
        ['connection_init too late', { connectionInitWaitTimeout: 1 }, () => new Promise(() => {})]
      ]) {
        log.push(['client', 'case', name]);
        log.push(['server', 'case', name]);
        await withServer(impl, log, options, async ({ url, serverClosed }) => {
          const gaveUp = deferred();
          const client = createClient({
            url,
            webSocketImpl: WebSocket,
            lazy: false,
            retryAttempts: 0,
            generateID: counterIds(),
            connectionParams,
            onNonLazyError: (err) => {
              log.push(['client', 'onNonLazyError', plain(err)]);
              gaveUp.resolve();
            },
            on: { closed: (event) => log.push(['client', 'closed', ...plain(event).closeEvent]) }
          });
          await waitFor(log, Promise.all([gaveUp.promise, serverClosed()]), name);
          await client.dispose();
        });
      }
    });
  });

  it('the close codes graphql-ws names', () => {
    // The codes the scenarios above expect, as graphql-ws defines them.
    assert.deepStrictEqual(
      [CloseCode.BadRequest, CloseCode.Unauthorized, CloseCode.Forbidden, CloseCode.SubprotocolNotAcceptable,
        CloseCode.ConnectionInitialisationTimeout, CloseCode.SubscriberAlreadyExists, CloseCode.TooManyInitialisationRequests,
        CloseCode.InternalServerError],
      [4400, 4401, 4403, 4406, 4408, 4409, 4429, 4500]
    );
  });
});
