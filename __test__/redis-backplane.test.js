'use strict';

// ws-native/redis: wss.publish() across servers through a real redis-server,
// with node-redis and with ioredis clients. Servers run in child processes
// (fixtures/redis-backplane-server.js), two apart or as a cluster's two
// workers; the Redis outage is a SIGKILL and a restart on the same port.
// Nothing waits for time: every wait is for a message, a reply or an exit.

const assert = require('assert');
const crypto = require('crypto');
const path = require('path');
const { describe } = require('node:test');
const { execFile, fork } = require('child_process');
const { once } = require('events');

const WebSocket = require('ws');
const { WebSocketServer } = require('..');
const { createRedisBackplane } = require('../redis');
const { it, track, turns } = require('./helpers');
const { skip, startRedis } = require('./redis-server');

const FIXTURE = path.join(__dirname, 'fixtures', 'redis-backplane-server.js');
const LIBS = ['redis', 'ioredis'];
const noop = () => {};

/** Items that arrive one by one; `until()` waits for a condition on them. */
class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
    this.failure = null;
  }

  push(item) {
    this.items.push(item);
    this.check();
  }

  fail(err) {
    if (!this.failure) this.failure = err;
    this.check();
  }

  check() {
    for (const w of this.waiters.slice()) {
      if (w.test(this.items)) w.resolve(this.items);
      else if (this.failure) w.reject(this.failure);
      else continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
    }
  }

  /** Resolves once `test(items)` holds; rejects if the source ends first. */
  until(test) {
    const p = new Promise((resolve, reject) => this.waiters.push({ test, resolve, reject }));
    // A wait the test gave up on (it raced another) is no unhandled rejection.
    p.catch(noop);
    this.check();
    return p;
  }
}

/** A WebSocket client of the fixture's protocol: control replies and data. */
class Peer {
  constructor(port) {
    this.ws = track(new WebSocket(`ws://127.0.0.1:${port}`));
    this.control = new Inbox();
    this.data = new Inbox();
    this.nextId = 1;
    this.ws.on('message', (raw, isBinary) => {
      if (!isBinary && raw[0] === 0x7b) this.control.push(JSON.parse(raw));
      else this.data.push(isBinary ? { binary: true, data: Buffer.from(raw) } : { binary: false, data: String(raw) });
    });
    this.ws.on('error', (err) => this.fail(err));
    this.ws.on('close', () => this.fail(new Error('the connection closed')));
  }

  fail(err) {
    this.control.fail(err);
    this.data.fail(err);
  }

  async hello() {
    const items = await this.control.until((c) => c.some((m) => m.op === 'hello'));
    return items.find((m) => m.op === 'hello');
  }

  /** Sends `m` with a fresh id; resolves with the reply of `op` to it. */
  async request(m, op) {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ ...m, id }));
    const items = await this.control.until((c) => c.some((r) => r.op === op && r.id === id));
    return items.find((r) => r.op === op && r.id === id);
  }

  async subscribe(topic) {
    this.ws.send(JSON.stringify({ op: 'sub', topic }));
    await this.control.until((c) => c.some((r) => r.op === 'subbed' && r.topic === topic));
  }

  /** Asks the server to publish `item` ({ text } or { binary }) on `topic`. */
  publish(topic, item, { flush = false } = {}) {
    const payload = item.binary ? { base64: item.binary.toString('base64') } : { text: item.text };
    return this.request({ op: 'pub', topic, flush, ...payload }, 'pubbed');
  }

  /** A round trip: whatever the server sent before it has arrived. */
  ping() {
    return this.request({ op: 'ping' }, 'pong');
  }

  /** Resolves once a data message that `test` accepts has arrived. */
  receives(test) {
    return this.data.until((d) => d.some(test));
  }

  /** The data received so far that `test` accepts. */
  received(test) {
    return this.data.items.filter(test);
  }
}

