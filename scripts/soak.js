'use strict';

// npm run soak -- --minutes N [--workers W]
//
// Connect/echo/close churn against a ws-native server in a child process,
// on 127.0.0.1 only, for N minutes (default 1). A third of the connections
// negotiate permessage-deflate; each sends a few echo messages of random
// size, then ends in one of three ways: close(), terminate(), or a destroy
// of its socket. Every 5 s the server reports its RSS, fd count, engine
// connections and heap. At the end the slopes of RSS and fd count over the
// second half of the run (after warm-up) are fitted, and the run fails if
// they exceed the bounds below, if the server saw an error no client
// caused, or if the server ends with connections left.

const { spawn } = require('child_process');
const path = require('path');
const WebSocket = require('..');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
};
const MINUTES = arg('--minutes', 1);
// --impl ws runs the same server on ws, for comparison (its RSS, its errors).
const IMPL = process.argv.includes('--impl') ? process.argv[process.argv.indexOf('--impl') + 1] : 'native';
const WORKERS = arg('--workers', 40);
const SAMPLE_MS = 5000;
/**
 * RSS growth allowed after the warm-up, per minute, checked (with the fd
 * slope) on runs of 5 minutes or more: RSS moves by several MiB, and fds by
 * the handshakes in flight, with what is open at each sample, so in a short
 * run the fitted slopes are noise. Every run checks
 * what a leak leaves exactly: fds, connections, engine buffers and external
 * memory once the server is idle again.
 */
const RSS_SLOPE_KIB_PER_MIN = 2048;
/**
 * The server's RSS at its peak under this load, checked on every run of
 * ws-native: 170-215 MiB as measured; an arena JS held with room for a
 * whole loop turn in it took it to 595 MiB, which no slope saw in a
 * 1-minute run.
 */
const RSS_PEAK_MAX_KIB = 384 << 10;
const CHECK_SLOPES = MINUTES >= 5;
/** External (Buffer) memory the idle server may still hold, after GC. */
const IDLE_EXTERNAL_MAX = 8 << 20;
const FD_SLOPE_PER_MIN = 2;
/** Samples before this are warm-up (heap and pools growing to their size). */
const WARMUP_MS = 20000;

const SERVER = `
const fs = require('fs');
const WebSocket = require(${JSON.stringify(IMPL === 'ws' ? 'ws' : path.join(__dirname, '..'))});
const engineStats = ${IMPL === 'ws' ? '() => [0, 0]' : `require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'native-transport'))}).engineStats`};
const wss = new WebSocket.WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: { threshold: 0 }, clientTracking: true });
let unexpected = 0;
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', (err) => { if (!/ECONNRESET|EPIPE/.test(err.message)) { unexpected++; console.error('server error', err.message); } });
});
wss.on('listening', () => {
  report();
  console.log(JSON.stringify({ port: wss.address().port }));
});
const report = (last = false) => {
  const rss = +/VmRSS:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1];
  const fds = fs.readdirSync('/proc/self/fd').length;
  const [conns, held, mallocUsed, mallocTotal] = engineStats();
  const mem = process.memoryUsage();
  console.log(JSON.stringify({ t: Date.now(), rss, fds, conns, held, mallocUsed, mallocTotal, clients: wss.clients.size, heap: mem.heapTotal, external: mem.external, unexpected, last }));
};
setInterval(report, ${SAMPLE_MS});
// The last report waits (up to 10 s) for the connections to be gone.
process.on('message', (m) => {
  if (m !== 'report') return;
  const until = Date.now() + 10000;
  const settle = () => {
    if ((wss.clients.size || engineStats()[0]) && Date.now() < until) return setTimeout(settle, 100);
    // Collect and let the finalizers of external buffers run (N-API runs
    // them after the collection), until external memory stops falling.
    let last = Infinity;
    const collect = (round) => {
      global.gc();
      setTimeout(() => {
        const now = process.memoryUsage().external;
        if (process.env.SOAK_DEBUG) console.error('soak: gc round', round, now);
        if (now < last && round < 10) {
          last = now;
          return collect(round + 1);
        }
        report(true);
      }, 100);
    };
    collect(1);
  };
  settle();
});
process.on('disconnect', () => process.exit(0));
`;

function startServer() {
  const child = spawn(process.execPath, ['--expose-gc', '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const samples = [];
  let onPort;
  const port = new Promise((resolve) => (onPort = resolve));
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const msg = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (msg.port) onPort(msg.port);
      else samples.push(msg);
    }
  });
  return { child, port, samples };
}

