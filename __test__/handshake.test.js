'use strict';

// The opening handshake on both sides, compared with ws: HTTP error
// responses, verifyClient, handleProtocols, the 'headers' event, client-side
// checks of the response, and the module's shape.

const assert = require('assert');
const http = require('http');
const net = require('net');
const { describe } = require('node:test');
const { once } = require('events');

const { IMPLS, closeServer, describeError, it, startServer, track } = require('./helpers');

/** Sends a raw HTTP request; resolves with the whole response text. */
async function rawRequest(port, request) {
  const sock = track(net.connect(port, '127.0.0.1'));
  sock.write(request);
  let text = '';
  sock.setEncoding('latin1');
  sock.on('data', (d) => (text += d));
  await once(sock, 'close');
  return text.replace(/^Date: .*\r\n/m, '');
}

function upgradeRequest(headers = {}, { method = 'GET', path = '/' } = {}) {
  const base = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
    ...headers
  };
  const lines = Object.entries(base)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${v}`);
  return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * A server of `impl` with `options`: a `{ port }` one, or with `on: 'http'`
 * one on an http.Server of the test's (`{ server }`).
 */
async function startOn(on, impl, options) {
  if (on !== 'http') return startServer(impl, options);
  const server = track(http.createServer());
  const wss = track(new IMPLS[impl].WebSocketServer({ server, ...options }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  wss._testServer = server;
  return wss;
}

/** The raw response of a server of each implementation to `request`. */
async function responses(request, options = {}, setup, on = 'port') {
  const out = {};
  for (const impl of ['ws', 'native']) {
    const wss = await startOn(on, impl, options);
    wss.on('connection', (ws) => ws.terminate());
    if (setup) setup(wss);
    out[impl] = await rawRequest(wss.address().port, request);
    for (const c of wss.clients) c.terminate();
    await closeServer(wss);
  }
  return out;
}

const BAD_REQUESTS = {
  'plain HTTP request': 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  'wrong method': upgradeRequest({}, { method: 'POST' }),
  'bad Upgrade header': upgradeRequest({ Upgrade: 'h2c' }),
  'missing key': upgradeRequest({ 'Sec-WebSocket-Key': undefined }),
  'malformed key': upgradeRequest({ 'Sec-WebSocket-Key': 'short' }),
  'unsupported version': upgradeRequest({ 'Sec-WebSocket-Version': '12' }),
  'missing version': upgradeRequest({ 'Sec-WebSocket-Version': undefined }),
  'bad subprotocol header': upgradeRequest({ 'Sec-WebSocket-Protocol': 'a,,b' }),
  'duplicated subprotocol': upgradeRequest({ 'Sec-WebSocket-Protocol': 'a, a' }),
  'good request': upgradeRequest({ 'Sec-WebSocket-Protocol': 'b, a' })
};

/** An upgrade request with these header lines, in this order, repeats and case as given. */
function rawUpgrade(lines) {
  return `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

const KEY = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==';
const OPENING = ['Upgrade: websocket', 'Connection: Upgrade', KEY, 'Sec-WebSocket-Version: 13'];

/** Requests whose handshake headers come repeated or in odd case (Node joins repeats with ', '). */
const REPEATED = {
  'a repeated key': [...OPENING, 'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ=='],
  'a repeated version': [...OPENING, 'SEC-WEBSOCKET-VERSION: 13'],
  'a repeated Upgrade': ['upgrade: websocket', ...OPENING],
  'subprotocols over two lines': [...OPENING, 'Sec-WebSocket-Protocol: b', 'sec-websocket-protocol: a'],
  'extension offers over two lines': [...OPENING, 'Sec-WebSocket-Extensions: x-foo', 'Sec-Websocket-Extensions: permessage-deflate'],
  'names in odd case': ['UPGRADE: WebSocket', 'connection: upgrade', 'SEC-WebSocket-KEY: dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version: 13', 'Sec-WebSocket-Protocol: chat']
};

