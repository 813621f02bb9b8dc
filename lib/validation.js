'use strict';

const { isUtf8 } = require('buffer');

// RFC 7230 tchar: which of the first 128 char codes may appear in a token.
const tokenChars = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") tokenChars[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) tokenChars[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) tokenChars[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) tokenChars[c] = 1;

/** Close codes an endpoint may send or receive (RFC 6455 7.4, as ws). */
function isValidStatusCode(code) {
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006;
}

function isValidUTF8(buf) {
  return isUtf8(buf);
}

/** Looked up once: isBlob() runs on every send. */
const HAS_BLOB = typeof Blob !== 'undefined';

function isBlob(value) {
  return (
    HAS_BLOB &&
    typeof value === 'object' &&
    value !== null &&
    typeof value.arrayBuffer === 'function' &&
    typeof value.type === 'string' &&
    typeof value.stream === 'function' &&
    (value[Symbol.toStringTag] === 'Blob' || value[Symbol.toStringTag] === 'File')
  );
}

module.exports = { isBlob, isValidStatusCode, isValidUTF8, tokenChars };
