'use strict';

// Counts Autobahn results. Usage: node summary.js REPORT_DIR AGENT LABEL
// Exits 1 when a case FAILED or is UNIMPLEMENTED.

const fs = require('fs');
const path = require('path');

const [dir, agent, label] = process.argv.slice(2);
const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
const cases = index[agent] || {};
const counts = {};
const bad = [];
let slowest = 0;
let compressionMs = 0;

for (const [id, r] of Object.entries(cases)) {
  for (const b of new Set([r.behavior, r.behaviorClose])) {
    if (b === 'FAILED' || b === 'UNIMPLEMENTED') bad.push(`${id}: ${r.behavior}/${r.behaviorClose}`);
  }
  counts[r.behavior] = (counts[r.behavior] || 0) + 1;
  slowest = Math.max(slowest, r.duration || 0);
  if (/^1[23]\./.test(id)) compressionMs += r.duration || 0;
}

const summary = Object.entries(counts)
  .sort()
  .map(([k, v]) => `${v} ${k}`)
  .join(', ');
console.log(`${label}: ${Object.keys(cases).length} cases: ${summary}; 12.x/13.x total ${compressionMs} ms`);
if (bad.length) {
  console.log(`${label}: not passing:\n  ${bad.join('\n  ')}`);
  process.exit(1);
}
