#!/usr/bin/env bash
# Hostile floods against a release voipd with an account (its provider at 127.0.0.1, so
# the inbound filter is on) and what each does to its memory: RSS before, at the peak and
# after the state the flood made has run out (Timer J/H, 64·T1 = 32 s, plus a margin).
#   strangers  20,000 INVITEs from 127.0.0.2 (SIPp), each answered 403 statelessly
#   tcp        2,000 idle TCP connections from 100 addresses
#   mutated    100,000 mutated SIP messages, half from a stranger, half from the provider
#   watchers   6,000 Watch streams opened and closed
# usage: bench/floods.sh [FLOOD ...]     (default: all four)
# Needs sipp and the test venv (./dev test makes it). Loopback only; stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voipd-target}"
VENV="${VOIPD_VENV:-/var/tmp/voipd-venv}"
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 1; }
"$VENV/bin/python3" -c 'import grpc' 2>/dev/null || { echo "no grpc in $VENV: run ./dev test once" >&2; exit 1; }
floods=("$@"); ((${#floods[@]})) || floods=(strangers tcp mutated watchers)
settle="${VOIPD_BENCH_SETTLE:-40}"

cargo build --release -q -p voipd -p voipctl
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d /tmp/voipd-bench.XXXXXX)
cleanup() { [ -n "${vpid:-}" ] && kill "$vpid" 2>/dev/null; [ -n "${hpid:-}" ] && kill "$hpid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/cfg/voipd" "$work/run"
voipd_config "$work/cfg/voipd/config.toml" '"udp:127.0.0.1:0", "tcp:127.0.0.1:0"'
export XDG_CONFIG_HOME="$work/cfg" XDG_RUNTIME_DIR="$work/run" XDG_STATE_HOME="$work/state"
"$bin/voipd" 2>"$work/voipd.log" &
vpid=$!
for _ in $(seq 100); do [ -S "$work/run/voipd/voipd.sock" ] && break; sleep 0.05; done
listener() { "$bin/voipctl" --json status | python3 -c "import json,sys; print([l for l in json.load(sys.stdin)['listening'] if l.startswith('$1:')][0].rsplit(':',1)[1])"; }
udp=$(listener udp); tcp=$(listener tcp)
rss() { awk '/VmRSS/ {print $2}' "/proc/$vpid/status"; }
# The heap and stacks alone: RSS also counts pages of the binary a flood's code paths
# touched for the first time, which nothing keeps but the page cache.
anon() { awk '/RssAnon/ {print $2}' "/proc/$vpid/status"; }
sleep 2

# Runs "$@" in the background, sampling RSS until it ends; sets peak.
sample_while() {
  "$@" >/dev/null 2>&1 &
  local job=$!
  peak=$(rss)
  while kill -0 "$job" 2>/dev/null; do
    local r; r=$(rss); ((r > peak)) && peak=$r
    sleep 0.2
  done
  wait "$job" || true
}

printf '%-10s %-12s %-12s %-12s %-20s %s\n' flood rss_before rss_peak rss_after "anon before→after" note
for flood in "${floods[@]}"; do
  before=$(rss); anon_before=$(anon)
  case "$flood" in
  strangers)
    sample_while sipp "127.0.0.1:$udp" -sf tests/sipp/invite_stranger.xml -i 127.0.0.2 -p 0 \
      -s alice -r 2000 -m 20000 -l 5000 -nostdin -timeout 60s
    note="refused: $("$bin/voipctl" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"].get("strangers_refused",0))')" ;;
  tcp)
    python3 tests/py/idle_tcp.py 127.0.0.1 "$tcp" 2000 100 < <(sleep 10) > "$work/tcp.json" &
    hpid=$!
    peak=$before
    for _ in $(seq 50); do r=$(rss); ((r > peak)) && peak=$r; sleep 0.2; done
    wait "$hpid" || true; hpid=
    note="$(cat "$work/tcp.json")" ;;
  mutated)
    sample_while bash -c "python3 tests/py/sip_flood.py 127.0.0.1 $udp 127.0.0.6 50000 5000 fuzz/seeds/sip_message 1 &
      python3 tests/py/sip_flood.py 127.0.0.1 $udp 127.0.0.1 50000 5000 fuzz/seeds/sip_message 2; wait"
    note="alive: $("$bin/voipctl" status >/dev/null && echo yes || echo no)" ;;
  watchers)
    sample_while "$VENV/bin/python3" tests/py/watch_churn.py "$work/run/voipd/voipd.sock" 60 100
    note="" ;;
  *) echo "unknown flood $flood" >&2; exit 2 ;;
  esac
  sleep "$settle"
  after=$(rss); anon_after=$(anon)
  [ "$flood" = watchers ] && note="watchers left: $("$bin/voipctl" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"].get("watchers",0))')"
  printf '%-10s %-12s %-12s %-12s %-20s %s\n' "$flood" "${before} kB" "${peak} kB" "${after} kB" "${anon_before}→${anon_after} kB" "$note"
done
