'use strict';

// index.d.ts compiles, and code written against the ws typings compiles with it.

const assert = require('assert');
const path = require('path');
const { execFileSync } = require('child_process');
const { it } = require('node:test');

it('index.d.ts type-checks typical ws code', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const out = execFileSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types')], { encoding: 'utf8' });
  assert.strictEqual(out, '');
});
