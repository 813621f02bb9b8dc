#!/usr/bin/env bash
# Profiles the bench server under one load with perf (Debian's linux-perf;
# software cpu-clock sampling, which works where the machine has no
# hardware counters), JS frames named through --perf-basic-prof.
#
#   [SIZE=bytes] [CONNS=n] [SERVER_FLAGS=--express] bash bench/profile.sh [native|ws|bun-ws|bun-serve] [echo|wss|deflate|handshakes|broadcast] [seconds]
#
# bun-ws and bun-serve run the same servers under Bun (as npm run bench
# does, once it has installed Bun); Bun's JS frames stay unnamed.
#
# Prints the server's own top symbols, and the share of its samples in
# each part: ws-native's Rust, N-API, V8's compiled JS, V8/Node internals,
# libc, and the kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
impl=${1:-native}
scenario=${2:-echo}
secs=${3:-5}
command -v perf >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y linux-perf; }
(cd bench/loadgen && cargo build --release --quiet)
out=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; [ -n "${KEEP:-}" ] && cp "$out/perf.data" "$KEEP"; rm -rf "$out"' EXIT

flags=()
[ "$scenario" = wss ] && flags=(--tls)
[ "$scenario" = deflate ] && flags=(--deflate)
# shellcheck disable=SC2206
flags+=(${SERVER_FLAGS:-})
bun=${WS_NATIVE_CACHE:-$HOME/.cache/ws-native}/bun/node_modules/@oven/bun-linux-x64/bin/bun
case $impl in
  bun-ws) "$bun" bench/server.js ws "${flags[@]}" > "$out/server.log" & ;;
  bun-serve) "$bun" bench/bun-serve.js "${flags[@]}" > "$out/server.log" & ;;
  *) node --perf-basic-prof --interpreted-frames-native-stack bench/server.js "$impl" "${flags[@]}" > "$out/server.log" & ;;
esac
server=$!
until grep -q '^listening' "$out/server.log" 2>/dev/null; do sleep 0.1; done
port=$(sed -n 's/^listening //p' "$out/server.log")

case $scenario in
  echo) args=(echo --conns 50 --inflight 16 --size "${SIZE:-32}") ;;
  deflate) args=(echo --conns 50 --inflight 16 --size "${SIZE:-4096}" --json --deflate) ;;
  wss) args=(echo --tls --conns 50 --inflight 16 --size "${SIZE:-32}" --binary) ;;
  handshakes) args=(handshakes --conns 16) ;;
  broadcast) args=(broadcast --conns "${CONNS:-1000}" --inflight 8 --size "${SIZE:-32}") ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
bench/loadgen/target/release/ws-loadgen "${args[@]}" --addr "127.0.0.1:$port" --secs "$((secs + 2))" > "$out/load.log" &
load=$!
sleep 1
perf record -q -e cpu-clock -F 2000 -g -p "$server" -o "$out/perf.data" -- sleep "$secs" 2>/dev/null
wait "$load"
tail -1 "$out/load.log"

perf report -i "$out/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' > "$out/symbols.txt" || true
echo "== top symbols ($impl, $scenario)"
head -25 "$out/symbols.txt"
echo "== by part"
awk '
  { pct = $1; sub("%", "", pct); dso = $2; sym = ""; for (i = 4; i <= NF; i++) sym = sym " " $i
    if (dso ~ /ws-native/) part = "ws-native (Rust)"
    else if (sym ~ /napi_|v8impl|napi::/) part = "N-API"
    else if (dso ~ /perf-[0-9]+\.map/ || sym ~ /^ *(Builtin|LazyCompile|JS|Function|Interpreted|Baseline|Maglev|Turbofan):/) part = "JS (compiled, builtins)"
    else if (dso ~ /node/) part = "V8 / Node internals"
    else if (dso ~ /^bun$/) part = "Bun (uWS, JSC)"
    else if (dso ~ /libc|ld-linux/) part = "libc"
    else if (dso ~ /kernel/) part = "kernel"
    else part = "other (" dso ")"
    share[part] += pct }
  END { for (p in share) printf "%6.1f%%  %s\n", share[p], p }' "$out/symbols.txt" | sort -rn
