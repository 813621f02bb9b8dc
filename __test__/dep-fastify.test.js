'use strict';

// fastify with @fastify/websocket, run once on ws and once on ws-native.
// The plugin does `require('ws')` itself: for each run, that require is
// pointed at the implementation under test and the plugin is loaded afresh.
// Each scenario logs what both ends see (events, error codes, close codes)
// and the two logs must be equal.

const assert = require('assert');
const Module = require('module');
const path = require('path');
const { describe, it } = require('node:test');

const { IMPLS, MASK, describeError, frame, record, sameForBoth, waitFor } = require('./helpers');

const PLUGIN_DIR = path.dirname(require.resolve('@fastify/websocket/package.json')) + path.sep;
const PLUGIN_ENTRY = require.resolve('@fastify/websocket');

// How long a scenario waits for an event before it logs a stall and moves
// on. It only fires when an implementation never delivers the event, so
// that the difference shows in the logs instead of as a test timeout.

/**
 * Loads @fastify/websocket with its `require('ws')` answered by `impl`.
 * Returns the plugin and a function that undoes the interception.
 *
 * Node remembers which file a given (parent folder, request) pair resolved
 * to, and then skips `Module._resolveFilename`; so the interception sits on
 * `Module.prototype.require`, which every `require()` call goes through.
 */
function loadPlugin(impl) {
  const originalRequire = Module.prototype.require;
  Module.prototype.require = function (request) {
    if (request === 'ws' && typeof this.filename === 'string' && this.filename.startsWith(PLUGIN_DIR)) {
      return IMPLS[impl];
    }
    return originalRequire.apply(this, arguments);
  };
  delete require.cache[PLUGIN_ENTRY];
  let plugin;
  try {
    plugin = require('@fastify/websocket');
  } catch (err) {
    Module.prototype.require = originalRequire;
    throw err;
  }
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    Module.prototype.require = originalRequire;
    delete require.cache[PLUGIN_ENTRY];
  };
  return { plugin, restore };
}

const same = (scenario, options) => sameForBoth(assert, scenario, options);

/** A log that tags each entry pushed into it with `side`. */
function sideLog(log, side) {
  return { push: (entry) => log.push([side, ...entry]) };
}

/** Records the events of `ws` into `log`, each entry tagged with `side`. */
function recordAs(ws, log, side) {
  record(ws, sideLog(log, side));
  return ws;
}

function closed(ws) {
  if (ws.readyState === 3) return Promise.resolve();
  return new Promise((resolve) => ws.once('close', resolve));
}

/** Resolves when `count` calls of the returned `tick` were made. */
function counter(count) {
  let tick;
  const done = new Promise((resolve) => {
    let n = 0;
    tick = () => {
      if (++n === count) resolve();
    };
  });
  return { done, tick };
}

/**
 * Builds a fastify app on the implementation `impl`, listens on an
 * ephemeral port and runs `run({ app, port, url, track })`. Every client
 * passed to `track`, the app and the module interception are cleaned up
 * whatever happens.
 */
async function withApp(t, impl, { pluginOptions, routes }, run) {
  const fastify = require('fastify');
  const { plugin, restore } = loadPlugin(impl);
  t.after(restore);
  const clients = [];
  const app = fastify({ logger: false });
  let closing = null;
  const closeApp = () => closing || (closing = app.close());
  try {
    await app.register(plugin, pluginOptions);
    await app.register(async (scope) => routes(scope));
    await app.listen({ port: 0, host: '127.0.0.1' });
    assert.ok(app.websocketServer instanceof IMPLS[impl].WebSocketServer, `the plugin runs on ${impl}`);
    const port = app.server.address().port;
    const track = (ws) => {
      clients.push(ws);
      return ws;
    };
    return await run({ app, port, url: (p) => `ws://127.0.0.1:${port}${p}`, track, closeApp });
  } finally {
    restore();
    const sockets = [...clients, ...(app.websocketServer ? app.websocketServer.clients : [])];
    for (const ws of sockets) {
      try {
        ws.terminate();
      } catch {
        // injectWS's client has no request to abort before it opens.
      }
    }
    await closeApp();
  }
}

