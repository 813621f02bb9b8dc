'use strict';

// The floor: what a server on Node costs with no WebSocket work. It answers
// the upgrade with a canned 101, and every data frame with a prebuilt frame
// of the same payload length (the echo and latency scenarios count frames,
// not their bytes); a close frame gets a close frame and the end of the
// socket. Only frame lengths are read; nothing is unmasked, validated,
// allocated per message or emitted as an event.
//
//   node bench/net-floor.js [--tls] [--http] [--deflate]
//
// --tls listens with Node's `tls` (the floor for wss:// rows); --http takes
// the upgrade through Node's `http` server ('upgrade' event), the path a
// `{ server }` WebSocket server has to take. --deflate accepts
// permessage-deflate when it is offered and sends every data frame back as it
// came, still compressed (only unmasked): the peer inflates what it deflated,
// in the same order, so its inflater's history is its deflater's. No zlib
// work on this side at all: the floor of the deflate rows. --accept puts
// the Sec-WebSocket-Accept a real client checks in the 101
// (bench/client-cost.js); the load generator does not check it.

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const tls = require('tls');

const UPGRADED = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
const UPGRADED_DEFLATE = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n');
const deflate = process.argv.includes('--deflate');
const accept = process.argv.includes('--accept');
const { GUID } = require('../lib/constants');

/** The canned 101, with `key`'s accept value when --accept asks for it. */
function upgraded(compressed, key) {
  const canned = compressed ? UPGRADED_DEFLATE : UPGRADED;
  if (!accept || !key) return canned;
  const value = crypto.createHash('sha1').update(key + GUID).digest('base64');
  return Buffer.concat([canned.subarray(0, -2), Buffer.from(`Sec-WebSocket-Accept: ${value}\r\n\r\n`)]);
}

let unmask;
try {
  ({ unmask } = require('bufferutil'));
} catch {
  unmask = (buf, mask) => {
    for (let i = 0; i < buf.length; i++) buf[i] ^= mask[i & 3];
  };
}
const CLOSE = Buffer.from([0x88, 2, 0x03, 0xe8]);
const replies = new Map();

/** An unmasked text frame of `n` bytes of 'x'. */
function reply(n) {
  let f = replies.get(n);
  if (f) return f;
  const head = n < 126 ? [0x81, n] : n < 65536 ? [0x81, 126, n >> 8, n & 0xff] : [0x81, 127, 0, 0, 0, 0, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  f = Buffer.concat([Buffer.from(head), Buffer.alloc(n, 0x78)]);
  replies.set(n, f);
  return f;
}

let headLength = 0;

/**
 * Where the length field of the frame at `i` ends (before any masking
 * key), with the payload length left in `headLength`; -1 when the field is
 * not all in `buf` yet.
 */
function lengthEnd(buf, i) {
  let len = buf[i + 1] & 0x7f;
  let at = i + 2;
  if (len === 126) {
    if (at + 2 > buf.length) return -1;
    len = buf.readUInt16BE(at);
    at += 2;
  } else if (len === 127) {
    if (at + 8 > buf.length) return -1;
    len = Number(buf.readBigUInt64BE(at));
    at += 8;
  }
  headLength = len;
  return at;
}

/** Answers the frames on `socket`; `rest` is what came with the upgrade. */
function frames(socket, rest) {
  let pending = rest && rest.length ? rest : null;
  let skip = 0;
  const onData = (chunk) => {
    let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    let i = Math.min(skip, buf.length);
    skip -= i;
    const out = [];
    while (i + 2 <= buf.length) {
      const op = buf[i] & 0x0f;
      let at = lengthEnd(buf, i);
      if (at === -1) break;
      const len = headLength;
      if (buf[i + 1] & 0x80) at += 4;
      if (at > buf.length) break;
      if (op === 8) {
        out.push(CLOSE);
        socket.end(Buffer.concat(out));
        return;
      }
      if (op === 1 || op === 2) out.push(reply(len));
      const end = at + len;
      if (end > buf.length) {
        skip = end - buf.length;
        i = buf.length;
        break;
      }
      i = end;
    }
    if (i < buf.length) pending = buf.subarray(i);
    if (out.length) socket.write(out.length === 1 ? out[0] : Buffer.concat(out));
  };
  socket.on('data', onData);
  if (pending) {
    const first = pending;
    pending = null;
    onData(first);
  }
}

/** Sends every data frame on `socket` back as it came, unmasked (--deflate). */
function echoes(socket, rest) {
  let buf = rest && rest.length ? rest : Buffer.alloc(0);
  const onData = (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const out = [];
    let i = 0;
    while (i + 2 <= buf.length) {
      let at = lengthEnd(buf, i);
      if (at === -1) break;
      const len = headLength;
      const headEnd = at;
      const mask = buf[i + 1] & 0x80 ? buf.subarray(at, at + 4) : null;
      if (mask) at += 4;
      if (at + len > buf.length) break;
      if ((buf[i] & 0x0f) === 8) {
        out.push(CLOSE);
        socket.end(Buffer.concat(out));
        return;
      }
      const head = Buffer.from(buf.subarray(i, headEnd));
      head[1] &= 0x7f;
      const payload = Buffer.from(buf.subarray(at, at + len));
      if (mask) unmask(payload, mask);
      out.push(head, payload);
      i = at + len;
    }
    buf = buf.subarray(i);
    if (out.length) socket.write(Buffer.concat(out));
  };
  socket.on('data', onData);
  if (buf.length) {
    const first = buf;
    buf = Buffer.alloc(0);
    onData(first);
  }
}

function onRawSocket(socket) {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  let head = null;
  const onHead = (chunk) => {
    head = head ? Buffer.concat([head, chunk]) : chunk;
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) return;
    socket.removeListener('data', onHead);
    const compressed = deflate && head.subarray(0, end).toString('latin1').includes('permessage-deflate');
    const key = accept && /^sec-websocket-key: *(\S+)/im.exec(head.subarray(0, end).toString('latin1'));
    socket.write(upgraded(compressed, key && key[1]));
    (compressed ? echoes : frames)(socket, head.subarray(end + 4));
  };
  socket.on('data', onHead);
}

let server;
if (process.argv.includes('--http')) {
  server = http.createServer((req, res) => res.writeHead(426).end());
  server.on('upgrade', (req, socket, head) => {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.write(upgraded(false, accept && req.headers['sec-websocket-key']));
    frames(socket, head);
  });
} else if (process.argv.includes('--tls')) {
  const fixtures = path.join(__dirname, '..', '__test__', 'fixtures');
  server = tls.createServer({ cert: fs.readFileSync(path.join(fixtures, 'cert.pem')), key: fs.readFileSync(path.join(fixtures, 'key.pem')) }, onRawSocket);
} else {
  server = net.createServer(onRawSocket);
}

server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
require('./control').answerStdin();
