'use strict';

// The handshake-header readers against ws: the seed corpus and a short,
// seeded run of the coverage-guided JS fuzzer (fuzz/js) per target, and
// long adversarial headers that a parser quadratic in its input would not
// finish (the subprotocol parser was, in runs of white space).

const assert = require('assert');
const path = require('path');
const { describe } = require('node:test');

const { it } = require('./helpers');
const { fuzz } = require('../fuzz/js/fuzzer');
const targets = require('../fuzz/js/targets');

const ours = {
  extension: require('../lib/extension'),
  subprotocol: require('../lib/subprotocol')
};
const WS_LIB = path.join(path.dirname(require.resolve('ws')), 'lib');
const theirs = {
  extension: require(path.join(WS_LIB, 'extension')),
  subprotocol: require(path.join(WS_LIB, 'subprotocol'))
};

/** The parse's result (a Set as an array) or its error, for either side. */
const parsed = (kind, parse, header) => targets.outcome(() => (kind === 'subprotocol' ? [...parse(header)] : parse(header)));

describe('handshake-header fuzzing', () => {
  for (const name of Object.keys(targets)) {
    it(`${name}: seeds and 3,000 fuzzed inputs give what ws gives`, { timeout: 120000 }, () => {
      // slowMs is a safety net here, not a measure: the long inputs below
      // are what shows the parsers linear.
      const r = fuzz({ name, target: targets[name], seed: 0x5eed, runs: 3000, slowMs: 10000 });
      if (r.failure) {
        assert.fail(`${r.failure.kind} on the input saved as ${r.failure.file}: ${r.failure.err ? r.failure.err.message : `${r.failure.ms} ms`}`);
      }
      assert.ok(r.features > 50, `coverage grew (${r.features} features)`);
    });
  }

  const MIB = 1 << 20;
  const long = {
    'white space inside an item': 'a,' + ' '.repeat(MIB) + 'b' + ' '.repeat(MIB) + 'c',
    'white space at the end': 'a' + '\t'.repeat(MIB),
    'white space then a comma, many times': 'x' + ', '.repeat(MIB / 2) + 'y',
    'a million short names': Array.from({ length: MIB / 8 }, (_, i) => `p${i}`).join(','),
    'one long name': 'n'.repeat(2 * MIB),
    'a million parameters': 'permessage-deflate' + '; a=1'.repeat(MIB / 4),
    'a long quoted value': 'foo; bar="' + 'z'.repeat(MIB) + '"',
    'escapes in a quoted value': 'foo; bar="' + '\\z'.repeat(MIB / 2) + '"',
    'white space around parameters': 'foo' + ' ;  b '.repeat(MIB / 6) + 'x'
  };
  for (const [label, header] of Object.entries(long)) {
    it(`a ${Math.round(header.length / 1024)} KiB header, ${label}: both parsers give what ws gives`, { timeout: 60000 }, () => {
      for (const kind of ['subprotocol', 'extension']) {
        assert.deepStrictEqual(parsed(kind, ours[kind].parse, header), parsed(kind, theirs[kind].parse, header), kind);
      }
    });
  }
});