/** A fixture process: its IPC messages, and the servers it reported. */
class ServerProcess {
  constructor(redis, lib, env = {}) {
    this.child = track(
      fork(FIXTURE, [], {
        env: { ...process.env, REDIS_PORT: String(redis.port), REDIS_LIB: lib, ...env },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc']
      })
    );
    this.messages = new Inbox();
    this.child.on('message', (m) => {
      if (m.type === 'fatal') this.messages.fail(new Error(`fixture failed: ${m.message}`));
      else this.messages.push(m);
    });
    this.child.on('exit', (code, signal) => this.messages.fail(new Error(`fixture exited (${code || signal})`)));
  }

  /** Resolves with the 'listening' messages once there are `n`. */
  async listening(n = 1) {
    const items = await this.messages.until((ms) => ms.filter((m) => m.type === 'listening').length >= n);
    return items.filter((m) => m.type === 'listening');
  }

  get errors() {
    return this.messages.items.filter((m) => m.type === 'error');
  }

  async port() {
    const [{ port }] = await this.listening();
    return port;
  }
}

/** A connected peer of the server at `port`, subscribed to `topics`. */
async function peer(port, ...topics) {
  const p = new Peer(port);
  p.info = await p.hello();
  for (const topic of topics) await p.subscribe(topic);
  return p;
}

// The messages of each publisher carry its tag: text starts with it, the
// first byte of binary is its code.
const TAGS = { A: 0x0a, B: 0x0b };

function messagesOf(tag) {
  const code = TAGS[tag];
  const items = [
    { text: `${tag}:first` },
    { binary: Buffer.from([code, 0x00, 0x01, 0x7f, 0x80, 0xff]) },
    { text: `${tag}:é ✓ 🌍 \u0000 nul` },
    { binary: Buffer.concat([Buffer.from([code]), crypto.randomBytes(70000)]) },
    { text: `${tag}:${'x'.repeat(100000)}` },
    { binary: Buffer.from([code]) }
  ];
  for (let i = 0; i < 40; i++) items.push(i % 2 ? { text: `${tag}:${i}` } : { binary: Buffer.from([code, i]) });
  items.push({ text: `${tag}:end` });
  return items;
}

/** What a client receives for `item`. */
function expected(item) {
  return item.binary ? { binary: true, data: item.binary } : { binary: false, data: item.text };
}

function fromTag(tag) {
  return (m) => (m.binary ? m.data[0] === TAGS[tag] : m.data.startsWith(`${tag}:`));
}

const isEnd = (tag) => (m) => !m.binary && m.data === `${tag}:end`;

/** Publishes `items` through `ctrl`, all at once; resolves with the replies. */
function publishAll(ctrl, topic, items) {
  return Promise.all(items.map((item) => ctrl.publish(topic, item)));
}

/**
 * Publishes through `ctrl` until `receiver` gets one of the messages: each
 * round waits for the publish to have been through Redis (a PING after it
 * on the publisher connection) or for the delivery, whichever comes first.
 */
async function pollUntilDelivered(ctrl, receiver, tag) {
  const delivered = receiver.receives((m) => !m.binary && m.data.startsWith(`${tag}:`));
  let done = false;
  delivered.then(() => (done = true), noop);
  for (let k = 0; !done; k++) {
    await Promise.race([delivered, ctrl.publish('t', { text: `${tag}:${k}` }, { flush: true })]);
  }
}

