'use strict';

// Random frames from a raw client, the same bytes to ws and to ws-native:
// the server side must emit the same events and send back the same frames,
// and every connection must end (no hang, no crash).

const assert = require('assert');
const zlib = require('zlib');

const { IMPLS, MASK, closeServer, frame, it, prng, rawClient, rawServer, record, startServer, track } = require('./helpers');

/** A compressed payload: deflate of random text, sometimes corrupted. */
function deflated(rand, len) {
  const text = Buffer.alloc(len);
  for (let k = 0; k < len; k++) text[k] = 0x61 + Math.floor(rand() * 3);
  const z = zlib.deflateRawSync(text, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
  if (rand() < 0.3 && z.length) z[Math.floor(rand() * z.length)] ^= 0xff;
  return z;
}

/**
 * A few frames, mostly well formed, with random flags, opcodes and payloads.
 * Fragments of a text message stay ASCII: ws checks UTF-8 when a message
 * ends and ws-native as each fragment arrives, so bad bytes there plus a
 * second error later would be reported differently (a documented difference).
 */
function randomWire(rand, { mask = MASK, deflate = false } = {}) {
  const parts = [];
  const n = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) {
    const opcode = [0, 1, 2, 8, 9, 10, 3, 0xb][Math.floor(rand() * 8)];
    const fin = rand() < 0.8;
    const ascii = opcode === 0 || (opcode === 1 && !fin);
    const len = rand() < 0.8 ? Math.floor(rand() * 40) : Math.floor(rand() * 200);
    const compress = deflate && (opcode === 1 || opcode === 2) && fin && rand() < 0.6;
    let payload = Buffer.alloc(len);
    for (let k = 0; k < len; k++) {
      payload[k] = ascii || rand() < 0.7 ? 0x61 + Math.floor(rand() * 26) : Math.floor(rand() * 256);
    }
    if (compress) payload = deflated(rand, len);
    if (opcode === 8 && len >= 2 && rand() < 0.7) payload.writeUInt16BE([1000, 1001, 1005, 3000, 4999, 999][Math.floor(rand() * 6)]);
    parts.push(
      frame(opcode, payload, {
        fin,
        rsv: compress ? 4 : rand() < 0.1 ? Math.floor(rand() * 8) : 0,
        mask: rand() < 0.95 ? mask : mask ? null : MASK
      })
    );
  }
  if (rand() < 0.2) parts.push(Buffer.from([Math.floor(rand() * 256), Math.floor(rand() * 256)]));
  // End with a clean close, so that every conversation finishes on its own.
  parts.push(frame(8, Buffer.from([0x03, 0xe8]), { mask }));
  return Buffer.concat(parts);
}

async function serverSees(impl, bytes, maxPayload, extensions) {
  const wss = await startServer(impl, { maxPayload, perMessageDeflate: !!extensions });
  const log = [];
  const closed = new Promise((resolve) => {
    wss.on('connection', (ws) => {
      record(ws, log);
      ws.on('close', resolve);
    });
  });
  const frames = rawClient(wss.address().port, bytes, { extensions });
  const [sent] = await Promise.all([frames, closed]);
  await closeServer(wss);
  return { log, sent };
}

async function clientSees(impl, bytes, maxPayload, extensions) {
  const { port, result } = await rawServer(bytes, { extensions });
  const ws = track(new IMPLS[impl](`ws://127.0.0.1:${port}`, { maxPayload, perMessageDeflate: !!extensions }));
  const log = record(ws, []);
  await new Promise((resolve) => ws.on('close', resolve));
  return { log, sent: await result };
}

for (const side of ['server', 'client']) {
  for (const deflate of [false, true]) {
    it(`random frames to a ${side}${deflate ? ' with permessage-deflate' : ''}: same events and replies as ws`, { timeout: 120000 }, async () => {
      const rand = prng(20261122 + (side === 'client' ? 7 : 0) + (deflate ? 13 : 0));
      const sees = side === 'server' ? serverSees : clientSees;
      const extensions = deflate ? 'permessage-deflate' : undefined;
      for (let i = 0; i < 150; i++) {
        const wire = randomWire(rand, { mask: side === 'server' ? MASK : null, deflate });
        const maxPayload = rand() < 0.3 ? 64 : undefined;
        const ref = await sees('ws', wire, maxPayload, extensions);
        const got = await sees('native', wire, maxPayload, extensions);
        assert.deepStrictEqual(got, ref, `case ${i}: ${wire.toString('hex')}`);
      }
    });
  }
}
