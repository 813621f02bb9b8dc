#!/usr/bin/env bash
# Runs the Autobahn|Testsuite against ws-native in both directions:
# fuzzingclient -> ws-native echo server, fuzzingserver -> ws-native echo client.
#
#   bash scripts/autobahn.sh            all cases
#   bash scripts/autobahn.sh --ci       cases 1-7, 10, 12.1 and 13.1
#   bash scripts/autobahn.sh --ws       the same run against ws, for comparison
#   bash scripts/autobahn.sh --cases '["9.3.1"]'   a chosen set of cases
#
# AUTOBAHN_DEFAULT_LIMITS=1 keeps the default maxFragments (the runner
# raises it, since 9.3.1 and 9.4.1 send 65,536 fragments).
#
# wstest needs Python 2.7. The script uses pyenv's 2.7 when present, else
# installs Debian bullseye's python2.7, and keeps a virtualenv with
# autobahntestsuite in $AUTOBAHN_HOME (default ~/.cache/ws-native/autobahn).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
home=${AUTOBAHN_HOME:-$HOME/.cache/ws-native/autobahn}
cases='["*"]'
impl=native
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) cases='["1.*","2.*","3.*","4.*","5.*","6.*","7.*","10.*","12.1.*","13.1.*"]' ;;
    --ws) impl=ws ;;
    --cases) cases=$2; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

find_python2() {
  for p in "$(pyenv root 2>/dev/null)/versions/2.7.18/bin/python2.7" /root/.pyenv/versions/2.7.18/bin/python2.7 /usr/bin/python2.7; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  return 1
}

setup() {
  [ -x "$home/venv/bin/wstest" ] && return
  mkdir -p "$home"
  local py
  if ! py=$(find_python2); then
    echo "autobahn: installing python2.7 from Debian bullseye" >&2
    if [ ! -f /etc/apt/sources.list.d/bullseye.list ]; then
      echo "deb http://deb.debian.org/debian bullseye main" > /etc/apt/sources.list.d/bullseye.list
    fi
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python2.7 >/dev/null
    py=/usr/bin/python2.7
  fi
  python3 -m pip install -q --disable-pip-version-check 'virtualenv<20.22' >/dev/null 2>&1
  python3 -m virtualenv -q -p "$py" "$home/venv" >/dev/null
  "$home/venv/bin/pip" install -q --disable-pip-version-check autobahntestsuite >/dev/null 2>&1
}

setup
wstest="$home/venv/bin/wstest"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "autobahn: nothing listens on port $1" >&2
  return 1
}

status=0

# Server side: wstest is the client.
port=$(free_port)
node "$root/scripts/autobahn/echo-server.js" "$port" "$impl" >/dev/null &
pids+=($!)
wait_port "$port"
cat > "$work/client.json" <<JSON
{ "outdir": "$work/server-report", "servers": [{ "agent": "ws-native", "url": "ws://127.0.0.1:$port" }],
  "cases": $cases, "exclude-cases": [], "exclude-agent-cases": {} }
JSON
start=$(date +%s)
(cd "$work" && "$wstest" -m fuzzingclient -s client.json >/dev/null 2>&1)
echo "autobahn: server side ran in $(( $(date +%s) - start )) s"
node "$root/scripts/autobahn/summary.js" "$work/server-report" ws-native "server ($impl)" || status=1

# Client side: wstest is the server.
port=$(free_port)
cat > "$work/server.json" <<JSON
{ "url": "ws://127.0.0.1:$port", "outdir": "$work/client-report",
  "cases": $cases, "exclude-cases": [], "exclude-agent-cases": {} }
JSON
(cd "$work" && exec "$wstest" -m fuzzingserver -s server.json >/dev/null 2>&1) &
pids+=($!)
wait_port "$port"
start=$(date +%s)
node "$root/scripts/autobahn/echo-client.js" "ws://127.0.0.1:$port" ws-native "$impl" >/dev/null
echo "autobahn: client side ran in $(( $(date +%s) - start )) s"
node "$root/scripts/autobahn/summary.js" "$work/client-report" ws-native "client ($impl)" || status=1

exit $status
