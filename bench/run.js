'use strict';

// npm run bench: the same servers on ws-native, on ws 8.23 (with bufferutil
// and utf-8-validate), on Bun's own `ws` (uWebSockets underneath) and on
// Bun.serve, every scenario against each in one run, server CPU and RSS read
// from /proc. Prints a table of ratios against ws, and ws-native against
// Bun's `ws`.
//
//   node bench/run.js [--quick] [--runs N] [--only NAME] [--impls native,ws,bun-ws,bun-serve]
//
// Bun comes from the npm package @oven/bun-linux-x64, installed once into
// ~/.cache/ws-native/bun; without it (or with --impls native,ws) the Bun
// columns are left out.

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');

const root = path.join(__dirname, '..');
const loadgenDir = path.join(__dirname, 'loadgen');
const loadgen = path.join(loadgenDir, 'target', 'release', 'ws-loadgen');
const quick = process.argv.includes('--quick');
const only = argValue('--only');
const secs = quick ? '1' : '3';
// --runs N: every scenario N rounds, each round every server in turn (so a
// slow spell of a shared machine falls on all of them); each row is the
// median run, with the range beside it.
const runs = Math.max(1, Number(argValue('--runs')) || 1);
const TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim() || 100);
const cacheDir = path.join(process.env.WS_NATIVE_CACHE || path.join(os.homedir(), '.cache', 'ws-native'), 'bun');
const bunBin = path.join(cacheDir, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun');
// Servers may hold many connections: up to the hard limit, which root may
// raise.
const FD_LIMIT = 65536;

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
}

/**
 * Each scenario: `args` for the load generator (or `idle` connections to
 * hold), the server's flags, the metric and the target ratio against ws
 * (`vsBun`: against Bun's `ws` instead). `bun: false` leaves Bun out where
 * its `ws` can't serve the setup (TLS options, an Express server).
 * `floors` also runs bench/net-floor.js, a Node server that does no
 * WebSocket work: on `net` (or `tls` for wss rows; for deflate rows one
 * that sends the compressed frames back as they came), and through `http`'s
 * 'upgrade' event. `cpu` runs the server and the load generator on that
 * CPU only (taskset).
 */
