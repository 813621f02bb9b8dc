'use strict';

// socket.io (server) and socket.io-client over the websocket transport only,
// once on ws and once on ws-native. The server gets the implementation under
// test through engine.io's `wsEngine` option; the client through an
// engine.io-client transport class whose `createSocket()` builds that
// implementation's WebSocket. Each scenario logs what every party saw and
// the two runs must log the same.

const assert = require('assert');
const crypto = require('crypto');
const http = require('http');
const { describe, it } = require('node:test');
const { once } = require('events');

const { Server } = require('socket.io');
const ioc = require('socket.io-client');
const { NodeWebSocket } = require('engine.io-client');

const { IMPLS, sameForBoth } = require('./helpers');

const TIMEOUT = { timeout: 20000 };

/** A comparable description of an event argument (Buffers by content). */
function plain(value) {
  if (Buffer.isBuffer(value)) {
    return ['Buffer', value.length, value.length > 64 ? sha1(value) : value.toString('hex')];
  }
  if (value instanceof ArrayBuffer) return ['ArrayBuffer', ...plain(Buffer.from(value)).slice(1)];
  if (ArrayBuffer.isView(value)) return [value.constructor.name, ...plain(Buffer.from(value.buffer, value.byteOffset, value.byteLength)).slice(1)];
  if (typeof value === 'string' && value.length > 64) return ['long string', value.length, sha1(value)];
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value)) out[key] = plain(value[key]);
    return out;
  }
  return value;
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

/** Deterministic filler bytes. */
function pattern(length, seed) {
  const buf = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buf[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return buf;
}

/**
 * Everything one run of a scenario opens: the Socket.IO servers, the
 * clients and every WebSocket the clients created. `close()` shuts all of
 * it and waits for each WebSocket to be closed; it is registered with
 * `t.after` too, so a failed assertion never leaves anything open.
 */
class Run {
  constructor(impl, t) {
    this.impl = impl;
    this.servers = [];
    this.clients = [];
    this.websockets = [];
    this.closed = false;
    const { WebSocket } = IMPLS[impl];
    const websockets = this.websockets;
    // engine.io-client accepts transport classes in `transports`; this one
    // only changes which WebSocket class the Node transport builds.
    this.Transport = class extends NodeWebSocket {
      createSocket(uri, protocols, opts) {
        const ws = new WebSocket(uri, protocols, opts);
        websockets.push(ws);
        return ws;
      }
    };
    t.after(() => this.close());
  }

  async server(options = {}, port = 0) {
    const httpServer = http.createServer();
    const io = new Server(httpServer, {
      transports: ['websocket'],
      wsEngine: IMPLS[this.impl].Server,
      ...options
    });
    this.servers.push(io);
    httpServer.listen(port, '127.0.0.1');
    await once(httpServer, 'listening');
    return { io, port: httpServer.address().port };
  }

  client(port, options = {}) {
    const socket = ioc(`http://127.0.0.1:${port}`, {
      transports: [this.Transport],
      forceNew: true,
      reconnection: false,
      ...options
    });
    this.clients.push(socket);
    return socket;
  }

  async connected(socket) {
    if (!socket.connected) await next(socket, 'connect');
    return socket;
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.clients) socket.disconnect();
    // What is still open is cut, so that a close that never completes
    // cannot hold the teardown.
    for (const ws of this.websockets) {
      ws.on('error', () => {});
      ws.terminate();
    }
    await Promise.all(this.websockets.map((ws) => (ws.readyState === ws.CLOSED ? null : next(ws, 'close'))));
    for (const io of this.servers) await io.close();
  }
}

/** Whether `ws` is a WebSocket of `impl` (and not of the other one). */
function isOf(impl, ws) {
  const other = impl === 'ws' ? 'native' : 'ws';
  return ws instanceof IMPLS[impl].WebSocket && !(ws instanceof IMPLS[other].WebSocket);
}

/** The negotiated extensions of the client's and the server's WebSocket. */
function extensionsOf(clientSocket, serverSocket) {
  return [clientSocket.io.engine.transport.ws.extensions, serverSocket.conn.transport.socket.extensions];
}

