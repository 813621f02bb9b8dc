'use strict';

// npm run bench: the same echo server on ws-native and on ws (with
// bufferutil and utf-8-validate), every scenario against each in one run,
// server CPU and RSS read from /proc. Prints a table of ratios.
//
//   node bench/run.js [--quick] [--only NAME] [--impls native,ws]

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
const impls = (argValue('--impls') || 'native,ws').split(',');
const secs = quick ? '1' : '3';
const TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim() || 100);

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
}

const SCENARIOS = [
  { name: 'echo 32 B text, 50 conns x 16', args: ['echo', '--conns', '50', '--inflight', '16', '--size', '32'], metric: 'msgs_per_s', unit: 'msg/s', target: 4 },
  { name: 'echo 4 KiB binary, 50 x 16', args: ['echo', '--conns', '50', '--inflight', '16', '--size', '4096', '--binary'], metric: 'msgs_per_s', unit: 'msg/s', target: 3 },
  { name: 'echo 1 MiB binary, 4 x 2', args: ['echo', '--conns', '4', '--inflight', '2', '--size', String(1 << 20), '--binary'], metric: 'mb_per_s', unit: 'MB/s', target: 1.3 },
  { name: 'echo 4 KiB JSON, deflate, 50 x 16', args: ['echo', '--conns', '50', '--inflight', '16', '--size', '4096', '--json', '--deflate'], server: ['--deflate'], metric: 'msgs_per_s', unit: 'msg/s', target: 5 },
  { name: 'RSS per idle conn, 5000 conns', idle: 5000, metric: 'kib_per_conn', unit: 'KiB', target: 0.4, lowerIsBetter: true },
  { name: 'round trip p50, 1 conn, 32 B', args: ['latency', '--size', '32', '--samples', quick ? '5000' : '20000'], metric: 'p50_us', unit: 'us', target: 0.8, lowerIsBetter: true, extra: 'p99_us', floor: true },
  { name: 'handshakes/s (open + close), 8 at once', args: ['handshakes', '--conns', '8'], metric: 'conns_per_s', unit: 'conn/s', target: 1 },
  { name: 'broadcast to 1000 clients, 32 B', args: ['broadcast', '--conns', '1000', '--inflight', '8', '--size', '32'], metric: 'deliveries_per_s', unit: 'msg/s', target: 3 }
].filter((s) => !only || s.name.includes(only));

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

