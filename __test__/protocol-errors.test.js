'use strict';

// Malformed input from a raw peer: ws and ws-native must report the same
// error (class, message, code, close code), send the same close frame and
// emit the same events.

const assert = require('assert');
const zlib = require('zlib');
const { describe } = require('node:test');

const { IMPLS, MASK, closeServer, frame, it, rawClient, rawServer, record, startServer, track } = require('./helpers');

const m = (opcode, payload, opts = {}) => frame(opcode, payload, { mask: MASK, ...opts });

function closePayload(code, reason = '') {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code);
  b.write(reason, 2);
  return b;
}

/** Sends `bytes` to a server of `impl`; returns its events and frames. */
async function serverSees(impl, bytes, serverOptions = {}, extensions) {
  const wss = await startServer(impl, serverOptions);
  const log = [];
  const closed = new Promise((resolve) => {
    wss.on('connection', (ws) => {
      record(ws, log);
      ws.on('close', resolve);
    });
  });
  const frames = await rawClient(wss.address().port, bytes, { extensions });
  await closed;
  await closeServer(wss);
  return { log, frames };
}

/** Sends `bytes` from a raw server to a client of `impl`. */
async function clientSees(impl, bytes, clientOptions = {}, extensions) {
  const { port, result } = await rawServer(bytes, { extensions });
  const ws = track(new IMPLS[impl](`ws://127.0.0.1:${port}`, clientOptions));
  const log = record(ws, []);
  await new Promise((resolve) => ws.on('close', resolve));
  return { log, frames: await result };
}

const SERVER_CASES = {
  'RSV2 and RSV3': m(1, 'a', { rsv: 2 }),
  'RSV1 without permessage-deflate': m(1, 'a', { rsv: 4 }),
  'reserved data opcode': m(3, 'a'),
  'reserved control opcode': m(0xb, ''),
  'continuation with nothing to continue': m(0, 'a'),
  'control frame without FIN': m(9, '', { fin: false }),
  'ping longer than 125 bytes': m(9, Buffer.alloc(126)),
  'close frame of one byte': m(8, Buffer.from([3])),
  'unmasked frame': frame(1, 'hello'),
  'payload length over 2^53 - 1': m(2, '', { length: 2 ** 53 }).subarray(0, 14),
  'close code 1005': m(8, closePayload(1005)),
  'close code 999': m(8, closePayload(999)),
  'close code 2000': m(8, closePayload(2000)),
  'invalid UTF-8 text': m(1, Buffer.from([0x68, 0xff, 0x69])),
  'invalid UTF-8 in a fragmented text': Buffer.concat([m(1, 'ab', { fin: false }), m(0, Buffer.from([0xc3])), m(0, 'x')]),
  'invalid UTF-8 close reason': m(8, Buffer.concat([closePayload(1000), Buffer.from([0xff])])),
  'data frame inside a fragmented message': Buffer.concat([m(1, 'a', { fin: false }), m(2, 'b')]),
  'valid close then garbage': Buffer.concat([m(8, closePayload(1000, 'ok')), Buffer.from([0xff, 0xff])]),
  // Close codes at the edges of the valid ranges, and reasons at the length limit.
  ...Object.fromEntries([0, 1004, 1006, 1012, 1014, 1015, 1016, 2999, 3000, 4999, 5000, 65535].map((code) => [`close code ${code}`, m(8, closePayload(code))])),
  'close reason of 123 bytes (the most that fits)': m(8, closePayload(1000, 'r'.repeat(123))),
  'close reason of 124 bytes': m(8, closePayload(1000, 'r'.repeat(124))),
  'close reason of 123 bytes ending in a cut UTF-8 sequence': m(8, Buffer.concat([closePayload(1000, 'r'.repeat(121)), Buffer.from([0xe2, 0x82])])),
  'close reason that is an overlong encoding': m(8, Buffer.concat([closePayload(1000), Buffer.from([0xc0, 0xaf])])),
  'close reason with a UTF-16 surrogate': m(8, Buffer.concat([closePayload(1000), Buffer.from([0xed, 0xa0, 0x80])]))
};

