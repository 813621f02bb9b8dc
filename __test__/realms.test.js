'use strict';

// Values from another realm (a vm context, or jsdom as under vitest, where
// globalThis.Uint8Array itself is foreign): send, ping, pong, close and
// Sender.frame accept what ws accepts, and internal replies never go through
// the checks of user input. Differential against ws, on both transports.

const assert = require('assert');
const vm = require('vm');
const { describe, it } = require('node:test');

const { attempt, closeServer, sameForBoth, sent, serverUrl, startServer } = require('./helpers');

const foreign = vm.createContext({});
const make = (src) => vm.runInContext(src, foreign);

/** Every kind of binary value ws takes, made in the other realm. */
function foreignValues() {
  return {
    Uint8Array: make('new Uint8Array([104, 105])'),
    Int16Array: make('new Int16Array([0x6968])'),
    Float32Array: make('new Float32Array([1.5])'),
    DataView: make('new DataView(new Uint8Array([1, 2, 3]).buffer)'),
    ArrayBuffer: make('new Uint8Array([4, 5, 6]).buffer'),
    SharedArrayBuffer: make('(() => { const s = new SharedArrayBuffer(2); new Uint8Array(s).set([7, 8]); return s; })()'),
    subarray: make('new Uint8Array([0, 1, 2, 3, 4]).subarray(1, 3)')
  };
}

function closed(ws) {
  return new Promise((resolve) => (ws.readyState === 3 ? resolve() : ws.on('close', resolve)));
}

for (const tls of [false, true]) {
  describe(`values from another realm, over ${tls ? 'TLS' : 'TCP'}`, () => {
    it('send, ping and pong take foreign binary values; the peer gets the same bytes', async (t) => {
      await sameForBoth(assert, async (WebSocket, log, impl) => {
        const wss = await startServer(impl, {}, { tls });
        t.after(() => closeServer(wss));
        wss.on('connection', (ws) => {
          ws.on('message', (data, isBinary) => log.push(['server message', Buffer.from(data).toString('hex'), isBinary]));
          ws.on('ping', (data) => log.push(['server ping', data.toString('hex')]));
          ws.on('pong', (data) => log.push(['server pong', data.toString('hex')]));
        });
        const c = new WebSocket(serverUrl(wss), { rejectUnauthorized: false });
        t.after(() => c.terminate());
        await new Promise((resolve) => c.on('open', resolve));
        // Fresh values for each call: ws masks a foreign ArrayBuffer in place.
        for (const name of Object.keys(foreignValues())) {
          attempt(log, `send ${name}`, () => sent(c.send(foreignValues()[name])));
          attempt(log, `ping ${name}`, () => c.ping(foreignValues()[name]));
          attempt(log, `pong ${name}`, () => c.pong(foreignValues()[name]));
        }
        c.close(1000);
        await closed(c);
      });
    });

    it('close() takes a foreign Uint8Array reason and refuses what ws refuses', async (t) => {
      await sameForBoth(assert, async (WebSocket, log, impl) => {
        const wss = await startServer(impl, {}, { tls });
        t.after(() => closeServer(wss));
        let server;
        wss.on('connection', (ws) => {
          server = ws;
          ws.on('close', (code, reason) => log.push(['server close', code, reason.toString('hex')]));
        });
        const c = new WebSocket(serverUrl(wss), { rejectUnauthorized: false });
        t.after(() => c.terminate());
        await new Promise((resolve) => c.on('open', resolve));
        const values = foreignValues();
        // A refused reason throws before anything is sent; the socket stays open.
        for (const name of ['DataView', 'Int16Array']) {
          attempt(log, `close reason ${name}`, () => c.close(4000, values[name]));
        }
        attempt(log, 'close reason number', () => c.close(4000, 5));
        log.push(['state after a refused close', c.readyState]);
        c.close(4000, values.Uint8Array);
        await closed(c);
        await closed(server);
      });
    });

    it('a peer closes with a reason while globalThis.Uint8Array is foreign (jsdom)', async (t) => {
      await sameForBoth(assert, async (WebSocket, log, impl) => {
        const wss = await startServer(impl, {}, { tls });
        t.after(() => closeServer(wss));
        const saved = { Uint8Array: globalThis.Uint8Array, ArrayBuffer: globalThis.ArrayBuffer };
        t.after(() => Object.assign(globalThis, saved));
        let server;
        wss.on('connection', (ws) => {
          server = ws;
          ws.on('close', (code, reason) => log.push(['server close', code, reason.toString()]));
          ws.close(4004, 'Welcome');
        });
        const c = new WebSocket(serverUrl(wss), { rejectUnauthorized: false });
        t.after(() => c.terminate());
        c.on('open', () => {
          globalThis.Uint8Array = make('Uint8Array');
          globalThis.ArrayBuffer = make('ArrayBuffer');
          log.push(['Buffer instanceof Uint8Array', Buffer.alloc(1) instanceof globalThis.Uint8Array]);
        });
        c.on('close', (code, reason) => log.push(['client close', code, reason.toString()]));
        await closed(c);
        await closed(server);
        Object.assign(globalThis, saved);
      });
    });
  });
}

it('Sender.frame takes foreign Uint8Arrays', async () => {
  // ws's frame() counts `data.length`, so only byte arrays are meaningful.
  const bytes = (list) => list.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')).join('');
  await sameForBoth(assert, async (WebSocket, log) => {
    for (const name of ['Uint8Array', 'subarray']) {
      for (const mask of [false, true]) {
        const options = { fin: true, opcode: 2, mask, readOnly: true, rsv1: false, maskBuffer: Buffer.from([1, 2, 3, 4]), generateMask() {} };
        log.push([name, mask, bytes(WebSocket.Sender.frame(foreignValues()[name], options))]);
      }
    }
  });
});
