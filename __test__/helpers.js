'use strict';

// Shared helpers for the tests: both implementations, event recorders and
// raw peers that speak bytes, so that ws and ws-native can be compared;
// and `it`, which closes whatever a test opened even when it fails.

const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const net = require('net');
const path = require('path');
const test = require('node:test');
const { AsyncLocalStorage } = require('async_hooks');
const { ChildProcess } = require('child_process');
const { once } = require('events');

const IMPLS = {
  ws: require('ws'),
  native: require('..')
};

/**
 * A safety net, not a measure: no test here needs more than a few seconds,
 * even with every core busy. A test that waits for an event that never
 * comes fails after this long (and its resources are closed) instead of
 * holding `npm test` forever.
 */
const TIMEOUT = 60000;

const noop = () => {};

/** What one test opened; closed when the test ends, pass or fail. */
class Scope {
  constructor() {
    this.items = [];
    this.closed = false;
  }

  add(item) {
    // A test that timed out may still be running: what it opens after its
    // end is closed at once.
    if (this.closed) closeQuietly(item);
    else this.items.push(item);
    return item;
  }

  close() {
    this.closed = true;
    for (const item of this.items.splice(0).reverse()) closeQuietly(item);
  }
}

const scopes = new AsyncLocalStorage();

/**
 * Registers `item` to be closed when the running test ends (after its
 * assertions, whether they passed or not); returns it. Takes WebSockets and
 * WebSocketServers of both implementations, net/http/https servers, sockets
 * and streams, child processes, workers, timers, or a function to call.
 * Outside a test run by `it` below, does nothing.
 */
function track(item) {
  const scope = scopes.getStore();
  return scope ? scope.add(item) : item;
}

/**
 * Closes `item` at once, without waiting for anything and without letting
 * errors out: by now the test has finished, its events no longer matter.
 */
function closeQuietly(item) {
  try {
    if (typeof item === 'function') item();
    else if (item instanceof IMPLS.ws || item instanceof IMPLS.native) {
      if (item.readyState !== item.CLOSED) {
        item.on('error', noop);
        item.terminate();
      }
    } else if (item instanceof IMPLS.ws.WebSocketServer || item instanceof IMPLS.native.WebSocketServer) {
      item.on('error', noop);
      if (item.clients) for (const ws of item.clients) closeQuietly(ws);
      const server = item._server;
      item.close();
      if (server) closeQuietly(server);
      if (item._testServer) closeQuietly(item._testServer);
    } else if (item instanceof net.Server) {
      if (item.closeAllConnections) item.closeAllConnections();
      if (item.listening) item.close();
    } else if (item instanceof ChildProcess) {
      if (item.exitCode === null && item.signalCode === null) item.kill('SIGKILL');
    } else if (typeof item.destroy === 'function') {
      item.on('error', noop);
      item.destroy();
    } else if (typeof item.terminate === 'function') item.terminate();
    else clearTimeout(item);
  } catch {
    // Already closed, or half made: nothing left to close.
  }
}

/**
 * node:test's `it`, with a timeout (TIMEOUT unless `options.timeout`) and a
 * scope: what the body passes to `track()`, itself or through the helpers
 * below, is closed when the test ends, also when an assertion fails or the
 * test times out, so that a failure never leaves the process running.
 */
function it(name, options, fn) {
  if (typeof options === 'function') [options, fn] = [{}, options];
  return test.it(name, { timeout: TIMEOUT, ...options }, (t) => {
    const scope = new Scope();
    t.after(() => scope.close());
    return scopes.run(scope, fn, t);
  });
}

/** Resolves after `n` turns of the event loop (not a time). */
function turns(n = 1) {
  return n <= 0 ? Promise.resolve() : new Promise((r) => setImmediate(r)).then(() => turns(n - 1));
}

function statusCodeOf(err) {
  const sym = Object.getOwnPropertySymbols(err).find((s) => s.description === 'status-code');
  return sym ? err[sym] : undefined;
}

/** A short, comparable description of a message payload. */
function describe(data) {
  if (Array.isArray(data)) return ['fragments', ...data.map(describe)];
  if (data instanceof ArrayBuffer) return ['arraybuffer', describe(Buffer.from(data))];
  if (typeof Blob !== 'undefined' && data instanceof Blob) return ['blob', data.size];
  if (typeof data === 'string') return ['string', data.length > 64 ? sha1(data) : data];
  const buf = Buffer.from(data);
  return buf.length > 64 ? ['bytes', buf.length, sha1(buf)] : ['bytes', buf.toString('hex')];
}

function sha1(data) {
  return crypto.createHash('sha1').update(data).digest('hex');
}

function describeError(err) {
  return [err.constructor.name, err.message, err.code, statusCodeOf(err)];
}

/** Records every event of `ws` into `log`. */
function record(ws, log) {
  ws.on('open', () => log.push(['open', ws.protocol, ws.extensions]));
  ws.on('message', (data, isBinary) => log.push(['message', describe(data), isBinary]));
  ws.on('ping', (data) => log.push(['ping', data.toString('hex')]));
  ws.on('pong', (data) => log.push(['pong', data.toString('hex')]));
  ws.on('error', (err) => log.push(['error', ...describeError(err)]));
  ws.on('close', (code, reason) => log.push(['close', code, reason.toString(), ws.readyState]));
  return log;
}

