'use strict';

// The native engine itself: adoption churn, fd hygiene, process lifetime,
// worker threads, listener exceptions, pause/resume, idle memory.

const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { execFile } = require('child_process');
const { describe, it } = require('node:test');
const { once } = require('events');

const WebSocket = require('..');
const { engineStats } = require('../lib/native-transport');
const { closeServer, startServer } = require('./helpers');

const fdCount = () => fs.readdirSync('/proc/self/fd').length;

function runNode(code, { timeout = 20000 } = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', code], { cwd: path.join(__dirname, '..'), timeout }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.killed ? 'timeout' : err.code) : 0, stdout, stderr });
    });
  });
}

describe('native engine', () => {
  it('survives connect/adopt/close churn with no fd leak or cross-delivery', async () => {
    const wss = await startServer('native');
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
    const url = `ws://127.0.0.1:${wss.address().port}`;
    // Warm up so that lazily opened fds (engine, DNS) are counted in the baseline.
    await cycle(url, 'warm-up');
    const before = fdCount();

    const CYCLES = 1500;
    const PARALLEL = 25;
    for (let i = 0; i < CYCLES; i += PARALLEL) {
      const batch = [];
      for (let j = i; j < i + PARALLEL; j++) batch.push(cycle(url, `conn-${j}`, j % 3));
      await Promise.all(batch);
    }

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
    const client = new WebSocket(`ws://127.0.0.1:${wss.address().port}`);
    const [[server]] = await Promise.all([once(wss, 'connection'), once(client, 'open')]);
    server.pause();
    assert.strictEqual(server.isPaused, true);
    const got = [];
    server.on('message', (d) => got.push(String(d)));
    // On loopback, written bytes are in the peer's socket buffer when the
    // send callback runs; two more loop turns would deliver them if reading.
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

  it('holds no per-connection buffers while connections are idle', async () => {
    const wss = await startServer('native');
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
    const clients = [];
    for (let i = 0; i < 50; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}`);
      clients.push(ws);
      await once(ws, 'open');
      ws.send(Buffer.alloc(100000));
      await once(ws, 'message');
    }
    const [conns, heldBytes] = engineStats();
    assert.strictEqual(conns, 100);
    assert.strictEqual(heldBytes, 0);
    for (const ws of clients) ws.terminate();
    await closeServer(wss);
  });
});

/** One client connection: send a unique message, check the echo, close. */
async function cycle(url, tag, how = 0) {
  const ws = new WebSocket(url);
  await once(ws, 'open');
  ws.send(tag);
  const [data] = await once(ws, 'message');
  assert.strictEqual(String(data), tag);
  if (how === 0) ws.close();
  else if (how === 1) ws.terminate();
  else ws.close(4000, 'x');
  await once(ws, 'close');
}

function turns(n) {
  return n === 0 ? Promise.resolve() : new Promise((r) => setImmediate(r)).then(() => turns(n - 1));
}
