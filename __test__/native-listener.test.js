'use strict';

// A `{ port }` server listens in the engine (lib/native-listener.js). What
// the application sees must be what ws's internal HTTP server gives: the
// request, its socket, the answers to what is not an upgrade, listen
// errors, close(). Each scenario runs with ws and with ws-native.

const assert = require('assert');
const net = require('net');
const { describe, it } = require('node:test');
const { once } = require('events');

const { IMPLS, sameForBoth, track } = require('./helpers');

const T = { timeout: 20000 };
const same = (scenario, opts) => sameForBoth(assert, scenario, opts);
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

async function server(W, options = {}) {
  const wss = new W.WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  await once(wss, 'listening');
  return wss;
}

function closeWss(wss) {
  return new Promise((resolve) => wss.close(() => resolve()));
}

/** Writes `chunks` (one write each, a tick apart); resolves with all the server sent until it closed. */
async function raw(port, chunks) {
  const sock = track(net.connect(port, '127.0.0.1'));
  sock.on('error', () => {});
  await once(sock, 'connect');
  const got = [];
  sock.on('data', (d) => got.push(d));
  for (const c of chunks) {
    sock.write(c);
    await new Promise((r) => setImmediate(r));
  }
  await once(sock, 'close');
  // The Date header is the only part that differs from run to run.
  return Buffer.concat(got).toString('latin1').replace(/^Date: .*\r\n/m, 'Date: -\r\n');
}

