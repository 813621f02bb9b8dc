'use strict';

// The socket the application holds after the upgrade (`req.socket`, the
// socket given to 'upgrade' and handleUpgrade(), `ws._socket`) stays the
// connection: raw writes, end(), destroy(), timeouts, counters and its own
// events behave as under ws. Each scenario runs on ws and on ws-native, over
// plain TCP (ws-native's native engine) and over TLS (its stream transport),
// and both sides' logs must be equal.

const assert = require('assert');
const http = require('http');
const https = require('https');
const net = require('net');
const crypto = require('crypto');
const { describe, it } = require('node:test');
const { once } = require('events');

const fs = require('fs');
const path = require('path');

const { describeError, frame, MASK, sameForBoth } = require('./helpers');

const TLS = {
  key: fs.readFileSync(path.join(__dirname, 'fixtures', 'key.pem')),
  cert: fs.readFileSync(path.join(__dirname, 'fixtures', 'cert.pem'))
};

const SIDES = ['server', 'client', 'peer'];

/**
 * A noServer WebSocketServer of `WebSocket` on an http (or https) server.
 * `onConnection(ws, req, socket)` runs for each upgrade. Closed in `t.after`.
 */
async function upgradeServer(t, WebSocket, tls, onConnection, serverOptions = {}) {
  const server = tls ? https.createServer({ ...TLS, ...serverOptions }) : http.createServer(serverOptions);
  const wss = new WebSocket.WebSocketServer({ noServer: true });
  const sockets = new Set();
  server.on('upgrade', (req, socket, head) => {
    sockets.add(socket);
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req, socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    for (const ws of wss.clients) ws.terminate();
    server.close();
  });
  const port = server.address().port;
  return { url: `${tls ? 'wss' : 'ws'}://127.0.0.1:${port}/`, port };
}

/** A client of `WebSocket`; terminated in `t.after`. */
function client(t, WebSocket, url, tls) {
  const ws = new WebSocket(url, tls ? { rejectUnauthorized: false } : undefined);
  t.after(() => ws.terminate());
  return ws;
}

/** Logs a WebSocket's events under `side`. */
function logEvents(ws, side, log) {
  ws.on('message', (data, isBinary) => log.push([side, 'message', String(data), isBinary]));
  ws.on('error', (err) => log.push([side, 'error', ...describeError(err)]));
  ws.on('close', (code, reason) => log.push([side, 'close', code, String(reason)]));
}

/** Logs a socket's own events under `side`. */
function logSocket(socket, side, log) {
  socket.on('end', () => log.push([side, 'socket end']));
  socket.on('finish', () => log.push([side, 'socket finish']));
  socket.on('timeout', () => log.push([side, 'socket timeout']));
  socket.on('close', (hadError) => log.push([side, 'socket close', hadError]));
}

// Not events.once(): it rejects on 'error', which these scenarios expect.
const closed = (ws) => new Promise((resolve) => (ws.readyState === 3 ? resolve() : ws.on('close', resolve)));

/** A raw TCP client that completes the handshake; resolves with the socket and the bytes after the 101. */
async function rawPeer(t, port) {
  const sock = net.connect(port, '127.0.0.1');
  t.after(() => sock.destroy());
  await once(sock, 'connect');
  const key = crypto.randomBytes(16).toString('base64');
  sock.write(
    'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
  );
  let data = Buffer.alloc(0);
  const upgraded = new Promise((resolve) => {
    sock.on('data', (d) => {
      data = Buffer.concat([data, d]);
      const end = data.indexOf('\r\n\r\n');
      if (end !== -1 && !sock.upgraded) {
        sock.upgraded = true;
        data = data.subarray(end + 4);
        resolve();
      }
    });
  });
  const ended = new Promise((resolve) => sock.on('close', () => resolve(data)));
  await upgraded;
  return { sock, ended };
}

