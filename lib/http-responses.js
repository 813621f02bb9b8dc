'use strict';

// The HTTP answers of a WebSocket server that are not a 101: a `{ port }`
// server's internal HTTP server (426 to plain requests, as ws's), and the
// response that refuses a handshake; and the accept key of a 101, which
// both ends compute.

const crypto = require('crypto');
const http = require('http');

const { GUID } = require('./constants');

/** A `{ port }` server's internal HTTP server, as ws makes it. */
function upgradeRequired() {
  return http.createServer((req, res) => {
    const body = http.STATUS_CODES[426];
    res.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain' });
    res.end(body);
  });
}

/** The HTTP error response that refuses a handshake. */
function abortResponse(code, message, headers) {
  message = message || http.STATUS_CODES[code];
  headers = {
    Connection: 'close',
    'Content-Type': 'text/html',
    'Content-Length': Buffer.byteLength(message),
    ...headers
  };
  const lines = Object.keys(headers).map((h) => `${h}: ${headers[h]}`);
  return `HTTP/1.1 ${code} ${http.STATUS_CODES[code]}\r\n${lines.join('\r\n')}\r\n\r\n${message}`;
}

/**
 * The Sec-WebSocket-Accept value for `key`. crypto.hash() (Node 20.12 and
 * later) makes no Hash object: half the time of createHash() per handshake.
 */
const acceptKey = crypto.hash
  ? (key) => crypto.hash('sha1', key + GUID, 'base64')
  : (key) => crypto.createHash('sha1').update(key + GUID).digest('base64');

module.exports = { abortResponse, acceptKey, upgradeRequired };
