'use strict';

// Sec-WebSocket-Extensions (RFC 6455 9.1): parsing into
// { name: [ { param: [value, ...] }, ... ] } and formatting back.

const { tokenChars } = require('./validation');

const SP = 0x20;
const HTAB = 0x09;

class Cursor {
  constructor(text) {
    this.text = text;
    this.i = 0;
  }

  get done() {
    return this.i >= this.text.length;
  }

  peek() {
    return this.text.charCodeAt(this.i);
  }

  fail() {
    throw new SyntaxError(
      this.done ? 'Unexpected end of input' : `Unexpected character at index ${this.i}`
    );
  }

  isToken(code) {
    return code < 128 && tokenChars[code] === 1;
  }

  skipSpace() {
    while (!this.done && (this.peek() === SP || this.peek() === HTAB)) this.i++;
  }

  token() {
    const start = this.i;
    while (!this.done && this.isToken(this.peek())) this.i++;
    if (this.i === start) this.fail();
    return this.text.slice(start, this.i);
  }

  // A quoted-string whose characters, once unescaped, are token characters.
  quoted() {
    this.i++;
    // The value is taken a run of plain characters at a time (one slice,
    // not one concatenation per character); an escape ends a run.
    let value = '';
    let start = this.i;
    for (;;) {
      if (this.done) this.fail();
      const code = this.peek();
      if (code === 0x5c) {
        value += this.text.slice(start, this.i);
        this.i++;
        if (this.done || !this.isToken(this.peek())) this.fail();
        start = this.i++;
      } else if (code === 0x22) {
        value += this.text.slice(start, this.i);
        if (value === '') this.fail();
        this.i++;
        return value;
      } else if (!this.isToken(code)) {
        this.fail();
      } else {
        this.i++;
      }
    }
  }

  expect(code) {
    if (this.peek() !== code) this.fail();
    this.i++;
  }
}

function add(target, key, value) {
  if (target[key] === undefined) target[key] = [value];
  else target[key].push(value);
}

function parse(header) {
  const c = new Cursor(header);
  const offers = Object.create(null);

  for (;;) {
    const name = c.token();
    const params = Object.create(null);
    c.skipSpace();

    while (!c.done && c.peek() === 0x3b) {
      c.i++;
      c.skipSpace();
      const param = c.token();
      let value = true;
      if (!c.done && c.peek() === 0x3d) {
        c.i++;
        value = !c.done && c.peek() === 0x22 ? c.quoted() : c.token();
      }
      add(params, param, value);
      c.skipSpace();
    }

    add(offers, name, params);
    if (c.done) break;
    c.expect(0x2c);
    c.skipSpace();
  }

  // ws rejects white space at either end of the header.
  const last = header.charCodeAt(header.length - 1);
  if (last === SP || last === HTAB) throw new SyntaxError('Unexpected end of input');
  const first = header.charCodeAt(0);
  if (first === SP || first === HTAB) throw new SyntaxError('Unexpected character at index 0');

  return offers;
}

function formatParams(name, params) {
  const parts = [name];
  for (const key of Object.keys(params)) {
    const values = Array.isArray(params[key]) ? params[key] : [params[key]];
    parts.push(values.map((v) => (v === true ? key : `${key}=${v}`)).join('; '));
  }
  return parts.join('; ');
}

function format(extensions) {
  return Object.keys(extensions)
    .map((name) => {
      const list = Array.isArray(extensions[name]) ? extensions[name] : [extensions[name]];
      return list.map((params) => formatParams(name, params)).join(', ');
    })
    .join(', ');
}

module.exports = { format, parse };
