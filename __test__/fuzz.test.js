'use strict';

// Random frames from a raw client, the same bytes to ws and to ws-native:
// the server side must emit the same events and send back the same frames,
// and every connection must end (no hang, no crash).

const assert = require('assert');
const { it } = require('node:test');

const { MASK, closeServer, frame, rawClient, record, startServer } = require('./helpers');

function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/**
 * A few frames, mostly well formed, with random flags, opcodes and payloads.
 * Fragments of a text message stay ASCII: ws checks UTF-8 when a message
 * ends and ws-native as each fragment arrives, so bad bytes there plus a
 * second error later would be reported differently (a documented difference).
 */
function randomWire(rand) {
  const parts = [];
  const n = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) {
    const opcode = [0, 1, 2, 8, 9, 10, 3, 0xb][Math.floor(rand() * 8)];
    const fin = rand() < 0.8;
    const ascii = opcode === 0 || (opcode === 1 && !fin);
    const len = rand() < 0.8 ? Math.floor(rand() * 40) : Math.floor(rand() * 200);
    const payload = Buffer.alloc(len);
    for (let k = 0; k < len; k++) {
      payload[k] = ascii || rand() < 0.7 ? 0x61 + Math.floor(rand() * 26) : Math.floor(rand() * 256);
    }
    if (opcode === 8 && len >= 2 && rand() < 0.7) payload.writeUInt16BE([1000, 1001, 1005, 3000, 4999, 999][Math.floor(rand() * 6)]);
    parts.push(
      frame(opcode, payload, {
        fin,
        rsv: rand() < 0.1 ? Math.floor(rand() * 8) : 0,
        mask: rand() < 0.95 ? MASK : null
      })
    );
  }
  if (rand() < 0.2) parts.push(Buffer.from([Math.floor(rand() * 256), Math.floor(rand() * 256)]));
  return Buffer.concat(parts);
}

async function serverSees(impl, bytes, maxPayload) {
  const wss = await startServer(impl, { maxPayload });
  const log = [];
  const closed = new Promise((resolve) => {
    wss.on('connection', (ws) => {
      record(ws, log);
      ws.on('close', resolve);
      // A peer that stops half way through gets closed by the test.
      ws.on('message', () => {});
    });
  });
  const frames = rawClient(wss.address().port, bytes, {
    onOpen: (sock) => setImmediate(() => sock.end())
  });
  const [sent] = await Promise.all([frames, closed]);
  await closeServer(wss);
  return { log, sent };
}

it('random frames get the same events and replies from ws and ws-native', async () => {
  const rand = prng(20261122);
  for (let i = 0; i < 300; i++) {
    const wire = randomWire(rand);
    const maxPayload = rand() < 0.3 ? 64 : undefined;
    const ref = await serverSees('ws', wire, maxPayload);
    const got = await serverSees('native', wire, maxPayload);
    assert.deepStrictEqual(got, ref, `case ${i}: ${wire.toString('hex')}`);
  }
});