for (const lib of LIBS) {
  describe(`Redis backplane, ${lib} clients`, { skip }, () => {
    it('two servers: each subscriber gets every publish once, in order, intact', async () => {
      const redis = await startRedis();
      const A = new ServerProcess(redis, lib);
      const B = new ServerProcess(redis, lib);
      const [portA, portB] = await Promise.all([A.port(), B.port()]);

      const a1 = await peer(portA, 't');
      const a2 = await peer(portA, 'other');
      const ctrlA = await peer(portA);
      const b1 = await peer(portB, 't');
      const b3 = await peer(portB, 't', 'other');
      const b2 = await peer(portB);
      const ctrlB = await peer(portB);
      assert.notStrictEqual(a1.info.pid, b1.info.pid);

      const fromA = messagesOf('A');
      const fromB = messagesOf('B');
      const [repliesA, repliesB] = await Promise.all([publishAll(ctrlA, 't', fromA), publishAll(ctrlB, 't', fromB)]);
      // The count is of local subscribers only.
      assert.deepStrictEqual(new Set(repliesA.map((r) => `${r.count} ${r.error}`)), new Set(['1 null']));
      assert.deepStrictEqual(new Set(repliesB.map((r) => `${r.count} ${r.error}`)), new Set(['2 null']));

      const subscribers = { a1, b1, b3 };
      await Promise.all(Object.values(subscribers).flatMap((p) => [p.receives(isEnd('A')), p.receives(isEnd('B'))]));
      for (const [name, p] of Object.entries(subscribers)) {
        // What a publisher sent arrives once, in its order, after which its
        // end marker comes; nothing else arrives.
        assert.deepStrictEqual(p.received(fromTag('A')), fromA.map(expected), `${name}: from A`);
        assert.deepStrictEqual(p.received(fromTag('B')), fromB.map(expected), `${name}: from B`);
        assert.strictEqual(p.data.items.length, fromA.length + fromB.length, `${name}: nothing else`);
      }
      // The others got nothing: a round trip after the end markers shows it.
      for (const [name, p] of Object.entries({ a2, b2, ctrlA, ctrlB })) {
        await p.ping();
        assert.deepStrictEqual(p.data.items, [], `${name} is no subscriber of t`);
      }
      assert.deepStrictEqual([...A.errors, ...B.errors], []);
    });

    it('a cluster of two workers on one port: a publish on one reaches the other once', async () => {
      const redis = await startRedis();
      const primary = new ServerProcess(redis, lib, { CLUSTER: '1' });
      const workers = await primary.listening(2);
      assert.strictEqual(workers[0].port, workers[1].port);
      const { port } = workers[0];

      // Connect until each worker has a subscriber and a control peer.
      const subs = new Map();
      const ctrls = new Map();
      for (let i = 0; i < 20 && (subs.size < 2 || ctrls.size < 2); i++) {
        const p = await peer(port);
        const w = p.info.worker;
        if (!subs.has(w)) {
          await p.subscribe('t');
          subs.set(w, p);
        } else if (!ctrls.has(w)) ctrls.set(w, p);
      }
      assert.deepStrictEqual([...subs.keys()].sort(), [1, 2], 'clients landed on both workers');
      assert.deepStrictEqual([...ctrls.keys()].sort(), [1, 2]);

      const fromA = messagesOf('A');
      const fromB = messagesOf('B');
      const [repliesA, repliesB] = await Promise.all([publishAll(ctrls.get(1), 't', fromA), publishAll(ctrls.get(2), 't', fromB)]);
      assert.ok([...repliesA, ...repliesB].every((r) => r.count === 1 && r.error === null));
      for (const [w, p] of subs) {
        await Promise.all([p.receives(isEnd('A')), p.receives(isEnd('B'))]);
        assert.deepStrictEqual(p.received(fromTag('A')), fromA.map(expected), `worker ${w}: from worker 1`);
        assert.deepStrictEqual(p.received(fromTag('B')), fromB.map(expected), `worker ${w}: from worker 2`);
        assert.strictEqual(p.data.items.length, fromA.length + fromB.length);
      }
      for (const p of ctrls.values()) {
        await p.ping();
        assert.deepStrictEqual(p.data.items, []);
      }
      assert.deepStrictEqual(primary.errors, []);
    });
  });
}

const OUTAGES = [
  ['redis', {}],
  ['ioredis', {}],
  ['ioredis', { AUTO_RESUBSCRIBE: '0' }]
];

