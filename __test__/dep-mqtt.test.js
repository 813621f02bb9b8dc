'use strict';

// An aedes MQTT broker behind a WebSocketServer (each connection wrapped
// with createWebSocketStream and given to aedes.handle), and MQTT.js as the
// client over ws://, once on ws and once on ws-native.
//
// The client gets the implementation under test in one of two ways:
// - its own: MqttClient built on a stream builder that makes the
//   implementation's WebSocket and wraps it with the implementation's
//   createWebSocketStream (what aliasing `ws` to ws-native gives);
// - MQTT.js's `createWebsocket` option: MQTT.js wraps the socket with the
//   createWebSocketStream of the `ws` it depends on.
//
// The scenario: connect, subscribe, publish QoS 0 and QoS 1, receive both,
// unsubscribe, then a clean client.end(). The broker's WebSocket closes
// with 1005 under ws (the client's stream ends with a close frame without a
// status code).

const assert = require('assert');
const http = require('http');
const { describe, it } = require('node:test');
const { once } = require('events');

const { Aedes } = require('aedes');
const mqtt = require('mqtt');

const { IMPLS, sameForBoth } = require('./helpers');

// On Node 26, aedes 1.2 never answers CONNECT over createWebSocketStream,
// with ws exactly as with ws-native (over plain TCP it does): the scenario
// cannot run there.
const NODE_MAJOR = +process.versions.node.split('.')[0];
const TIMEOUT = {
  timeout: 20000,
  skip: NODE_MAJOR >= 26 && 'aedes does not answer over a WebSocket stream on Node 26, with ws as with ws-native'
};

/** Whether `ws` is a WebSocket of `impl` (and not of the other one). */
function isOf(impl, ws) {
  const other = impl === 'ws' ? 'native' : 'ws';
  return ws instanceof IMPLS[impl].WebSocket && !(ws instanceof IMPLS[other].WebSocket);
}

/**
 * Resolves with the arguments of the next `event`; unlike events.once(),
 * an 'error' does not reject it.
 */
