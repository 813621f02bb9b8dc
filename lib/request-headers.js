'use strict';

// The request headers the server side of a handshake reads, without making
// Node build `req.headers`. An http.IncomingMessage builds that object from
// `rawHeaders` the first time it is asked for: about 3 us for a handshake's
// six headers, a twentieth of a whole `{ server }` handshake, and most
// applications never ask. Once it is built (an application read or changed
// it), it is what counts, as under ws.

const { IncomingMessage } = require('http');

// IncomingMessage's slots for its headers (null until built) and for how
// many of `rawHeaders` count (a server's maxHeadersCount may cut them).
const probe = new IncomingMessage(null);
const slots = Object.getOwnPropertySymbols(probe);
const kHeaders = slots.find((s) => s.description === 'kHeaders');
const kHeadersCount = slots.find((s) => s.description === 'kHeadersCount');
const LAZY = kHeaders !== undefined && kHeadersCount !== undefined && probe[kHeaders] === null;

/** The headers read, as Node names them; each of them Node joins with ', ' when repeated. */
class HandshakeHeaders {
  constructor() {
    this.upgrade = undefined;
    this.origin = undefined;
    this['sec-websocket-key'] = undefined;
    this['sec-websocket-version'] = undefined;
    this['sec-websocket-protocol'] = undefined;
    this['sec-websocket-extensions'] = undefined;
    this['sec-websocket-origin'] = undefined;
  }
}

const NAMES = new Set(Object.keys(new HandshakeHeaders()));
/** Whether a name of this length may be one of NAMES: most raw names are passed over unlowered. */
const LENGTHS = [];
for (const name of NAMES) LENGTHS[name.length] = true;

/**
 * `req`'s headers, for the names above: `req.headers` itself once built (or
 * when `req` is not an IncomingMessage, or has a `headers` of its own), else
 * the same values read from `req.rawHeaders`.
 */
function handshakeHeaders(req) {
  if (!LAZY || req[kHeaders] !== null || Object.hasOwn(req, 'headers') || !Array.isArray(req.rawHeaders)) return req.headers;
  const raw = req.rawHeaders;
  const count = Math.min(req[kHeadersCount], raw.length);
  const headers = new HandshakeHeaders();
  for (let i = 0; i + 1 < count; i += 2) {
    const name = raw[i];
    if (LENGTHS[name.length] !== true) continue;
    const lower = name.toLowerCase();
    if (!NAMES.has(lower)) continue;
    const prev = headers[lower];
    headers[lower] = prev === undefined ? raw[i + 1] : `${prev}, ${raw[i + 1]}`;
  }
  return headers;
}

/**
 * Gives a request made here (a native listener's) `raw` as its headers,
 * which Node builds into `req.headers` only when asked, as for its own.
 */
function setRawHeaders(req, raw) {
  req.rawHeaders = raw;
  if (LAZY) {
    req[kHeadersCount] = raw.length & ~1;
  } else {
    const headers = {};
    for (let i = 0; i + 1 < raw.length; i += 2) req._addHeaderLine(raw[i], raw[i + 1], headers);
    req.headers = headers;
  }
}

module.exports = { handshakeHeaders, setRawHeaders };
