'use strict';

// Sec-WebSocket-Protocol: a comma-separated list of tokens, no duplicates.
// One pass over the header, so the time it takes is linear in its length
// (a regex trimming each item was quadratic in runs of white space).

const { tokenChars } = require('./validation');

const SP = 0x20;
const HTAB = 0x09;
const COMMA = 0x2c;

function isSpace(code) {
  return code === SP || code === HTAB;
}

function isToken(code) {
  return code < 128 && tokenChars[code] === 1;
}

function unexpected(header, i) {
  return new SyntaxError(i >= header.length ? 'Unexpected end of input' : `Unexpected character at index ${i}`);
}

function parse(header) {
  const protocols = new Set();
  const n = header.length;
  let i = 0;

  for (;;) {
    // White space may precede a name, but not the header itself.
    if (i > 0) while (i < n && isSpace(header.charCodeAt(i))) i++;
    const start = i;
    while (i < n && isToken(header.charCodeAt(i))) i++;
    if (i === start) throw unexpected(header, i);
    const name = header.slice(start, i);
    const end = i;
    while (i < n && isSpace(header.charCodeAt(i))) i++;

    if (i < n && header.charCodeAt(i) !== COMMA) throw unexpected(header, i);
    // Nor may white space end it.
    if (i === n && end !== n) throw unexpected(header, n);
    if (protocols.has(name)) throw new SyntaxError(`The "${name}" subprotocol is duplicated`);
    protocols.add(name);
    if (i === n) return protocols;
    i++;
  }
}

module.exports = { parse };
