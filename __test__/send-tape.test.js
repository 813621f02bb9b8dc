'use strict';

// The send tape (lib/send-tape.js): the sends a server makes while it
// handles a batch reach the engine in one call. Whatever goes on the tape
// and whatever does not (too big, with a callback, a control frame, a raw
// socket write, a fragment), the bytes on the wire must be ws's, in ws's
// order.

const assert = require('assert');
const tls = require('tls');
const { describe } = require('node:test');
const { once } = require('events');

const { IMPLS, MASK, closeServer, frame, it, parseFrames, sameForBoth, startServer, serverUrl, track, upgradeRequest } = require('./helpers');

/** Every kind of send, from one 'message' listener. */
function burst(ws) {
  ws.send('héllo € 𝄞');
  ws.send(Buffer.alloc(100, 1));
  ws.send('x'.repeat(341));
  ws.send('y'.repeat(342));
  ws.send(Buffer.alloc(1024, 2));
  ws.send(Buffer.alloc(1025, 3));
  ws.send(new Uint8Array([4, 5, 6]));
  ws.send('one', { fin: false });
  ws.send(Buffer.from('two'), { fin: false, binary: false });
  ws.send('three');
  ws.ping('p');
  ws.send('after ping', () => {});
  ws.send(Buffer.from('binary text'), { binary: false });
  ws.send('text binary', { binary: true });
  // More records, and more bytes, than the tape holds at once.
  for (let i = 0; i < 3000; i++) ws.send(Buffer.from([i & 0xff, i >> 8]));
  for (let i = 0; i < 100; i++) ws.send('é'.repeat(300) + i);
  ws.send('');
  ws.send(Buffer.alloc(0));
  ws.send('lone \ud800 surrogate');
  ws.close(1000, 'done');
}

describe('send tape', () => {
  it('puts the same frames on the wire as ws, in the same order', async () => {
    await sameForBoth(assert, async (W, log, impl) => {
      const wss = track(await startServer(impl));
      try {
        wss.on('connection', (ws) => ws.on('message', () => burst(ws)));
        const client = track(new IMPLS.ws(serverUrl(wss)));
        await once(client, 'open');
        const chunks = [];
        client._socket.prependListener('data', (d) => chunks.push(d));
        client.send('go');
        await once(client, 'close');
        const frames = parseFrames(Buffer.concat(chunks));
        log.push(frames.length, frames);
      } finally {
        await closeServer(wss);
      }
    });
  });

  it('answers false exactly when bufferedAmount is past the mark, sends on the tape or not', async () => {
    const MARK = 16 * 1024;
    const wss = track(await startServer('native', { sendHighWaterMark: MARK }));
    try {
      const answers = [];
      let gos = 0;
      const done = new Promise((resolve) => {
        wss.on('connection', (ws) => {
          ws.on('message', () => {
            for (let i = 0; i < 200; i++) {
              const answer = ws.send(Buffer.alloc(1000, i));
              answers.push([answer, ws.bufferedAmount <= MARK]);
            }
            if (++gos === 50) resolve();
          });
        });
      });
      const client = track(new IMPLS.ws(serverUrl(wss)));
      await once(client, 'open');
      client.pause();
      for (let i = 0; i < 50; i++) client.send('go');
      await done;
      assert.ok(answers.some(([answer]) => !answer), 'the peer stopped reading: some send went past the mark');
      answers.forEach(([answer, below], i) => assert.strictEqual(answer, below, `send ${i}`));
      client.terminate();
    } finally {
      await closeServer(wss);
    }
  });

  it('sends a Buffer as it was at send(), whatever the listener does to it after', async () => {
    // Received messages in big batches (their memory the batch's), sent
    // back and then overwritten in the same listener, as ws allows.
    const wss = track(await startServer('native'));
    try {
      wss.on('connection', (ws) =>
        ws.on('message', (data, isBinary) => {
          ws.send(data, { binary: isBinary });
          data.fill(0);
        })
      );
      const results = await Promise.all(
        Array.from({ length: 4 }, async (_, c) => {
          const client = track(new IMPLS.ws(serverUrl(wss)));
          await once(client, 'open');
          const got = [];
          const done = new Promise((resolve) => client.on('message', (d) => got.push(d) === 200 && resolve()));
          for (let i = 0; i < 200; i++) client.send(Buffer.alloc(4096, (c * 200 + i) % 255 + 1));
          await done;
          client.terminate();
          return got.every((d, i) => d.length === 4096 && d.every((b) => b === ((c * 200 + i) % 255) + 1));
        })
      );
      assert.deepStrictEqual(results, [true, true, true, true]);
    } finally {
      await closeServer(wss);
    }
  });

  it('keeps the order of sends to other connections and of their closes', async () => {
    await sameForBoth(assert, async (W, log, impl) => {
      const wss = track(await startServer(impl));
      try {
        const peers = [];
        wss.on('connection', (ws) => {
          peers.push(ws);
          ws.on('message', (data) => {
            if (String(data) !== 'go') return;
            for (const p of peers) p.send(`to ${peers.indexOf(p)}`);
            peers[1].close(4001);
            for (const p of peers) p.send('after');
            peers[2].terminate();
          });
        });
        const clients = [];
        for (let i = 0; i < 3; i++) {
          const c = track(new IMPLS.ws(serverUrl(wss)));
          c.on('message', (d) => log.push([i, 'message', String(d)]));
          c.on('close', (code) => log.push([i, 'close', code]));
          c.on('error', () => {});
          await Promise.all([once(c, 'open'), once(wss, 'connection')]);
          clients.push(c);
        }
        clients[0].send('go');
        await Promise.all(clients.slice(1).map((c) => once(c, 'close')));
        clients[0].close();
        await once(clients[0], 'close');
      } finally {
        await closeServer(wss);
      }
      // Each client's own events, in order (clients interleave freely).
      log.sort((a, b) => a[0] - b[0]);
    });
  });
});

