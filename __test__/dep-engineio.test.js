'use strict';

// engine.io (server) with engine.io-client, websocket transport only, once
// on ws and once on ws-native: the server takes the implementation through
// `wsEngine`, the client through a transport class that builds that
// implementation's WebSocket. Besides the engine.io events, the WebSockets
// underneath are recorded on both ends.
//
// One scenario is engine.io rejecting a connection after the upgrade:
// when `generateId()` fails on a websocket-only connection, engine.io has
// already let the WebSocket server answer 101, so it writes an HTTP 400 to
// the raw socket it got in 'upgrade' and destroys that socket. With ws the
// client sees those bytes as a broken frame, then the end of the
// connection.

const assert = require('assert');
const crypto = require('crypto');
const http = require('http');
const { describe, it } = require('node:test');
const { once } = require('events');

const engine = require('engine.io');
const { Socket, NodeWebSocket } = require('engine.io-client');

const { IMPLS, describe: describeData, describeError, record, sameForBoth } = require('./helpers');

const TIMEOUT = { timeout: 20000 };

/** Whether `ws` is a WebSocket of `impl` (and not of the other one). */
function isOf(impl, ws) {
  const other = impl === 'ws' ? 'native' : 'ws';
  return ws instanceof IMPLS[impl].WebSocket && !(ws instanceof IMPLS[other].WebSocket);
}

function pattern(length, seed) {
  const buf = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buf[i] = (i * 13 + seed + (i >> 9)) & 0xff;
  return buf;
}

function sha1(data) {
  return crypto.createHash('sha1').update(data).digest('hex');
}

/**
 * Resolves with the arguments of the next `event` (of an EventEmitter or a
 * component-emitter); unlike events.once(), an 'error' does not reject it.
 */
function next(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

/** Describes a message; engine.io gives `undefined` for an empty one. */
function describeMessage(data) {
  return data === undefined ? ['undefined'] : [...describeData(data), Buffer.isBuffer(data)];
}

/** Describes an engine.io-client 'error' or 'close' argument. */
function describeDetail(detail) {
  if (detail === undefined) return undefined;
  if (typeof detail === 'string') return detail;
  if (detail instanceof Error) {
    return [detail.constructor.name, detail.message, describeDetail(detail.description)];
  }
  // An event of the WebSocket (ErrorEvent, CloseEvent) or the
  // `{ description, context }` of a transport close.
  if (detail.context) return [detail.description, describeDetail(detail.context)];
  if (detail.type === 'error') return ['ErrorEvent', detail.message, detail.error && describeError(detail.error)];
  if (detail.type === 'close') return ['CloseEvent', detail.code, detail.reason, detail.wasClean];
  return Object.prototype.toString.call(detail);
}

/**
 * One run: an http server with engine.io attached (its `wsEngine` is a
 * subclass of the implementation's server that records each WebSocket it
 * hands to engine.io), and the clients. Closed by `close()`, which
 * `t.after` calls too.
 */
class Run {
  constructor(impl, t) {
    this.impl = impl;
    this.serverWebSockets = [];
    this.clientWebSockets = [];
    this.clients = [];
    this.rawClients = [];
    this.closed = false;
    const serverWebSockets = this.serverWebSockets;
    const clientWebSockets = this.clientWebSockets;
    const { Server, WebSocket } = IMPLS[impl];
    this.WsEngine = class extends Server {
      handleUpgrade(req, socket, head, cb) {
        super.handleUpgrade(req, socket, head, (ws, ...rest) => {
          serverWebSockets.push(ws);
          cb(ws, ...rest);
        });
      }
    };
    this.Transport = class extends NodeWebSocket {
      createSocket(uri, protocols, opts) {
        const ws = new WebSocket(uri, protocols, opts);
        clientWebSockets.push(ws);
        return ws;
      }
    };
    t.after(() => this.close());
  }

  async server(options = {}) {
    this.httpServer = http.createServer();
    this.engine = engine.attach(this.httpServer, {
      transports: ['websocket'],
      wsEngine: this.WsEngine,
      ...options
    });
    this.httpServer.listen(0, '127.0.0.1');
    await once(this.httpServer, 'listening');
    this.port = this.httpServer.address().port;
    return this.engine;
  }

  client(options = {}) {
    const socket = new Socket(`ws://127.0.0.1:${this.port}`, { transports: [this.Transport], ...options });
    this.clients.push(socket);
    return socket;
  }

  /** A bare WebSocket of the implementation on engine.io's endpoint. */
  rawClient() {
    const ws = new IMPLS[this.impl].WebSocket(`ws://127.0.0.1:${this.port}/engine.io/?EIO=4&transport=websocket`);
    this.rawClients.push(ws);
    return ws;
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.clients) socket.close();
    const all = [...this.clientWebSockets, ...this.rawClients, ...this.serverWebSockets];
    for (const ws of all) {
      ws.on('error', () => {});
      ws.terminate();
    }
    await Promise.all(all.map((ws) => (ws.readyState === ws.CLOSED ? null : next(ws, 'close'))));
    if (this.httpServer) {
      this.engine.close();
      await new Promise((resolve) => this.httpServer.close(resolve));
    }
  }
}

