'use strict';

// Send-side backpressure, beyond ws (lib/backpressure.js): send() returns
// false above sendHighWaterMark, 'drain' follows once bufferedAmount is back
// to 0, and a server's maxBufferedAmount closes a consumer that reads too
// slowly with 1008. Real ws is the peer; the slow reader is a ws client
// whose socket is paused. Each scenario runs on both transports: the native
// engine (`{ port }`) and the stream transport (TLS).

const assert = require('assert');
const { describe } = require('node:test');
const { once } = require('events');

const { IMPLS, closeServer, it, record, sameForBoth, startServer, track } = require('./helpers');

const { WebSocketServer, createWebSocketStream } = IMPLS.native;
const REF = IMPLS.ws;
const CHUNK = Buffer.alloc(64 * 1024, 7);
/** Sends before a paused peer's kernel buffers fill up: far more than they hold. */
const MAX_SENDS = 4000;

const TRANSPORTS = [
  ['native engine', false],
  ['stream transport (TLS)', true]
];

/** A ws-native server with `options` and a real ws client; both open. */
async function pair(tls, options) {
  const wss = await startServer('native', options, { tls });
  const url = `${tls ? 'wss' : 'ws'}://127.0.0.1:${wss.address().port}`;
  const client = track(new REF(url, { rejectUnauthorized: false }));
  const [[server]] = await Promise.all([once(wss, 'connection'), once(client, 'open')]);
  return { wss, server, client };
}

/** Sends CHUNKs until send() returns false; returns how many went. */
function fill(ws, seen) {
  for (let i = 1; i <= MAX_SENDS; i++) {
    const below = ws.send(CHUNK);
    seen.push([below, ws.bufferedAmount]);
    if (!below) return i;
  }
  throw new Error('send() never returned false');
}

for (const [name, tls] of TRANSPORTS) {
  describe(`backpressure: ${name}`, () => {
    it("send() is false above sendHighWaterMark, and 'drain' comes once per false with bufferedAmount back at 0", async () => {
      const high = 256 * 1024;
      const { wss, server, client } = await pair(tls, { sendHighWaterMark: high });
      try {
        let got = 0;
        client.on('message', () => got++);
        const drains = [];
        server.on('drain', () => drains.push(server.bufferedAmount));
        let sent = 0;
        let falses = 0;
        for (let round = 0; round < 3; round++) {
          client.pause();
          const seen = [];
          sent += fill(server, seen);
          falses++;
          // true while at or below the mark, false above it.
          for (const [below, amount] of seen) assert.strictEqual(below, amount <= high, `round ${round}: ${amount}`);
          // More sends in the same episode: false again, one 'drain' still.
          assert.strictEqual(server.send(CHUNK), false);
          sent++;
          client.resume();
          await once(server, 'drain');
        }
        assert.deepStrictEqual(drains, [0, 0, 0]);
        assert.strictEqual(drains.length, falses);
        server.send('last');
        await new Promise((resolve) => client.on('message', (d) => String(d) === 'last' && resolve()));
        assert.strictEqual(got, sent + 1);
        assert.strictEqual(drains.length, 3);
      } finally {
        client.terminate();
        await closeServer(wss);
      }
    });

    it("small sends from a message listener: false past the mark, one 'drain' per false, everything arrives in order", async () => {
      // Over TLS, small frames sent while a message is delivered wait to go
      // out together (the stream transport's run) and count all the same;
      // the engine counts only what the kernel refused, so there none is
      // false here.
      const { wss, server, client } = await pair(tls, { sendHighWaterMark: 100 });
      try {
        const got = [];
        const all = new Promise((resolve) => client.on('message', (d) => got.push(String(d)) === 40 && resolve()));
        const results = [];
        let drains = 0;
        const drained = new Promise((resolve) => server.on('drain', () => ++drains && resolve()));
        server.on('message', () => {
          for (let i = 0; i < 40; i++) results.push([server.send(`m${i}`.padEnd(8, '.')), server.bufferedAmount > 100]);
        });
        client.send('go');
        await all;
        for (const [below, above] of results) assert.strictEqual(below, !above);
        const falses = results.filter(([below]) => !below).length;
        assert.strictEqual(falses > 0, tls);
        if (falses > 0) await drained;
        assert.deepStrictEqual(got, Array.from({ length: 40 }, (_, i) => `m${i}`.padEnd(8, '.')));
        server.send('x');
        await once(client, 'message');
        assert.strictEqual(drains, falses > 0 ? 1 : 0);
        assert.strictEqual(server.bufferedAmount, 0);
      } finally {
        client.terminate();
        await closeServer(wss);
      }
    });

    it('maxBufferedAmount closes a slow consumer with 1008; what was sent before still arrives', async () => {
      const max = 1024 * 1024;
      const { wss, server, client } = await pair(tls, { sendHighWaterMark: 128 * 1024, maxBufferedAmount: max });
      try {
        let got = 0;
        client.on('message', () => got++);
        client.pause();
        let sent = 0;
        let peak = 0;
        let refused = null;
        while (server.readyState === server.OPEN && sent < MAX_SENDS) {
          server.send(CHUNK);
          sent++;
          peak = Math.max(peak, server.bufferedAmount);
        }
        assert.strictEqual(server.readyState, server.CLOSING);
        // The bound: the limit, the message that crossed it, the close frame.
        assert.ok(peak <= max + CHUNK.length + 64, `peak ${peak}`);
        assert.strictEqual(server.send(CHUNK, (err) => (refused = err.message)), false);
        const closed = once(client, 'close');
        client.resume();
        const [code, reason] = await closed;
        assert.deepStrictEqual([code, reason.toString()], [1008, 'Too much data waiting to be sent']);
        assert.strictEqual(got, sent);
        assert.strictEqual(refused, 'WebSocket is not open: readyState 2 (CLOSING)');
      } finally {
        client.terminate();
        await closeServer(wss);
      }
    });

    it('createWebSocketStream writes ahead up to the mark, and all of it arrives in order', async () => {
      const { wss, server, client } = await pair(tls, { sendHighWaterMark: 512 * 1024 });
      try {
        const duplex = createWebSocketStream(server);
        const chunks = 4000;
        const chunk = (i) => {
          const c = Buffer.alloc(16 * 1024);
          c.writeUInt16BE(i, 2);
          return c;
        };
        const got = [];
        client.on('message', (d) => got.push(d.readUInt16BE(2)));
        client.pause();
        // With the peer not reading, writes stop once both the duplex's
        // buffer and the WebSocket's are full: many messages wait in the
        // WebSocket, not one at a time as ws's stream keeps them.
        let written = 0;
        while (written < chunks && duplex.write(chunk(written++)));
        assert.ok(written < chunks, 'the duplex refused a write');
        assert.ok(server.bufferedAmount > 512 * 1024, `bufferedAmount ${server.bufferedAmount}`);
        assert.ok(server.bufferedAmount <= 512 * 1024 + 16 * 1024 + 64, `bufferedAmount ${server.bufferedAmount}`);
        client.resume();
        while (written < chunks) if (!duplex.write(chunk(written++))) await once(duplex, 'drain');
        const closed = once(client, 'close');
        duplex.end();
        await closed;
        assert.deepStrictEqual(got, Array.from({ length: chunks }, (_, i) => i));
      } finally {
        client.terminate();
        await closeServer(wss);
      }
    });
  });
}