async function startServer(impl, extra = []) {
  const script = impl === 'net-floor' ? ['net-floor.js'] : ['server.js', impl];
  const child = spawn(process.execPath, [path.join(__dirname, script[0]), ...script.slice(1), ...extra], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit']
  });
  const port = await new Promise((resolve, reject) => {
    lines(child.stdout, (l) => {
      const m = /^listening (\d+)/.exec(l);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { child, port };
}

function stopServer(server) {
  return new Promise((resolve) => {
    server.child.removeAllListeners('exit');
    server.child.on('exit', resolve);
    server.child.kill('SIGKILL');
  });
}

/** Runs the load generator; samples the server's CPU at its marks. */
function runLoadgen(args, server) {
  return new Promise((resolve, reject) => {
    const child = spawn(loadgen, [...args, '--addr', `127.0.0.1:${server.port}`, '--secs', secs], {
      stdio: ['pipe', 'pipe', 'inherit']
    });
    let cpuStart = 0;
    let cpuEnd = 0;
    let result = null;
    lines(child.stdout, (l) => {
      if (l === 'mark start') cpuStart = procCpuMs(server.child.pid);
      else if (l === 'mark end') cpuEnd = procCpuMs(server.child.pid);
      else if (l.startsWith('{')) result = JSON.parse(l);
    });
    child.on('exit', (code) => {
      if (!result) return reject(new Error(`load generator failed (${code})`));
      result.server_cpu_ms = cpuEnd - cpuStart;
      resolve(result);
    });
  });
}

/** Server RSS growth per connection with `n` idle connections held open. */
async function idleRss(server, n) {
  // One connection first, so the engine and the handshake code are warm.
  await runIdle(server, 1, () => {});
  const base = procRssKib(server.child.pid);
  let rss = 0;
  await runIdle(server, n, () => {
    rss = procRssKib(server.child.pid);
  });
  return { kib_per_conn: (rss - base) / n, rss_kib: rss, base_kib: base };
}

function runIdle(server, n, atReady) {
  return new Promise((resolve) => {
    const child = spawn(loadgen, ['idle', '--conns', String(n), '--addr', `127.0.0.1:${server.port}`], {
      stdio: ['pipe', 'pipe', 'inherit']
    });
    lines(child.stdout, (l) => {
      if (l.startsWith('ready')) {
        // Let the server settle (GC of handshake garbage) before sampling.
        setTimeout(() => {
          atReady();
          child.stdin.end();
        }, 1500);
      }
    });
    child.on('exit', resolve);
  });
}

async function measure(impl, scenario) {
  const server = await startServer(impl, scenario.server);
  try {
    if (scenario.idle) return await idleRss(server, scenario.idle);
    return await runLoadgen(scenario.args, server);
  } finally {
    await stopServer(server);
  }
}

function fmt(v) {
  if (v === undefined || Number.isNaN(v)) return '-';
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(v >= 10 ? 1 : 2);
}

function perMessageUs(r) {
  const msgs = r.msgs || r.deliveries || r.conns;
  return msgs ? (r.server_cpu_ms * 1000) / msgs : undefined;
}

async function main() {
  buildLoadgen();
  const rows = [];
  const floors = [];
  for (const s of SCENARIOS) {
    const results = {};
    for (const impl of impls) results[impl] = await measure(impl, s);
    if (s.floor) floors.push([s, await measure('net-floor', s), results[impls[1]]]);
    const [a, b] = [results[impls[0]], results[impls[1]]];
    const ratio = b ? a[s.metric] / b[s.metric] : undefined;
    const ok = ratio === undefined ? '' : s.lowerIsBetter ? ratio <= s.target : ratio >= s.target;
    rows.push({ s, results, ratio, ok });
    const line = impls.map((i) => `${i} ${fmt(results[i][s.metric])} ${s.unit}`).join(', ');
    console.error(`${s.name}: ${line}${ratio === undefined ? '' : `, ratio ${fmt(ratio)}`}`);
  }

  const cpu = os.cpus();
  console.log(`\nMachine: ${cpu.length} x ${cpu[0].model.trim()}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
  console.log(`Each scenario: a fresh server process; ${secs} s measured after 0.5 s warm-up; load generator (Rust, 1 thread) on the same machine.\n`);
  const head = ['scenario', ...impls.map((i) => i), 'ratio', 'target', 'met', ...impls.map((i) => `server CPU us/msg ${i}`), ...impls.map((i) => `loadgen CPU% ${i}`)];
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map(() => '---').join('|')}|`);
  for (const { s, results, ratio, ok } of rows) {
    const vals = impls.map((i) => `${fmt(results[i][s.metric])} ${s.unit}${s.extra ? ` (p99 ${fmt(results[i][s.extra])})` : ''}`);
    const cpuPer = impls.map((i) => fmt(perMessageUs(results[i])));
    const lg = impls.map((i) => {
      const r = results[i];
      return r.client_cpu_ms !== undefined && r.secs ? `${fmt((r.client_cpu_ms / (r.secs * 1000)) * 100)}%` : '-';
    });
    const target = `${s.lowerIsBetter ? '<=' : '>='} ${s.target}x`;
    console.log(`| ${[s.name, ...vals, ratio === undefined ? '-' : `${fmt(ratio)}x`, target, ok === '' ? '-' : ok ? 'yes' : 'no', ...cpuPer, ...lg].join(' | ')} |`);
  }
  for (const [s, floor, ref] of floors) {
    const vsRef = ref ? ` = ${fmt(floor[s.metric] / ref[s.metric])}x ${impls[1]}` : '';
    console.log(`\nFloor for "${s.name}": a plain Node net server doing no WebSocket work: ${fmt(floor[s.metric])} ${s.unit}${vsRef}.`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
