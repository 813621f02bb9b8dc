'use strict';

// Sec-WebSocket-Protocol: a comma-separated list of tokens, no duplicates.

const { tokenChars } = require('./validation');

function parse(header) {
  const protocols = new Set();
  const items = header.split(',');

  let index = 0;
  for (let k = 0; k < items.length; k++) {
    const item = items[k];
    const name = item.replace(/^[ \t]+/, '').replace(/[ \t]+$/, '');
    const lead = item.length - item.replace(/^[ \t]+/, '').length;

    if (name === '' || (k === 0 && lead > 0)) {
      if (k === items.length - 1 && name === '') throw new SyntaxError('Unexpected end of input');
      throw new SyntaxError(`Unexpected character at index ${index + lead}`);
    }
    for (let j = 0; j < name.length; j++) {
      const code = name.charCodeAt(j);
      if (code >= 128 || tokenChars[code] !== 1) {
        throw new SyntaxError(`Unexpected character at index ${index + lead + j}`);
      }
    }
    if (k === items.length - 1 && name.length !== item.length - lead) {
      throw new SyntaxError('Unexpected end of input');
    }
    if (protocols.has(name)) {
      throw new SyntaxError(`The "${name}" subprotocol is duplicated`);
    }
    protocols.add(name);
    index += item.length + 1;
  }

  return protocols;
}

module.exports = { parse };