function next(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

/** Resolves once `ws` has emitted 'close' (at once if it already has). */
function closed(ws) {
  return ws.readyState === ws.CLOSED ? Promise.resolve() : next(ws, 'close');
}

/**
 * One run: the broker, its http server and WebSocketServer, the client and
 * every WebSocket on either end. `close()` ends all of it and is
 * registered with `t.after` too.
 */
class Run {
  constructor(impl, t) {
    this.impl = impl;
    this.serverWebSockets = [];
    this.clientWebSockets = [];
    this.client = null;
    this.closed = false;
    t.after(() => this.close());
  }

  async broker(serverLog) {
    const { WebSocketServer, createWebSocketStream } = IMPLS[this.impl];
    this.aedes = await Aedes.createBroker();
    this.httpServer = http.createServer();
    this.wss = new WebSocketServer({ server: this.httpServer });
    this.wss.on('connection', (ws, req) => {
      this.serverWebSockets.push(ws);
      serverLog.push(['ws connection', ws.protocol, isOf(this.impl, ws)]);
      ws.on('error', (err) => serverLog.push(['ws error', err.message]));
      this.aedes.handle(createWebSocketStream(ws), req);
    });
    this.aedes.on('client', (client) => serverLog.push(['client', client.id]));
    this.aedes.on('subscribe', (subs, client) => serverLog.push(['subscribe', client.id, subs.map((s) => [s.topic, s.qos])]));
    this.aedes.on('unsubscribe', (topics, client) => serverLog.push(['unsubscribe', client.id, topics]));
    this.aedes.on('publish', (packet, client) => {
      if (packet.topic.startsWith('$SYS')) return;
      serverLog.push(['publish', client && client.id, packet.topic, packet.payload.toString('hex'), packet.qos]);
    });
    this.aedes.on('clientDisconnect', (client) => serverLog.push(['clientDisconnect', client.id]));
    this.aedes.on('clientError', (client, err) => serverLog.push(['clientError', client.id, err.message]));
    this.httpServer.listen(0, '127.0.0.1');
    await once(this.httpServer, 'listening');
    return `ws://127.0.0.1:${this.httpServer.address().port}`;
  }

  /** MQTT.js over the implementation's WebSocket and stream. */
  ownStreamClient(url, options) {
    const { WebSocket, createWebSocketStream } = IMPLS[this.impl];
    this.client = new mqtt.MqttClient(() => {
      const ws = new WebSocket(url, ['mqtt']);
      this.clientWebSockets.push(ws);
      return createWebSocketStream(ws);
    }, options);
    return this.client;
  }

  /** mqtt.connect() with `createWebsocket` building the implementation's WebSocket. */
  createWebsocketClient(url, options) {
    const { WebSocket } = IMPLS[this.impl];
    this.client = mqtt.connect(url, {
      ...options,
      createWebsocket: (wsUrl, protocols, opts) => {
        const ws = new WebSocket(wsUrl, protocols, opts.wsOptions);
        this.clientWebSockets.push(ws);
        return ws;
      }
    });
    return this.client;
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    if (this.client) this.client.end(true);
    const all = [...this.clientWebSockets, ...this.serverWebSockets];
    for (const ws of all) {
      ws.on('error', () => {});
      ws.terminate();
    }
    await Promise.all(all.map(closed));
    if (this.aedes) await new Promise((resolve) => this.aedes.close(resolve));
    if (this.wss) await new Promise((resolve) => this.wss.close(resolve));
    if (this.httpServer) await new Promise((resolve) => this.httpServer.close(resolve));
  }
}

const CLIENT_OPTIONS = { clientId: 'tester', protocolVersion: 4, reconnectPeriod: 0, keepalive: 0 };

/**
 * Connect, subscribe, publish QoS 0 and 1, receive, unsubscribe, end.
 * Entries whose order against each other depends on how bytes are split
 * across reads (a puback's promise against a message event, the broker's
 * 'clientDisconnect' against its WebSocket's 'close') go to separate lists.
 */
async function pubSub(run, client, log) {
  const messages = [];
  const clientEvents = [];
  const results = [];
  client.on('message', (topic, payload, packet) => messages.push([topic, payload.toString('hex'), packet.qos, packet.retain]));
  client.on('error', (err) => clientEvents.push(['error', err.message]));
  client.on('close', () => clientEvents.push(['close']));

  const [connack] = await next(client, 'connect');
  results.push(['connack', connack.returnCode, connack.sessionPresent]);
  const ws = run.clientWebSockets[0];
  const serverWs = run.serverWebSockets[0];
  results.push(['client ws', ws.protocol, isOf(run.impl, ws)]);
  const closes = { client: null, server: null };
  ws.on('close', (code, reason) => (closes.client = [code, reason.toString()]));
  serverWs.on('close', (code, reason) => (closes.server = [code, reason.toString()]));

  const granted = await client.subscribeAsync({ 'sensors/#': { qos: 1 }, 'plain/+': { qos: 0 } });
  results.push(['granted', granted.map((g) => [g.topic, g.qos]).sort()]);

  const received = new Promise((resolve) => {
    client.on('message', () => messages.length === 3 && resolve());
  });
  await client.publishAsync('plain/zero', 'qos zero', { qos: 0 });
  const puback = await client.publishAsync('sensors/one', Buffer.from([0, 1, 2, 250, 255]), { qos: 1 });
  results.push(['qos 1 publish acknowledged', puback.cmd, puback.qos, puback.topic]);
  await client.publishAsync('sensors/big', Buffer.alloc(70000, 7), { qos: 1 });
  await received;

  const unsuback = await client.unsubscribeAsync(['sensors/#', 'plain/+']);
  results.push(['unsubscribed', unsuback.cmd]);

  // end() is called from the turn that delivered the UNSUBACK. MQTT.js
  // writes DISCONNECT and, from a setImmediate after that write's
  // callback, ends its stream, which closes the WebSocket (a close frame
  // without a status code). With ws that frame is on its way before the
  // broker reads DISCONNECT and destroys its side, so the broker's
  // WebSocket closes with 1005.
  const bothClosed = Promise.all([closed(serverWs), closed(ws)]);
  await client.endAsync();
  results.push(['ended']);
  await bothClosed;
  log.push(['client', results], ['messages', messages], ['client events', clientEvents], ['ws close', closes]);
}

/** What ws logs for this scenario; the close codes are the point. */
function expected() {
  return [
    ['server', [
      ['ws connection', 'mqtt', true],
      ['client', 'tester'],
      ['subscribe', 'tester', [['sensors/#', 1], ['plain/+', 0]]],
      ['publish', 'tester', 'plain/zero', Buffer.from('qos zero').toString('hex'), 0],
      ['publish', 'tester', 'sensors/one', '000102faff', 1],
      ['publish', 'tester', 'sensors/big', '07'.repeat(70000), 1],
      ['unsubscribe', 'tester', ['sensors/#', 'plain/+']],
      ['clientDisconnect', 'tester']
    ]],
    ['client', [
      ['connack', 0, false],
      ['client ws', 'mqtt', true],
      ['granted', [['plain/+', 0], ['sensors/#', 1]]],
      ['qos 1 publish acknowledged', 'publish', 1, 'sensors/one'],
      ['unsubscribed', 'unsuback'],
      ['ended']
    ]],
    ['messages', [
      ['plain/zero', Buffer.from('qos zero').toString('hex'), 0, false],
      ['sensors/one', '000102faff', 1, false],
      ['sensors/big', '07'.repeat(70000), 1, false]
    ]],
    ['client events', [['close']]],
    ['ws close', { client: [1005, ''], server: [1005, ''] }]
  ];
}

describe('MQTT over WebSocket: aedes and MQTT.js', () => {
  for (const [name, make] of [
    ['MQTT.js on the implementation\'s own createWebSocketStream', 'ownStreamClient'],
    ['MQTT.js with the createWebsocket option', 'createWebsocketClient']
  ]) {
    it(`${name}: pub/sub QoS 0 and 1, then a clean end`, TIMEOUT, async (t) => {
      const log = await sameForBoth(assert, async (WebSocket, log, impl) => {
        const run = new Run(impl, t);
        const serverLog = [];
        try {
          const url = await run.broker(serverLog);
          const client = run[make](url, CLIENT_OPTIONS);
          await pubSub(run, client, log);
        } finally {
          await run.close();
        }
        log.unshift(['server', serverLog]);
      });
      assert.deepStrictEqual(log, expected());
    });
  }
});