describe('socket.io over the websocket transport', () => {
  it('rooms, io.to(room).emit, io.except, socket.broadcast', TIMEOUT, async (t) => {
    const log = await sameForBoth(assert, async (WebSocket, log, impl) => {
      const run = new Run(impl, t);
      try {
        const { io, port } = await run.server();
        const serverLog = [];
        const names = new Map();
        io.on('connection', (socket) => {
          const name = socket.handshake.query.name;
          names.set(socket.id, name);
          serverLog.push(['connection', name, socket.conn.transport.name, isOf(impl, socket.conn.transport.socket)]);
          socket.on('join', (room, ack) => {
            socket.join(room);
            ack(`${name} in ${room}`);
          });
          socket.on('leave', (room, ack) => {
            socket.leave(room);
            ack(`${name} left ${room}`);
          });
          socket.on('to-room', (room, msg) => io.to(room).emit('room', room, msg));
          socket.on('except', (room, msg) => io.except(room).emit('except', msg));
          socket.on('shout', (msg) => socket.broadcast.emit('shout', name, msg));
          socket.on('shout-room', (room, msg) => socket.to(room).emit('shout-room', name, msg));
          socket.on('sync', (n) => io.emit('sync', n));
          socket.on('disconnect', (reason) => serverLog.push(['disconnect', name, reason]));
        });

        const clients = {};
        const clientLogs = {};
        for (const name of ['a', 'b', 'c']) {
          const socket = run.client(port, { query: { name } });
          clients[name] = socket;
          clientLogs[name] = [];
          socket.onAny((event, ...args) => clientLogs[name].push([event, ...plain(args)]));
          await run.connected(socket);
        }
        const { a, b, c } = clients;
        log.push(['client is', isOf(impl, a.io.engine.transport.ws)]);

        // What a client asked for before 'sync' is handled before it, and
        // each socket gets its packets in order: once every client saw sync
        // n, each message of step n has arrived or never will.
        const sync = async (from, n) => {
          const waits = Object.values(clients).map((s) => next(s, 'sync'));
          from.emit('sync', n);
          await Promise.all(waits);
        };

        log.push(['join', await a.emitWithAck('join', 'red'), await b.emitWithAck('join', 'red'), await c.emitWithAck('join', 'blue')]);
        const members = (room) => [...io.of('/').adapter.rooms.get(room)].map((id) => names.get(id)).sort();
        log.push(['rooms', members('red'), members('blue')]);

        a.emit('to-room', 'red', 'one');
        await sync(a, 1);
        c.emit('to-room', 'blue', 'two');
        await sync(c, 2);
        b.emit('shout', 'three');
        await sync(b, 3);
        a.emit('to-room', 'blue', 'four');
        await sync(a, 4);
        c.emit('except', 'red', 'five');
        await sync(c, 5);
        a.emit('shout-room', 'red', 'six');
        await sync(a, 6);
        log.push(['leave', await a.emitWithAck('leave', 'red')]);
        b.emit('to-room', 'red', 'seven');
        await sync(b, 7);
        // Several rooms at once: a socket in both gets the packet once.
        log.push(['join', await b.emitWithAck('join', 'blue')]);
        a.emit('to-room', ['red', 'blue'], 'eight');
        await sync(a, 8);

        log.push(['extensions', extensionsOf(a, io.of('/').sockets.get(a.id))]);
        for (const name of ['a', 'b', 'c']) log.push([name, clientLogs[name].filter((e) => e[0] !== 'sync')]);

        const disconnects = [...io.of('/').sockets.values()].map((s) => next(s, 'disconnect'));
        for (const socket of Object.values(clients)) socket.disconnect();
        await Promise.all(disconnects);
        log.push(['server', serverLog]);
      } finally {
        await run.close();
      }
    });
    const entry = (name) => log.find((e) => e[0] === name)[1];
    assert.deepStrictEqual(log[0], ['client is', true]);
    assert.deepStrictEqual(entry('a'), [['room', 'red', 'one'], ['shout', 'b', 'three']]);
    assert.deepStrictEqual(entry('b'), [
      ['room', 'red', 'one'],
      ['shout-room', 'a', 'six'],
      ['room', 'red', 'seven'],
      ['room', ['red', 'blue'], 'eight']
    ]);
    assert.deepStrictEqual(entry('c'), [
      ['room', 'blue', 'two'],
      ['shout', 'b', 'three'],
      ['room', 'blue', 'four'],
      ['except', 'five'],
      ['room', ['red', 'blue'], 'eight']
    ]);
    assert.deepStrictEqual(entry('server').slice(0, 3), [
      ['connection', 'a', 'websocket', true],
      ['connection', 'b', 'websocket', true],
      ['connection', 'c', 'websocket', true]
    ]);
  });

  it('binary attachments: Buffers, typed arrays, nested, large, to a room', TIMEOUT, async (t) => {
    const log = await sameForBoth(assert, async (WebSocket, log, impl) => {
      const run = new Run(impl, t);
      try {
        const { io, port } = await run.server();
        const serverLog = [];
        io.on('connection', (socket) => {
          socket.on('upload', (payload, ack) => {
            serverLog.push(['upload', plain(payload)]);
            ack({ size: payload.data.length, echo: payload.data, parts: payload.parts });
          });
          socket.on('big', (buf, ack) => ack([Buffer.isBuffer(buf), buf.length, sha1(buf)]));
          socket.on('want', (ack) => {
            socket.emit('download', pattern(200 * 1024, 3), new Uint8Array([1, 2, 3]), { nested: [Buffer.from('xyz'), 'text'] });
            ack('sent');
          });
          socket.on('join', (room, ack) => {
            socket.join(room);
            ack();
          });
          socket.on('room-bin', (ack) => {
            io.to('r').emit('room-bin', pattern(1000, 9), 'after');
            ack();
          });
        });

        const a = await run.connected(run.client(port));
        const b = await run.connected(run.client(port));
        log.push(['client is', isOf(impl, a.io.engine.transport.ws)]);

        const ack = await a.emitWithAck('upload', {
          text: 'x',
          data: pattern(256, 1),
          parts: [Buffer.from('abc'), { deep: Buffer.alloc(0) }, new Uint8Array([9, 8]), new ArrayBuffer(4)]
        });
        log.push(['upload ack', plain(ack)]);
        log.push(['big ack', await a.emitWithAck('big', pattern(300 * 1024, 2))]);

        const download = next(a, 'download');
        log.push(['want ack', await a.emitWithAck('want')]);
        log.push(['download', plain(await download)]);

        await a.emitWithAck('join', 'r');
        await b.emitWithAck('join', 'r');
        const got = [next(a, 'room-bin'), next(b, 'room-bin')];
        await b.emitWithAck('room-bin');
        log.push(['room-bin', plain(await Promise.all(got))]);
        log.push(['server', serverLog]);
      } finally {
        await run.close();
      }
    });
    assert.deepStrictEqual(log[0], ['client is', true]);
    assert.deepStrictEqual(log.find((e) => e[0] === 'big ack')[1], [true, 300 * 1024, sha1(pattern(300 * 1024, 2))]);
    assert.deepStrictEqual(log.find((e) => e[0] === 'download')[1][0], plain(pattern(200 * 1024, 3)));
  });

  it('compression: perMessageDeflate on the server, long text and binary both ways', TIMEOUT, async (t) => {
    const text = 'the quick brown fox jumps over the lazy dog; '.repeat(3000);
    const log = await sameForBoth(assert, async (WebSocket, log, impl) => {
      const run = new Run(impl, t);
      try {
        const { io, port } = await run.server({ perMessageDeflate: { threshold: 0 } });
        const serverLog = [];
        io.on('connection', (socket) => {
          serverLog.push(['connection', socket.handshake.query.name, socket.conn.transport.socket.extensions]);
          socket.on('echo', (...args) => {
            const ack = args.pop();
            serverLog.push(['echo', socket.handshake.query.name, plain(args)]);
            ack(...args);
          });
          socket.on('uncompressed', (msg, ack) => {
            socket.compress(false).emit('plain', msg);
            ack();
          });
          socket.on('everyone', (msg, ack) => {
            io.emit('everyone', msg);
            ack();
          });
        });

        const a = await run.connected(run.client(port, { query: { name: 'a' } }));
        // This client does not offer permessage-deflate.
        const b = await run.connected(run.client(port, { query: { name: 'b' }, perMessageDeflate: false }));
        log.push(['client is', isOf(impl, a.io.engine.transport.ws)]);
        log.push(['extensions a', extensionsOf(a, io.of('/').sockets.get(a.id))]);
        log.push(['extensions b', extensionsOf(b, io.of('/').sockets.get(b.id))]);

        for (const socket of [a, b]) {
          log.push(['echo long', plain(await socket.emitWithAck('echo', text))]);
          log.push(['echo short', plain(await socket.emitWithAck('echo', 'hi'))]);
          log.push(['echo binary', plain(await socket.emitWithAck('echo', pattern(64 * 1024, 5), Buffer.from(text)))]);
          const plainMsg = next(socket, 'plain');
          await socket.emitWithAck('uncompressed', text);
          log.push(['plain', plain(await plainMsg)]);
        }
        const everyone = [next(a, 'everyone'), next(b, 'everyone')];
        await a.emitWithAck('everyone', text);
        log.push(['everyone', plain(await Promise.all(everyone))]);
        log.push(['server', serverLog]);
      } finally {
        await run.close();
      }
    });
    assert.deepStrictEqual(log[0], ['client is', true]);
    assert.match(log[1][1][0], /^permessage-deflate/);
    assert.match(log[1][1][1], /^permessage-deflate/);
    assert.deepStrictEqual(log[2][1], ['', '']);
  });

  it('the server drops every engine connection; the client reconnects', TIMEOUT, async (t) => {
    const log = await sameForBoth(assert, async (WebSocket, log, impl) => {
      const run = new Run(impl, t);
      // Only what happens before the teardown goes into the log.
      const events = [];
      try {
        const { io, port } = await run.server();
        let connections = 0;
        io.on('connection', (socket) => {
          const n = ++connections;
          events.push(['server connection', n, isOf(impl, socket.conn.transport.socket)]);
          socket.on('echo', (msg, ack) => ack(`${n}: ${msg}`));
          socket.on('disconnect', (reason) => events.push(['server disconnect', n, reason]));
        });

        const client = run.client(port, {
          reconnection: true,
          reconnectionDelay: 10,
          reconnectionDelayMax: 10,
          randomizationFactor: 0
        });
        client.on('connect', () => events.push(['client connect', isOf(impl, client.io.engine.transport.ws)]));
        client.on('disconnect', (reason) => events.push(['client disconnect', reason]));
        client.io.on('reconnect_attempt', (n) => events.push(['reconnect_attempt', n]));
        client.io.on('reconnect', (n) => events.push(['reconnect', n]));
        await run.connected(client);
        events.push(['ack', await client.emitWithAck('echo', 'before')]);

        const down = next(client, 'disconnect');
        const up = next(client, 'connect');
        for (const conn of Object.values(io.engine.clients)) conn.close();
        await down;
        await up;
        events.push(['ack', await client.emitWithAck('echo', 'after')]);
        events.push(['clients', io.engine.clientsCount]);
        log.push(...events);
      } finally {
        await run.close();
      }
    });
    assert.deepStrictEqual(log, [
      ['server connection', 1, true],
      ['client connect', true],
      ['ack', '1: before'],
      ['server disconnect', 1, 'forced close'],
      ['client disconnect', 'transport close'],
      ['reconnect_attempt', 1],
      ['reconnect', 1],
      ['server connection', 2, true],
      ['client connect', true],
      ['ack', '2: after'],
      ['clients', 1]
    ]);
  });

  it('the server restarts on the same port; the client reconnects', TIMEOUT, async (t) => {
    const log = await sameForBoth(assert, async (WebSocket, log, impl) => {
      const run = new Run(impl, t);
      // Only what happens before the teardown goes into the log.
      const events = [];
      try {
        const serve = async (generation, port) => {
          const server = await run.server({}, port);
          server.io.on('connection', (socket) => {
            events.push(['server connection', generation, isOf(impl, socket.conn.transport.socket)]);
            socket.on('echo', (msg, ack) => ack(`${generation}: ${msg}`));
            socket.on('disconnect', (reason) => events.push(['server disconnect', generation, reason]));
          });
          return server;
        };
        const first = await serve(1, 0);
        const client = run.client(first.port, {
          reconnection: true,
          reconnectionDelay: 20,
          reconnectionDelayMax: 20,
          randomizationFactor: 0
        });
        client.on('connect', () => events.push(['client connect', isOf(impl, client.io.engine.transport.ws)]));
        client.on('disconnect', (reason) => events.push(['client disconnect', reason]));
        // How many attempts fail while the port is closed depends on timing.
        client.io.on('reconnect', () => events.push(['reconnect']));
        await run.connected(client);
        events.push(['ack', await client.emitWithAck('echo', 'before')]);

        const down = next(client, 'disconnect');
        const up = next(client, 'connect');
        await first.io.close();
        await down;
        await serve(2, first.port);
        await up;
        events.push(['ack', await client.emitWithAck('echo', 'after')]);
        log.push(...events);
      } finally {
        await run.close();
      }
    });
    assert.deepStrictEqual(log, [
      ['server connection', 1, true],
      ['client connect', true],
      ['ack', '1: before'],
      ['server disconnect', 1, 'server shutting down'],
      ['client disconnect', 'transport close'],
      ['reconnect'],
      ['server connection', 2, true],
      ['client connect', true],
      ['ack', '2: after']
    ]);
  });
});
