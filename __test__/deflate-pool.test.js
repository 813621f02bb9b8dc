'use strict';

// Big permessage-deflate messages compress and inflate on ws-native's pool
// (src/engine/pool.rs), away from the JS thread, as ws's do on zlib's
// thread pool. Each scenario runs with ws and with ws-native on the side
// under test, real ws on the other, and the logs must match: events, send
// callbacks, bufferedAmount, close codes, bytes on the wire.

const assert = require('assert');
const crypto = require('crypto');
const zlib = require('zlib');
const { describe, it } = require('node:test');
const { once } = require('events');

const { IMPLS, MASK, describeError, frame, rawClient, sameForBoth } = require('./helpers');

const { engineStats } = require('../lib/native-transport');

const REF = IMPLS.ws;
const T = { timeout: 20000 };

/** `sameForBoth`, also checking that ws-native's run used the pool. */
async function same(scenario, opts) {
  let jobs;
  await sameForBoth(assert, async (W, log, impl) => {
    const before = engineStats()[4];
    await scenario(W, log, impl);
    if (impl === 'native') jobs = engineStats()[4] - before;
  }, opts);
  assert.ok(jobs > 0, 'ws-native compressed or inflated on its pool');
}

const json = (n, seed) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ id: i, seed, name: `item ${i * seed}`, tags: ['a', 'b', String(i % 7)] })));
/** Compressible binary that does not repeat the JSON above. */
const binary = (n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * i) % 251));
const digest = (data) => (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString('base64').length + ':' + crypto.createHash('sha1').update(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).digest('hex').slice(0, 12);

function closed(ws) {
  return new Promise((resolve) => (ws.readyState === 3 ? resolve() : ws.once('close', () => resolve())));
}

/** A connection with `side` made by `W` and the other side by real ws. */
async function connect(W, side, { serverOptions = {}, clientOptions = {} } = {}) {
  const S = side === 'server' ? W : REF;
  const C = side === 'client' ? W : REF;
  const wss = new S.WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true, ...serverOptions });
  await once(wss, 'listening');
  const client = new C(`ws://127.0.0.1:${wss.address().port}`, clientOptions);
  const [[server]] = await Promise.all([once(wss, 'connection'), once(client, 'open')]);
  return {
    wss,
    me: side === 'server' ? server : client,
    peer: side === 'server' ? client : server,
    async done() {
      for (const ws of [client, server]) if (ws.readyState !== 3) ws.terminate();
      await Promise.all([closed(client), closed(server)]);
      await new Promise((resolve) => wss.close(() => resolve()));
    }
  };
}

