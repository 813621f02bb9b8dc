'use strict';

// Loads the native addon: a local build (npm install in a clone) first,
// then the per-platform package napi-rs publishes.

const path = require('path');
const { platformTag } = require('./platform');

function load() {
  const tag = platformTag();
  const candidates = [
    path.join(__dirname, '..', `ws-native.${tag}.node`),
    `ws-native-${tag}`
  ];
  const errors = [];

  for (const c of candidates) {
    try {
      return require(c);
    } catch (err) {
      errors.push(`${c}: ${err.message}`);
    }
  }

  throw new Error(
    `ws-native: no native binding for ${tag}. Run \`npm install\` with a ` +
      `Rust toolchain to build it.\n${errors.join('\n')}`
  );
}

module.exports = load();
