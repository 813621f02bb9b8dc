'use strict';

// The swap as users make it: an app whose dependencies use ws gets
// `"overrides": { "ws": "file:<this project>" }` in its package.json, and
// after `npm install` every require('ws') and import 'ws' in its tree must
// reach ws-native. The app is made in a temporary directory; a child node
// process inside it does the checks and reports them as JSON.

const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFile } = require('child_process');
const { describe, it } = require('node:test');

const ROOT = path.join(__dirname, '..');
const OWN = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

// Packages that require or import ws, and what they need beside it. The
// versions are the ones this checkout has installed, so that npm finds them
// in its cache; the fallbacks are for a checkout without them.
const DEPENDENCIES = {
  'socket.io': '4.8.4', // engine.io and socket.io-adapter require ws
  'socket.io-client': '4.8.4', // engine.io-client imports ws (ESM) or requires it (CJS)
  'engine.io-client': '6.6.8',
  mqtt: '5.16.0', // requires ws for ws:// brokers
  'graphql-ws': '6.4.2', // ws is a peer dependency
  graphql: '16.15.0',
  'puppeteer-core': '24.43.1' // requires ws for the DevTools connection
};
const USERS_OF_WS = ['engine.io', 'engine.io-client', 'graphql-ws', 'mqtt', 'puppeteer-core', 'socket.io-adapter'];

const INSTALL_TIMEOUT = 10 * 60 * 1000;

function installedVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/** The environment of a plain shell: none of the npm_* variables of `npm test`. */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  env.NO_UPDATE_NOTIFIER = '1';
  return env;
}

function run(cmd, args, options) {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: cleanEnv(), maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL', ...options },
      (err, stdout, stderr) => resolve({ code: err ? (err.killed ? 'killed' : err.code) : 0, stdout, stderr })
    );
  });
}

// Run inside the app. For each installed package that declares ws, resolves
// ws from its directory the CommonJS way, and imports it the ESM way from a
// probe module placed in that directory; looks for any copy of the real ws
// left in the tree; then talks socket.io over the swapped ws, with the
// client loaded as ESM and the server as CommonJS.
const CHECK_MJS = `
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocketDefault, { WebSocket as NamedWebSocket, WebSocketServer } from 'ws';
import { io as connect } from 'socket.io-client';

const require = createRequire(import.meta.url);
const MAIN = process.argv[2];
const native = require(MAIN);
const appDir = path.dirname(fileURLToPath(import.meta.url));
const modules = path.join(appDir, 'node_modules');

function ownerOf(file) {
  let dir = path.dirname(file);
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return { dir, name: JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name };
}

// Every package directory under node_modules, nested ones included; links
// (the overridden ws is one) are listed, not entered.
function packages(dir, out = []) {
  if (!fs.existsSync(dir)) return out;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.name.startsWith('@') && entry.isDirectory()) {
      packages(full, out);
      continue;
    }
    out.push({ dir: full, link: entry.isSymbolicLink() });
    if (entry.isDirectory()) packages(path.join(full, 'node_modules'), out);
  }
  return out;
}

const all = packages(modules);
const report = { dependents: [], realWsCopies: [], links: [], app: {}, socketio: {} };

for (const { dir, link } of all) {
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (link) report.links.push({ at: path.relative(appDir, dir), to: fs.realpathSync(dir), name: pj.name });
  if (pj.name === 'ws' && !link) report.realWsCopies.push(path.relative(appDir, dir));
  const declares = ['dependencies', 'optionalDependencies', 'peerDependencies'].filter((k) => pj[k] && pj[k].ws);
  if (link || declares.length === 0) continue;

  const cjsPath = require.resolve('ws', { paths: [dir] });
  const probe = path.join(dir, '.ws-native-probe.mjs');
  fs.writeFileSync(probe, "export * as ns from 'ws';\\nexport const url = import.meta.resolve('ws');\\n");
  const esm = await import(pathToFileURL(probe).href);
  const esmPath = fileURLToPath(esm.url);
  report.dependents.push({
    name: pj.name,
    declares,
    cjsOwner: ownerOf(cjsPath).name,
    cjsDir: ownerOf(cjsPath).dir,
    cjsSame: require(cjsPath) === native,
    esmOwner: ownerOf(esmPath).name,
    esmDir: ownerOf(esmPath).dir,
    esmSame: esm.ns.default === native && esm.ns.WebSocketServer === native.WebSocketServer
  });
}

report.app = {
  importDefault: WebSocketDefault === native,
  importNamed: NamedWebSocket === native && WebSocketServer === native.WebSocketServer,
  importResolvesTo: ownerOf(fileURLToPath(import.meta.resolve('ws'))).name,
  dynamicImport: (await import('ws')).default === native,
  require: require('ws') === native,
  requireResolvesTo: ownerOf(require.resolve('ws')).name
};

// socket.io over the swapped ws: server through require, client through import.
const { Server } = require('socket.io');
const server = http.createServer();
const ioServer = new Server(server, { transports: ['websocket'] });
const serverSide = new Promise((resolve) => {
  ioServer.on('connection', (socket) => {
    socket.on('echo', (msg, ack) => ack({ msg, transport: socket.conn.transport.name }));
    resolve(socket);
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const client = connect('http://127.0.0.1:' + server.address().port, { transports: ['websocket'], reconnection: false });
try {
  await new Promise((resolve, reject) => {
    client.once('connect', resolve);
    client.once('connect_error', reject);
  });
  const socket = await serverSide;
  const reply = await client.timeout(10000).emitWithAck('echo', 'héllo 🌍');
  report.socketio = {
    reply,
    clientSocketIsNative: client.io.engine.transport.ws instanceof native.WebSocket,
    serverIsNative: ioServer.engine.ws instanceof native.WebSocketServer,
    serverSocketIsNative: socket.conn.transport.socket instanceof native.WebSocket
  };
} finally {
  client.close();
  ioServer.close();
  server.close();
}

process.stdout.write(JSON.stringify(report));
`;

