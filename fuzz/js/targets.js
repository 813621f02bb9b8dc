'use strict';

// Fuzz targets for the code that reads handshake-header text. Each runs an
// input through ws-native and through ws 8.23 and throws if they disagree:
// ws is the oracle. Inputs are header values as Node's HTTP parser hands
// them over (latin1 strings).

const assert = require('assert');
const path = require('path');
const { Duplex } = require('stream');

const ROOT = path.join(__dirname, '..', '..');
const WS_LIB = path.join(path.dirname(require.resolve('ws')), 'lib');

const ours = {
  extension: require(path.join(ROOT, 'lib', 'extension')),
  subprotocol: require(path.join(ROOT, 'lib', 'subprotocol')),
  PerMessageDeflate: require(path.join(ROOT, 'lib', 'permessage-deflate')),
  WebSocketServer: require(path.join(ROOT, 'lib', 'websocket-server'))
};
const theirs = {
  extension: require(path.join(WS_LIB, 'extension')),
  subprotocol: require(path.join(WS_LIB, 'subprotocol')),
  PerMessageDeflate: require(path.join(WS_LIB, 'permessage-deflate')),
  WebSocketServer: require(path.join(WS_LIB, 'websocket-server'))
};

/** What a call did: its value, or its error's class and message. */
function outcome(fn) {
  try {
    return { value: fn() };
  } catch (err) {
    return { error: `${err.constructor.name}: ${err.message}` };
  }
}

function same(a, b, what) {
  assert.deepStrictEqual(a, b, `${what}: ws-native and ws differ`);
}

/** Sec-WebSocket-Extensions, parsed; and what format() makes of the result. */
function extension(buf) {
  const header = buf.toString('latin1');
  const a = outcome(() => ours.extension.parse(header));
  const b = outcome(() => theirs.extension.parse(header));
  same(a, b, `extension.parse(${JSON.stringify(header)})`);
  if (a.value) {
    same(ours.extension.format(a.value), theirs.extension.format(b.value), 'extension.format');
  }
}

/** Sec-WebSocket-Protocol, parsed. */
function subprotocol(buf) {
  const header = buf.toString('latin1');
  const a = outcome(() => [...ours.subprotocol.parse(header)]);
  const b = outcome(() => [...theirs.subprotocol.parse(header)]);
  same(a, b, `subprotocol.parse(${JSON.stringify(header)})`);
}

const WINDOW_CHOICES = [undefined, true, 8, 9, 10, 15, 16, 0, '10'];

/** Options for a permessage-deflate side, taken from the first byte(s). */
function deflateOptions(b0, b1) {
  const opts = { isServer: (b0 & 1) === 1 };
  if (b0 & 2) opts.serverNoContextTakeover = true;
  if (b0 & 4) opts.clientNoContextTakeover = true;
  const s = WINDOW_CHOICES[(b0 >> 3) % WINDOW_CHOICES.length];
  const c = WINDOW_CHOICES[b1 % WINDOW_CHOICES.length];
  if (s !== undefined) opts.serverMaxWindowBits = s;
  if (c !== undefined) opts.clientMaxWindowBits = c;
  return opts;
}

/** permessage-deflate negotiation: an offer (server) or a response (client) accepted, or refused. */
function permessageDeflate(buf) {
  if (buf.length < 2) return;
  const opts = deflateOptions(buf[0], buf[1]);
  const header = buf.subarray(2).toString('latin1');
  const run = (impl) =>
    outcome(() => {
      const offers = impl.extension.parse(header);
      const list = offers[impl.PerMessageDeflate.extensionName];
      if (!list) return 'no offer';
      const pmd = new impl.PerMessageDeflate({ ...opts });
      return { ...pmd.accept(list) };
    });
  same(run(ours), run(theirs), `accept(${JSON.stringify(opts)}, ${JSON.stringify(header)})`);
}

/** A socket that records what is written to it and ends there. */
class RecordingSocket extends Duplex {
  constructor() {
    super();
    this.written = [];
  }
  _read() {}
  _write(chunk, enc, cb) {
    this.written.push(Buffer.from(chunk));
    cb();
  }
  setTimeout() {
    return this;
  }
  setNoDelay() {
    return this;
  }
  setKeepAlive() {
    return this;
  }
}

const HEADER_NAMES = ['upgrade', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions'];
const DEFAULTS = ['websocket', 'dGhlIHNhbXBsZSBub25jZQ==', '13', 'chat', 'permessage-deflate; client_max_window_bits'];

/**
 * A whole server-side handshake through handleUpgrade: the request's
 * Upgrade, Sec-WebSocket-Key, -Version, -Protocol and -Extensions come from
 * the input (split at 0x00; a missing part keeps a valid default, an empty
 * one drops the header). The bytes written back, and the socket's fate,
 * must be the same.
 */
function handshake(buf) {
  const parts = buf.toString('latin1').split('\x00');
  const headers = { host: 'x', connection: 'Upgrade' };
  HEADER_NAMES.forEach((h, i) => {
    const v = i < parts.length ? parts[i] : DEFAULTS[i];
    if (v !== '') headers[h] = v;
  });
  const deflate = parts.length > 5 && parts[5].length ? deflateOptions(parts[5].charCodeAt(0), parts[5].charCodeAt(1) || 0) : true;
  const run = (impl) => {
    const wss = new impl.WebSocketServer({ noServer: true, perMessageDeflate: deflate });
    const socket = new RecordingSocket();
    const req = { method: 'GET', url: '/', headers, socket };
    let upgraded = null;
    const result = outcome(() => {
      wss.handleUpgrade(req, socket, Buffer.alloc(0), (ws) => {
        upgraded = { protocol: ws.protocol, extensions: ws.extensions };
        ws.terminate();
      });
    });
    socket.destroy();
    return { result, upgraded, written: Buffer.concat(socket.written).toString('latin1') };
  };
  same(run(ours), run(theirs), `handshake(${JSON.stringify(headers)}, ${JSON.stringify(deflate)})`);
}

module.exports = { extension, subprotocol, 'permessage-deflate': permessageDeflate, handshake };
// Not a target: how both sides' results are compared.
Object.defineProperty(module.exports, 'outcome', { value: outcome, enumerable: false });
