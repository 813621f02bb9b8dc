'use strict';

// Publish/subscribe, beyond ws (lib/topics.js, src/engine/topics.rs). What
// subscribers receive from `wss.publish()` must be what they would receive
// from ws code that loops over the members and calls `send()` on each: the
// same messages, in the same order with the sends around them, compressed or
// not as that send would be. Each scenario runs on the native listener
// (`{ port }`), on adopted sockets (`{ server }`) and on the stream
// transport (TLS), with real ws clients.

const assert = require('assert');
const http = require('http');
const { describe } = require('node:test');
const { once } = require('events');

const { IMPLS, closeServer, describe: describeData, it, sameForBoth, startServer, track, turns } = require('./helpers');

const { WebSocketServer } = IMPLS.native;
const REF = IMPLS.ws;

const SETUPS = [
  ['{ port }', 'port'],
  ['{ server }', 'server'],
  ['TLS', 'tls']
];

async function start(impl, setup, options = {}) {
  if (setup === 'server') {
    const server = track(http.createServer());
    const wss = track(new IMPLS[impl].WebSocketServer({ server, ...options }));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    wss._testServer = server;
    return { wss, url: `ws://127.0.0.1:${server.address().port}` };
  }
  const wss = await startServer(impl, options, { tls: setup === 'tls' });
  return { wss, url: `${setup === 'tls' ? 'wss' : 'ws'}://127.0.0.1:${wss.address().port}` };
}

/** Closes the server once its connections are gone (ws waits for them). */
async function stop(wss) {
  for (const ws of wss.clients) ws.terminate();
  await closeServer(wss);
}

/** `n` real ws clients of `url`, and the server's side of each, in order. */
async function connectAll(wss, url, n, clientOptions = {}) {
  const clients = [];
  const servers = [];
  for (let i = 0; i < n; i++) {
    const client = track(new REF(url, { rejectUnauthorized: false, ...clientOptions }));
    const [[server]] = await Promise.all([once(wss, 'connection'), once(client, 'open')]);
    clients.push(client);
    servers.push(server);
  }
  return { clients, servers };
}

/**
 * What ws code does for a publish: a send to each open member. With ws the
 * members are tracked by the test; with ws-native it is `wss.publish()`.
 */
function publisher(impl, wss) {
  const members = new Map();
  if (impl === 'native') {
    return {
      join: (ws, topic) => ws.subscribe(topic),
      leave: (ws, topic) => ws.unsubscribe(topic),
      publish: (topic, data, options) => wss.publish(topic, data, options)
    };
  }
  return {
    join(ws, topic) {
      if (!members.has(topic)) members.set(topic, new Set());
      members.get(topic).add(ws);
      ws.on('close', () => members.get(topic).delete(ws));
    },
    leave: (ws, topic) => members.get(topic).delete(ws),
    publish(topic, data, { except, ...options } = {}) {
      let n = 0;
      for (const ws of members.get(topic) || []) {
        if (ws === except || ws.readyState !== ws.OPEN) continue;
        ws.send(data, options);
        n++;
      }
      return n;
    }
  };
}

/** Resolves once every client has received `counts[i]` messages, logging them. */
function receiveAll(clients, counts, log) {
  return Promise.all(
    clients.map(
      (c, i) =>
        new Promise((resolve) => {
          if (counts[i] === 0) return resolve();
          let left = counts[i];
          c.on('message', (data, isBinary) => {
            log.push([`client ${i}`, describeData(data), isBinary]);
            if (--left === 0) resolve();
          });
        })
    )
  );
}

const json = (n) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ id: i, name: `item ${i}` })));

/**
 * Runs `body` with ws and with ws-native on `setup`, `n` clients connected:
 * `body({ wss, url, clients, servers, p, log, impl })`, `p` the publisher of
 * that implementation. Logs are compared per entry of `sides`, when given.
 */
function sameWithClients(setup, { n, options, sides }, body) {
  return sameForBoth(
    assert,
    async (W, log, impl) => {
      const { wss, url } = await start(impl, setup, options);
      try {
        const { clients, servers } = await connectAll(wss, url, n);
        await body({ wss, url, clients, servers, p: publisher(impl, wss), log, impl });
      } finally {
        await stop(wss);
      }
    },
    sides && { sides }
  );
}

