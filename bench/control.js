'use strict';

// What every bench server answers on standard input, one line each:
//   reset  starts a new event-loop delay window
//   stats  prints one JSON line: the window's event-loop delay (p50, p99,
//          max, in ms) and memory in KiB: RSS, V8 heap used, external,
//          array buffers, and malloc in use where `mallocKib` can tell
//   gc     collects garbage (node --expose-gc, or Bun), then prints `gc done`

const readline = require('readline');

function answerStdin({ mallocKib = () => undefined } = {}) {
  const bun = globalThis.Bun;
  // Sampled every 1 ms, where the runtime has it.
  let eld = null;
  try {
    eld = require('perf_hooks').monitorEventLoopDelay({ resolution: 1 });
    eld.enable();
  } catch {
    eld = null;
  }
  const kib = (n) => Math.round(n / 1024);
  const ms = (ns) => (Number.isFinite(ns) ? +(ns / 1e6).toFixed(3) : undefined);

  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'reset') {
      if (eld) eld.reset();
    } else if (line === 'stats') {
      const m = process.memoryUsage();
      console.log(
        JSON.stringify({
          eld_p50_ms: eld ? ms(eld.percentile(50)) : undefined,
          eld_p99_ms: eld ? ms(eld.percentile(99)) : undefined,
          eld_max_ms: eld ? ms(eld.max) : undefined,
          rss_kib: kib(m.rss),
          heap_kib: kib(m.heapUsed),
          external_kib: kib(m.external),
          array_buffers_kib: kib(m.arrayBuffers || 0),
          malloc_kib: mallocKib()
        })
      );
    } else if (line === 'gc') {
      if (bun) bun.gc(true);
      else if (global.gc) {
        global.gc();
        global.gc();
      }
      console.log('gc done');
    }
  });
}

module.exports = { answerStdin };