describe('backpressure: nothing changes for code that never crosses the mark', () => {
  it("no 'drain', the same events as ws; send() returns true throughout", async () => {
    const results = [];
    await sameForBoth(assert, async (W, log, impl) => {
      const wss = await startServer(impl === 'ws' ? 'ws' : 'native');
      const client = track(new W(`ws://127.0.0.1:${wss.address().port}`));
      try {
        const [[server]] = await Promise.all([once(wss, 'connection'), once(client, 'open')]);
        record(server, log);
        server.on('drain', () => log.push(['drain']));
        client.on('drain', () => log.push(['client drain']));
        const echoed = new Promise((resolve) => {
          let n = 0;
          client.on('message', () => ++n === 20 && resolve());
        });
        server.on('message', (d) => results.push([impl, server.send(d)]));
        for (let i = 0; i < 20; i++) results.push([impl, client.send(Buffer.alloc(1000 * i))]);
        await echoed;
        const closed = once(server, 'close');
        client.close();
        await closed;
      } finally {
        await closeServer(wss);
      }
    });
    assert.deepStrictEqual(
      results.filter(([impl]) => impl === 'native').map(([, r]) => r),
      Array(40).fill(true)
    );
    assert.deepStrictEqual(
      results.filter(([impl]) => impl === 'ws').map(([, r]) => r),
      Array(40).fill(undefined)
    );
  });

  it('the options are checked', () => {
    for (const bad of [-1, '1', NaN, null]) {
      assert.throws(() => new WebSocketServer({ noServer: true, sendHighWaterMark: bad }), {
        name: 'RangeError',
        message: 'The "sendHighWaterMark" option must be a number greater than or equal to 0'
      });
      assert.throws(() => new WebSocketServer({ noServer: true, maxBufferedAmount: bad }), RangeError);
      assert.throws(() => new IMPLS.native('ws://127.0.0.1:1', { sendHighWaterMark: bad }), RangeError);
    }
  });
});