const clientSides = (n) => Array.from({ length: n }, (_, i) => `client ${i}`);

for (const [label, setup] of SETUPS) {
  describe(`publish/subscribe: ${label}`, () => {
    it('every subscriber gets each publish once, in order with direct sends; except, counts, leaving', async () => {
      await sameWithClients(setup, { n: 4, sides: clientSides(4) }, async ({ clients, servers, p, log }) => {
        p.join(servers[0], 'a');
        p.join(servers[1], 'a');
        p.join(servers[2], 'a');
        p.join(servers[2], 'b');
        p.join(servers[3], 'b');
        const done = receiveAll(clients, [4, 6, 8, 4], log);
        const counts = [
          p.publish('a', 'hello'),
          p.publish('b', Buffer.from([1, 2, 3])),
          p.publish('a', '', { binary: true }),
          p.publish('a', 'not to 0', { except: servers[0] }),
          p.publish('nobody', 'x')
        ];
        servers[1].send('direct to 1');
        counts.push(p.publish('b', Buffer.alloc(70000, 9)));
        counts.push(p.publish('a', json(200)));
        p.leave(servers[2], 'a');
        counts.push(p.publish('a', 'after 2 left'));
        counts.push(p.publish('b', new Uint8Array([5, 6]).buffer));
        counts.push(p.publish('b', 'ünïcödé'));
        log.push(['counts', counts]);
        await done;
      });
    });

    it("a publish in the middle of a member's fragmented message ends it, as that member's send() would", async () => {
      await sameWithClients(setup, { n: 2, sides: clientSides(2) }, async ({ clients, servers, p, log }) => {
        for (const s of servers) p.join(s, 't');
        const done = receiveAll(clients, [3, 2], log);
        servers[0].send('part 1, ', { fin: false });
        p.publish('t', 'published');
        servers[0].send('after');
        p.publish('t', 'again');
        await done;
      });
    });

    it('closing and closed members are passed by', async () => {
      await sameWithClients(setup, { n: 3 }, async ({ clients, servers, p, log }) => {
        for (const s of servers) p.join(s, 't');
        const done = receiveAll(clients.slice(2), [2], log);
        const closed = once(clients[0], 'close');
        servers[0].close(4000);
        log.push(['while closing', p.publish('t', 'one')]);
        await closed;
        servers[1].terminate();
        await once(servers[1], 'close');
        log.push(['after close', p.publish('t', 'two')]);
        await done;
      });
    });

    for (const [name, perMessageDeflate] of [
      ['no context takeover (compressed once for all)', { serverNoContextTakeover: true, threshold: 100 }],
      ['context takeover (compressed per connection)', { threshold: 0 }]
    ]) {
      it(`permessage-deflate, ${name}: the same messages as per-socket sends`, async () => {
        const options = { perMessageDeflate };
        await sameWithClients(setup, { n: 2, options, sides: clientSides(3) }, async ({ wss, url, clients, servers, p, log }) => {
          // A third client without the extension gets the plain frames.
          const plain = await connectAll(wss, url, 1, { perMessageDeflate: false });
          for (const s of [...servers, ...plain.servers]) p.join(s, 't');
          const done = receiveAll([...clients, ...plain.clients], [7, 6, 6], log);
          p.publish('t', json(100));
          p.publish('t', 'tiny');
          servers[0].send(json(50));
          p.publish('t', json(3000));
          p.publish('t', json(100), { compress: false });
          p.publish('t', Buffer.from(json(80)), { binary: true });
          p.publish('t', json(100));
          await done;
          log.push(['extensions', servers.map((s) => s.extensions), plain.servers[0].extensions]);
          if (setup !== 'tls') log.push(['compressed', servers[1]._socket.bytesWritten < 3000 * 20]);
        });
      });
    }

    it('broadcast() reaches every open client, also those that connect later', async () => {
      await sameWithClients(setup, { n: 2, sides: clientSides(3) }, async ({ wss, url, clients, servers, log, impl }) => {
        const broadcast = (data, except) => {
          if (impl === 'native') return wss.broadcast(data, { except });
          let n = 0;
          for (const ws of wss.clients) {
            if (ws === except || ws.readyState !== ws.OPEN) continue;
            ws.send(data);
            n++;
          }
          return n;
        };
        const first = receiveAll(clients, [2, 1], log);
        log.push(['first', broadcast('to all')]);
        log.push(['except', broadcast('not to 1', servers[1])]);
        await first;
        const late = await connectAll(wss, url, 1);
        const second = receiveAll([...clients, ...late.clients], [1, 1, 1], log);
        log.push(['later', broadcast('again')]);
        await second;
      });
    });
  });
}

