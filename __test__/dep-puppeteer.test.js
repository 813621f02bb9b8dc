'use strict';

// puppeteer-core as the client: it launches Debian's chromium and talks the
// DevTools protocol over a WebSocket made with the `ws` it requires. Once
// with ws, once with ws-native (fixtures/puppeteer-client.js, a child
// process each): a page is rendered and read, an 8 MiB reply and a 4 MiB
// command cross the connection, a screenshot comes back, a second client
// connects and disconnects, two endpoints refuse, and the browser closes.
// Both runs must report the same, and the same events on every WebSocket.

const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { fork } = require('child_process');
const { describe, it } = require('node:test');

const CHROMIUM = '/usr/bin/chromium';
const FIXTURE = path.join(__dirname, 'fixtures', 'puppeteer-client.js');
const TIMEOUT = 3 * 60 * 1000;

const skip =
  !fs.existsSync(CHROMIUM) && !process.env.CI
    ? `${CHROMIUM} is missing (apt-get install chromium); this test is skipped outside CI only`
    : false;

/** Runs the fixture with `impl`; resolves with its result. The child is killed in `t.after`. */
function run(t, impl) {
  const child = fork(FIXTURE, { env: { ...process.env, WS_IMPL: impl }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => (m.ok ? resolve(m.result) : reject(new Error(`${impl}: ${m.error}\n${output.slice(-4000)}`))));
    child.once('exit', (code, signal) => reject(new Error(`${impl}: the client exited (${signal || code}) without a result\n${output.slice(-4000)}`)));
  });
}

/** A run's result without what differs from one browser to the next: ids, and how many CDP events came. */
function comparable(result) {
  return {
    ...result,
    sockets: result.sockets.map(({ messages, ...s }) => ({ ...s, url: s.url.replace(/[0-9a-f-]{36}$/, 'ID'), gotMessages: messages > 0 }))
  };
}

describe('puppeteer-core drives chromium through the ws it requires', { skip, timeout: 2 * TIMEOUT }, () => {
  const results = {};

  for (const impl of ['ws', 'ws-native']) {
    it(`with ${impl}`, { timeout: TIMEOUT }, async (t) => {
      const result = await run(t, impl);
      results[impl] = comparable(result);
      assert.strictEqual(result.h1, 'ws-native');
      assert.strictEqual(result.unicode, 'h\u00e9llo \u2713 \ud834\udd1e');
      assert.strictEqual(result.bigReply, 8 << 20);
      assert.strictEqual(result.bigCommand, `${4 << 20}:121`);
      assert.deepStrictEqual(result.screenshot, ['89504e470d0a1a0a', true]);
      assert.strictEqual(result.secondPages, 2);
      // The launch's connection, the second client's, the two refused ones.
      assert.strictEqual(result.sockets.length, 4);
      const [browser, second] = result.sockets;
      assert.ok(browser.largest > 8 << 20, 'the 8 MiB reply came as one message');
      assert.deepStrictEqual(browser.types, ['false:Buffer']);
      assert.deepStrictEqual(second.events.at(-1), ['close', 1000, '']);
    });
  }

  it('ws-native and ws give puppeteer the same', (t) => {
    if (!results.ws || !results['ws-native']) return t.skip('a run above failed');
    assert.deepStrictEqual(results['ws-native'], results.ws);
  });
});