for (const [lib, env] of OUTAGES) {
  const variant = env.AUTO_RESUBSCRIBE === '0' ? `${lib} clients, autoResubscribe: false` : `${lib} clients`;
  describe(`Redis backplane outage, ${variant}`, { skip }, () => {
    it('Redis killed: one error per server, local publishing goes on; restarted: delivery resumes', async () => {
      const redis = await startRedis();
      const A = new ServerProcess(redis, lib, env);
      const B = new ServerProcess(redis, lib, env);
      const [portA, portB] = await Promise.all([A.port(), B.port()]);
      const a1 = await peer(portA, 't');
      const b1 = await peer(portB, 't');
      const ctrlA = await peer(portA);
      const ctrlB = await peer(portB);

      await ctrlA.publish('t', { text: 'before:A' });
      await b1.receives((m) => m.data === 'before:A');

      await redis.stop('SIGKILL');
      await Promise.all([A.messages.until(() => A.errors.length > 0), B.messages.until(() => B.errors.length > 0)]);
      for (const err of [...A.errors, ...B.errors]) {
        assert.match(err.message, /^Redis backplane: the (publisher|subscriber) connection to Redis (failed|was lost)/);
      }

      // Meanwhile, publishing works locally and throws nothing.
      for (let i = 0; i < 3; i++) {
        const { count, error } = await ctrlA.publish('t', { text: `during:${i}` });
        assert.deepStrictEqual({ count, error }, { count: 1, error: null });
      }
      await a1.receives((m) => m.data === 'during:2');

      await redis.start();
      await pollUntilDelivered(ctrlA, b1, 'poll-A');
      await pollUntilDelivered(ctrlB, a1, 'poll-B');

      // Back to exactly once, in order, both ways.
      const after = (tag) => [{ text: `${tag}:1` }, { binary: Buffer.from([TAGS[tag], 1, 2, 3]) }, { text: `${tag}:end` }];
      await Promise.all([publishAll(ctrlA, 't', after('A')), publishAll(ctrlB, 't', after('B'))]);
      for (const p of [a1, b1]) {
        await Promise.all([p.receives(isEnd('A')), p.receives(isEnd('B'))]);
        assert.deepStrictEqual(p.received(fromTag('A')), after('A').map(expected));
        assert.deepStrictEqual(p.received(fromTag('B')), after('B').map(expected));
      }
      // What was published during the outage reached a1 once (Redis may
      // deliver the queued publishes to B later; never back to A).
      await a1.ping();
      assert.deepStrictEqual(
        a1.received((m) => !m.binary && m.data.startsWith('during:')).map((m) => m.data),
        ['during:0', 'during:1', 'during:2']
      );
      // One outage, one error per server, however many publishes and
      // reconnection attempts it took.
      assert.strictEqual(A.errors.length, 1, JSON.stringify(A.errors));
      assert.strictEqual(B.errors.length, 1, JSON.stringify(B.errors));
    });
  });
}

/** A connected publisher and subscriber, closed with the test. */
async function connectClients(lib, port) {
  if (lib === 'ioredis') {
    const Redis = require('ioredis');
    const publisher = new Redis(port, '127.0.0.1').on('error', noop);
    const subscriber = new Redis(port, '127.0.0.1').on('error', noop);
    track(() => publisher.disconnect());
    track(() => subscriber.disconnect());
    await Promise.all([once(publisher, 'ready'), once(subscriber, 'ready')]);
    return { publisher, subscriber, isOpen: (c) => c.status === 'ready', close: (c) => c.disconnect() };
  }
  const { createClient } = require('redis');
  const publisher = createClient({ socket: { host: '127.0.0.1', port } }).on('error', noop);
  track(() => publisher.isOpen && publisher.destroy());
  await publisher.connect();
  const subscriber = publisher.duplicate().on('error', noop);
  track(() => subscriber.isOpen && subscriber.destroy());
  await subscriber.connect();
  return { publisher, subscriber, isOpen: (c) => c.isReady, close: (c) => c.destroy() };
}

/** A node-redis connection of the test's own, to look at Redis and publish raw. */
async function probeOf(redis) {
  const { createClient } = require('redis');
  const probe = createClient({ socket: { host: '127.0.0.1', port: redis.port } }).on('error', noop);
  track(() => probe.isOpen && probe.destroy());
  await probe.connect();
  probe.numpat = async () => Number(await probe.sendCommand(['PUBSUB', 'NUMPAT']));
  return probe;
}

/** An in-process server whose clients subscribe to `topic` on connecting. */
async function localServer(topic) {
  const wss = track(new WebSocketServer({ port: 0, host: '127.0.0.1' }));
  wss.errors = [];
  wss.on('error', (err) => wss.errors.push(err));
  wss.on('connection', (ws) => ws.subscribe(topic));
  await once(wss, 'listening');
  return wss;
}