describe('publish/subscribe: the API', () => {
  it('subscribe, unsubscribe, isSubscribed and subscriptions; argument checks', async () => {
    const { wss, url } = await start('native', 'port');
    try {
      const { clients, servers } = await connectAll(wss, url, 1);
      const ws = servers[0];
      assert.deepStrictEqual(ws.subscriptions, []);
      ws.subscribe('a');
      ws.subscribe('b');
      ws.subscribe('a');
      assert.deepStrictEqual(ws.subscriptions, ['a', 'b']);
      assert.strictEqual(ws.isSubscribed('a'), true);
      assert.strictEqual(ws.isSubscribed('c'), false);
      ws.unsubscribe('a');
      ws.unsubscribe('never');
      assert.deepStrictEqual(ws.subscriptions, ['b']);
      // The broadcast group is not a topic of anyone's.
      assert.strictEqual(wss.broadcast('x'), 1);
      assert.deepStrictEqual(ws.subscriptions, ['b']);
      for (const bad of [1, null, undefined, {}]) {
        assert.throws(() => ws.subscribe(bad), { name: 'TypeError', message: 'The topic must be a string' });
        assert.throws(() => wss.publish(bad, 'x'), TypeError);
      }
      assert.throws(() => wss.publish('b', new Blob(['x'])), TypeError);
      assert.throws(() => clients[0].subscribe('a'), TypeError);
      const closed = once(ws, 'close');
      clients[0].close();
      await closed;
      assert.deepStrictEqual(ws.subscriptions, []);
      ws.subscribe('b');
      assert.deepStrictEqual(ws.subscriptions, []);
      assert.strictEqual(wss.publish('b', 'x'), 0);
      assert.strictEqual(wss._topics.byName.size, 0);
    } finally {
      await stop(wss);
    }
  });

  it('a ws-native client has no topics', () => {
    const ws = new IMPLS.native('ws://127.0.0.1:1');
    ws.on('error', () => {});
    try {
      assert.throws(() => ws.subscribe('a'), { message: 'Only the WebSockets of a WebSocketServer have topics' });
    } finally {
      ws.terminate();
    }
  });

  it('broadcast() needs clientTracking', async () => {
    const wss = new WebSocketServer({ noServer: true, clientTracking: false });
    track(() => wss.close());
    assert.throws(() => wss.broadcast('x'), { message: 'broadcast() needs the clientTracking option' });
  });

  it('maxBufferedAmount also holds for publishes: the slow subscriber is closed with 1008, the others get everything', async () => {
    for (const setup of ['port', 'tls']) {
      const { wss, url } = await start('native', setup, { maxBufferedAmount: 512 * 1024 });
      try {
        const { clients } = await connectAll(wss, url, 2);
        for (const ws of wss.clients) ws.subscribe('t');
        const [slow, fast] = clients;
        slow.pause();
        let fastGot = 0;
        fast.on('message', () => fastGot++);
        const chunk = Buffer.alloc(64 * 1024);
        let sent = 0;
        const [slowServer] = [...wss.clients];
        // A publish per loop turn: the fast client reads in between.
        while (slowServer.readyState === slowServer.OPEN && sent < 4000) {
          wss.publish('t', chunk);
          sent++;
          await turns(1);
        }
        assert.strictEqual(slowServer.readyState, slowServer.CLOSING, setup);
        const slowClosed = once(slow, 'close');
        slow.resume();
        const [code] = await slowClosed;
        assert.strictEqual(code, 1008);
        wss.publish('t', 'last');
        await new Promise((resolve) => fast.on('message', (d) => String(d) === 'last' && resolve()));
        assert.strictEqual(fastGot, sent + 1, setup);
      } finally {
        await stop(wss);
      }
    }
  });
});
