'use strict';

// ws-native behind a Next.js custom server, with a real browser as the
// client. The one-page app in fixtures/next-app is built for production once
// (the build is reused while its sources and Next's version are unchanged);
// fixtures/next-app/server.js serves it with Next's request handler, takes
// the upgrades on /ws with a noServer WebSocketServer and hands every other
// upgrade to Next's upgrade handler. Debian's chromium, driven by
// playwright-core, loads the page, whose WebSocket sends short text, 200 KB of
// text, non-ASCII text and binary, and checks the echoes. The same runs with
// ws, and both must report the same.

const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { execFile, fork } = require('child_process');
const { describe, it, before, after } = require('node:test');

const FIXTURE = path.join(__dirname, 'fixtures', 'next-app');
const STAMP = path.join(FIXTURE, '.next', 'ws-native-test-build.stamp');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
];
const BUILD_TIMEOUT = 10 * 60 * 1000;
const STEP_TIMEOUT = 60 * 1000;

const skip =
  !fs.existsSync(CHROMIUM) && !process.env.CI
    ? `${CHROMIUM} is missing (apt-get install chromium); this test is skipped outside CI only`
    : false;

const childEnv = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production' };

/** A hash of what the production build depends on. */
function sourceHash() {
  const hash = crypto.createHash('sha256');
  for (const pkg of ['next', 'react', 'react-dom']) hash.update(`${pkg}@${require(`${pkg}/package.json`).version}\n`);
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(dir, entry.name);
      const rel = path.relative(FIXTURE, full);
      // server.js is the custom server: Node runs it, the build never sees it.
      if (['.next', 'node_modules', 'server.js'].includes(rel)) continue;
      if (entry.isDirectory()) walk(full);
      else hash.update(`${rel}\0`).update(fs.readFileSync(full)).update('\0');
    }
  };
  walk(FIXTURE);
  return hash.digest('hex');
}

/** Runs `next build` unless the stamp says the last build had these sources. */
function buildOnce() {
  const hash = sourceHash();
  const built =
    fs.existsSync(path.join(FIXTURE, '.next', 'BUILD_ID')) &&
    fs.existsSync(STAMP) &&
    fs.readFileSync(STAMP, 'utf8').trim() === hash;
  if (built) return Promise.resolve({ skipped: true, ms: 0 });

  const started = Date.now();
  const nextBin = require.resolve('next/dist/bin/next');
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [nextBin, 'build', FIXTURE],
      { cwd: FIXTURE, env: childEnv, timeout: BUILD_TIMEOUT, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const tail = `${stdout}\n${stderr}`.slice(-4000);
          reject(new Error(`next build failed (${err.signal || err.code}):\n${tail}`));
          return;
        }
        fs.writeFileSync(STAMP, `${hash}\n`);
        resolve({ skipped: false, ms: Date.now() - started });
      }
    );
  });
}

/**
 * Starts the custom server with `impl` as its WebSocket package. Resolves
 * once it listens and Next is prepared; the child is killed in `t.after`.
 */
async function startServer(t, impl) {
  const child = fork(path.join(FIXTURE, 'server.js'), {
    cwd: FIXTURE,
    env: { ...childEnv, WS_IMPL: impl },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });

  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));

  const events = [];
  const waiters = [];
  child.on('message', (event) => {
    events.push(event);
    for (const w of waiters.slice()) {
      if (w.match(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  });
  child.once('exit', (code, signal) => {
    for (const w of waiters.splice(0)) {
      w.reject(new Error(`custom server exited (${signal || code}) while waiting for ${w.what}:\n${output.slice(-4000)}`));
    }
  });

  /** Resolves with the first event (past or future) that `match` accepts. */
  const waitFor = (what, match) => {
    const seen = events.find(match);
    if (seen) return Promise.resolve(seen);
    if (child.exitCode !== null || child.signalCode !== null) {
      return Promise.reject(new Error(`custom server is not running (waiting for ${what}):\n${output.slice(-4000)}`));
    }
    return new Promise((resolve, reject) => waiters.push({ what, match, resolve, reject }));
  };

  const ready = await waitFor('ready', (e) => e.type === 'ready');
  return { port: ready.port, ready, events, waitFor, output: () => output };
}

/**
 * Sends a WebSocket upgrade request for `urlPath` on a raw socket. The
 * socket is destroyed in `t.after`.
 */
async function rawUpgrade(t, port, urlPath) {
  const sock = net.connect(port, '127.0.0.1');
  t.after(() => sock.destroy());
  sock.on('error', () => {});
  let received = '';
  sock.on('data', (d) => (received += d.toString('latin1')));
  const closed = new Promise((resolve) => sock.once('close', resolve));
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.write(
    `GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`
  );
  return { sock, closed, received: () => received };
}

/** Rejects after `ms` with `message`, to bound a wait on the other side. */
function within(ms, promise, message) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** One full run against the custom server using `impl`; returns what it saw. */
async function scenario(t, browser, impl) {
  const server = await startServer(t, impl);
  const origin = `http://127.0.0.1:${server.port}`;

  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));

  const response = await page.goto(`${origin}/`, { waitUntil: 'load', timeout: STEP_TIMEOUT });
  assert.strictEqual(response.status(), 200, 'Next serves the page');
  assert.strictEqual(await page.textContent('h1'), 'ws-native echo', 'the page is rendered by Next');

  await page.waitForFunction(() => window.__wsEcho && window.__wsEcho.done, null, { timeout: STEP_TIMEOUT });
  const echo = await page.evaluate(() => window.__wsEcho);
  const status = await page.textContent('#status');
  const listed = await page.$$eval('#results li', (items) => items.map((li) => li.dataset.echoed));

  // The server's side of the same conversation.
  const serverClose = await within(STEP_TIMEOUT, server.waitFor('close', (e) => e.type === 'close'), 'the server saw no close');

  // Upgrades on other paths go to Next, not to the WebSocketServer. '/' is
  // a page, so Next's router ends that socket; for a path Next does not
  // know, it leaves the socket to whoever else listens (nobody here).
  const outcomes = [];
  for (const urlPath of ['/', '/not-a-websocket?x=1']) {
    const raw = await rawUpgrade(t, server.port, urlPath);
    const done = await within(
      STEP_TIMEOUT,
      server.waitFor(`Next's upgrade handler on ${urlPath}`, (e) => e.type === 'next-upgrade-done' && e.url === urlPath),
      `Next's upgrade handler did not finish for ${urlPath}`
    );
    let endedByServer = false;
    if (urlPath === '/') {
      await within(STEP_TIMEOUT, raw.closed, `Next did not end the upgrade socket for ${urlPath}`);
      endedByServer = true;
    }
    raw.sock.destroy();
    outcomes.push({ urlPath, error: done.error || null, endedByServer, response: raw.received() });
  }

  const connections = server.events.filter((e) => e.type === 'connection').map((e) => e.url);
  const upgrades = server.events.filter((e) => e.type === 'upgrade').map((e) => [e.url, e.route]);
  const serverMessages = server.events
    .filter((e) => e.type === 'message')
    .map((e) => ({ binary: e.isBinary, bytes: e.bytes, sha1: e.sha1 }));
  const serverErrors = server.events.filter((e) => e.type === 'ws-error');

  return { echo, status, listed, pageErrors, serverClose, outcomes, connections, upgrades, serverMessages, serverErrors };
}