const SCENARIOS = [
  { name: 'echo 32 B text, 50 conns x 16', args: ['echo', '--conns', '50', '--inflight', '16', '--size', '32'], metric: 'msgs_per_s', unit: 'msg/s', target: 11, floors: ['net'] },
  { name: 'echo 4 KiB binary, 50 x 16', args: ['echo', '--conns', '50', '--inflight', '16', '--size', '4096', '--binary'], metric: 'msgs_per_s', unit: 'msg/s', target: 4, floors: ['net'] },
  { name: 'echo 1 MiB binary, 4 x 2', args: ['echo', '--conns', '4', '--inflight', '2', '--size', String(1 << 20), '--binary'], metric: 'mb_per_s', unit: 'MB/s', target: 1.3 },
  { name: 'echo 4 KiB JSON, deflate, 50 x 16', args: ['echo', '--conns', '50', '--inflight', '16', '--size', '4096', '--json', '--deflate'], server: ['--deflate'], metric: 'msgs_per_s', unit: 'msg/s', target: 1, vsBun: true, floors: ['net'] },
  {
    name: 'echo 64 KiB JSON, deflate, 8 x 4, plus a plain pinger',
    args: ['echo', '--conns', '8', '--inflight', '4', '--size', String(64 << 10), '--json', '--deflate', '--probe'],
    server: ['--deflate'],
    metric: 'msgs_per_s',
    unit: 'msg/s',
    target: 3,
    eld: true,
    floors: ['net']
  },
  { name: 'wss echo 32 B, 50 x 16', args: ['echo', '--tls', '--conns', '50', '--inflight', '16', '--size', '32'], server: ['--tls'], metric: 'msgs_per_s', unit: 'msg/s', target: 2, bun: false, floors: ['net'] },
  { name: 'wss echo 4 KiB binary, 50 x 16', args: ['echo', '--tls', '--conns', '50', '--inflight', '16', '--size', '4096', '--binary'], server: ['--tls'], metric: 'msgs_per_s', unit: 'msg/s', target: 2, bun: false, floors: ['net'] },
  { name: 'RSS per idle conn, 5,000 conns, 2 s after open', idle: 5000, metric: 'kib_per_conn', unit: 'KiB', target: 0.4, lowerIsBetter: true, floors: ['net', 'http'] },
  { name: 'RSS per idle conn, 10,000 conns, after GC', idle: 10000, gc: true, metric: 'kib_per_conn', unit: 'KiB', target: 0.4, lowerIsBetter: true, floors: ['net', 'http'] },
  { name: 'RSS per idle conn, 1,000 conns, { server } on Express', idle: 1000, server: ['--express'], metric: 'kib_per_conn', unit: 'KiB', target: 0.4, lowerIsBetter: true, bun: false, floors: ['http'] },
  { name: 'RSS per idle conn, 1,000 conns, { server } on Express, after GC', idle: 1000, gc: true, server: ['--express'], metric: 'kib_per_conn', unit: 'KiB', target: 0.4, lowerIsBetter: true, bun: false, floors: ['http'] },
  { name: 'round trip p50, 1 conn, 32 B', args: ['latency', '--size', '32', '--samples', quick ? '5000' : '20000'], metric: 'p50_us', unit: 'us', target: 0.85, lowerIsBetter: true, extra: 'p99_us', floors: ['net'] },
  // The same, with the server and the load generator on one CPU: no
  // wake-up crosses CPUs, so the row shows the servers' own path.
  { name: 'round trip p50, 1 conn, 32 B, one CPU', args: ['latency', '--size', '32', '--samples', quick ? '5000' : '20000'], cpu: 0, metric: 'p50_us', unit: 'us', target: 0.85, lowerIsBetter: true, extra: 'p99_us', floors: ['net'] },
  { name: 'handshakes/s (open + close), 16 at once', args: ['handshakes', '--conns', '16'], metric: 'conns_per_s', unit: 'conn/s', target: 2.5, floors: ['net', 'http'] },
  { name: 'handshakes/s, 16 at once, { server } on Express', args: ['handshakes', '--conns', '16'], server: ['--express'], metric: 'conns_per_s', unit: 'conn/s', target: 1.5, bun: false, floors: ['http'] },
  { name: 'broadcast 32 B to 1,000 subscribers', args: ['broadcast', '--conns', '1000', '--inflight', '8', '--size', '32'], metric: 'deliveries_per_s', unit: 'msg/s', target: 20 },
  { name: 'broadcast 1 KiB to 1,000 subscribers', args: ['broadcast', '--conns', '1000', '--inflight', '8', '--size', '1024'], metric: 'deliveries_per_s', unit: 'msg/s', target: 20 },
  { name: 'broadcast 32 B to 10,000 subscribers', args: ['broadcast', '--conns', '10000', '--inflight', '8', '--size', '32'], metric: 'deliveries_per_s', unit: 'msg/s', target: 20 },
  { name: 'broadcast 1 KiB to 10,000 subscribers', args: ['broadcast', '--conns', '10000', '--inflight', '8', '--size', '1024'], metric: 'deliveries_per_s', unit: 'msg/s', target: 20 }
].filter((s) => !only || s.name.includes(only));

