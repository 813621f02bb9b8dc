#!/usr/bin/env bash
# Runs the protocol core's unit tests (src/core) under Miri, which checks
# every memory access and the unsafe code's rules (the in-place parsing's
# pointer work, the masking). Needs the nightly toolchain with the miri
# component (added when missing). Slow: the tests use smaller inputs under
# cfg(miri).
#   bash scripts/miri.sh [test-name-filter]
set -euo pipefail
cd "$(dirname "$0")/.."
rustup component list --toolchain nightly --installed | grep -q '^miri' || rustup component add --toolchain nightly miri rust-src
cargo +nightly miri test --lib "core::${1:-}"