/** A client of `wss`, subscribed once open (the server subscribes on 'connection'). */
async function localClient(wss) {
  const c = track(new WebSocket(`ws://127.0.0.1:${wss.address().port}`));
  c.data = new Inbox();
  c.on('message', (data, isBinary) => c.data.push({ binary: isBinary, data: isBinary ? Buffer.from(data) : String(data) }));
  await once(c, 'open');
  return c;
}

for (const lib of LIBS) {
  describe(`Redis backplane in process, ${lib} clients`, { skip }, () => {
    it('takes the documented envelope, drops its own and foreign messages, escapes its prefix', async () => {
      const redis = await startRedis();
      const probe = await probeOf(redis);
      const { publisher, subscriber } = await connectClients(lib, redis.port);
      const wss = await localServer('t');
      const prefix = 'app[1]*:';
      const bp = createRedisBackplane(wss, { publisher, subscriber, channelPrefix: prefix });
      await bp.ready;
      assert.strictEqual(wss._backplane, bp);
      assert.strictEqual(await probe.numpat(), 1);
      const c = await localClient(wss);

      // Own publish: delivered here once, by wss.publish() itself.
      assert.strictEqual(wss.publish('t', 'own'), 1);
      await publisher.ping();
      // Then, from elsewhere, in order on one connection:
      const origin = crypto.randomBytes(16);
      const env = (flags, payload) => Buffer.concat([Buffer.from([flags]), origin, Buffer.from(payload)]);
      await probe.publish(`${prefix}t`, env(0x01, [1, 2, 3])); // binary
      await probe.publish(`${prefix}t`, Buffer.from('too short')); // no envelope
      await probe.publish(`${prefix}t`, env(0x09, 'reserved flag bit')); // not ours
      // A batch: two publishes, then a malformed one (dropped whole).
      const entry = (flags, topic, payload) => {
        const head = Buffer.alloc(3);
        head[0] = flags;
        head.writeUInt16BE(Buffer.byteLength(topic), 1);
        const len = Buffer.alloc(4);
        len.writeUInt32BE(Buffer.byteLength(payload));
        return Buffer.concat([head, Buffer.from(topic), len, Buffer.from(payload)]);
      };
      await probe.publish(prefix, env(0x04, Buffer.concat([entry(0x00, 't', 'batched 1'), entry(0x00, 'u', 'elsewhere'), entry(0x01, 't', 'batched 2')])));
      await probe.publish(prefix, env(0x04, Buffer.concat([entry(0x00, 't', 'cut'), Buffer.from([0, 0, 9])])));
      await probe.publish('app1x:t', env(0x00, 'would match an unescaped prefix'));
      await probe.publish(`${prefix}u`, env(0x00, 'another topic'));
      await probe.publish(`${prefix}t`, env(0x02, 'é end')); // text, compress
      await c.data.until((d) => d.some((m) => m.data === 'é end'));
      assert.deepStrictEqual(c.data.items, [
        { binary: false, data: 'own' },
        { binary: true, data: Buffer.from([1, 2, 3]) },
        { binary: false, data: 'batched 1' },
        { binary: true, data: Buffer.from('batched 2') },
        { binary: false, data: 'é end' }
      ]);

      // And what this server publishes is in that envelope.
      const seen = new Inbox();
      const listener = await probe.duplicate().on('error', noop).connect();
      track(() => listener.isOpen && listener.destroy());
      await listener.pSubscribe(`app\\[1\\]\\*:*`, (message, channel) => seen.push({ message, channel }), true);
      wss.publish('t', Buffer.from([9, 8]));
      const [bin] = await seen.until((s) => s.length === 1);
      assert.strictEqual(bin.channel.toString(), `${prefix}t`);
      assert.strictEqual(bin.message.length, 19);
      assert.strictEqual(bin.message[0], 0x03); // binary, compress (publish's default)
      assert.notDeepStrictEqual(bin.message.subarray(1, 17), origin);
      assert.deepStrictEqual(bin.message.subarray(17), Buffer.from([9, 8]));
      // Publishes of one tick: one batch on the bare prefix, in order.
      wss.publish('t', 'text', { compress: false });
      wss.publish('ü', Buffer.from([7]));
      const [, batch] = await seen.until((s) => s.length === 2);
      assert.strictEqual(batch.channel.toString(), prefix);
      assert.strictEqual(batch.message[0], 0x04);
      assert.deepStrictEqual(batch.message.subarray(1, 17), bin.message.subarray(1, 17), 'one origin');
      assert.deepStrictEqual(batch.message.subarray(17), Buffer.concat([entry(0x00, 't', 'text'), entry(0x03, 'ü', Buffer.from([7]))]));
      assert.deepStrictEqual(wss.errors, []);
    });

    it('close() unsubscribes and detaches, leaving the clients open; so does wss.close()', async () => {
      const redis = await startRedis();
      const probe = await probeOf(redis);
      const { publisher, subscriber, isOpen } = await connectClients(lib, redis.port);
      const wss = await localServer('t');

      const bp = createRedisBackplane(wss, { publisher, subscriber });
      assert.throws(() => createRedisBackplane(wss, { publisher, subscriber }), /already has a backplane/);
      await bp.ready;
      assert.strictEqual(await probe.numpat(), 1);
      const closing = bp.close();
      assert.strictEqual(wss._backplane, null);
      assert.strictEqual(bp.close(), closing);
      await closing;
      assert.strictEqual(await probe.numpat(), 0);
      assert.ok(isOpen(publisher) && isOpen(subscriber));
      assert.strictEqual(await publisher.ping(), 'PONG');

      // Attached again, then the server closes.
      const again = createRedisBackplane(wss, { publisher, subscriber });
      await again.ready;
      assert.strictEqual(await probe.numpat(), 1);
      wss.close();
      await once(wss, 'close');
      assert.strictEqual(wss._backplane, null);
      await again.close();
      assert.strictEqual(await probe.numpat(), 0);
      assert.ok(isOpen(publisher) && isOpen(subscriber));
      assert.deepStrictEqual(wss.errors, []);
    });

    it('a publisher that fails is reported once, and wss.publish() keeps delivering locally', async () => {
      const redis = await startRedis();
      const { publisher, subscriber, close } = await connectClients(lib, redis.port);
      const wss = await localServer('t');
      const bp = createRedisBackplane(wss, { publisher, subscriber });
      await bp.ready;
      const c = await localClient(wss);

      await close(publisher);
      for (let i = 0; i < 5; i++) assert.strictEqual(wss.publish('t', `m${i}`), 1);
      const [err] = await once(wss, 'error');
      assert.match(err.message, /^Redis backplane: publishing to Redis failed: /);
      assert.ok(err.cause instanceof Error);
      await c.data.until((d) => d.length === 5);
      await turns(3);
      assert.strictEqual(wss.errors.length, 1);
      await bp.close();
    });

    it('checks its arguments', async () => {
      const redis = await startRedis();
      const { publisher, subscriber } = await connectClients(lib, redis.port);
      const wss = await localServer('t');
      assert.throws(() => createRedisBackplane({}, { publisher, subscriber }), TypeError);
      assert.throws(() => createRedisBackplane(wss, {}), /"publisher" option/);
      assert.throws(() => createRedisBackplane(wss, { publisher, subscriber: {} }), /"subscriber" option/);
      assert.throws(() => createRedisBackplane(wss, { publisher, subscriber: publisher }), /connection of its own/);
      assert.throws(() => createRedisBackplane(wss, { publisher, subscriber, channelPrefix: 1 }), /"channelPrefix"/);
      assert.strictEqual(wss._backplane, null);
    });
  });
}

it('redis.d.ts type-checks with clients of both libraries', { timeout: 180000 }, async () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const out = await new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [tsc, '-p', path.join(__dirname, 'types-redis')], { encoding: 'utf8' }, (err, stdout, stderr) =>
      err ? reject(new Error(`tsc failed (${err.code || err.signal}):\n${stdout}${stderr}`)) : resolve(stdout)
    );
    track(child);
  });
  assert.strictEqual(out, '');
});