/** Records the close of a WebSocket (code, reason) into `log` as `side`. */
function recordClose(ws, log, side) {
  ws.on('close', (code, reason) => log.push([side, 'ws close', code, reason.toString()]));
}

describe('engine.io over the websocket transport', () => {
  it('messages both ways, text and binary, then the client closes', TIMEOUT, async (t) => {
    const log = await sameForBoth(
      assert,
      async (WebSocket, log, impl) => {
        const run = new Run(impl, t);
        try {
          const server = await run.server();
          let serverSocket;
          const serverClosed = new Promise((resolve) => {
            server.on('connection', (socket) => {
              serverSocket = socket;
              log.push(['server', 'connection', socket.transport.name, isOf(impl, socket.transport.socket)]);
              recordClose(socket.transport.socket, log, 'server');
              socket.on('message', (data) => {
                log.push(['server', 'message', describeMessage(data)]);
                socket.send(data);
              });
              socket.on('close', (reason, description) => {
                log.push(['server', 'close', reason, describeDetail(description)]);
                resolve();
              });
              socket.send('welcome');
              socket.send(pattern(70000, 1));
            });
          });

          const client = run.client();
          const received = [];
          client.on('message', (data) => received.push(data));
          await next(client, 'open');
          const ws = client.transport.ws;
          log.push(['client', 'open', client.transport.name, isOf(impl, ws), ws.extensions]);
          recordClose(ws, log, 'client');

          const outgoing = ['hello', Buffer.from([0, 1, 2, 255]), new Uint8Array([7, 8, 9]), 'x'.repeat(100000), pattern(200000, 2), ''];
          for (const data of outgoing) client.send(data);
          // The two server greetings, then one echo per message sent.
          while (received.length < 2 + outgoing.length) await next(client, 'message');
          log.push(['client', 'received', received.map(describeMessage)]);
          log.push(['server', 'sees', serverSocket.readyState]);

          const clientClosed = next(client, 'close');
          const wsClosed = [next(ws, 'close'), next(run.serverWebSockets[0], 'close')];
          client.close();
          const [reason, description] = await clientClosed;
          log.push(['client', 'close', reason, describeDetail(description)]);
          await serverClosed;
          await Promise.all(wsClosed);
        } finally {
          await run.close();
        }
      },
      { sides: ['client', 'server'] }
    );
    const pick = (side) => log.filter((e) => e[0] === side).map((e) => e.slice(1));
    assert.deepStrictEqual(pick('client'), [
      ['open', 'websocket', true, ''],
      ['received', [
        ['string', 'welcome', false],
        ['bytes', 70000, sha1(pattern(70000, 1)), true],
        ['string', 'hello', false],
        ['bytes', '000102ff', true],
        ['bytes', '070809', true],
        ['string', sha1('x'.repeat(100000)), false],
        ['bytes', 200000, sha1(pattern(200000, 2)), true],
        ['undefined']
      ]],
      ['close', 'forced close', undefined],
      ['ws close', 1005, '']
    ]);
    assert.deepStrictEqual(pick('server').slice(-3), [['sees', 'open'], ['close', 'transport close', undefined], ['ws close', 1005, '']]);
  });

  it('the server closes the socket', TIMEOUT, async (t) => {
    const log = await sameForBoth(
      assert,
      async (WebSocket, log, impl) => {
        const run = new Run(impl, t);
        try {
          const server = await run.server();
          server.on('connection', (socket) => {
            recordClose(socket.transport.socket, log, 'server');
            socket.on('message', (data) => {
              log.push(['server', 'message', describeMessage(data)]);
              socket.send(`bye ${data}`);
              socket.close();
            });
            socket.on('close', (reason, description) => log.push(['server', 'close', reason, describeDetail(description)]));
          });
          const client = run.client();
          await next(client, 'open');
          const ws = client.transport.ws;
          recordClose(ws, log, 'client');
          client.on('message', (data) => log.push(['client', 'message', describeMessage(data)]));
          const closed = next(client, 'close');
          const wsClosed = [next(ws, 'close'), next(run.serverWebSockets[0], 'close')];
          client.send('alice');
          const [reason, description] = await closed;
          log.push(['client', 'close', reason, describeDetail(description)]);
          await Promise.all(wsClosed);
        } finally {
          await run.close();
        }
      },
      { sides: ['client', 'server'] }
    );
    const pick = (side) => log.filter((e) => e[0] === side).map((e) => e.slice(1));
    assert.deepStrictEqual(pick('client'), [
      ['message', ['string', 'bye alice', false]],
      ['ws close', 1005, ''],
      ['close', 'transport close', ['websocket connection closed', ['CloseEvent', 1005, '', true]]]
    ]);
    assert.deepStrictEqual(pick('server'), [
      ['message', ['string', 'alice', false]],
      ['close', 'forced close', undefined],
      ['ws close', 1005, '']
    ]);
  });

  // engine.io runs generateId() after the WebSocket server has answered
  // 101. When it fails, engine.io emits 'connection_error' and right after
  // writes "HTTP/1.1 400 Bad Request" to the socket it got in 'upgrade',
  // then destroys that socket. With ws the client reads the 400 as a frame
  // (0x48: a close frame with RSV1 set) and fails the connection.
  //
  // After 'connection_error' (and so after that write and destroy), the
  // test terminates the server-side WebSocket itself. With ws that changes
  // nothing (its socket is already destroyed); it only bounds the wait when
  // the destroy did not end the connection.
  for (const [how, generateId] of [
    ['returns a rejected promise', () => Promise.reject(new Error('no id for you'))],
    ['throws', () => {
      throw new Error('no id for you');
    }]
  ]) {
    for (const clientKind of ['bare WebSocket', 'engine.io-client']) {
      const who = clientKind === 'bare WebSocket' ? 'a bare WebSocket' : 'an engine.io-client Socket';
      it(`generateId ${how}: what ${who} sees`, TIMEOUT, async (t) => {
        const log = await sameForBoth(assert, async (WebSocket, log, impl) => {
          const run = new Run(impl, t);
          const serverEvents = [];
          const clientEvents = [];
          const socketEvents = [];
          try {
            const server = await run.server();
            server.generateId = generateId;
            let rejected;
            const connectionError = new Promise((resolve) => (rejected = resolve));
            server.on('connection', () => serverEvents.push(['connection']));
            server.on('connection_error', (err) => {
              serverEvents.push(['connection_error', err.code, err.message, err.context.name, err.context.error.message]);
              const ws = err.req.websocket;
              serverEvents.push(['server ws', isOf(impl, ws), ws.readyState]);
              record(ws, serverEvents);
              process.nextTick(() => {
                ws.terminate();
                rejected(ws);
              });
            });

            let ws;
            let ended;
            if (clientKind === 'bare WebSocket') {
              ws = run.rawClient();
              record(ws, clientEvents);
              ended = Promise.resolve();
            } else {
              const client = run.client();
              ended = new Promise((resolve) => {
                client.on('open', () => socketEvents.push(['open']));
                client.on('error', (err) => socketEvents.push(['error', describeDetail(err)]));
                client.on('close', (reason, description) => {
                  socketEvents.push(['close', reason, describeDetail(description)]);
                  resolve();
                });
              });
              ws = run.clientWebSockets[0];
              clientEvents.push(['client ws', isOf(impl, ws)]);
              record(ws, clientEvents);
            }
            const serverWs = await connectionError;
            await Promise.all([
              ended,
              ws.readyState === ws.CLOSED ? null : next(ws, 'close'),
              serverWs.readyState === serverWs.CLOSED ? null : next(serverWs, 'close')
            ]);
          } finally {
            await run.close();
          }
          log.push(['server', serverEvents], ['client ws', clientEvents]);
          if (clientKind === 'engine.io-client') log.push(['engine.io-client', socketEvents]);
        });
        const expectClient = [
          ['open', '', ''],
          ['error', 'RangeError', 'Invalid WebSocket frame: RSV1 must be clear', 'WS_ERR_UNEXPECTED_RSV_1', 1002],
          ['close', 1006, '', 3]
        ];
        assert.deepStrictEqual(log[0], ['server', [
          ['connection_error', 3, 'Bad request', 'ID_GENERATION_ERROR', 'no id for you'],
          ['server ws', true, 1],
          ['close', 1006, '', 3]
        ]]);
        if (clientKind === 'bare WebSocket') {
          assert.deepStrictEqual(log[1], ['client ws', expectClient]);
        } else {
          assert.deepStrictEqual(log[1], ['client ws', [['client ws', true], ...expectClient]]);
          assert.deepStrictEqual(log[2], ['engine.io-client', [
            ['error', ['TransportError', 'websocket error', ['ErrorEvent', 'Invalid WebSocket frame: RSV1 must be clear',
              ['RangeError', 'Invalid WebSocket frame: RSV1 must be clear', 'WS_ERR_UNEXPECTED_RSV_1', 1002]]]],
            ['close', 'transport error', ['TransportError', 'websocket error', ['ErrorEvent', 'Invalid WebSocket frame: RSV1 must be clear',
              ['RangeError', 'Invalid WebSocket frame: RSV1 must be clear', 'WS_ERR_UNEXPECTED_RSV_1', 1002]]]]
          ]]);
        }
      });
    }
  }
});
