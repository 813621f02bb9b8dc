'use strict';

// A listener that throws gives exactly one 'uncaughtException' with its own
// error, and the rest of the events are delivered once, in order; without a
// handler the process ends as it does under ws. Each scenario runs in a child
// process (fixtures/throwing-listener.js) with ws and with ws-native.

const assert = require('assert');
const path = require('path');
const { execFile } = require('child_process');
const { describe, it } = require('node:test');

const CHILD = path.join(__dirname, 'fixtures', 'throwing-listener.js');

function run(impl, scenario, ...flags) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CHILD, impl, scenario, ...flags], { timeout: 20000 }, (err, stdout, stderr) => {
      const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      resolve({ code: err ? err.code : 0, signal: err && err.signal, lines, stderr });
    });
  });
}

/**
 * One side's view: its own events and the exceptions, in order. The order
 * of events between the two connections may differ (README: batches).
 */
function side(lines, name) {
  return lines.filter((l) => l[0] === name || l[0] === 'uncaught' || l[0] === 'end');
}

async function compare(scenario) {
  const ws = await run('ws', scenario);
  const native = await run('native', scenario);
  assert.strictEqual(ws.code, 0, ws.stderr);
  assert.strictEqual(native.code, 0, native.stderr);
  for (const name of ['server', 'client']) {
    assert.deepStrictEqual(side(native.lines, name), side(ws.lines, name), `${name} side`);
  }
  const uncaught = native.lines.filter((l) => l[0] === 'uncaught');
  return { uncaught, lines: native.lines };
}

describe('a throwing listener gives exactly one error', () => {
  // ws emits these from inside its receiver's write; a throw there leaves
  // the receiver mid-write and the connection takes no more input (it
  // hangs). ws-native reports the error and delivers the rest: up to the
  // exception both logs are equal, after it ws-native goes on.
  for (const scenario of ['message', 'ping']) {
    it(`throw in ${scenario}: the rest is delivered once, in order`, { timeout: 30000 }, async () => {
      const ws = await run('ws', scenario, '--stop-at-uncaught');
      const native = await run('native', scenario);
      assert.strictEqual(native.code, 0, native.stderr);
      const cut = native.lines.findIndex((l) => l[0] === 'uncaught') + 1;
      assert.deepStrictEqual(native.lines.slice(0, cut), ws.lines);
      const rest = native.lines.slice(cut);
      const messages = rest.filter((l) => l[1] === 'message').map((l) => l[2]);
      const before = native.lines.slice(0, cut).filter((l) => l[1] === 'message').map((l) => l[2]);
      assert.deepStrictEqual([...before, ...messages], ['m1', 'm2', 'm3', 'm4', 'm5']);
      assert.strictEqual(native.lines.filter((l) => l[0] === 'uncaught').length, 1);
      assert.deepStrictEqual(side(rest, 'server').slice(-2), [['server', 'close', 1000], ['end']]);
      assert.deepStrictEqual(side(rest, 'client').slice(-2), [['client', 'close', 1000], ['end']]);
    });
  }

  for (const scenario of ['close', 'open', 'error', 'nextTick', 'microtask', 'nextTick-each']) {
    it(`throw in ${scenario}`, { timeout: 30000 }, async () => {
      const { uncaught, lines } = await compare(scenario);
      const expected = scenario === 'nextTick-each' ? 5 : 1;
      assert.strictEqual(uncaught.length, expected, JSON.stringify(lines));
      assert.ok(uncaught.every((u) => u[1].startsWith('boom in')), JSON.stringify(uncaught));
    });
  }

  it('without a handler the process ends as under ws', { timeout: 30000 }, async () => {
    const ws = await run('ws', 'message', '--no-handler');
    const native = await run('native', 'message', '--no-handler');
    assert.strictEqual(native.code, ws.code);
    assert.strictEqual(ws.code, 1);
    const firstError = (r) => r.stderr.split('\n').find((l) => l.startsWith('Error:'));
    assert.strictEqual(firstError(native), firstError(ws));
    assert.strictEqual(firstError(ws), 'Error: boom in message listener');
    assert.deepStrictEqual(native.lines.slice(0, 3), ws.lines.slice(0, 3));
  });
});
