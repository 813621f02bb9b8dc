'use strict';

// A coverage-guided fuzzer for the JS side (the handshake-header parsers
// live in lib/, where cargo-fuzz can't reach them). V8's block coverage,
// read through the inspector after every input, is the feedback: an input
// that runs a block of lib/ (or of ws's lib/, the oracle) a new number of
// times is kept in the working corpus, as libFuzzer keeps inputs that add
// features. Each target throws when ws-native and ws disagree.
//
//   node fuzz/js/fuzzer.js TARGET [--minutes N | --runs N] [--seed N]
//                                 [--max-len N] [--slow-ms N]
//
// The seeds in fuzz/corpus/js-TARGET are read first and never changed; a
// failing input goes to fuzz/artifacts/js-TARGET/. A run is deterministic
// for a given seed, corpus and --runs.

const crypto = require('crypto');
const fs = require('fs');
const inspector = require('inspector');
const path = require('path');

const ROOT = path.join(__dirname, '..', '..');
const WATCHED = [path.join(ROOT, 'lib') + path.sep, path.join(path.dirname(require.resolve('ws')), 'lib') + path.sep];

/** xorshift32: the same inputs for the same seed. */
function prng(seed) {
  let x = seed >>> 0 || 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return { next, below: (n) => (n <= 1 ? 0 : next() % n), chance: (k) => next() % k === 0 };
}

/** Block-coverage features of what ran since the last call. */
class Coverage {
  constructor() {
    this.session = new inspector.Session();
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
    this.urls = new Map();
  }

  post(method, params) {
    let result;
    let error;
    // An in-thread session answers synchronously.
    this.session.post(method, params, (err, res) => {
      error = err;
      result = res;
    });
    if (error) throw error;
    return result;
  }

  /** Feature keys: script, block, and the count's power-of-two bucket. */
  take() {
    const features = [];
    for (const script of this.post('Profiler.takePreciseCoverage').result) {
      const file = script.url.startsWith('file://') ? decodeURIComponent(script.url.slice(7)) : script.url;
      if (!WATCHED.some((dir) => file.startsWith(dir))) continue;
      let id = this.urls.get(file);
      if (id === undefined) this.urls.set(file, (id = this.urls.size));
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          if (r.count === 0) continue;
          const bucket = Math.min(31 - Math.clz32(r.count), 7);
          features.push(`${id}:${r.startOffset}:${r.endOffset}:${bucket}`);
        }
      }
    }
    return features;
  }

  close() {
    this.post('Profiler.stopPreciseCoverage');
    this.session.disconnect();
  }
}

// Header syntax and the words these parsers know.
const DICTIONARY = [
  'permessage-deflate', 'x-webkit-deflate-frame', 'client_max_window_bits', 'server_max_window_bits',
  'client_no_context_takeover', 'server_no_context_takeover', 'websocket', 'WebSocket', 'Upgrade',
  '13', '8', '15', '9', '08', '=', ';', ',', '"', '\\', ' ', '\t', '\r\n', '\x00', '\x7f', '\xff', '\xe9',
  'dGhlIHNhbXBsZSBub25jZQ==', 'chat', 'superchat', '=='
].map((w) => Buffer.from(w, 'latin1'));

function mutate(input, corpus, rnd, maxLen) {
  let buf = Buffer.from(input);
  const rounds = 1 + rnd.below(4);
  for (let k = 0; k < rounds; k++) {
    const at = rnd.below(buf.length + 1);
    switch (rnd.below(9)) {
      case 0: // flip a bit
        if (buf.length) buf[rnd.below(buf.length)] ^= 1 << rnd.below(8);
        break;
      case 1: // a random byte
        if (buf.length) buf[rnd.below(buf.length)] = rnd.below(256);
        break;
      case 2: // an ASCII byte inserted
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from([0x20 + rnd.below(95)]), buf.subarray(at)]);
        break;
      case 3: // a run removed
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1 + rnd.below(8))]);
        break;
      case 4: // a word inserted
      case 5:
        buf = Buffer.concat([buf.subarray(0, at), DICTIONARY[rnd.below(DICTIONARY.length)], buf.subarray(at)]);
        break;
      case 6: { // a run repeated, up to many times (long inputs find slow paths)
        const len = 1 + rnd.below(Math.min(16, Math.max(1, buf.length - at)));
        const piece = buf.subarray(at, at + len);
        const times = rnd.chance(4) ? 1 << rnd.below(17) : 1 + rnd.below(4);
        const room = Math.max(1, Math.floor((maxLen - buf.length) / Math.max(1, piece.length)));
        buf = Buffer.concat([buf.subarray(0, at), ...Array(Math.min(times, room)).fill(piece), buf.subarray(at)]);
        break;
      }
      case 7: { // spliced with another corpus entry
        const other = corpus[rnd.below(corpus.length)];
        const from = rnd.below(other.length + 1);
        buf = Buffer.concat([buf.subarray(0, at), other.subarray(from, from + 1 + rnd.below(32))]);
        break;
      }
      default: // a byte duplicated
        if (buf.length) buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at, at + 1), buf.subarray(at)]);
    }
  }
  return buf.length > maxLen ? buf.subarray(0, maxLen) : buf;
}

