#!/usr/bin/env bash
# `voipctl status` as a whole command against starting /bin/true, interleaved, against an
# idle voipd (embedded default config). Prints p50 and p90 of each and the difference of
# the p50s (issue #20's target: within 1 ms).
#
# usage: bench/voipctl.sh [RUNS]      (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-300}"
. bench/lib.sh
bench_start voipctl
mkdir -p "$work/cfg" "$work/run" "$work/state"
XDG_CONFIG_HOME="$work/cfg" XDG_RUNTIME_DIR="$work/run" XDG_STATE_HOME="$work/state" \
  "$bin/voipd" 2>"$work/voipd.log" & pids+=($!)
for _ in $(seq 50); do [ -S "$work/run/voipd/voipd.sock" ] && break; sleep 0.1; done
XDG_RUNTIME_DIR="$work/run" python3 - "$bin/voipctl" "$RUNS" <<'PY'
import statistics, subprocess, sys, time
voipctl, runs = sys.argv[1], int(sys.argv[2])
def once(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t) * 1000
took = {"/bin/true": [], "voipctl status": []}
for _ in range(runs):
    took["/bin/true"].append(once(["/bin/true"]))
    took["voipctl status"].append(once([voipctl, "status"]))
p50 = {k: statistics.median(v) for k, v in took.items()}
for k, v in took.items():
    print(f"{k:15} p50 {p50[k]:.2f} ms, p90 {sorted(v)[int(len(v) * 0.9)]:.2f} ms")
print(f"voipctl status takes {p50['voipctl status'] - p50['/bin/true']:.2f} ms more than /bin/true (p50)")
PY