/** The ws nodes of `npm ls ws --json`, without entering the ws nodes themselves. */
function wsNodes(tree, trail = [], out = []) {
  for (const [name, node] of Object.entries(tree.dependencies || {})) {
    if (name === 'ws') out.push({ via: trail.join(' > ') || '(app)', ...node });
    else wsNodes(node, [...trail, name], out);
  }
  return out;
}

describe('npm overrides swap ws for ws-native', () => {
  it('every require and import of ws in an app tree reaches ws-native', { timeout: INSTALL_TIMEOUT + 2 * 60 * 1000 }, async (t) => {
    const app = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-native-overrides-'));
    t.after(() => fs.rmSync(app, { recursive: true, force: true }));

    const dependencies = {};
    for (const [name, fallback] of Object.entries(DEPENDENCIES)) dependencies[name] = installedVersion(name) || fallback;
    const pkg = {
      name: 'ws-native-overrides-app',
      version: '1.0.0',
      private: true,
      type: 'commonjs',
      dependencies,
      overrides: { ws: `file:${ROOT}` }
    };
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');

    const started = Date.now();
    const install = await run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'],
      { cwd: app, timeout: INSTALL_TIMEOUT }
    );
    const installMs = Date.now() - started;
    t.diagnostic(`npm install took ${(installMs / 1000).toFixed(1)} s`);
    assert.strictEqual(install.code, 0, `npm install failed:\n${install.stdout}\n${install.stderr}`.slice(-6000));
    // The override is a link to this checkout, whose install script found
    // the addon already built (otherwise it ran cargo here).
    const build = /ws-native: .*(is up to date|built .*)/.exec(install.stdout);
    if (build) t.diagnostic(`install script: ${build[0]}`);

    fs.writeFileSync(path.join(app, 'check.mjs'), CHECK_MJS);
    const check = await run(process.execPath, ['check.mjs', ROOT], { cwd: app, timeout: 60 * 1000 });
    assert.strictEqual(check.code, 0, `check failed:\n${check.stdout}\n${check.stderr}`.slice(-6000));
    const report = JSON.parse(check.stdout);

    // node_modules/ws is a link to this checkout, and no real ws is left.
    assert.deepStrictEqual(
      report.links.filter((l) => l.name === OWN.name),
      [{ at: path.join('node_modules', 'ws'), to: fs.realpathSync(ROOT), name: OWN.name }]
    );
    assert.deepStrictEqual(report.realWsCopies, []);

    // Each package that declares ws gets ws-native, through require and import.
    const names = report.dependents.map((d) => d.name).sort();
    for (const name of USERS_OF_WS) assert.ok(names.includes(name), `${name} is in the tree and declares ws`);
    for (const d of report.dependents) {
      assert.strictEqual(d.cjsOwner, OWN.name, `require('ws') from ${d.name}`);
      assert.strictEqual(d.cjsDir, fs.realpathSync(ROOT), `require('ws') from ${d.name}`);
      assert.strictEqual(d.cjsSame, true, `require('ws') from ${d.name} is ws-native's module`);
      assert.strictEqual(d.esmOwner, OWN.name, `import 'ws' from ${d.name}`);
      assert.strictEqual(d.esmDir, fs.realpathSync(ROOT), `import 'ws' from ${d.name}`);
      assert.strictEqual(d.esmSame, true, `import 'ws' from ${d.name} is ws-native's module`);
    }

    // And so does the app itself.
    assert.deepStrictEqual(report.app, {
      importDefault: true,
      importNamed: true,
      importResolvesTo: OWN.name,
      dynamicImport: true,
      require: true,
      requireResolvesTo: OWN.name
    });

    // socket.io works over it, and both of its ends use ws-native.
    assert.deepStrictEqual(report.socketio, {
      reply: { msg: 'héllo 🌍', transport: 'websocket' },
      clientSocketIsNative: true,
      serverIsNative: true,
      serverSocketIsNative: true
    });

    // npm ls shows every ws in the app's tree as ws-native, linked to here.
    const lsText = await run('npm', ['ls', 'ws'], { cwd: app, timeout: 60 * 1000 });
    const lsJson = await run('npm', ['ls', 'ws', '--json'], { cwd: app, timeout: 60 * 1000 });
    const tree = JSON.parse(lsJson.stdout);
    const nodes = wsNodes(tree);
    assert.ok(nodes.length >= USERS_OF_WS.length, `npm ls lists ws under its users:\n${lsText.stdout}`);
    for (const node of nodes) assert.strictEqual(node.version, OWN.version, `ws under ${node.via}:\n${lsText.stdout}`);
    const link = `ws@npm:${OWN.name}@${OWN.version} -> ./${path.relative(app, fs.realpathSync(ROOT))}`;
    assert.ok(lsText.stdout.includes(link), `npm ls shows ${link}:\n${lsText.stdout}`);
    // npm ls walks into the linked checkout and reports its own dev tree
    // (which has the real ws for the tests) as not matching the override;
    // those are the only problems it may report.
    const outside = (tree.problems || []).filter((p) => !p.includes(`${fs.realpathSync(ROOT)}${path.sep}`));
    assert.deepStrictEqual(outside, [], `npm ls problems outside the linked checkout:\n${lsText.stderr}`);
  });
});
