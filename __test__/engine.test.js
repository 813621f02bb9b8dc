'use strict';

// The native engine itself: adoption churn, fd hygiene, process lifetime,
// worker threads, listener exceptions, pause/resume, idle memory.

const assert = require('assert');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { execFile } = require('child_process');
const { describe } = require('node:test');
const { once } = require('events');

const WebSocket = require('..');
const { engineStats } = require('../lib/native-transport');
const { closeServer, it, startServer, track, turns } = require('./helpers');

const fdCount = () => fs.readdirSync('/proc/self/fd').length;

/** Runs `code` in a child Node; killed after `timeout` ms or at the test's end. */
function runNode(code, { timeout = 30000 } = {}) {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['-e', code], { cwd: path.join(__dirname, '..'), timeout }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.killed ? 'timeout' : err.code) : 0, stdout, stderr });
    });
    track(child);
  });
}

describe('native engine', () => {
  it('survives connect/adopt/close churn with no fd leak or cross-delivery', { timeout: 120000 }, async () => {
    const wss = await startServer('native');
    // Server sides close after their clients: count them, to wait for all.
    let open = 0;
    let allClosed = null;
    wss.on('connection', (ws) => {
      open++;
      ws.on('message', (data) => ws.send(data));
      ws.on('close', () => --open === 0 && allClosed && allClosed());
    });
    const serversClosed = () => (open === 0 ? Promise.resolve() : new Promise((r) => (allClosed = r)));
    const url = `ws://127.0.0.1:${wss.address().port}`;
    // Warm up so that lazily opened fds (engine, DNS) are counted in the
    // baseline. The engine closes a socket's fd in the close phase of the
    // loop turn in which JS heard 'close': count after the next turn.
    await cycle(url, 'warm-up');
    await serversClosed();
    await turns(2);
    const before = fdCount();

    const CYCLES = 1500;
    const PARALLEL = 25;
    for (let i = 0; i < CYCLES; i += PARALLEL) {
      const batch = [];
      for (let j = i; j < i + PARALLEL; j++) batch.push(cycle(url, `conn-${j}`, j % 3));
      await Promise.all(batch);
    }
    await serversClosed();
    await turns(2);

    assert.strictEqual(fdCount(), before);
    assert.deepStrictEqual(engineStats().slice(0, 2), [0, 0]);
    await closeServer(wss);
  });

  it('keeps the process alive while a connection is open, then exits by itself', async () => {
    const r = await runNode(`
      const WebSocket = require('.');
      const wss = new WebSocket.Server({ port: 0 }, () => {
        const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
        ws.on('open', () => setTimeout(() => ws.send('late'), 50));
        ws.on('close', (code) => { console.log('client closed', code); wss.close(); });
      });
      wss.on('connection', (s) => s.on('message', (d) => { console.log('got', d.toString()); s.close(1000); }));
    `);
    assert.deepStrictEqual(r, { code: 0, stdout: 'got late\nclient closed 1000\n', stderr: '' });
  });

  it('exits by itself once every connection is terminated', async () => {
    const r = await runNode(`
      const WebSocket = require('.');
      const net = require('net');
      const wss = new WebSocket.Server({ port: 0 }, () => {
        const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
        ws.on('open', () => { ws.terminate(); });
        ws.on('close', (code) => { console.log('closed', code); wss.close(); });
      });
    `);
    assert.deepStrictEqual(r, { code: 0, stdout: 'closed 1006\n', stderr: '' });
  });

  it('reports a throwing listener as uncaughtException and goes on with the batch', async () => {
    const r = await runNode(`
      const WebSocket = require('.');
      const seen = [];
      process.on('uncaughtException', (e) => seen.push('uncaught ' + e.message));
      const wss = new WebSocket.Server({ port: 0 }, () => {
        const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
        ws.on('open', () => { ws.send('a'); ws.send('b'); ws.send('c'); });
        ws.on('message', (d) => {
          seen.push('message ' + d);
          if (String(d) === 'a') throw new Error('boom');
          if (String(d) === 'c') ws.close();
        });
        ws.on('close', () => { console.log(seen.join(',')); wss.close(); });
      });
      wss.on('connection', (s) => s.on('message', (d) => s.send(d)));
    `);
    assert.strictEqual(r.stdout, 'message a,uncaught boom,message b,message c\n');
    assert.strictEqual(r.code, 0);
  });

  it('crashes the process on a throwing listener when nothing handles it, as net does', async () => {
    const r = await runNode(`
      const WebSocket = require('.');
      const wss = new WebSocket.Server({ port: 0 }, () => {
        const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
        ws.on('open', () => ws.send('x'));
        ws.on('message', () => { throw new Error('listener failed'); });
      });
      wss.on('connection', (s) => s.on('message', (d) => s.send(d)));
    `);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /Error: listener failed/);
  });

  it('runs process.nextTick callbacks and microtasks queued by listeners', async () => {
    const r = await runNode(`
      const WebSocket = require('.');
      const order = [];
      const wss = new WebSocket.Server({ port: 0 }, () => {
        const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
        ws.on('open', () => ws.send('x'));
        ws.on('message', () => {
          order.push('message');
          process.nextTick(() => order.push('tick'));
          Promise.resolve().then(() => order.push('microtask'));
          setImmediate(() => { order.push('immediate'); console.log(order.join(',')); ws.close(); wss.close(); });
        });
      });
      wss.on('connection', (s) => s.on('message', (d) => s.send(d)));
    `);
    assert.strictEqual(r.stdout, 'message,tick,microtask,immediate\n');
  });

  it('works in worker threads, which exit cleanly with connections open or closed', async () => {
    const r = await runNode(`
      const { Worker } = require('worker_threads');
      const body = (keepOpen) => \`
        const { parentPort } = require('worker_threads');
        const WebSocket = require(\${JSON.stringify(process.cwd())});
        const wss = new WebSocket.Server({ port: 0 }, () => {
          const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
          ws.on('open', () => ws.send('ping'));
          ws.on('message', (d) => {
            parentPort.postMessage(String(d));
            if (!\${keepOpen}) { ws.close(); ws.on('close', () => wss.close()); }
            else process.exit(0);
          });
        });
        wss.on('connection', (s) => s.on('message', (d) => s.send(d)));
      \`;
      const runs = [false, true, false, true].map((keep) => new Promise((resolve, reject) => {
        const w = new Worker(body(keep), { eval: true });
        let msg;
        w.on('message', (m) => (msg = m));
        w.on('error', reject);
        w.on('exit', (code) => resolve(msg + ':' + code));
      }));
      Promise.all(runs).then((r) => console.log(r.join(' ')));
    `);
    assert.deepStrictEqual(r, { code: 0, stdout: 'ping:0 ping:0 ping:0 ping:0\n', stderr: '' });
  });

  it('pause() stops delivery and resume() restarts it', async () => {
    const wss = await startServer('native');
    const client = track(new WebSocket(`ws://127.0.0.1:${wss.address().port}`));
    const [[server]] = await Promise.all([once(wss, 'connection'), once(client, 'open')]);
    server.pause();
    assert.strictEqual(server.isPaused, true);
    const got = [];
    server.on('message', (d) => got.push(String(d)));
    // On loopback, written bytes are in the peer's socket buffer when the
    // send callback runs; two more loop turns would deliver them if reading.
    // (Under load this can only pass wrongly, never fail wrongly.)
    await new Promise((resolve) => {
      client.send('one');
      client.send('two', resolve);
    });
    await turns(3);
    assert.deepStrictEqual(got, []);
    server.resume();
    assert.strictEqual(server.isPaused, false);
    await new Promise((resolve) => server.on('message', () => got.length === 2 && resolve()));
    assert.deepStrictEqual(got, ['one', 'two']);
    client.terminate();
    await once(server, 'close');
    await closeServer(wss);
  });

  it('delivers every message whole and in order when one turn has more to read than its share', async () => {
    // The engine reads at most about 1 MiB in one loop turn and leaves the
    // rest in the kernel for the next. Eight paused connections fill their
    // receive buffers; resumed together, their first turn holds more than
    // that share.
    const wss = await startServer('native');
    const port = wss.address().port;
    const COUNT = 200;
    const pairs = [];
    for (let c = 0; c < 8; c++) {
      const client = track(new WebSocket(`ws://127.0.0.1:${port}`));
      const [[server]] = await Promise.all([once(wss, 'connection'), once(client, 'open')]);
      server.pause();
      server.on('message', (data, isBinary) => server.send(data, { binary: isBinary }));
      pairs.push({ client, server });
    }
    const done = pairs.map(({ client }, c) => {
      const got = [];
      client.on('message', (data) => got.push(data));
      for (let i = 0; i < COUNT; i++) {
        const payload = Buffer.alloc(4096, i);
        payload.writeUInt32LE(c, 0);
        payload.writeUInt32LE(i, 4);
        client.send(payload);
      }
      return new Promise((resolve) => client.on('message', () => got.length === COUNT && resolve(got)));
    });
    await turns(3);
    for (const { server } of pairs) server.resume();
    const results = await Promise.all(done);
    results.forEach((got, c) => {
      got.forEach((data, i) => {
        assert.strictEqual(data.length, 4096);
        assert.deepStrictEqual([data.readUInt32LE(0), data.readUInt32LE(4), data[4095]], [c, i, i & 0xff]);
      });
    });
    for (const { client } of pairs) client.terminate();
    await closeServer(wss);
  });

  it('echoes payloads sent from a batch whole when the peer stops reading', async () => {
    // The server's queue grows behind a full kernel buffer, each write
    // taking part of it, until the peer reads again.
    const wss = await startServer('native');
    const client = track(new WebSocket(`ws://127.0.0.1:${wss.address().port}`));
    const [[server]] = await Promise.all([once(wss, 'connection'), once(client, 'open')]);
    const COUNT = 2000;
    let echoed = 0;
    const allEchoed = new Promise((resolve) => {
      server.on('message', (data, isBinary) => {
        server.send(data, { binary: isBinary });
        if (++echoed === COUNT) resolve();
      });
    });
    client.pause();
    for (let i = 0; i < COUNT; i++) {
      const payload = Buffer.alloc(4096 + (i % 7) * 100, i);
      payload.writeUInt32LE(i, 0);
      client.send(payload);
    }
    await allEchoed;
    assert.ok(server.bufferedAmount > 0, 'the server has a queue waiting for the peer');
    const got = [];
    const done = new Promise((resolve) => client.on('message', (data) => got.push(data) === COUNT && resolve()));
    client.resume();
    await done;
    got.forEach((data, i) => {
      assert.strictEqual(data.length, 4096 + (i % 7) * 100);
      assert.deepStrictEqual([data.readUInt32LE(0), data[data.length - 1]], [i, i & 0xff]);
    });
    client.terminate();
    await closeServer(wss);
  });

  it('serves a socket the engine refuses on the stream transport', async () => {
    // The engine can refuse a socket (out of fds for its epoll instance,
    // say): Node's handle then reads it again.
    const binding = require('../lib/binding');
    const adopt = binding.engineAdopt;
    binding.engineAdopt = () => {
      throw new Error('refused');
    };
    const server = track(http.createServer());
    const wss = new WebSocket.WebSocketServer({ server });
    try {
      wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      const client = track(new WebSocket(`ws://127.0.0.1:${server.address().port}`));
      await once(client, 'open');
      client.send('hello');
      const [data] = await once(client, 'message');
      assert.strictEqual(String(data), 'hello');
      assert.strictEqual([...wss.clients][0]._transport.constructor.name, 'StreamTransport');
      client.close();
      await once(client, 'close');
    } finally {
      binding.engineAdopt = adopt;
      wss.close();
      server.close();
    }
  });

  it('holds no per-connection buffers while connections are idle', async () => {
    // A connection holds a write buffer until its queue is written (the send
    // callback) and a message buffer until the message is delivered; so a
    // round trip is over, and both ends idle, once four things happened: the
    // client's send callback, the server's message, the server's send
    // callback, the client's message. The check waits for all four.
    //
    // A message reaches the receiver either in one read or across several:
    // both ways are made to happen here, not left to the scheduler. A 1 MiB
    // frame never fits one read. A 60000-byte frame does when it is all in
    // the socket before the engine reads: the receiving side is paused until
    // the sender's callback ran (on loopback the bytes are then in the
    // peer's receive buffer) and a few loop turns passed.
    const wss = await startServer('native');
    const port = wss.address().port;
    const clients = [];
    for (let i = 0; i < 50; i++) {
      const whole = i % 2 === 0;
      const size = whole ? 60000 : 1024 * 1024;
      const client = track(new WebSocket(`ws://127.0.0.1:${port}`));
      clients.push(client);
      const [[server]] = await Promise.all([once(wss, 'connection'), once(client, 'open')]);
      if (whole) {
        server.pause();
        client.pause();
      }
      await sent(client, Buffer.alloc(size, i));
      await turns(3);
      const [[data]] = await Promise.all([once(server, 'message'), whole && server.resume()]);
      assert.strictEqual(data.length, size);
      await sent(server, data);
      await turns(3);
      const [[echo]] = await Promise.all([once(client, 'message'), whole && client.resume()]);
      assert.strictEqual(echo.length, size);
      assert.strictEqual(engineStats()[1], 0, `bytes held after a ${size}-byte round trip read ${whole ? 'in one piece' : 'in pieces'}`);
    }
    const [conns, heldBytes] = engineStats();
    assert.strictEqual(conns, 100);
    assert.strictEqual(heldBytes, 0);
    for (const ws of clients) ws.terminate();
    await closeServer(wss);
  });
});

/** Sends `data` on `ws`; resolves once it is written (the send callback). */
function sent(ws, data) {
  return new Promise((resolve, reject) => ws.send(data, (err) => (err ? reject(err) : resolve())));
}

/** One client connection: send a unique message, check the echo, close. */
async function cycle(url, tag, how = 0) {
  const ws = track(new WebSocket(url));
  await once(ws, 'open');
  ws.send(tag);
  const [data] = await once(ws, 'message');
  assert.strictEqual(String(data), tag);
  if (how === 0) ws.close();
  else if (how === 1) ws.terminate();
  else ws.close(4000, 'x');
  await once(ws, 'close');
}
