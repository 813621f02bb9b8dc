'use strict';

// index.d.ts compiles, and code written against the ws typings compiles with it.

const assert = require('assert');
const path = require('path');
const { execFile } = require('child_process');

const { it, track } = require('./helpers');

it('index.d.ts type-checks typical ws code', { timeout: 180000 }, async () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const out = await new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [tsc, '-p', path.join(__dirname, 'types')], { encoding: 'utf8' }, (err, stdout, stderr) =>
      err ? reject(new Error(`tsc failed (${err.code || err.signal}):\n${stdout}${stderr}`)) : resolve(stdout)
    );
    track(child);
  });
  assert.strictEqual(out, '');
});