function ensureBun() {
  if (fs.existsSync(bunBin)) return true;
  fs.mkdirSync(cacheDir, { recursive: true });
  const r = spawnSync('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '@oven/bun-linux-x64'], { cwd: cacheDir, stdio: 'inherit' });
  return r.status === 0 && fs.existsSync(bunBin);
}

const requested = argValue('--impls');
const impls = (requested || 'native,ws,bun-ws,bun-serve').split(',').filter((i) => !i.startsWith('bun') || ensureBun() || (requested && fail(`no Bun for ${i}`)));

function fail(msg) {
  throw new Error(msg);
}

function buildLoadgen() {
  const r = spawnSync('cargo', ['build', '--release', '--quiet'], { cwd: loadgenDir, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('building the load generator failed');
}

function procCpuMs(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

function procRssKib(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

function lines(stream, onLine) {
  readline.createInterface({ input: stream }).on('line', onLine);
}

// Node flags for every Node server, from BENCH_NODE_FLAGS (space-separated):
// `--max-semi-space-size=1` fixes V8's young generation, which otherwise
// grows while thousands of connections open and shows in the idle rows.
const nodeFlags = ['--expose-gc', ...(process.env.BENCH_NODE_FLAGS || '').split(' ').filter(Boolean)];

/** The command line of a server: the runtime, its flags, the script. */
function serverCommand(impl, extra) {
  switch (impl) {
    case 'net-floor':
      return [process.execPath, [...nodeFlags, path.join(__dirname, 'net-floor.js'), ...extra]];
    case 'bun-ws':
      return [bunBin, [path.join(__dirname, 'server.js'), 'ws', ...extra]];
    case 'bun-serve':
      return [bunBin, [path.join(__dirname, 'bun-serve.js'), ...extra]];
    default:
      return [process.execPath, [...nodeFlags, path.join(__dirname, 'server.js'), impl, ...extra]];
  }
}

/** `cmd` (argv) on CPU `cpu` only, or as it is when `cpu` is undefined. */
function onCpu(cpu, cmd) {
  return cpu === undefined ? cmd : ['taskset', '-c', String(cpu), ...cmd];
}

async function startServer(impl, extra = [], cpu) {
  const [bin, args] = serverCommand(impl, extra);
  const argv = onCpu(cpu, [bin, ...args]);
  // A higher fd limit, as root may set it: exec keeps the pid ours to sample.
  const child = spawn('sh', ['-c', `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`, ...argv], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit']
  });
  const replies = [];
  const waiting = [];
  const port = await new Promise((resolve, reject) => {
    lines(child.stdout, (l) => {
      const m = /^listening (\d+)/.exec(l);
      if (m) return resolve(Number(m[1]));
      if (waiting.length) waiting.shift()(l);
      else replies.push(l);
    });
    child.on('exit', (code) => reject(new Error(`${impl} server exited with ${code}`)));
  });
  /** Sends a control line (bench/control.js); resolves with the reply, if one is due. */
  const ask = (line, reply = true) => {
    child.stdin.write(`${line}\n`);
    if (!reply) return Promise.resolve();
    return replies.length ? Promise.resolve(replies.shift()) : new Promise((resolve) => waiting.push(resolve));
  };
  return { impl, child, port, ask };
}

function stopServer(server) {
  return new Promise((resolve) => {
    server.child.removeAllListeners('exit');
    server.child.on('exit', resolve);
    server.child.kill('SIGKILL');
  });
}

/** Runs the load generator; samples the server's CPU (and event-loop delay) at its marks. */
function runLoadgen(args, server, scenario) {
  return new Promise((resolve, reject) => {
    const [bin, ...argv] = onCpu(scenario.cpu, [loadgen, ...args, '--addr', `127.0.0.1:${server.port}`, '--secs', secs]);
    const child = spawn(bin, argv, {
      stdio: ['pipe', 'pipe', 'inherit']
    });
    let cpuStart = 0;
    let cpuEnd = 0;
    let stats = null;
    let result = null;
    lines(child.stdout, (l) => {
      if (l === 'mark start') {
        cpuStart = procCpuMs(server.child.pid);
        if (scenario.eld) server.ask('reset', false);
      } else if (l === 'mark end') {
        cpuEnd = procCpuMs(server.child.pid);
        if (scenario.eld) stats = server.ask('stats');
      } else if (l.startsWith('{')) result = JSON.parse(l);
    });
    child.on('exit', async (code) => {
      if (!result) return reject(new Error(`load generator failed (${code})`));
      result.server_cpu_ms = cpuEnd - cpuStart;
      // Bun's monitorEventLoopDelay reads 0: left out.
      if (stats && !server.impl.startsWith('bun')) result.eld_p99_ms = JSON.parse(await stats).eld_p99_ms;
      resolve(result);
    });
  });
}

/**
 * Server memory per connection with `n` idle connections held open: RSS
 * growth, and its split into V8 heap, external memory and the rest
 * (native: malloc, handles, kernel-side buffers counted in RSS).
 */
async function idleMemory(server, n, gc) {
  // One connection first, so the engine and the handshake code are warm.
  await runIdle(server, 1, async () => {});
  if (gc) await server.ask('gc');
  const base = { rss_kib: procRssKib(server.child.pid), ...JSON.parse(await server.ask('stats')) };
  let held = null;
  await runIdle(server, n, async () => {
    if (gc) await server.ask('gc');
    held = { ...JSON.parse(await server.ask('stats')), rss_kib: procRssKib(server.child.pid) };
  });
  if (held === null) throw new Error(`${server.impl}: the load generator could not hold ${n} connections`);
  const per = (k) => (held[k] === undefined || base[k] === undefined ? undefined : (held[k] - base[k]) / n);
  const r = {
    kib_per_conn: per('rss_kib'),
    heap_per_conn: per('heap_kib'),
    external_per_conn: per('external_kib'),
    malloc_per_conn: per('malloc_kib')
  };
  r.other_per_conn = r.kib_per_conn - (r.heap_per_conn || 0) - (r.external_per_conn || 0);
  return r;
}

function runIdle(server, n, atReady) {
  return new Promise((resolve) => {
    const child = spawn(loadgen, ['idle', '--conns', String(n), '--addr', `127.0.0.1:${server.port}`], {
      stdio: ['pipe', 'pipe', 'inherit']
    });
    lines(child.stdout, (l) => {
      if (l.startsWith('ready')) {
        // Let the server settle (handshake garbage, deferred work) before sampling.
        setTimeout(async () => {
          await atReady();
          child.stdin.end();
        }, 2000);
      }
    });
    child.on('exit', resolve);
  });
}

async function measure(impl, scenario, flags = scenario.server) {
  const server = await startServer(impl, flags, scenario.cpu);
  try {
    if (scenario.idle) return await idleMemory(server, scenario.idle, scenario.gc);
    return await runLoadgen(scenario.args, server, scenario);
  } finally {
    await stopServer(server);
  }
}

function fmt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '-';
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(Math.abs(v) >= 10 ? 1 : 2);
}

function perMessageUs(r) {
  const msgs = r.msgs || r.deliveries || r.conns;
  return msgs && r.server_cpu_ms !== undefined ? (r.server_cpu_ms * 1000) / msgs : undefined;
}

/** The run with the median metric, carrying the range of all runs. */
function median(s, list) {
  const sorted = list.filter((r) => r && r[s.metric] !== undefined).sort((a, b) => a[s.metric] - b[s.metric]);
  if (!sorted.length) return list[0];
  const mid = { ...sorted[(sorted.length - 1) >> 1] };
  if (sorted.length > 1) mid.range = [sorted[0][s.metric], sorted[sorted.length - 1][s.metric]];
  return mid;
}

function ratio(s, results, of, to) {
  const a = results[of];
  const b = results[to];
  return a && b && b[s.metric] ? a[s.metric] / b[s.metric] : undefined;
}

function describeResult(s, r) {
  if (!r) return '-';
  let v = `${fmt(r[s.metric])} ${s.unit}`;
  if (r.range) v += ` [${fmt(r.range[0])}-${fmt(r.range[1])}]`;
  if (s.extra) v += ` (p99 ${fmt(r[s.extra])})`;
  if (s.eld && r.eld_p99_ms !== undefined) v += `, loop delay p99 ${fmt(r.eld_p99_ms)} ms`;
  if (s.eld && r.probe_p99_us !== undefined) v += `, pinger p99 ${fmt(r.probe_p99_us)} us`;
  if (s.idle) v += ` (heap ${fmt(r.heap_per_conn)}, ext ${fmt(r.external_per_conn)}, other ${fmt(r.other_per_conn)}${r.malloc_per_conn ? `, malloc ${fmt(r.malloc_per_conn)}` : ''})`;
  return v;
}

async function main() {
  buildLoadgen();
  const rows = [];
  const floors = [];
  for (const s of SCENARIOS) {
    const samples = {};
    const floorKinds = (s.floors || []).map((kind) => {
      const flags = kind === 'http' ? ['--http'] : (s.server || []).filter((f) => f === '--tls' || f === '--deflate');
      return { kind: flags.includes('--tls') ? 'tls' : flags.includes('--deflate') ? 'deflate' : kind, flags, samples: [] };
    });
    for (let round = 0; round < runs; round++) {
      for (const impl of impls) {
        // Bun.serve is a different program: it has no Express or TLS-options setup here.
        if (s.bun === false && impl.startsWith('bun')) continue;
        (samples[impl] || (samples[impl] = [])).push(await measure(impl, s));
      }
      for (const f of floorKinds) f.samples.push(await measure('net-floor', s, f.flags));
    }
    const results = {};
    for (const impl of Object.keys(samples)) results[impl] = median(s, samples[impl]);
    for (const f of floorKinds) floors.push([s, f.kind, median(s, f.samples), results.ws]);
    const vsWs = ratio(s, results, 'native', 'ws');
    const vsBun = ratio(s, results, 'native', 'bun-ws');
    const judged = s.vsBun ? vsBun : vsWs;
    const ok = judged === undefined ? '' : s.lowerIsBetter ? judged <= s.target : judged >= s.target;
    rows.push({ s, results, vsWs, vsBun, ok });
    console.error(`${s.name}: ${impls.map((i) => `${i} ${describeResult(s, results[i])}`).join(', ')}`);
  }

  const cpu = os.cpus();
  console.log(`\nMachine: ${cpu.length} x ${cpu[0].model.trim()}, Node ${process.version}${impls.some((i) => i.startsWith('bun')) ? `, Bun ${spawnSync(bunBin, ['--version']).stdout.toString().trim()}` : ''}, ${new Date().toISOString().slice(0, 10)}`);
  console.log(`Each scenario: a fresh server process per run; ${secs} s measured after 0.5 s warm-up; ${runs > 1 ? `median of ${runs} interleaved runs [range]; ` : ''}load generator (Rust, 1 thread) on the same machine.\n`);
  const others = impls.filter((i) => i !== 'native' && i !== 'ws');
  const head = ['scenario', ...impls, 'native / ws', ...others.map((i) => `${i} / ws`), 'target', 'met', 'native / bun-ws', ...impls.map((i) => `server CPU us/msg ${i}`)];
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map(() => '---').join('|')}|`);
  for (const { s, results, vsWs, vsBun, ok } of rows) {
    const x = (v) => (v === undefined ? '-' : `${fmt(v)}x`);
    const target = `${s.lowerIsBetter ? '<=' : '>='} ${s.target}x${s.vsBun ? ' bun-ws' : ''}`;
    console.log(
      `| ${[
        s.name,
        ...impls.map((i) => describeResult(s, results[i])),
        x(vsWs),
        ...others.map((i) => x(ratio(s, results, i, 'ws'))),
        target,
        ok === '' ? '-' : ok ? 'yes' : 'no',
        x(vsBun),
        ...impls.map((i) => (results[i] ? fmt(perMessageUs(results[i])) : '-'))
      ].join(' | ')} |`
    );
  }
  if (floors.length) {
    console.log('\nFloors: bench/net-floor.js, a Node server that does no WebSocket work (canned 101, a prebuilt frame per frame; with deflate, each compressed frame sent back as it came), on `net`/`tls` or behind `http`\'s \'upgrade\'.\n');
    console.log('| scenario | floor | result | floor / ws | ws-native / floor |');
    console.log('|---|---|---|---|---|');
    for (const [s, kind, floor, ref] of floors) {
      const native = rowsNative(rows, s);
      const x = (a, b) => (a && b && b[s.metric] ? `${fmt(a[s.metric] / b[s.metric])}x` : '-');
      console.log(`| ${s.name} | ${kind} | ${describeResult(s, floor)} | ${x(floor, ref)} | ${x(native, floor)} |`);
    }
  }
}

function rowsNative(rows, s) {
  const row = rows.find((r) => r.s === s);
  return row && row.results.native;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