const TLS = {
  key: fs.readFileSync(path.join(__dirname, 'fixtures', 'key.pem')),
  cert: fs.readFileSync(path.join(__dirname, 'fixtures', 'cert.pem'))
};

/**
 * Starts a server of `impl` on an ephemeral port; with `tls`, on an https
 * server (the stream transport).
 */
async function startServer(impl, options = {}, { tls = false } = {}) {
  if (tls) {
    const server = track(https.createServer(TLS));
    const wss = track(new IMPLS[impl].WebSocketServer({ server, ...options }));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    wss._testServer = server;
    return wss;
  }
  const wss = track(new IMPLS[impl].WebSocketServer({ port: 0, host: '127.0.0.1', ...options }));
  await once(wss, 'listening');
  return wss;
}

function serverUrl(wss, path = '/') {
  const server = wss._testServer;
  return server ? `wss://127.0.0.1:${server.address().port}${path}` : `ws://127.0.0.1:${wss.address().port}${path}`;
}

function closeServer(wss) {
  return new Promise((resolve) =>
    wss.close(() => {
      if (!wss._testServer) return resolve();
      wss._testServer.close(() => resolve());
    })
  );
}

/**
 * Runs one conversation: a server of `serverImpl` and a client of
 * `clientImpl`; `script` wires behaviour on both. Resolves with each side's
 * event log once both sides emitted 'close'.
 */
async function converse(serverImpl, clientImpl, script, { serverOptions, clientOptions, tls = false } = {}) {
  const wss = await startServer(serverImpl, serverOptions, { tls });
  if (tls) clientOptions = { rejectUnauthorized: false, ...clientOptions };
  const logs = { server: [], client: [] };
  let serverClosed;
  const serverDone = new Promise((resolve) => (serverClosed = resolve));

  wss.on('connection', (ws) => {
    record(ws, logs.server);
    ws.on('close', serverClosed);
    if (script.server) script.server(ws);
  });

  const url = serverUrl(wss, script.path);
  const client = track(new IMPLS[clientImpl](url, script.protocols, clientOptions));
  record(client, logs.client);
  if (script.client) script.client(client);

  await Promise.all([once(client, 'close'), serverDone]);
  await closeServer(wss);
  return logs;
}

/** The four pairings; the first one (ws with ws) is the reference. */
const PAIRS = [
  ['ws', 'ws'],
  ['native', 'ws'],
  ['ws', 'native'],
  ['native', 'native']
];

/** Runs `script` over every pairing and checks each side against ws. */
async function assertSameAsWs(assert, script, options) {
  const results = [];
  for (const [s, c] of PAIRS) results.push(await converse(s, c, script, options));
  const [ref] = results;
  PAIRS.forEach(([s, c], i) => {
    if (i === 0) return;
    assert.deepStrictEqual(results[i].server, ref.server, `server side, ${s} server with ${c} client`);
    assert.deepStrictEqual(results[i].client, ref.client, `client side, ${s} server with ${c} client`);
  });
  return ref;
}

/**
 * Runs `scenario(WebSocket, log, impl)` with ws, then with ws-native; the
 * logs must be equal. With `sides`, entries are compared per side (their
 * first element), since two sides in one process interleave differently.
 */
async function sameForBoth(assert, scenario, { sides } = {}) {
  const logs = {};
  for (const impl of ['ws', 'native']) {
    logs[impl] = [];
    await scenario(IMPLS[impl], logs[impl], impl);
  }
  // DEP_DEBUG=1 prints both logs, for reading a difference.
  if (process.env.DEP_DEBUG) console.error(JSON.stringify(logs, null, 1));
  if (!sides) {
    assert.deepStrictEqual(logs.native, logs.ws);
    return logs.ws;
  }
  for (const side of [...sides, undefined]) {
    const pick = (log) => log.filter((e) => (side ? e[0] === side : !sides.includes(e[0])));
    assert.deepStrictEqual(pick(logs.native), pick(logs.ws), side || 'other');
  }
  return logs.ws;
}

/** Builds a frame: `mask` is a 4-byte Buffer or null. */
function frame(opcode, payload, { fin = true, rsv = 0, mask = null, length } = {}) {
  payload = Buffer.from(payload || []);
  const len = length === undefined ? payload.length : length;
  const head = [((fin ? 0x80 : 0) | (rsv << 4) | opcode) & 0xff];
  const mbit = mask ? 0x80 : 0;
  if (len < 126) head.push(mbit | len);
  else if (len < 65536) head.push(mbit | 126, len >> 8, len & 0xff);
  else {
    head.push(mbit | 127);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(len));
    head.push(...b);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const body = Buffer.from(payload.map((v, i) => v ^ mask[i % 4]));
  return Buffer.concat([Buffer.from(head), mask, body]);
}

