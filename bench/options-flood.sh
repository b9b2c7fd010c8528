#!/usr/bin/env bash
# OPTIONS flood: SIPp sends OPTIONS at a fixed rate to a release voipd over UDP and prints,
# per rate, what was achieved, the failures, and voipd's RSS before and after.
# usage: bench/options-flood.sh [RATE ...]      (default: 2000 5000 8000)
# Needs sipp (apt-get install sip-tester). Loopback only; everything it starts it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voipd-target}"
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 1; }
rates=("$@"); ((${#rates[@]})) || rates=(2000 5000 8000)
seconds=10

cargo build --release -q -p voipd -p voipctl
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d /tmp/voipd-bench.XXXXXX)
cleanup() { [ -n "${vpid:-}" ] && kill "$vpid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/cfg/voipd" "$work/run"
printf '[log]\nlevel = "warn"\n[sip]\nlisten = ["udp:127.0.0.1:0"]\n' > "$work/cfg/voipd/config.toml"
export XDG_CONFIG_HOME="$work/cfg" XDG_RUNTIME_DIR="$work/run" XDG_STATE_HOME="$work/state"
"$bin/voipd" 2>"$work/voipd.log" &
vpid=$!
for _ in $(seq 100); do [ -S "$work/run/voipd/voipd.sock" ] && break; sleep 0.05; done
port=$("$bin/voipctl" --json status | python3 -c 'import json,sys; print([l for l in json.load(sys.stdin)["listening"] if l.startswith("udp:")][0].rsplit(":",1)[1])')
rss() { awk '/VmRSS/ {print $2}' "/proc/$vpid/status"; }
cpu() { awk '{print $14+$15}' "/proc/$vpid/stat"; }

printf '%-8s %-10s %-10s %-8s %-12s %-12s %-10s\n' rate/s achieved/s answered failed rss_before rss_after voipd_cpu
for rate in "${rates[@]}"; do
  count=$((rate * seconds))
  before=$(rss); cpu0=$(cpu); t0=$(date +%s.%N)
  sipp "127.0.0.1:$port" -sf tests/sipp/options_uac.xml -i 127.0.0.1 -p 0 -t u1 -s voipd \
    -r "$rate" -m "$count" -l 20000 -nostdin -default_behaviors all,-bye -timeout 120s \
    -trace_stat -stf "$work/stats-$rate.csv" -fd 1 >/dev/null 2>&1 || true
  t1=$(date +%s.%N); cpu1=$(cpu); after=$(rss)
  read -r ok failed < <(python3 - "$work/stats-$rate.csv" <<'PY'
import sys
rows=[l.rstrip("\n").split(";") for l in open(sys.argv[1]) if l.strip()]
h,last=rows[0],rows[-1]
print(last[h.index("SuccessfulCall(C)")], last[h.index("FailedCall(C)")])
PY
)
  elapsed=$(python3 -c "print(f'{$t1-$t0:.2f}')")
  achieved=$(python3 -c "print(int($ok/($t1-$t0)))")
  ticks=$(getconf CLK_TCK)
  cpu_pct=$(python3 -c "print(f'{100*($cpu1-$cpu0)/$ticks/($t1-$t0):.0f}%')")
  printf '%-8s %-10s %-10s %-8s %-12s %-12s %-10s\n' "$rate" "$achieved" "$ok" "$failed" "${before} kB" "${after} kB" "$cpu_pct"
done