describe('protocol errors: server side', () => {
  for (const [name, bytes] of Object.entries(SERVER_CASES)) {
    it(name, async () => {
      const ref = await serverSees('ws', bytes);
      const got = await serverSees('native', bytes);
      assert.deepStrictEqual(got, ref);
    });
  }

  it('message over maxPayload', async () => {
    const bytes = m(2, Buffer.alloc(11));
    const ref = await serverSees('ws', bytes, { maxPayload: 10 });
    assert.deepStrictEqual(await serverSees('native', bytes, { maxPayload: 10 }), ref);
  });

  it('fragments adding up to more than maxPayload', async () => {
    const bytes = Buffer.concat([m(2, Buffer.alloc(6), { fin: false }), m(0, Buffer.alloc(6))]);
    const ref = await serverSees('ws', bytes, { maxPayload: 10 });
    assert.deepStrictEqual(await serverSees('native', bytes, { maxPayload: 10 }), ref);
  });

  it('more fragments than maxFragments', async () => {
    const bytes = Buffer.concat([m(2, 'a', { fin: false }), m(0, 'b', { fin: false }), m(0, 'c')]);
    const ref = await serverSees('ws', bytes, { maxFragments: 2 });
    assert.deepStrictEqual(await serverSees('native', bytes, { maxFragments: 2 }), ref);
  });

  describe('with permessage-deflate', () => {
    const opts = { perMessageDeflate: true };
    const ext = 'permessage-deflate';
    const cases = {
      'corrupt deflate data': m(1, Buffer.from([0xff, 0xff, 0xff, 0xff]), { rsv: 4 }),
      'invalid stored block': m(1, Buffer.from([0x00, 0x05, 0x00, 0x00, 0x00]), { rsv: 4 }),
      'RSV1 on a continuation': Buffer.concat([m(1, Buffer.from([0xf2, 0x48]), { rsv: 4, fin: false }), m(0, Buffer.from([0x00]), { rsv: 4 })]),
      'RSV1 on a control frame': m(9, '', { rsv: 4 }),
      'compressed text that inflates to invalid UTF-8': m(1, zlib.deflateRawSync(Buffer.from([0xff, 0xfe]), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4), { rsv: 4 })
    };
    for (const [name, bytes] of Object.entries(cases)) {
      it(name, async () => {
        const ref = await serverSees('ws', bytes, opts, ext);
        assert.deepStrictEqual(await serverSees('native', bytes, opts, ext), ref);
      });
    }

    it('a decompression bomb stops at maxPayload', async () => {
      const bomb = zlib.deflateRawSync(Buffer.alloc(4 * 1024 * 1024), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
      const bytes = m(2, bomb, { rsv: 4 });
      const o = { ...opts, maxPayload: 1024 * 1024 };
      const ref = await serverSees('ws', bytes, o, ext);
      assert.deepStrictEqual(await serverSees('native', bytes, o, ext), ref);
    });
  });
});

const CLIENT_CASES = {
  'masked frame from the server': m(1, 'hi'),
  'reserved opcode': frame(5, 'x'),
  'invalid UTF-8 text': frame(1, Buffer.from([0xc0, 0xaf])),
  'close code 1006': frame(8, closePayload(1006)),
  'server closes with a reason': frame(8, closePayload(4001, 'bye now')),
  'server closes with no body': frame(8, ''),
  'ping with a payload': Buffer.concat([frame(9, 'are you there'), frame(8, closePayload(1000))])
};

describe('protocol errors: client side', () => {
  for (const [name, bytes] of Object.entries(CLIENT_CASES)) {
    it(name, async () => {
      const ref = await clientSees('ws', bytes, { perMessageDeflate: false });
      const got = await clientSees('native', bytes, { perMessageDeflate: false });
      // Clients mask with random keys; frames are compared unmasked.
      assert.deepStrictEqual(got, ref);
    });
  }

  it('message over maxPayload', async () => {
    const bytes = frame(2, Buffer.alloc(100));
    const ref = await clientSees('ws', bytes, { maxPayload: 99 });
    assert.deepStrictEqual(await clientSees('native', bytes, { maxPayload: 99 }), ref);
  });
});
