#!/usr/bin/env bash
# Runs every fuzz target for N minutes each (default 10), starting from the
# seed corpus kept in fuzz/corpus/<target>:
#   - the cargo-fuzz targets (receiver, inflate, roundtrip), which need a
#     nightly toolchain (or RUSTC_BOOTSTRAP=1) and cargo-fuzz (installed
#     when missing);
#   - the JS targets (js-extension, js-subprotocol, js-permessage-deflate,
#     js-handshake): the handshake-header readers in lib/, fuzzed by
#     fuzz/js/fuzzer.js with V8's block coverage, differential against ws.
#   bash scripts/fuzz.sh [minutes] [target ...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
minutes=${1:-10}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(receiver inflate roundtrip js-extension js-subprotocol js-permessage-deflate js-handshake)

for t in "${targets[@]}"; do
  if [[ $t == js-* ]]; then
    echo "== $t: $minutes min"
    # Up to 64 KiB a header (Node's default limit is 16 KiB); an input slower
    # than a second counts as a finding.
    node "$root/fuzz/js/fuzzer.js" "${t#js-}" --minutes "$minutes" --max-len 65536 --slow-ms 1000 | tail -3
    continue
  fi
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
  toolchain=+nightly
  rustup run nightly true 2>/dev/null || { toolchain=; export RUSTC_BOOTSTRAP=1; }
  cd "$root/fuzz"
  mkdir -p "corpus/$t" "artifacts/$t"
  # The seeds stay as they are; what the run finds goes to a scratch corpus.
  work=$(mktemp -d)
  echo "== $t: $minutes min"
  cargo $toolchain fuzz run -O "$t" "$work" "corpus/$t" -- \
    -max_total_time=$((minutes * 60)) -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>&1 | grep -E '^(#[0-9]+ +DONE|stat::|==|SUMMARY|INFO: (seed|Loaded))|cov:' | tail -12
  rm -rf "$work"
  cd "$root"
done