const MASK = Buffer.from([0x11, 0x22, 0x33, 0x44]);

/** Splits a byte stream into frames (unmasking), for comparing wire bytes. */
function parseFrames(buf) {
  const frames = [];
  let i = 0;
  while (i + 2 <= buf.length) {
    const b0 = buf[i];
    const b1 = buf[i + 1];
    let len = b1 & 0x7f;
    let p = i + 2;
    if (len === 126) {
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    let mask = null;
    if (b1 & 0x80) {
      mask = buf.subarray(p, p + 4);
      p += 4;
    }
    if (p + len > buf.length) break;
    let payload = Buffer.from(buf.subarray(p, p + len));
    if (mask) payload = Buffer.from(payload.map((v, k) => v ^ mask[k % 4]));
    frames.push({ fin: !!(b0 & 0x80), rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, masked: !!mask, payload: payload.toString('hex') });
    i = p + len;
  }
  return frames;
}

/** An opening handshake request with a fresh key, as a raw client writes it. */
function upgradeRequest({ extensions } = {}) {
  return (
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
    (extensions ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : '') +
    '\r\n'
  );
}

/**
 * A raw client: does the opening handshake by hand, then sends `bytes`.
 * Ends its side when the server ends. Resolves with what the server sent
 * after the 101, as frames.
 */
async function rawClient(port, bytes, { extensions, onOpen } = {}) {
  const sock = track(net.connect(port, '127.0.0.1'));
  await once(sock, 'connect');
  sock.write(upgradeRequest({ extensions }));
  let data = Buffer.alloc(0);
  let headerEnd = -1;
  sock.on('data', (d) => {
    data = Buffer.concat([data, d]);
    if (headerEnd === -1) {
      headerEnd = data.indexOf('\r\n\r\n');
      if (headerEnd !== -1) {
        if (onOpen) onOpen(sock);
        if (bytes) sock.write(bytes);
      }
    }
  });
  sock.on('end', () => sock.end());
  // A reset by the server (after a terminate) is a way to end like any
  // other: what was received is the result.
  sock.on('error', () => {});
  await new Promise((resolve) => sock.on('close', resolve));
  return parseFrames(data.subarray(headerEnd + 4));
}

/**
 * A raw server: answers the opening handshake by hand, then sends `bytes`.
 * Resolves with its port; `result` resolves with the frames the client sent.
 */
async function rawServer(bytes, { extensions } = {}) {
  let resolveResult;
  const result = new Promise((r) => (resolveResult = r));
  const server = net.createServer((sock) => {
    track(sock);
    let data = Buffer.alloc(0);
    let headerEnd = -1;
    sock.on('data', (d) => {
      data = Buffer.concat([data, d]);
      if (headerEnd !== -1) return;
      headerEnd = data.indexOf('\r\n\r\n');
      if (headerEnd === -1) return;
      const key = /sec-websocket-key: *(\S+)/i.exec(data.subarray(0, headerEnd).toString())[1];
      const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      sock.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${accept}\r\n` +
          (extensions ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : '') +
          '\r\n'
      );
      if (bytes) sock.write(bytes);
    });
    sock.on('end', () => sock.end());
    sock.on('close', () => {
      server.close();
      resolveResult(parseFrames(data.subarray(headerEnd + 4)));
    });
  });
  track(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: server.address().port, result };
}

/** A small seeded generator (xorshift32), so that a failure can be replayed. */
function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/**
 * Runs `fn`, logging what it returned or the error it threw, so that
 * argument checks compare between ws and ws-native.
 */
/**
 * A `send()` result for a log compared with ws: ws returns undefined, ws-native
 * a boolean (backpressure, README; tested in backpressure.test.js).
 */
function sent(r) {
  return typeof r === 'boolean' ? undefined : r;
}

function attempt(log, label, fn) {
  try {
    const r = fn();
    log.push([label, 'ok', r === undefined ? 'undefined' : r]);
  } catch (err) {
    log.push([label, 'threw', ...describeError(err)]);
  }
}

/**
 * Waits for `promise`; when it has not settled after `ms`, logs
 * ['stalled', what] and returns, so that a scenario whose event never comes
 * ends (and cleans up) with a log that differs, rather than hanging.
 */
async function waitFor(log, promise, what, ms = 3000) {
  let timer;
  const stall = new Promise((resolve) => {
    timer = setTimeout(() => resolve('stalled'), ms);
  });
  try {
    const result = await Promise.race([promise.then(() => 'done'), stall]);
    if (result === 'stalled') log.push(['stalled', what]);
  } finally {
    clearTimeout(timer);
  }
}

module.exports = {
  assertSameAsWs,
  attempt,
  closeServer,
  converse,
  describe,
  describeError,
  frame,
  IMPLS,
  it,
  MASK,
  PAIRS,
  parseFrames,
  prng,
  rawClient,
  rawServer,
  record,
  sameForBoth,
  sent,
  serverUrl,
  startServer,
  statusCodeOf,
  TIMEOUT,
  track,
  turns,
  upgradeRequest,
  waitFor
};