function checkRun(run, impl) {
  const { echo } = run;
  assert.strictEqual(echo.error, null, `${impl}: the page reported an error`);
  assert.deepStrictEqual(run.pageErrors, [], `${impl}: no script errors on the page`);
  assert.deepStrictEqual(
    echo.results.map((r) => r.name),
    ['short text', '200 KB text', 'non-ASCII text', 'binary']
  );
  for (const r of echo.results) {
    assert.strictEqual(r.echoed, true, `${impl}: ${r.name} echoed unchanged`);
    assert.strictEqual(r.replyType, r.binary ? 'arraybuffer' : 'string', `${impl}: ${r.name} reply type`);
    assert.strictEqual(r.replyBytes, r.bytes, `${impl}: ${r.name} reply size`);
  }
  const [short, big, unicode, binary] = echo.results;
  assert.strictEqual(short.binary, false);
  assert.strictEqual(big.bytes, 200 * 1024);
  assert.strictEqual(big.chars, 200 * 1024);
  assert.ok(unicode.bytes > unicode.chars, 'the non-ASCII text has multi-byte characters');
  assert.strictEqual(binary.binary, true);
  assert.strictEqual(binary.bytes, 70000);

  assert.strictEqual(run.status, 'all 4 echoed');
  assert.deepStrictEqual(run.listed, ['true', 'true', 'true', 'true']);
  assert.deepStrictEqual(echo.close, { code: 1000, reason: 'page done', wasClean: true });

  // What the server received is what the page sent, byte for byte.
  assert.deepStrictEqual(
    run.serverMessages,
    echo.results.map((r) => ({ binary: r.binary, bytes: r.bytes, sha1: r.sha1 }))
  );
  assert.deepStrictEqual(run.serverClose, { type: 'close', code: 1000, reason: 'page done' });
  assert.deepStrictEqual(run.serverErrors, []);

  assert.deepStrictEqual(run.connections, ['/ws'], `${impl}: one WebSocket connection, the page's`);
  assert.deepStrictEqual(run.upgrades, [
    ['/ws', 'ws'],
    ['/', 'next'],
    ['/not-a-websocket?x=1', 'next']
  ]);
  for (const o of run.outcomes) {
    assert.strictEqual(o.error, null, `${impl}: Next's upgrade handler failed on ${o.urlPath}`);
    assert.ok(!o.response.startsWith('HTTP/1.1 101'), `${impl}: no 101 for ${o.urlPath}`);
  }
  assert.strictEqual(run.outcomes[0].endedByServer, true);
}

describe('Next.js custom server with a browser client', { skip, timeout: BUILD_TIMEOUT + 10 * 60 * 1000 }, () => {
  let browser = null;
  const runs = {};

  before(
    async () => {
      const build = await buildOnce();
      process.stderr.write(
        build.skipped
          ? 'next-app: production build is up to date, not rebuilt\n'
          : `next-app: production build took ${(build.ms / 1000).toFixed(1)} s\n`
      );
      const { chromium } = require('playwright-core');
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: STEP_TIMEOUT });
    },
    { timeout: BUILD_TIMEOUT + STEP_TIMEOUT }
  );

  after(async () => {
    if (browser) await browser.close();
  });

  for (const impl of ['ws-native', 'ws']) {
    it(`echoes through ${impl} on /ws and leaves other upgrades to Next`, { timeout: 5 * STEP_TIMEOUT }, async (t) => {
      const run = await scenario(t, browser, impl);
      runs[impl] = run;
      checkRun(run, impl);
    });
  }

  it('ws-native and ws give the page and the server the same conversation', (t) => {
    if (!runs.ws || !runs['ws-native']) {
      t.skip('a run above failed');
      return;
    }
    assert.deepStrictEqual(runs['ws-native'], runs.ws);
  });
});
