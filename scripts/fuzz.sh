#!/usr/bin/env bash
# Runs every cargo-fuzz target for N minutes each (default 10), starting from
# the seed corpus kept in fuzz/corpus/<target>. Needs a nightly toolchain
# (or RUSTC_BOOTSTRAP=1) and cargo-fuzz (installed when missing).
#   bash scripts/fuzz.sh [minutes] [target ...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
minutes=${1:-10}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(receiver inflate roundtrip)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
toolchain=+nightly
rustup run nightly true 2>/dev/null || { toolchain=; export RUSTC_BOOTSTRAP=1; }
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  # The seeds stay as they are; what the run finds goes to a scratch corpus.
  work=$(mktemp -d)
  echo "== $t: $minutes min"
  cargo $toolchain fuzz run -O "$t" "$work" "corpus/$t" -- \
    -max_total_time=$((minutes * 60)) -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>&1 | grep -E '^(#[0-9]+ +DONE|stat::|==|SUMMARY|INFO: (seed|Loaded))|cov:' | tail -12
  rm -rf "$work"
done
