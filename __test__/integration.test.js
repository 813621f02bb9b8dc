'use strict';

// ws-native in the setups ws users run: Express with noServer +
// handleUpgrade and session parsing, an https server with { server },
// handleUpgrade after async work, several servers on one HTTP server,
// @fastify/websocket's injectWS over in-memory streams, IPC sockets,
// redirects. Each runs on ws and on ws-native and must log the same.

const assert = require('assert');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { Duplex, PassThrough } = require('stream');
const { describe } = require('node:test');
const { once } = require('events');

const { describeError, it, record, sameForBoth, track } = require('./helpers');

const same = (scenario) => sameForBoth(assert, scenario);

function listen(server) {
  track(server);
  server.listen(0, '127.0.0.1');
  return once(server, 'listening').then(() => server.address().port);
}

function closed(ws) {
  return new Promise((resolve) => ws.on('close', resolve));
}

describe('integration', () => {
  it('Express with noServer, handleUpgrade and express-session', async () => {
    const express = require('express');
    const session = require('express-session');
    const log = await same(async (WebSocket, log) => {
      const app = express();
      const sessionParser = session({ saveUninitialized: false, secret: 'test', resave: false });
      app.use(sessionParser);
      app.post('/login', (req, res) => {
        req.session.userId = 'user-42';
        res.send({ result: 'OK' });
      });
      const server = http.createServer(app);
      const wss = track(new WebSocket.WebSocketServer({ clientTracking: false, noServer: true }));
      server.on('upgrade', (request, socket, head) => {
        track(socket);
        socket.on('error', () => {});
        sessionParser(request, {}, () => {
          if (!request.session.userId) {
            socket.write('HTTP/1.1 401 Unauthorized\r\n\r\n');
            socket.destroy();
            return;
          }
          wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
        });
      });
      wss.on('connection', (ws, request) => {
        track(ws);
        ws.on('message', (m) => ws.send(`${request.session.userId}: ${m}`));
      });
      const port = await listen(server);

      const anonymous = track(new WebSocket(`ws://127.0.0.1:${port}`));
      record(anonymous, log);
      await closed(anonymous);

      const res = await fetch(`http://127.0.0.1:${port}/login`, { method: 'POST' });
      const cookie = res.headers.get('set-cookie').split(';')[0];
      const ws = track(new WebSocket(`ws://127.0.0.1:${port}`, { headers: { cookie } }));
      record(ws, log);
      ws.on('open', () => ws.send('hello'));
      ws.on('message', () => ws.close());
      await closed(ws);
      server.close();
    });
    assert.deepStrictEqual(log[log.length - 2], ['message', ['bytes', Buffer.from('user-42: hello').toString('hex')], false]);
  });

  it('https server with { server }, and an http one beside it', async () => {
    const https = require('https');
    const tls = {
      key: fs.readFileSync(path.join(__dirname, 'fixtures', 'key.pem')),
      cert: fs.readFileSync(path.join(__dirname, 'fixtures', 'cert.pem'))
    };
    await same(async (WebSocket, log) => {
      for (const secure of [true, false]) {
        const server = secure ? https.createServer(tls) : http.createServer();
        const wss = track(new WebSocket.Server({ server, perMessageDeflate: true }));
        wss.on('connection', (ws, req) => {
          log.push(['connection', req.headers['sec-websocket-extensions'] !== undefined, !!req.socket.encrypted]);
          ws.on('message', (m, isBinary) => ws.send(m, { binary: isBinary }));
        });
        const port = await listen(server);
        const ws = track(new WebSocket(`${secure ? 'wss' : 'ws'}://localhost:${port}`, { rejectUnauthorized: false }));
        record(ws, log);
        ws.on('open', () => ws.send('x'.repeat(10000)));
        ws.on('message', () => ws.close(1000));
        await closed(ws);
        await new Promise((r) => wss.close(r));
        server.close();
      }
    });
  });

  it('handleUpgrade called after async middleware, with data already sent', async () => {
    await same(async (WebSocket, log) => {
      const server = http.createServer();
      const wss = track(new WebSocket.Server({ noServer: true }));
      // The client sends a frame right after the handshake request; the
      // "middleware" upgrades once the client's write of it is done, so the
      // frame waits in the socket (on loopback, written bytes are in the
      // peer's receive buffer) until the upgrade completes.
      let frameWritten;
      const written = new Promise((r) => (frameWritten = r));
      server.on('upgrade', (req, socket, head) => {
        written.then(() => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
      });
      let serverClosed;
      const serverDone = new Promise((r) => (serverClosed = r));
      wss.on('connection', (ws) => {
        record(ws, log);
        ws.on('message', () => ws.close(4001, 'late'));
        ws.on('close', serverClosed);
      });
      const port = await listen(server);
      const net = require('net');
      const sock = track(net.connect(port, '127.0.0.1'));
      await once(sock, 'connect');
      const mask = Buffer.from([1, 2, 3, 4]);
      const payload = Buffer.from('early').map((b, i) => b ^ mask[i % 4]);
      sock.write(
        'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
      );
      sock.write(Buffer.concat([Buffer.from([0x81, 0x85]), mask, payload]), frameWritten);
      // Answer the server's close frame so that the closing handshake ends.
      let received = Buffer.alloc(0);
      sock.on('data', (d) => {
        received = Buffer.concat([received, d]);
        const body = received.indexOf('\r\n\r\n');
        if (body !== -1 && received[body + 4] === 0x88 && !sock.answered) {
          sock.answered = true;
          sock.write(Buffer.concat([Buffer.from([0x88, 0x80]), mask]));
        }
      });
      sock.on('end', () => sock.end());
      await Promise.all([once(sock, 'close'), serverDone]);
      server.close();
    });
  });

  it('several servers sharing one HTTP server by path (noServer)', async () => {
    await same(async (WebSocket, log) => {
      const server = http.createServer();
      const wss1 = track(new WebSocket.WebSocketServer({ noServer: true }));
      const wss2 = track(new WebSocket.WebSocketServer({ noServer: true }));
      wss1.on('connection', (ws) => ws.send('one'));
      wss2.on('connection', (ws) => ws.send('two'));
      server.on('upgrade', (request, socket, head) => {
        const { pathname } = new URL(request.url, 'ws://base.url');
        const target = pathname === '/foo' ? wss1 : pathname === '/bar' ? wss2 : null;
        if (!target) return track(socket).destroy();
        target.handleUpgrade(request, socket, head, (ws) => target.emit('connection', ws, request));
      });
      const port = await listen(server);
      for (const p of ['/foo', '/bar', '/baz']) {
        const ws = track(new WebSocket(`ws://127.0.0.1:${port}${p}`));
        record(ws, log);
        ws.on('message', () => ws.close());
        await closed(ws);
      }
      server.close();
    });
  });

  it('in-memory Duplex streams, as @fastify/websocket injectWS uses them', async () => {
    await same(async (WebSocket, log) => {
      const server = http.createServer();
      const wss = track(new WebSocket.Server({ noServer: true }));
      wss.on('connection', (ws, req) => {
        record(ws, log);
        ws.on('message', (m) => ws.send(`echo ${m} ${req.url}`));
      });
      server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));

      const a = track(new PassThrough());
      const b = track(new PassThrough());
      const serverStream = track(Duplex.from({ readable: a, writable: b }));
      const clientStream = track(Duplex.from({ readable: b, writable: a }));
      const ws = track(new WebSocket(null, undefined, { isServer: false }));
      record(ws, log);
      const onData = (chunk) => {
        if (chunk.toString().includes('HTTP/1.1 101 Switching Protocols')) {
          clientStream.removeListener('data', onData);
          ws._isServer = false;
          ws.setSocket(clientStream, Buffer.alloc(0), { maxPayload: 0 });
        }
      };
      clientStream.on('data', onData);
      const req = {
        method: 'GET',
        headers: { connection: 'upgrade', upgrade: 'websocket', 'sec-websocket-version': 13, 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
        httpVersion: '1.1',
        url: '/injected'
      };
      server.emit('upgrade', req, serverStream, Buffer.alloc(0));
      await once(ws, 'open');
      ws.send('hi');
      await once(ws, 'message');
      ws.close(1000);
      await closed(ws);
    });
  });

  it('ws+unix:// IPC sockets', async () => {
    await same(async (WebSocket, log) => {
      const sockPath = path.join(os.tmpdir(), `ws-native-${process.pid}.sock`);
      fs.rmSync(sockPath, { force: true });
      track(() => fs.rmSync(sockPath, { force: true }));
      const server = track(http.createServer());
      const wss = track(new WebSocket.Server({ server }));
      wss.on('connection', (ws, req) => ws.send(`path ${req.url}`));
      server.listen(sockPath);
      await once(server, 'listening');
      const ws = track(new WebSocket(`ws+unix://${sockPath}:/some/path?x=1`));
      record(ws, log);
      ws.on('message', () => ws.close());
      await closed(ws);
      server.close();
    });
  });

  it('follows redirects and emits redirect', async () => {
    await same(async (WebSocket, log) => {
      const server = http.createServer((req, res) => {
        res.writeHead(302, { Location: '/final' });
        res.end();
      });
      const wss = track(new WebSocket.Server({ noServer: true }));
      server.on('upgrade', (req, socket, head) => {
        track(socket);
        if (req.url !== '/final') {
          socket.end('HTTP/1.1 302 Found\r\nLocation: /final\r\n\r\n');
          return;
        }
        log.push(['upgrade headers', req.headers.authorization || null]);
        wss.handleUpgrade(req, socket, head, (ws) => ws.close(1000, 'landed'));
      });
      const port = await listen(server);
      const ws = track(new WebSocket(`ws://user:pass@127.0.0.1:${port}/start`, { followRedirects: true }));
      ws.on('redirect', (url) => log.push(['redirect', url.replace(String(port), 'PORT')]));
      record(ws, log);
      await closed(ws);
      const tooMany = track(new WebSocket(`ws://127.0.0.1:${port}/start`, { followRedirects: true, maxRedirects: 0 }));
      tooMany.on('error', (e) => log.push(['error', ...describeError(e)]));
      await closed(tooMany);
      server.close();
    });
  });
});
