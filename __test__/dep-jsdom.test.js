'use strict';

// graphql-ws under vitest's jsdom environment, as graphql-ws's own tests run:
// there the global Uint8Array, ArrayBuffer, ... come from another V8
// context, and Node's Buffers are not instances of them. The scenarios live
// in __test__/jsdom/ (a vitest file and its config); this test runs vitest as
// a child process and expects it to pass.

const assert = require('assert');
const path = require('path');
const { spawn } = require('child_process');
const { it } = require('node:test');

const ROOT = path.join(__dirname, '..');
const CONFIG = path.join(__dirname, 'jsdom', 'vitest.config.mjs');

// The child is killed past this, before the test's own limit, so that its
// output can still be shown.
const CHILD_LIMIT_MS = 18000;

it('graphql-ws, ws and ws-native under vitest with the jsdom environment', { timeout: 20000 }, async (t) => {
  const child = spawn('npx', ['--no', 'vitest', 'run', '--config', CONFIG], {
    cwd: ROOT,
    // Its own process group, so that vitest's workers go with it.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', CI: '1' }
  });
  let running = true;
  const killGroup = () => {
    if (!running) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  t.after(killGroup);

  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));

  let overran = false;
  const timer = setTimeout(() => {
    overran = true;
    killGroup();
  }, CHILD_LIMIT_MS);

  const [code, signal] = await new Promise((resolve) => {
    child.on('error', (err) => {
      output += `\nspawn failed: ${err.message}`;
      resolve([null, null]);
    });
    child.on('close', (c, s) => resolve([c, s]));
  });
  running = false;
  clearTimeout(timer);

  const why = overran ? `killed after ${CHILD_LIMIT_MS} ms` : `exit code ${code}, signal ${signal}`;
  assert.strictEqual(code, 0, `vitest (jsdom) failed: ${why}\n${output}`);
  assert.match(output, /Tests\s+\d+ passed/, output);
});