/** Least-squares slope of `ys` against `xs`. */
function slope(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** One connection's life: open, a few echoes, then one of three endings. */
function cycle(url, n) {
  return new Promise((resolve) => {
    const deflate = n % 3 === 0;
    const ws = new WebSocket(url, { perMessageDeflate: deflate ? { threshold: 0 } : false });
    let left = 1 + (n % 5);
    const stats = { messages: 0, errors: 0 };
    ws.on('error', () => stats.errors++);
    ws.on('close', () => resolve(stats));
    const next = () => {
      if (left-- === 0) {
        const ending = n % 3;
        if (ending === 0) ws.close(1000);
        else if (ending === 1) ws.terminate();
        else ws._socket.destroy();
        return;
      }
      const size = (n * 7919 + left * 104729) % 70000;
      ws.send(n % 2 ? Buffer.alloc(size, n) : 'x'.repeat(size));
    };
    ws.on('open', next);
    ws.on('message', () => {
      stats.messages++;
      next();
    });
  });
}

async function main() {
  const server = startServer();
  const url = `ws://127.0.0.1:${await server.port}`;
  const end = Date.now() + MINUTES * 60000;
  const totals = { connections: 0, messages: 0, clientErrors: 0 };
  const worker = async (w) => {
    for (let n = w; Date.now() < end; n += WORKERS) {
      const s = await cycle(url, n);
      totals.connections++;
      totals.messages += s.messages;
      totals.clientErrors += s.errors;
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));

  // A last sample once everything is closed, after a GC.
  // The periodic samples go on meanwhile: wait for the one marked last.
  server.child.send('report');
  await new Promise((resolve) => {
    const poll = () => (server.samples.some((s) => s.last) ? resolve() : setTimeout(poll, 50));
    poll();
  });
  server.child.disconnect();

  // The first sample is the idle server, the last the idle server after
  // the run (and a GC); between them the load. A connection holds one fd,
  // so `fds - conns` is what a leak would show in.
  const samples = server.samples;
  const idle = samples[0];
  const final = samples.find((s) => s.last);
  const minutes = (s) => (s.t - idle.t) / 60000;
  const steady = samples.slice(1, samples.indexOf(final)).filter((s) => s.t - idle.t >= WARMUP_MS);
  const fit = (f) => (steady.length > 2 ? slope(steady.map(minutes), steady.map(f)) : 0);
  const rssSlope = fit((s) => s.rss);
  const fdSlope = fit((s) => s.fds - s.conns);
  const result = {
    minutes: MINUTES,
    workers: WORKERS,
    steadySamples: steady.length,
    ...totals,
    samples: samples.length,
    impl: IMPL,
    rssKiB: { idle: idle.rss, max: Math.max(...samples.map((s) => s.rss)), final: final.rss, slopePerMin: Math.round(rssSlope) },
    fds: { idle: idle.fds, final: final.fds, slopePerMin: +fdSlope.toFixed(2) },
    final: { engineConnections: final.conns, heldBytes: final.held, clients: final.clients, externalBytes: final.external, mallocInUse: final.mallocUsed, unexpectedServerErrors: final.unexpected },
    slopesChecked: CHECK_SLOPES
  };
  console.log(JSON.stringify(result, null, 2));
  if (process.env.SOAK_SAMPLES) for (const x of samples) console.log(Math.round(minutes(x) * 60), 'rss', x.rss, 'fds', x.fds, 'conns', x.conns, 'heapTotal', Math.round(x.heap / 1024), 'external', Math.round(x.external / 1024), 'malloc', Math.round(x.mallocUsed / 1024), Math.round(x.mallocTotal / 1024));

  const failures = [];
  if (CHECK_SLOPES && rssSlope > RSS_SLOPE_KIB_PER_MIN) failures.push(`RSS grows ${Math.round(rssSlope)} KiB/min (bound ${RSS_SLOPE_KIB_PER_MIN})`);
  if (CHECK_SLOPES && fdSlope > FD_SLOPE_PER_MIN) failures.push(`fds grow ${fdSlope.toFixed(2)}/min (bound ${FD_SLOPE_PER_MIN})`);
  const peak = Math.max(...samples.map((s) => s.rss));
  if (IMPL === 'native' && peak > RSS_PEAK_MAX_KIB) failures.push(`RSS peaked at ${peak} KiB (bound ${RSS_PEAK_MAX_KIB})`);
  if (final.unexpected) failures.push(`${final.unexpected} server errors no client caused`);
  if (final.conns || final.clients) failures.push(`connections left: engine ${final.conns}, clients ${final.clients}`);
  if (final.fds > idle.fds + 2) failures.push(`fds at the end ${final.fds}, idle at the start ${idle.fds}`);
  if (final.held) failures.push(`the engine holds ${final.held} bytes for no connection`);
  if (final.external > IDLE_EXTERNAL_MAX) failures.push(`external memory at the end ${final.external} bytes`);
  if (failures.length) {
    console.log(`soak: FAILED\n- ${failures.join('\n- ')}`);
    process.exit(1);
  }
  console.log(`soak: ok, ${totals.connections} connections, ${totals.messages} echoes in ${MINUTES} min`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