function readDir(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map((f) => fs.readFileSync(path.join(dir, f)));
}

/**
 * Fuzzes `target(buf)` (it throws on a finding). Returns the run's figures;
 * `failure` holds the first finding, whose input is saved under artifacts.
 */
function fuzz({ name, target, seed = 1, runs = Infinity, minutes = Infinity, maxLen = 4096, slowMs = 250, log = () => {} }) {
  const rnd = prng(seed);
  const seeds = readDir(path.join(ROOT, 'fuzz', 'corpus', `js-${name}`));
  const corpus = seeds.length ? seeds.slice() : [Buffer.alloc(0)];
  const seen = new Set();
  const cov = new Coverage();
  const deadline = Date.now() + minutes * 60000;
  const started = Date.now();
  let execs = 0;
  let failure = null;
  let slowest = 0;

  const runOne = (input) => {
    const t0 = process.hrtime.bigint();
    try {
      target(input);
    } catch (err) {
      return err;
    } finally {
      execs++;
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (ms > slowest) slowest = ms;
      if (ms > slowMs) failure = failure || { kind: 'slow', ms, input };
    }
    return null;
  };
  const keepIfNew = (input) => {
    let added = false;
    for (const f of cov.take()) {
      if (!seen.has(f)) {
        seen.add(f);
        added = true;
      }
    }
    return added;
  };

  try {
    cov.take();
    for (const input of corpus) {
      const err = runOne(input);
      if (err) failure = failure || { kind: 'mismatch', err, input };
      keepIfNew(input);
    }
    let lastLog = Date.now();
    while (!failure && execs < runs && Date.now() < deadline) {
      const input = mutate(corpus[rnd.below(corpus.length)], corpus, rnd, maxLen);
      const err = runOne(input);
      if (err) failure = { kind: 'mismatch', err, input };
      if (keepIfNew(input)) corpus.push(input);
      if (Date.now() - lastLog > 10000) {
        lastLog = Date.now();
        log(`#${execs} cov: ${seen.size} corp: ${corpus.length} exec/s: ${Math.round(execs / ((lastLog - started) / 1000))}`);
      }
    }
  } finally {
    cov.close();
  }

  if (failure) {
    const dir = path.join(ROOT, 'fuzz', 'artifacts', `js-${name}`);
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${failure.kind}-${crypto.createHash('sha1').update(failure.input).digest('hex').slice(0, 16)}`);
    fs.writeFileSync(file, failure.input);
    failure.file = file;
  }
  const seconds = (Date.now() - started) / 1000;
  return { name, execs, seconds, execsPerSec: Math.round(execs / Math.max(seconds, 0.001)), features: seen.size, corpus: corpus.length, seeds: seeds.length, slowestMs: slowest, failure };
}

module.exports = { fuzz, prng, mutate };

if (require.main === module) {
  const args = process.argv.slice(2);
  const opt = (flag, dflt) => {
    const i = args.indexOf(flag);
    return i === -1 ? dflt : Number(args[i + 1]);
  };
  const targets = require('./targets');
  const name = args[0];
  if (!targets[name]) {
    console.error(`usage: node fuzz/js/fuzzer.js ${Object.keys(targets).join('|')} [--minutes N | --runs N] [--seed N]`);
    process.exit(2);
  }
  const r = fuzz({
    name,
    target: targets[name],
    seed: opt('--seed', 1),
    runs: opt('--runs', Infinity),
    minutes: opt('--minutes', args.includes('--runs') ? Infinity : 10),
    maxLen: opt('--max-len', 4096),
    slowMs: opt('--slow-ms', 250),
    log: console.log
  });
  console.log(`== js-${name}: ${r.execs} execs in ${r.seconds.toFixed(0)} s (${r.execsPerSec}/s), ${r.features} features, corpus ${r.corpus} (${r.seeds} seeds), slowest input ${r.slowestMs.toFixed(2)} ms`);
  if (r.failure) {
    console.log(`FAILED (${r.failure.kind}${r.failure.ms ? `, ${r.failure.ms.toFixed(0)} ms` : ''}): ${r.failure.file}`);
    if (r.failure.err) console.log(r.failure.err.stack || r.failure.err);
    process.exit(1);
  }
}