describe('server handshake', () => {
  for (const on of ['port', 'http']) {
    for (const [name, lines] of Object.entries(REPEATED)) {
      it(`answers ${name} as ws does (${on === 'http' ? '{ server }' : '{ port }'})`, async () => {
        const r = await responses(rawUpgrade(lines), { perMessageDeflate: true }, undefined, on);
        assert.strictEqual(r.native, r.ws);
      });
    }
  }

  it('leaves req.headers for Node to build when asked, and reads one an application changed or replaced', async () => {
    const seen = {};
    for (const impl of ['ws', 'native']) {
      const server = track(http.createServer());
      const wss = new IMPLS[impl].WebSocketServer({ noServer: true });
      server.on('upgrade', (req, socket, head) => {
        // Read and changed before the handshake, as an auth layer might:
        // ws reads the changed value.
        if (req.url === '/changed') req.headers['sec-websocket-protocol'] = 'chat';
        // Or replaced by an own property before anything read it.
        if (req.url === '/own') {
          const headers = { upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', 'sec-websocket-protocol': 'own' };
          Object.defineProperty(req, 'headers', { value: headers, enumerable: true, configurable: true });
        }
        wss.handleUpgrade(req, socket, head, (ws) => {
          seen[impl].push(req.headers);
          ws.terminate();
        });
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      seen[impl] = [];
      try {
        for (const path of ['/', '/changed', '/own']) {
          seen[impl].push(await rawRequest(server.address().port, upgradeRequest({ 'X-Extra': 'a' }, { path })));
        }
      } finally {
        server.close();
      }
    }
    assert.deepStrictEqual(seen.native, seen.ws);
    assert.match(seen.ws[3], /Sec-WebSocket-Protocol: chat/);
    assert.match(seen.ws[5], /Sec-WebSocket-Protocol: own/);
    assert.strictEqual(seen.ws[0]['x-extra'], 'a');
  });

  for (const [name, request] of Object.entries(BAD_REQUESTS)) {
    it(`answers a ${name} as ws does`, async () => {
      const r = await responses(request);
      assert.strictEqual(r.native, r.ws);
    });
  }

  it('answers a wrong path with 400 when `path` is set', async () => {
    const r = await responses(upgradeRequest({}, { path: '/other' }), { path: '/ws' });
    assert.strictEqual(r.native, r.ws);
    assert.match(r.ws, /^HTTP\/1.1 400 Bad Request/);
  });

  it('negotiates permessage-deflate parameters as ws does', async () => {
    const offers = [
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate; server_max_window_bits=10; client_no_context_takeover',
      'permessage-deflate; server_max_window_bits=7',
      'permessage-deflate; bogus',
      'permessage-deflate; client_max_window_bits=16, permessage-deflate',
      'x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover',
      'permessage-deflate;;'
    ];
    for (const offer of offers) {
      for (const pmd of [true, { serverMaxWindowBits: 12, clientNoContextTakeover: true }, { serverNoContextTakeover: false }]) {
        const r = await responses(upgradeRequest({ 'Sec-WebSocket-Extensions': offer }), { perMessageDeflate: pmd });
        assert.strictEqual(r.native, r.ws, `offer ${offer}`);
      }
    }
  });

  it('reports bad requests to a wsClientError listener', async () => {
    const seen = {};
    for (const impl of ['ws', 'native']) {
      const wss = await startServer(impl);
      wss.on('wsClientError', (err, socket, req) => {
        seen[impl] = [...describeError(err), req.url];
        socket.end('HTTP/1.1 418 I am a teapot\r\n\r\n');
      });
      const text = await rawRequest(wss.address().port, upgradeRequest({ 'Sec-WebSocket-Version': '99' }, { path: '/x?y' }));
      seen[impl].push(text);
      await closeServer(wss);
    }
    assert.deepStrictEqual(seen.native, seen.ws);
  });

  it('applies verifyClient in its sync and callback forms', async () => {
    const verifiers = [
      () => false,
      (info) => info.origin === 'https://ok.example',
      (info, cb) => cb(false, 403, 'Forbidden here', { 'X-Why': 'test' }),
      (info, cb) => setImmediate(() => cb(true)),
      (info, cb) => cb(false)
    ];
    for (const verifyClient of verifiers) {
      for (const origin of ['https://ok.example', 'https://bad.example']) {
        const r = await responses(upgradeRequest({ Origin: origin }), { verifyClient });
        assert.strictEqual(r.native, r.ws);
      }
    }
  });

  it("lets 'headers' listeners change the 101 response", async () => {
    const r = await responses(upgradeRequest(), {}, (wss) => {
      wss.on('headers', (headers, req) => headers.push(`Set-Cookie: id=${req.url.length}`));
    });
    assert.strictEqual(r.native, r.ws);
    assert.match(r.ws, /Set-Cookie: id=1/);
  });

  it("makes the same 101 with or without 'headers' listeners, and through a wrapped emit()", async () => {
    const request = upgradeRequest({ 'Sec-WebSocket-Protocol': 'b, a', 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' });
    const options = { perMessageDeflate: true };
    const plain = await responses(request, options);
    assert.strictEqual(plain.native, plain.ws);
    assert.match(plain.ws, /Sec-WebSocket-Protocol: b\r\nSec-WebSocket-Extensions: permessage-deflate/);
    const listened = await responses(request, options, (wss) => wss.on('headers', () => {}));
    assert.strictEqual(listened.native, plain.ws);
    assert.strictEqual(listened.ws, plain.ws);
    // A wrapper of emit() (as monitoring tools install) sees the event with no listener.
    const wrapped = await responses(request, options, (wss) => {
      const emit = wss.emit;
      wss.emit = function (event, ...args) {
        if (event === 'headers') args[0].push('X-Seen: 1');
        return emit.call(this, event, ...args);
      };
    });
    assert.strictEqual(wrapped.native, wrapped.ws);
    assert.match(wrapped.ws, /X-Seen: 1/);
  });
});

describe('client handshake', () => {
  /** A server that answers the upgrade with `respond(req, socket)`. */
  async function clientAgainst(impl, respond, options) {
    const server = track(http.createServer((req, res) => respond(req, null, res)));
    server.on('upgrade', (req, socket) => respond(req, track(socket)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const ws = track(new IMPLS[impl](`ws://127.0.0.1:${server.address().port}/path?q=1`, ['p1', 'p2'], options));
    const log = [];
    ws.on('upgrade', (res) => log.push(['upgrade', res.statusCode]));
    ws.on('open', () => log.push(['open', ws.protocol, ws.extensions]));
    ws.on('error', (err) => log.push(['error', ...describeError(err)]));
    await new Promise((resolve) => ws.on('close', (code, reason) => resolve(log.push(['close', code, String(reason)]))));
    server.close();
    return log;
  }

  const accept = (req) =>
    require('crypto')
      .createHash('sha1')
      .update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
      .digest('base64');

  const reply = (extra) => (req, socket, res) => {
    if (!socket) {
      res.writeHead(400);
      res.end();
      return;
    }
    const headers = extra(req);
    socket.end(`HTTP/1.1 101 Switching Protocols\r\n${headers.join('\r\n')}\r\n\r\n`);
  };

  const cases = {
    'wrong accept key': reply(() => ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Accept: nope']),
    'missing Upgrade header': reply((req) => ['Connection: Upgrade', `Sec-WebSocket-Accept: ${accept(req)}`]),
    'no subprotocol chosen': reply((req) => ['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept(req)}`]),
    'unrequested subprotocol': reply((req) => [
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${accept(req)}`,
      'Sec-WebSocket-Protocol: p3'
    ]),
    'unrequested extension': reply((req) => [
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${accept(req)}`,
      'Sec-WebSocket-Protocol: p2',
      'Sec-WebSocket-Extensions: x-foo'
    ]),
    'invalid extension parameters': reply((req) => [
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${accept(req)}`,
      'Sec-WebSocket-Protocol: p2',
      'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=20'
    ]),
    'accepted and closed at once': reply((req) => [
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${accept(req)}`,
      'Sec-WebSocket-Protocol: p1',
      'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10'
    ]),
    'non-101 response': (req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n')
  };

  for (const [name, respond] of Object.entries(cases)) {
    it(`handles a ${name} as ws does`, async () => {
      const ref = await clientAgainst('ws', respond);
      assert.deepStrictEqual(await clientAgainst('native', respond), ref);
    });
  }

  it('throws ws\'s errors for bad arguments', () => {
    const attempts = [
      ['not a url'],
      ['ftp://example.com'],
      ['ws://example.com/#frag'],
      ['ws://example.com', ['a', 'a']],
      ['ws://example.com', ['in valid']],
      ['ws://example.com', { protocolVersion: 7 }]
    ];
    for (const args of attempts) {
      const errOf = (impl) => {
        try {
          new IMPLS[impl](...args);
        } catch (err) {
          return describeError(err);
        }
        return null;
      };
      assert.deepStrictEqual(errOf('native'), errOf('ws'), JSON.stringify(args));
    }
  });
});

describe('module shape', () => {
  it('exports what ws exports, less its internal stream classes', () => {
    // ws's Receiver is a Node stream over its JS parser and its
    // PerMessageDeflate drives Node's zlib; neither has an honest
    // counterpart here (see README). Sender has frame() and sendFrame().
    const internal = ['PerMessageDeflate', 'Receiver'];
    const keys = (o) => Object.keys(o).filter((k) => !internal.includes(k)).sort();
    assert.deepStrictEqual(keys(IMPLS.native), keys(IMPLS.ws));
    assert.strictEqual(IMPLS.native.WebSocket, IMPLS.native);
    assert.strictEqual(IMPLS.native.Server, IMPLS.native.WebSocketServer);
    for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) {
      assert.strictEqual(IMPLS.native[k], IMPLS.ws[k]);
      assert.strictEqual(IMPLS.native.prototype[k], IMPLS.ws.prototype[k]);
    }
  });

  it('has an ESM entry', async () => {
    const mod = await import('ws-native');
    assert.strictEqual(mod.Sender, IMPLS.native.Sender);
    assert.strictEqual(mod.default, IMPLS.native);
    assert.strictEqual(mod.WebSocketServer, IMPLS.native.WebSocketServer);
    assert.strictEqual(typeof mod.createWebSocketStream, 'function');
  });
});