const upgrade = (extra = '') => `GET /chat?room=1 HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

describe('native listener ({ port } servers)', () => {
  it('the request: method, URL, version, headers (repeated ones too), rawHeaders; its socket is the WebSocket\'s', T, async () => {
    await same(async (W, log) => {
      const wss = await server(W);
      try {
        const seen = new Promise((resolve) =>
          wss.on('connection', (ws, req) => {
            log.push(['req', req.method, req.url, req.httpVersion, req.httpVersionMajor, req.httpVersionMinor, req.upgrade]);
            // The key and the port differ from run to run.
            const vary = (name, value) => (/^(sec-websocket-key|host)$/i.test(name) ? '-' : value);
            log.push(['headers', Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, vary(k, v)]))]);
            log.push(['rawHeaders', req.rawHeaders.map((v, i) => (i % 2 ? vary(req.rawHeaders[i - 1], v) : v))]);
            log.push(['socket', req.socket instanceof net.Socket, req.socket === ws._socket, req.connection === req.socket, req.socket.remoteAddress, typeof req.socket.remotePort, req.socket.localPort === wss.address().port]);
            ws.on('close', resolve);
            ws.close(4000, 'seen');
          })
        );
        const c = new IMPLS.ws(`ws://127.0.0.1:${wss.address().port}/chat?room=1`, {
          headers: { 'X-Twice': 'a', 'x-twice': 'b', Cookie: 'k=v', 'set-cookie': 'x' }
        });
        c.on('error', () => {});
        await seen;
      } finally {
        await closeWss(wss);
      }
    });
  });

  it('ws._socket, asked for only after the open, is the live socket: raw writes, setNoDelay, bytes counts, close', T, async () => {
    await same(async (W, log) => {
      const wss = await server(W);
      try {
        const c = new IMPLS.ws(`ws://127.0.0.1:${wss.address().port}`);
        c.on('message', (d) => log.push(['client got', String(d)]));
        const [ws] = await once(wss, 'connection');
        await once(c, 'open');
        ws.send('frame first');
        const socket = ws._socket;
        log.push(['socket', socket instanceof net.Socket, socket === ws._socket, socket.readyState, socket.setNoDelay(true) === socket, socket.bytesWritten > 0]);
        socket.write(Buffer.from([0x81, 3, 0x72, 0x61, 0x77]));
        const closed = new Promise((resolve) => socket.on('close', (hadError) => resolve(log.push(['socket close', hadError]))));
        await new Promise((resolve) => c.on('message', (d) => String(d) === 'raw' && resolve()));
        c.close();
        await closed;
        log.push(['ws', ws.readyState]);
      } finally {
        await closeWss(wss);
      }
    });
  });

  it("what is not a plain upgrade request gets Node's answers: plain GET, POST upgrade, HTTP/1.0, malformed, split request", T, async () => {
    const cases = {
      'plain GET': ['GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
      'POST upgrade': [upgrade().replace('GET', 'POST')],
      'HTTP/1.0 upgrade': [upgrade().replace('HTTP/1.1', 'HTTP/1.0')],
      'bad version header': [upgrade().replace('Version: 13', 'Version: 12')],
      malformed: ['G\x01T / HTTP/1.1\r\n\r\n'],
      'upgrade in three writes': [upgrade().slice(0, 20), upgrade().slice(20, 60), upgrade().slice(60)],
      'wrong path': [upgrade().replace('/chat?room=1', '/other')]
    };
    await same(async (W, log) => {
      const wss = await server(W, { path: '/chat' });
      try {
        wss.on('connection', (ws, req) => {
          log.push(['connection', req.url]);
          ws.terminate();
        });
        for (const [name, chunks] of Object.entries(cases)) log.push([name, await raw(wss.address().port, chunks)]);
      } finally {
        await closeWss(wss);
      }
    });
  });

  it('wsClientError: the listener gets the request and a socket it owns, also when it asked for req.socket before', T, async () => {
    await same(async (W, log) => {
      const wss = await server(W, { verifyClient: ({ req }) => (log.push(['verify', typeof req.socket.remoteAddress]), true) });
      try {
        wss.on('wsClientError', (err, socket, req) => {
          log.push(['wsClientError', err.message, socket instanceof net.Socket, req.url, socket === req.socket]);
          socket.end('HTTP/1.1 418 Teapot\r\nConnection: close\r\n\r\n');
        });
        log.push(['answer', await raw(wss.address().port, [upgrade().replace('Key: ' + KEY, 'Key: short')])]);
      } finally {
        await closeWss(wss);
      }
    });
  });

  it('listen errors are Node\'s (EADDRINUSE), and close() waits for open connections', T, async () => {
    await same(async (W, log) => {
      const first = await server(W);
      const port = first.address().port;
      const second = new W.WebSocketServer({ port, host: '127.0.0.1' });
      const [err] = await once(second, 'error');
      log.push(['error', err.message.replace(String(port), 'PORT'), err.code, err.errno, err.syscall, err.address, err.port === port]);
      await closeWss(second);
      const c = new IMPLS.ws(`ws://127.0.0.1:${port}`);
      const [ws] = await once(first, 'connection');
      let closed = false;
      const done = closeWss(first).then(() => log.push(['server closed, client closed first', closed]));
      log.push(['address after close', first.address()]);
      await new Promise((r) => setImmediate(r));
      ws.close();
      await once(c, 'close');
      closed = true;
      await done;
    });
  });

  it('a request nobody finishes gets 408 after headersTimeout (wss._server.headersTimeout)', T, async () => {
    const wss = await server(IMPLS.native);
    try {
      wss._server.headersTimeout = 300;
      const started = Date.now();
      const answer = await raw(wss.address().port, []);
      assert.strictEqual(answer, 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
      assert.ok(Date.now() - started >= 250, 'not before the timeout');
    } finally {
      await closeWss(wss);
    }
  });

  it('cluster workers share a { port } through their primary, as under ws', T, async () => {
    const { spawn } = require('child_process');
    const child = spawn(process.execPath, [require('path').join(__dirname, 'fixtures', 'cluster-server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await once(child, 'exit');
    assert.strictEqual(out.trim(), 'one port\nserved');
  });

  it("close()'s callback comes when the last connection goes, also when its id is the listener's", T, async () => {
    // In a fresh process the first listener and the first connection have
    // the same engine id; the listener's drained record once went to the
    // connection and was lost. The same script runs under ws.
    const { execFile } = require('child_process');
    const run = async (impl) => {
      const code = `
        const W = require(${JSON.stringify(require.resolve(impl))});
        const C = require(${JSON.stringify(require.resolve('ws'))});
        const wss = new W.WebSocketServer({ port: 0, host: '127.0.0.1' }, () => {
          const c = new C('ws://127.0.0.1:' + wss.address().port);
          c.on('error', () => {});
          wss.on('connection', (ws) => {
            c.terminate();
            ws.on('close', () => console.log('ws close'));
            wss.close(() => console.log('closed', ws.readyState));
          });
        });`;
      const child = track(execFile(process.execPath, ['-e', code]));
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      await once(child, 'exit');
      return out.trim().split('\n');
    };
    assert.deepStrictEqual(await run('..'), await run('ws'));
    assert.deepStrictEqual(await run('ws'), ['closed 2', 'ws close']);
  });

  it('WS_NATIVE_LISTENER=0 leaves { port } servers on Node\'s HTTP server', T, async () => {
    const { execFileSync } = require('child_process');
    const code = `const W = require(${JSON.stringify(require.resolve('..'))}); const wss = new W.WebSocketServer({ port: 0, host: '127.0.0.1' }, () => { console.log(wss._server.listening, wss._listener === null); wss.close(); });`;
    const out = (env) => execFileSync(process.execPath, ['-e', code], { env: { ...process.env, ...env } }).toString().trim();
    assert.strictEqual(out({ WS_NATIVE_LISTENER: '0' }), 'true true');
    assert.strictEqual(out({}), 'false false');
  });
});