for (const tls of [false, true]) {
  const transport = tls ? 'TLS (stream transport)' : 'TCP (native engine)';

  describe(`the upgraded socket stays the connection, over ${transport}`, () => {
    it('a raw HTTP error written to the upgraded socket, then destroy() (engine.io abort)', async (t) => {
      await sameForBoth(
        assert,
        async (WebSocket, log) => {
          const { url } = await upgradeServer(t, WebSocket, tls, (ws, req, socket) => {
            logEvents(ws, 'server', log);
            log.push(['server', 'socket state', socket.writable, socket.destroyed, socket === ws._socket, socket === req.socket]);
            ws.on('message', () => {
              socket.write('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
              socket.destroy();
            });
          });
          const c = client(t, WebSocket, url, tls);
          logEvents(c, 'client', log);
          c.on('open', () => c.send('go'));
          await closed(c);
        },
        { sides: SIDES }
      );
    });

    it('destroy() alone closes both ends with 1006', async (t) => {
      await sameForBoth(
        assert,
        async (WebSocket, log) => {
          let server;
          const { url } = await upgradeServer(t, WebSocket, tls, (ws, req) => {
            server = ws;
            logEvents(ws, 'server', log);
            logSocket(req.socket, 'server', log);
            ws.on('message', () => req.socket.destroy());
          });
          const c = client(t, WebSocket, url, tls);
          logEvents(c, 'client', log);
          c.on('open', () => c.send('go'));
          await closed(c);
          await closed(server);
          log.push(['server', 'after', server._socket.destroyed, server.readyState]);
        },
        { sides: SIDES }
      );
    });

    it('client writes a bad frame through ws._socket.write()', async (t) => {
      await sameForBoth(
        assert,
        async (WebSocket, log) => {
          let server;
          const { url } = await upgradeServer(t, WebSocket, tls, (ws) => {
            server = ws;
            logEvents(ws, 'server', log);
          });
          const c = client(t, WebSocket, url, tls);
          logEvents(c, 'client', log);
          await once(c, 'open');
          log.push(['client', 'socket state', c._socket.writable, c._socket.destroyed]);
          const written = new Promise((resolve) =>
            c._socket.write(frame(0x1, 'x', { rsv: 2, mask: MASK }), (err) => resolve(err ? err.code : 'ok'))
          );
          log.push(['client', 'write callback', await written]);
          await Promise.all([closed(c), closed(server)]);
        },
        { sides: SIDES }
      );
    });

    it('a raw write goes out after the frames already queued', async (t) => {
      await sameForBoth(
        assert,
        async (WebSocket, log) => {
          const { url } = await upgradeServer(t, WebSocket, tls, (ws) => {
            ws.on('message', () => {
              ws.send('one');
              ws._socket.write(frame(0x1, 'two'));
              ws.send('three');
              ws._socket.write(frame(0x1, 'four'), () => ws.close(1000, 'done'));
            });
          });
          const c = client(t, WebSocket, url, tls);
          logEvents(c, 'client', log);
          c.on('open', () => c.send('go'));
          await closed(c);
        },
        { sides: SIDES }
      );
    });

    // The socket's own events and the WebSocket's, on both ends, when the
    // server reacts to the client's message in each of these ways.
    const endings = {
      'end() half-closes: the peer ends too, both close 1006': (ws, socket) => socket.end(),
      "the socket's own events on a normal close": (ws) => ws.close(1000, 'bye')
    };
    for (const [name, react] of Object.entries(endings)) {
      it(name, async (t) => {
        await sameForBoth(
          assert,
          async (WebSocket, log) => {
            let server;
            const { url } = await upgradeServer(t, WebSocket, tls, (ws, req, socket) => {
              server = ws;
              logEvents(ws, 'server', log);
              logSocket(socket, 'server', log);
              ws.on('message', () => react(ws, socket));
            });
            const c = client(t, WebSocket, url, tls);
            logEvents(c, 'client', log);
            c.on('open', () => {
              logSocket(c._socket, 'client', log);
              c.send('go');
            });
            await closed(c);
            await closed(server);
          },
          { sides: SIDES }
        );
      });
    }

    it('setTimeout() on the upgraded socket emits timeout on an idle connection', async (t) => {
      await sameForBoth(
        assert,
        async (WebSocket, log) => {
          let server;
          const { url } = await upgradeServer(t, WebSocket, tls, (ws, req, socket) => {
            server = ws;
            logEvents(ws, 'server', log);
            ws.on('message', () => {
              const ret = socket.setTimeout(20, () => {
                log.push(['server', 'timeout callback', socket.timeout]);
                socket.destroy();
              });
              log.push(['server', 'setTimeout returns the socket', ret === socket]);
            });
          });
          const c = client(t, WebSocket, url, tls);
          logEvents(c, 'client', log);
          c.on('open', () => c.send('go'));
          await closed(c);
          await closed(server);
        },
        { sides: SIDES }
      );
    });

    it('setKeepAlive(), setNoDelay(), ref/unref and addresses work on the upgraded socket', async (t) => {
      await sameForBoth(
        assert,
        async (WebSocket, log) => {
          const { url } = await upgradeServer(t, WebSocket, tls, (ws, req, socket) => {
            ws.on('message', () => {
              const same = [socket.setKeepAlive(true, 1000), socket.setNoDelay(true), socket.unref(), socket.ref()];
              log.push(['server', 'chainable', same.every((r) => r === socket)]);
              const a = socket.address();
              log.push(['server', 'addresses', a.address, a.port === socket.localPort, socket.remoteAddress, socket.remoteFamily, typeof socket.remotePort]);
              ws.close();
            });
          });
          const c = client(t, WebSocket, url, tls);
          c.on('open', () => c.send('go'));
          await closed(c);
        },
        { sides: SIDES }
      );
    });

    it('the upgraded socket has Nagle off, on a server that left it on', async (t) => {
      // Node keeps what it set in a symbol of the socket; ws sets it on
      // both sides, through the socket.
      const noDelay = (socket) => socket[Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kSetNoDelay')];
      await sameForBoth(
        assert,
        async (WebSocket, log) => {
          const { url } = await upgradeServer(
            t,
            WebSocket,
            tls,
            (ws, req, socket) => {
              log.push(['server', 'noDelay', noDelay(socket)]);
              ws.close();
            },
            { noDelay: false }
          );
          const c = client(t, WebSocket, url, tls);
          c.on('open', () => log.push(['client', 'noDelay', noDelay(c._socket)]));
          await closed(c);
        },
        { sides: SIDES }
      );
    });

    it('bytesRead and bytesWritten count the frames', async (t) => {
      await sameForBoth(
        assert,
        async (WebSocket, log) => {
          const { url } = await upgradeServer(t, WebSocket, tls, (ws, req, socket) => {
            let read0, written0;
            ws.on('message', (data) => {
              if (String(data) === 'first') {
                read0 = socket.bytesRead;
                written0 = socket.bytesWritten;
                ws.send('x'.repeat(200), () => {
                  log.push(['server', 'written', socket.bytesWritten - written0]);
                });
                return;
              }
              log.push(['server', 'read', socket.bytesRead - read0]);
              ws.close();
            });
          });
          const c = client(t, WebSocket, url, tls);
          c.on('open', () => c.send('first'));
          c.on('message', () => c.send('y'.repeat(300)));
          await closed(c);
        },
        { sides: SIDES }
      );
    });

    if (!tls) {
      it('the peer sees the same bytes after a raw write and destroy (raw TCP peer)', async (t) => {
        await sameForBoth(
          assert,
          async (WebSocket, log) => {
            const server = http.createServer();
            const wss = new WebSocket.WebSocketServer({ noServer: true });
            server.on('upgrade', (req, socket, head) => {
              wss.handleUpgrade(req, socket, head, (ws) => {
                ws.send('before');
                socket.write('raw bytes');
                socket.destroy();
              });
            });
            server.listen(0, '127.0.0.1');
            await once(server, 'listening');
            t.after(() => server.close());
            const { ended } = await rawPeer(t, server.address().port);
            log.push(['peer', 'received', (await ended).toString('latin1')]);
          },
          { sides: SIDES }
        );
      });

      it('end() from the server: the raw peer sees the frames, then the FIN, and can still write', async (t) => {
        await sameForBoth(
          assert,
          async (WebSocket, log) => {
            const server = http.createServer();
            const wss = new WebSocket.WebSocketServer({ noServer: true });
            let serverWs;
            server.on('upgrade', (req, socket, head) => {
              wss.handleUpgrade(req, socket, head, (ws) => {
                serverWs = ws;
                logEvents(ws, 'server', log);
                ws.send('last');
                socket.end();
              });
            });
            server.listen(0, '127.0.0.1');
            await once(server, 'listening');
            t.after(() => server.close());
            const { sock, ended } = await rawPeer(t, server.address().port);
            sock.on('end', () => {
              log.push(['peer', 'end']);
              sock.end(frame(0x1, 'after FIN', { mask: MASK }));
            });
            log.push(['peer', 'received', (await ended).toString('latin1')]);
            await closed(serverWs);
          },
          { sides: SIDES }
        );
      });
    }
  });
}