describe("the stream transport's runs", () => {
  it('answers each TLS record of messages with one write, across the end of its frame pool', async () => {
    // The frames sent while a chunk's messages are delivered are one write.
    // 16 frames of 1000 bytes a record cross the transport's 64 KiB pool
    // every few records; the run so far moves to the new pool with them.
    const wss = await startServer('native', {}, { tls: true });
    let writes = 0;
    wss.on('connection', (ws) => {
      const write = ws._socket.write;
      ws._socket.write = function () {
        writes++;
        return write.apply(this, arguments);
      };
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    const sock = track(tls.connect({ port: wss._testServer.address().port, host: '127.0.0.1', rejectUnauthorized: false }));
    try {
      await once(sock, 'secureConnect');
      sock.write(upgradeRequest());
      // Resolves once `bytes` have come after the 101; with what came.
      let data = Buffer.alloc(0);
      let waiter = null;
      const check = () => {
        const end = data.indexOf('\r\n\r\n');
        if (waiter && end !== -1 && data.length - end - 4 >= waiter.bytes) waiter.resolve(data.subarray(end + 4));
      };
      sock.on('data', (d) => {
        data = Buffer.concat([data, d]);
        check();
      });
      const after = (bytes) => new Promise((resolve) => {
        waiter = { bytes, resolve };
        check();
      });
      await after(0);
      const rounds = 24;
      const record = Buffer.concat(Array.from({ length: 16 }, (_, i) => frame(2, Buffer.alloc(1000, i), { mask: MASK })));
      const reply = 16 * (1000 + 4);
      for (let r = 1; r <= rounds; r++) {
        // Each round after the last one's replies: the server reads every
        // record as a chunk of its own.
        sock.write(record);
        const frames = parseFrames(await after(r * reply));
        assert.strictEqual(frames.length, r * 16);
      }
      assert.strictEqual(writes, rounds);
    } finally {
      sock.destroy();
      await closeServer(wss);
    }
  });
});
