#!/usr/bin/env bash
# ICE (issue #15), two figures:
# 1. Setup time per call across NATs: voipd behind one port-restricted NAT calls voipd
#    behind another through Kamailio, both with ICE and coturn's STUN, CALLS times; median
#    and p99 of gathering, checks and dial-to-path (tests/benches/ice_setup.rs, in network
#    namespaces: needs root, kamailio, coturn).
# 2. What ICE costs per packet: voipd dials CONCURRENT calls on loopback to a second voipd
#    that answers them all, first without ICE, then with ICE on both; the caller's CPU and
#    RSS at the plateau, side by side, in alternate runs; the medians' ratio (target:
#    within 1.1x).
#
# usage: [ROUNDS=3] bench/ice.sh [CONCURRENT] [CALLS]        (defaults 1000, 200)
set -euo pipefail
cd "$(dirname "$0")/.."
CONC="${1:-1000}"
CALLS="${2:-200}"
. bench/lib.sh
bench_start icebench
ulimit -n 65536 2>/dev/null || true

echo "== ICE setup time per call across two NATs ($CALLS calls)"
VOIPD_BENCH_CALLS="$CALLS" cargo bench -q -p voipd-tests --bench ice_setup

echo
echo "== $CONC concurrent calls on loopback, voipd to voipd: the caller's CPU without and with ICE"
run() { # label ice(true|false)
  local label=$1 ice=$2
  local d="$work/$label"
  mkdir -p "$d/a/cfg/voipd" "$d/a/run" "$d/b/cfg/voipd" "$d/b/run"
  local bport; bport=$(free_port)
  # (An account answers 4 calls at once by default: the load needs room for all.)
  voipd_config "$d/b/cfg/voipd/config.toml" "\"udp:127.0.0.1:$bport\"" "answer = { mode = \"auto\" }
max_calls = 100000
ice = $ice"
  XDG_CONFIG_HOME="$d/b/cfg" XDG_RUNTIME_DIR="$d/b/run" XDG_STATE_HOME="$d/b/state" \
    "$bin/voipd" 2>"$d/b.log" & local bpid=$!
  pids+=("$bpid")
  voipd_config "$d/a/cfg/voipd/config.toml" "\"udp:127.0.0.1:$(free_port)\"" "ice = $ice"
  XDG_CONFIG_HOME="$d/a/cfg" XDG_RUNTIME_DIR="$d/a/run" XDG_STATE_HOME="$d/a/state" \
    "$bin/voipd" 2>"$d/a.log" & local apid=$!
  pids+=("$apid")
  sleep 1
  local idle; idle=$(rss "$apid")
  dial_many "$d/a/run" "$CONC" "$bport"
  local active; active=$(wait_active "$d/a/run" "$CONC")
  sleep 3
  local peak; peak=$(rss "$apid")
  local ca; ca=$(cpu "$apid"); sleep 10; local cb; cb=$(cpu "$apid")
  local stats; stats=$(XDG_RUNTIME_DIR="$d/a/run" "$bin/voipctl" --json calls | python3 -c '
import collections,json,sys
cs=json.load(sys.stdin).get("calls",[])
paths=collections.Counter(c.get("ice") or "none" for c in cs)
print(",".join(f"{k}:{v}" for k,v in sorted(paths.items())), sum(int(c.get("media",{}).get("packets_received",0)) for c in cs))')
  read -r paths received <<<"$stats"
  printf '%-10s %5s of %s calls active (ICE %s); caller CPU %3d%% of a core (%.4f%%/call); RSS %s kB idle, %s kB at peak (%.1f kB/call); %s packets received\n' \
    "$label" "$active" "$CONC" "$paths" \
    "$(python3 -c "print(round(100*($cb-$ca)/$ticks/10))")" \
    "$(python3 -c "print(100*($cb-$ca)/$ticks/10/$CONC)")" \
    "$idle" "$peak" "$(python3 -c "print(($peak-$idle)/$CONC)")" "$received"
  echo "$label $(python3 -c "print(100*($cb-$ca)/$ticks/10/$CONC)")" >> "$work/per-call"
  XDG_RUNTIME_DIR="$d/a/run" "$bin/voipctl" shutdown >/dev/null 2>&1 || kill "$apid"
  XDG_RUNTIME_DIR="$d/b/run" "$bin/voipctl" shutdown >/dev/null 2>&1 || kill "$bpid"
  wait "$apid" "$bpid" 2>/dev/null || true
}

# Alternated, ROUNDS times each: one run's CPU varies by more than ICE costs.
for _ in $(seq "${ROUNDS:-3}"); do
  run "no ICE" false
  run "ICE" true
done
python3 - "$work/per-call" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]).read().splitlines():
    label, v = line.rsplit(" ", 1)
    runs.setdefault(label, []).append(float(v))
off, on = statistics.median(runs["no ICE"]), statistics.median(runs["ICE"])
print(f"median of {len(runs['ICE'])} runs each: {on:.4f}% of a core per call with ICE, "
      f"{off:.4f}% without: {on / off:.2f}x")
PY
