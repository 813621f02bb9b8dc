'use strict';

// The client's side: what a WebSocket client on Node spends per echoed
// message, ws-native's against ws's, beside the Rust load generator (tokio,
// rustls for wss://) as what a native client costs. The server is
// bench/net-floor.js --accept, which answers each frame with a prebuilt one,
// so the clients, not the server, set the pace.
//
//   node bench/client-cost.js [--plain] [--size N] [--runs N] [--secs S]
//
// wss:// by default (the path a native TLS client would replace); --plain
// measures ws:// instead. 50 connections with 16 binary messages in flight
// each, as the echo rows of bench/run.js. Each round runs every client in
// turn against a fresh server; the table shows the median round.

const { spawn, spawnSync } = require('child_process');
const path = require('path');
const readline = require('readline');

const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const CONNS = 50;
const INFLIGHT = 16;

if (args[0] === '--client') client(args[1], Number(args[2]), args[3], Number(args[4]), Number(args[5]));
else main();

/** One client process: `impl` (native or ws) echoing against `port`. */
function client(impl, port, scheme, size, secs) {
  const WebSocket = impl === 'ws' ? require('ws') : require(path.join(__dirname, '..'));
  const payload = Buffer.alloc(size, 7);
  const sockets = [];
  let open = 0;
  let count = 0;
  let counting = false;
  const done = (result) => {
    for (const ws of sockets) ws.terminate();
    console.log(JSON.stringify(result));
    process.exit(0);
  };
  const measure = () => {
    counting = true;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    setTimeout(() => {
      const cpu = process.cpuUsage(cpu0);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      done({ msgs_per_s: count / secs, cpu_us_per_msg: (cpu.user + cpu.system) / count });
    }, secs * 1000);
  };
  for (let i = 0; i < CONNS; i++) {
    const ws = new WebSocket(`${scheme}://127.0.0.1:${port}/`, { rejectUnauthorized: false });
    sockets.push(ws);
    ws.on('error', (err) => done({ error: err.message }));
    ws.on('message', () => {
      if (counting) count++;
      ws.send(payload);
    });
    ws.on('open', () => {
      for (let k = 0; k < INFLIGHT; k++) ws.send(payload);
      // Half a second of warm-up once every connection is open.
      if (++open === CONNS) setTimeout(measure, 500);
    });
  }
}

/** Starts the floor server; resolves with its process and port. */
function startServer(tls) {
  const child = spawn(process.execPath, [path.join(__dirname, 'net-floor.js'), '--accept', ...(tls ? ['--tls'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (l) => {
      const m = /^listening (\d+)/.exec(l);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`net-floor.js exited with ${code}`)));
  });
}

/** Runs `cmd` and resolves with the JSON of its last line of output. */
function runJson(cmd, argv, opts) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'], ...opts });
    let last = '';
    readline.createInterface({ input: child.stdout }).on('line', (l) => {
      if (l.startsWith('{')) last = l;
    });
    child.on('exit', (code) => (last ? resolve(JSON.parse(last)) : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

async function main() {
  const tls = !args.includes('--plain');
  const size = Number(arg('--size', '4096'));
  const runs = Math.max(1, Number(arg('--runs', '3')));
  const secs = Number(arg('--secs', '3'));
  const loadgenDir = path.join(__dirname, 'loadgen');
  const loadgen = path.join(loadgenDir, 'target', 'release', 'ws-loadgen');
  if (spawnSync('cargo', ['build', '--release', '--quiet'], { cwd: loadgenDir, stdio: 'inherit' }).status !== 0) throw new Error('cannot build the load generator');

  const clients = {
    native: (port) => runJson(process.execPath, [__filename, '--client', 'native', port, tls ? 'wss' : 'ws', size, secs]),
    ws: (port) => runJson(process.execPath, [__filename, '--client', 'ws', port, tls ? 'wss' : 'ws', size, secs]),
    'rust (loadgen)': async (port) => {
      const r = await runJson(loadgen, ['echo', ...(tls ? ['--tls'] : []), '--conns', String(CONNS), '--inflight', String(INFLIGHT), '--size', String(size), '--binary', '--addr', `127.0.0.1:${port}`, '--secs', String(secs)]);
      return { msgs_per_s: r.msgs_per_s, cpu_us_per_msg: (r.client_cpu_ms * 1000) / r.msgs };
    }
  };
  const results = Object.fromEntries(Object.keys(clients).map((k) => [k, []]));
  for (let round = 0; round < runs; round++) {
    for (const [name, run] of Object.entries(clients)) {
      const server = await startServer(tls);
      try {
        const r = await run(server.port);
        if (r.error) throw new Error(`${name}: ${r.error}`);
        results[name].push(r);
      } finally {
        server.child.kill();
      }
    }
  }
  const median = (list, key) => list.map((r) => r[key]).sort((a, b) => a - b)[list.length >> 1];
  const wsCpu = median(results.ws, 'cpu_us_per_msg');
  console.log(`\n${tls ? 'wss' : 'ws'}:// client, echo ${size} B binary, ${CONNS} conns x ${INFLIGHT}, against bench/net-floor.js${tls ? ' --tls' : ''}; median of ${runs} rounds\n`);
  console.log('| client | msg/s | client CPU us/msg [range] | CPU / ws |');
  console.log('|---|---|---|---|');
  for (const [name, list] of Object.entries(results)) {
    const cpus = list.map((r) => r.cpu_us_per_msg).sort((a, b) => a - b);
    const cpu = median(list, 'cpu_us_per_msg');
    console.log(`| ${name} | ${Math.round(median(list, 'msgs_per_s')).toLocaleString('en-US')} | ${cpu.toFixed(2)} [${cpus[0].toFixed(2)}-${cpus[cpus.length - 1].toFixed(2)}] | ${(cpu / wsCpu).toFixed(2)}x |`);
  }
}