describe('permessage-deflate on the pool: big messages', () => {
  it('both ways, mixed with small messages, pings and fragments: events, callbacks and bufferedAmount as ws', T, async () => {
    await same(async (W, log) => {
      for (const side of ['client', 'server']) {
        const c = await connect(W, side);
        try {
          const { me, peer } = c;
          const sends = [
            ['big text', json(3000, 1)],
            ['small', 'small'],
            ['ping'],
            ['big binary', binary(100000)],
            ['fragment 1', json(1000, 2), { fin: false }],
            ['fragment 2', json(1000, 3), { fin: true }],
            ['uncompressed big', json(900, 4), { compress: false }],
            ['after', 'after']
          ];
          const fromPeer = [json(2500, 5), 'p1', binary(70000), 'p2'];
          // Echoes (the two fragments are one message), the pong, the peer's.
          let want = sends.length - 2 + 1 + fromPeer.length;
          const allIn = new Promise((resolve) => {
            me.on('message', (data, isBinary) => {
              log.push([`${side} me`, 'message', digest(data), isBinary]);
              if (--want === 0) resolve();
            });
            me.on('pong', (d) => {
              log.push([`${side} me`, 'pong', d.toString()]);
              if (--want === 0) resolve();
            });
          });
          let pending = [];
          peer.on('message', (data, isBinary) => {
            pending.push(data);
            log.push([`${side} peer`, 'got', digest(data), isBinary]);
            peer.send(data, { binary: isBinary });
          });
          for (const [name, data, opts] of sends) {
            const cb = (err) => log.push([`${side} callback`, name, err && err.message]);
            if (name === 'ping') me.ping('p', cb);
            else me.send(data, opts || {}, cb);
            log.push([`${side} sent`, name, me.bufferedAmount]);
          }
          for (const m of fromPeer) peer.send(m);
          peer.ping('from peer');
          await allIn;
          me.close(4001, 'done');
          await Promise.all([closed(me), closed(peer)]);
          log.push([`${side} me`, 'closed', pending.length]);
        } finally {
          await c.done();
        }
      }
    }, { sides: ['client me', 'client peer', 'client callback', 'client sent', 'server me', 'server peer', 'server callback', 'server sent'] });
  });

  it('a burst of small messages behind a big one, in one read, keeps its order', T, async () => {
    await same(async (W, log) => {
      for (const side of ['client', 'server']) {
        const c = await connect(W, side);
        try {
          const { me, peer } = c;
          const n = 50;
          const got = new Promise((resolve) => {
            let left = n + 2;
            me.on('message', (data) => {
              log.push([side, String(data).length > 40 ? digest(data) : String(data)]);
              if (--left === 0) resolve();
            });
          });
          me.on('ping', (d) => log.push([side, 'ping', d.toString()]));
          peer.send(json(4000, 9));
          for (let i = 0; i < n; i++) {
            peer.send(`m${i}`);
            if (i === 10) peer.ping('mid');
          }
          peer.send(json(4000, 10));
          await got;
        } finally {
          await c.done();
        }
      }
    });
  });

  it('terminate() while a big message compresses: every callback fails, nothing reaches the peer', T, async () => {
    await same(async (W, log) => {
      for (const side of ['client', 'server']) {
        const c = await connect(W, side);
        try {
          const { me, peer } = c;
          peer.on('message', (d) => log.push([side, 'peer got', d.length]));
          peer.on('close', (code) => log.push([side, 'peer close', code]));
          me.on('error', (err) => log.push([side, 'error', ...describeError(err)]));
          me.on('close', (code) => log.push([side, 'close', code]));
          const cb = (name) => (err) => log.push([side, 'callback', name, err && err.message, me.readyState]);
          me.send(json(3000, 1), cb('big'));
          me.send('two', cb('two'));
          me.ping('p', cb('ping'));
          me.send(json(3000, 2), { compress: false }, cb('plain big'));
          log.push([side, 'bufferedAmount', me.bufferedAmount]);
          me.terminate();
          log.push([side, 'terminated', me.readyState]);
          await Promise.all([closed(me), closed(peer)]);
          await new Promise((r) => setImmediate(r));
        } finally {
          await c.done();
        }
      }
    });
  });

  it('close() after big sends: the close frame goes last, after every compressed message', T, async () => {
    await same(async (W, log) => {
      for (const side of ['client', 'server']) {
        const c = await connect(W, side);
        try {
          const { me, peer } = c;
          // The sender's callbacks and the peer's events race each other
          // in one process, so each party's order is compared on its own.
          peer.on('message', (d) => log.push([`${side} peer`, 'got', digest(d)]));
          peer.on('close', (code, reason) => log.push([`${side} peer`, 'close', code, reason.toString()]));
          me.send(json(3000, 1), (err) => log.push([`${side} me`, 'callback 1', err && err.message]));
          me.send(json(3000, 2), (err) => log.push([`${side} me`, 'callback 2', err && err.message]));
          me.close(4000, 'bye');
          me.send('late', (err) => log.push([`${side} me`, 'late', err && err.message]));
          await Promise.all([closed(me), closed(peer)]);
        } finally {
          await c.done();
        }
      }
    }, { sides: ['client me', 'client peer', 'server me', 'server peer'] });
  });

  it('refused big messages: inflated past maxPayload (1009), invalid UTF-8 (1007), a corrupt stream (1007)', T, async () => {
    const big = Buffer.from(json(3000, 7));
    const badText = Buffer.concat([big, Buffer.from([0xc3, 0x28])]);
    const deflated = (b) => {
      const z = zlib.deflateRawSync(b, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      return z.subarray(0, z.length - 4);
    };
    const corrupt = Buffer.from(deflated(big));
    for (let i = 2000; i < 2100; i++) corrupt[i] ^= 0x5a;
    const cases = [
      ['past maxPayload', deflated(big), { maxPayload: 50000 }],
      ['invalid utf-8', deflated(badText), {}],
      ['corrupt', corrupt, {}]
    ];
    const corruptMessage = {};
    await same(async (W, log, impl) => {
      for (const [name, payload, options] of cases) {
        const wss = new W.WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true, ...options });
        await once(wss, 'listening');
        try {
          const serverClosed = new Promise((resolve) => wss.on('connection', (ws) => ws.on('close', resolve)));
          wss.on('connection', (ws) => {
            ws.on('message', (d) => log.push([name, 'message', d.length]));
            // zlib-rs names a corrupt stream's error differently from
            // Node's zlib at times (README, known differences).
            ws.on('error', (err) => {
              if (name === 'corrupt') corruptMessage[impl] = err.message;
              log.push([name, 'error', ...describeError(err).filter((_, i) => name !== 'corrupt' || i !== 1)]);
            });
            ws.on('close', (code, reason) => log.push([name, 'close', code, reason.toString()]));
          });
          const bytes = Buffer.concat([frame(1, payload, { rsv: 4, mask: MASK }), frame(1, 'after', { mask: MASK })]);
          const [frames] = await Promise.all([rawClient(wss.address().port, bytes, { extensions: 'permessage-deflate' }), serverClosed]);
          log.push([name, 'frames', frames.map((f) => [f.opcode, f.payload])]);
        } finally {
          await new Promise((resolve) => wss.close(() => resolve()));
        }
      }
    });
    assert.deepStrictEqual(corruptMessage, { ws: 'invalid distance too far back', native: 'repeated call with bad state' });
  });

  it('a reset right after a big compressed message: the message comes first, then 1006', T, async () => {
    const big = Buffer.from(json(3000, 11));
    const z = zlib.deflateRawSync(big, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const bytes = frame(1, z.subarray(0, z.length - 4), { rsv: 4, mask: MASK });
    await same(async (W, log) => {
      const wss = new W.WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true });
      await once(wss, 'listening');
      try {
        const closed = new Promise((resolve) =>
          wss.on('connection', (ws) => {
            ws.on('message', (d) => log.push(['message', digest(d)]));
            ws.on('error', (err) => log.push(['error', err.code]));
            ws.on('close', (code) => resolve(log.push(['close', code])));
          })
        );
        await rawClient(wss.address().port, null, { extensions: 'permessage-deflate', onOpen: (sock) => setImmediate(() => sock.write(bytes, () => sock.resetAndDestroy())) });
        await closed;
      } finally {
        await new Promise((resolve) => wss.close(() => resolve()));
      }
    });
  });

  it('maxPayload counts the inflated size of a big message (ws-native client, ws server)', T, async () => {
    await same(async (W, log) => {
      const wss = new REF.WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true });
      await once(wss, 'listening');
      try {
        wss.on('connection', (ws) => ws.send(json(3000, 8)));
        const client = new W(`ws://127.0.0.1:${wss.address().port}`, { maxPayload: 60000 });
        client.on('message', (d) => log.push(['message', d.length]));
        client.on('error', (err) => log.push(['error', ...describeError(err)]));
        await new Promise((resolve) => client.on('close', (code) => resolve(log.push(['close', code]))));
      } finally {
        await new Promise((resolve) => wss.close(() => resolve()));
      }
    });
  });
});