describe('fastify + @fastify/websocket', () => {
  it('websocket routes: params and query, echo, wsHandler beside handler, plain routes and 404', { timeout: 20000 }, async (t) => {
    await same(async (WebSocket, log, impl) => {
      const serverClosed = counter(2);
      const routes = (app) => {
        app.get('/echo/:room', { websocket: true }, (socket, req) => {
          recordAs(socket, log, 'server');
          socket.on('close', serverClosed.tick);
          log.push(['server', 'route', req.params.room, req.query.x, req.ws, req.headers['sec-websocket-protocol'] || null]);
          socket.send(`hello ${req.params.room}`);
          socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
        });
        app.route({
          method: 'GET',
          url: '/both',
          handler: async () => ({ kind: 'http' }),
          wsHandler: (socket) => {
            recordAs(socket, log, 'server-both');
            socket.on('close', serverClosed.tick);
            socket.close(4001, 'from wsHandler');
          }
        });
        app.get('/plain', async () => ({ kind: 'plain' }));
      };
      await withApp(t, impl, { routes }, async ({ port, url, track }) => {
        // An echo conversation with a subprotocol, text and binary.
        const client = track(new WebSocket(url('/echo/lobby?x=1'), ['chat']));
        recordAs(client, log, 'client');
        let replies = 0;
        client.on('message', () => {
          replies++;
          if (replies === 1) {
            client.send('text one');
            client.send(Buffer.from([1, 2, 3]));
          } else if (replies === 3) {
            client.close(4000, 'done');
          }
        });

        // One route, a handler for HTTP and a wsHandler for upgrades.
        const both = track(new WebSocket(url('/both')));
        recordAs(both, log, 'client-both');

        // A route without a websocket handler, and no route at all.
        const plain = track(new WebSocket(url('/plain')));
        recordAs(plain, log, 'client-plain');
        const missing = track(new WebSocket(url('/missing')));
        recordAs(missing, log, 'client-missing');
        missing.on('unexpected-response', (req, res) => {
          log.push(['client-missing', 'unexpected-response', res.statusCode]);
          // With a listener, ending the attempt is left to the caller.
          res.resume();
          res.on('end', () => missing.terminate());
        });

        await waitFor(
          log,
          Promise.all([closed(client), closed(both), closed(plain), closed(missing), serverClosed.done]),
          'closes'
        );
        const http = await fetch(`http://127.0.0.1:${port}/both`);
        log.push(['http', http.status, await http.json()]);
        const plainHttp = await fetch(`http://127.0.0.1:${port}/plain`);
        log.push(['http', plainHttp.status, await plainHttp.json()]);
      });
    }, { sides: ['server', 'server-both', 'client', 'client-both', 'client-plain', 'client-missing'] });
  });

  it('hooks: onRequest and preValidation reject the upgrade with a 401', { timeout: 20000 }, async (t) => {
    await same(async (WebSocket, log, impl) => {
      let serverClosedTick = null;
      const routes = (app) => {
        app.addHook('onRequest', async (req, reply) => {
          log.push(['hook', 'onRequest', req.url, req.ws]);
          if (req.url.startsWith('/by-on-request') && req.headers['x-token'] !== 'ok') {
            return reply.code(401).send({ error: 'no token' });
          }
        });
        app.addHook('preHandler', async (req) => {
          log.push(['hook', 'preHandler', req.url]);
        });
        const handler = (socket, req) => {
          recordAs(socket, log, 'server');
          socket.on('close', serverClosedTick);
          socket.send(`welcome ${req.url}`);
        };
        app.get('/by-on-request', { websocket: true }, handler);
        app.get(
          '/by-pre-validation',
          {
            websocket: true,
            preValidation: async (req, reply) => {
              log.push(['hook', 'preValidation', req.url]);
              if (req.query.token !== 'ok') return reply.code(401).send({ error: 'bad token' });
            }
          },
          handler
        );
      };
      await withApp(t, impl, { routes }, async ({ url, track }) => {
        // Rejected in each hook: the client sees the 401 as an error.
        for (const p of ['/by-on-request', '/by-pre-validation?token=no']) {
          const ws = track(new WebSocket(url(p)));
          recordAs(ws, log, 'client-rejected');
          await waitFor(log, closed(ws), `rejected ${p}`);
        }
        // Rejected again, with 'unexpected-response' listened to: the
        // response is handed over and no error is emitted.
        const seen = track(new WebSocket(url('/by-pre-validation')));
        recordAs(seen, log, 'client-rejected');
        seen.on('unexpected-response', (req, res) => {
          log.push(['client-rejected', 'unexpected-response', res.statusCode, res.headers['content-type']]);
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (body += d));
          res.on('end', () => {
            log.push(['client-rejected', 'body', body]);
            seen.terminate();
          });
        });
        await waitFor(log, closed(seen), 'rejected with unexpected-response');

        // Let through by the hooks, one after the other.
        for (const [p, headers] of [['/by-pre-validation?token=ok'], ['/by-on-request', { 'x-token': 'ok' }]]) {
          const serverClosed = counter(1);
          serverClosedTick = serverClosed.tick;
          const ok = track(new WebSocket(url(p), { headers }));
          recordAs(ok, log, 'client');
          ok.on('message', () => ok.close(1000));
          await waitFor(log, Promise.all([closed(ok), serverClosed.done]), `accepted ${p}`);
        }
      });
    }, { sides: ['hook', 'server', 'client', 'client-rejected'] });
  });

  it('injectWS: an in-memory client, accepted and rejected', { timeout: 20000 }, async (t) => {
    await same(async (WebSocket, log, impl) => {
      const serverClosed = counter(1);
      let serverSocket;
      const routes = (app) => {
        app.get(
          '/echo',
          {
            websocket: true,
            preValidation: async (req, reply) => {
              if (req.headers['x-token'] !== 'ok') return reply.code(401).send({ error: 'no token' });
            }
          },
          (socket, req) => {
            recordAs(socket, log, 'server');
            serverSocket = socket;
            socket.on('close', serverClosed.tick);
            log.push(['server', 'route', req.url, req.query.x, req.headers['x-token']]);
            socket.on('message', (data, isBinary) => socket.send(`echo ${data}`, { binary: isBinary }));
          }
        );
      };
      await withApp(t, impl, { routes }, async ({ app, track }) => {
        let client;
        const opened = app.injectWS('/echo?x=2', { headers: { 'x-token': 'ok' } }, {
          onInit: (ws) => {
            client = track(ws);
            log.push(['client', 'init', ws instanceof WebSocket, ws.readyState]);
            recordAs(ws, log, 'client');
          },
          onOpen: (ws) => log.push(['client', 'onOpen', ws.readyState])
        });
        const ws = await opened;
        log.push(['client', 'resolved', ws === client, ws.readyState]);
        ws.send('one');
        ws.send(Buffer.from('two'));
        let replies = 0;
        ws.on('message', () => {
          if (++replies === 2) ws.close(4002, 'enough');
        });
        await waitFor(log, closed(ws), 'injected client close');
        // The in-memory stream ends but never emits 'close': the server
        // side stays CLOSING (until its close timeout) and is ended here.
        log.push(['server', 'after the client closed', serverSocket.readyState]);
        serverSocket.terminate();
        await waitFor(log, serverClosed.done, 'injected server close');

        // A hook that answers 401 rejects the injectWS promise.
        await app.injectWS('/echo', {}, { onInit: (rejected) => track(rejected) }).then(
          () => log.push(['rejected', 'resolved']),
          (err) => log.push(['rejected', ...describeError(err)])
        );
      });
    }, { sides: ['server', 'client', 'rejected'] });
  });

  it("fastify's close() closes the connected clients", { timeout: 20000 }, async (t) => {
    await same(async (WebSocket, log, impl) => {
      const serverClosed = counter(2);
      const greeted = counter(2);
      const routes = (app) => {
        app.get('/room', { websocket: true }, (socket, req) => {
          const side = `server-${req.query.n}`;
          recordAs(socket, log, side);
          socket.on('close', serverClosed.tick);
          socket.send(`hi ${req.query.n}`);
        });
      };
      await withApp(t, impl, { routes }, async ({ app, url, track, closeApp }) => {
        const clients = [1, 2].map((n) => {
          const ws = track(new WebSocket(url(`/room?n=${n}`)));
          recordAs(ws, log, `client-${n}`);
          ws.once('message', greeted.tick);
          return ws;
        });
        await waitFor(log, greeted.done, 'greetings');
        log.push(['app', 'clients before close', app.websocketServer.clients.size]);
        await waitFor(log, Promise.all([closeApp(), ...clients.map(closed), serverClosed.done]), 'close()');
        log.push(['app', 'clients after close', app.websocketServer.clients.size]);
        // The listener is gone: a new connection is refused.
        const late = track(new WebSocket(url('/room?n=3')));
        late.on('error', (err) => log.push(['late', 'error', err.code]));
        await waitFor(log, closed(late), 'late');
      });
    }, { sides: ['server-1', 'server-2', 'client-1', 'client-2', 'app', 'late'] });
  });

  describe('the error path', () => {
    // Each case: what the client does once the route greeted it. The bytes
    // go straight to the TCP socket, past the WebSocket's framing.
    const clientCases = [
      ['a frame with RSV2 set', (client) => client._socket.write(frame(1, 'x', { rsv: 2, mask: MASK }))],
      ['an unmasked frame', (client) => client._socket.write(frame(1, 'x'))],
      ['invalid UTF-8 in a text frame', (client) => client._socket.write(frame(1, Buffer.from([0xc3, 0x28]), { mask: MASK }))],
      ['a fragmented ping', (client) => client._socket.write(frame(9, 'p', { fin: false, mask: MASK }))],
      ['a message over maxPayload', (client) => client.send('x'.repeat(64))]
    ];

    for (const handlerKind of ['custom errorHandler', 'default errorHandler']) {
      it(`a raw-socket error from the client reaches the ${handlerKind}`, { timeout: 20000 }, async (t) => {
        await same(async (WebSocket, log, impl) => {
          for (const [name, act] of clientCases) {
            const serverClosed = counter(1);
            const pluginOptions = { options: { maxPayload: 32 } };
            if (handlerKind === 'custom errorHandler') {
              pluginOptions.errorHandler = function (err, socket, request, reply) {
                log.push([`${name}: server`, 'errorHandler', ...describeError(err), socket.readyState, request.url, typeof reply.hijack]);
              };
            }
            const routes = (app) => {
              app.get('/target', { websocket: true }, (socket) => {
                recordAs(socket, log, `${name}: server`);
                socket.on('close', serverClosed.tick);
                socket.send('go');
              });
            };
            await withApp(t, impl, { pluginOptions, routes }, async ({ url, track }) => {
              const client = track(new WebSocket(url('/target')));
              recordAs(client, log, `${name}: client`);
              client.once('message', () => act(client));
              await waitFor(log, Promise.all([closed(client), serverClosed.done]), name);
            });
          }
        }, { sides: clientCases.flatMap(([name]) => [`${name}: server`, `${name}: client`]) });
      });
    }

    it('the route breaks the raw socket, or throws, on the server side', { timeout: 20000 }, async (t) => {
      const serverCases = [
        ['req.socket.destroy()', (socket, req) => req.socket.destroy()],
        ["socket._socket.destroy(new Error('boom'))", (socket) => socket._socket.destroy(new Error('boom'))],
        ['socket._socket.write(a frame with RSV2 set)', (socket) => socket._socket.write(frame(1, 'x', { rsv: 2 }))],
        ['socket._socket.end()', (socket) => socket._socket.end()],
        ['the handler throws', () => {
          throw new TypeError('handler threw');
        }],
        ['the async handler rejects', async () => {
          throw new RangeError('handler rejected');
        }]
      ];
      await same(async (WebSocket, log, impl) => {
        for (const [name, act] of serverCases) {
          const serverClosed = counter(1);
          const pluginOptions = {
            errorHandler(err, socket, request) {
              log.push([`${name}: server`, 'errorHandler', ...describeError(err), socket.readyState, request.url]);
              socket.close(4500, 'handled');
            }
          };
          const routes = (app) => {
            app.get('/target', { websocket: true }, (socket, req) => {
              recordAs(socket, log, `${name}: server`);
              socket.on('close', serverClosed.tick);
              return act(socket, req);
            });
          };
          await withApp(t, impl, { pluginOptions, routes }, async ({ url, track }) => {
            const client = track(new WebSocket(url('/target')));
            recordAs(client, log, `${name}: client`);
            await waitFor(log, Promise.all([closed(client), serverClosed.done]), name);
          });
        }
      }, { sides: serverCases.flatMap(([name]) => [`${name}: server`, `${name}: client`]) });
    });
  });
});
