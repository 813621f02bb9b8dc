'use strict';

// Builds the native addon from source with cargo (release mode) and puts it
// where lib/binding.js looks first. Run by `npm install`.

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const force = process.argv.includes('--force');
const { platformTag } = require('../lib/platform');
const target = path.join(root, `ws-native.${platformTag()}.node`);

function sourceIsNewer() {
  if (!fs.existsSync(target)) return true;
  const built = fs.statSync(target).mtimeMs;
  const stack = [path.join(root, 'src'), path.join(root, 'Cargo.toml')];
  while (stack.length) {
    const p = stack.pop();
    const st = fs.statSync(p);
    if (st.isDirectory()) {
      for (const f of fs.readdirSync(p)) stack.push(path.join(p, f));
    } else if (st.mtimeMs > built) {
      return true;
    }
  }
  return false;
}

if (!force && !sourceIsNewer()) {
  console.log(`ws-native: ${path.basename(target)} is up to date`);
  process.exit(0);
}

const cargo = spawnSync('cargo', ['build', '--release', '--lib'], {
  cwd: root,
  stdio: 'inherit'
});

if (cargo.error || cargo.status !== 0) {
  console.error('ws-native: cargo build failed; a Rust toolchain is needed to build from source');
  process.exit(cargo.status || 1);
}

const dir = path.join(root, 'target', 'release');
const lib = ['libws_native.so', 'libws_native.dylib', 'ws_native.dll']
  .map((f) => path.join(dir, f))
  .find((f) => fs.existsSync(f));

if (!lib) {
  console.error(`ws-native: no built library found in ${dir}`);
  process.exit(1);
}

fs.copyFileSync(lib, target + '.tmp');
fs.renameSync(target + '.tmp', target);
console.log(`ws-native: built ${path.basename(target)}`);
