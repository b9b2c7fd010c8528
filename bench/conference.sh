#!/usr/bin/env bash
# Local conferences: voipd dials 2×CONFS calls to a SIPp UAS that echoes every media
# packet back, measures its CPU with them as plain calls, then mixes them in pairs into
# CONFS three-way conferences (two far sides and us) and measures again; prints CPU per
# conference and per leg against a plain call's. The mixer runs on the media engine's
# shared ticks: no thread per conference.
#
# usage: bench/conference.sh [CONFS]        (default 50)
# Needs sipp (sip-tester). Loopback only; it stops all it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFS="${1:-50}"
LEGS=$((CONFS * 2))
command -v sipp >/dev/null || { echo "sipp missing (apt-get install sip-tester)" >&2; exit 1; }
. bench/lib.sh
bench_start confbench
ulimit -n 65536 2>/dev/null || true

d="$work/v"
mkdir -p "$d/cfg/voipd" "$d/run"
sport=$(free_port)
mport=$(( ($(free_port) & ~1) ))
sipp -sf bench/uas_echo_key.xml -i 127.0.0.1 -p "$sport" -mi 127.0.0.1 -mp "$mport" -rtp_echo \
  -nostdin -trace_err -error_file "$work/sipp-errors.log" >/dev/null 2>&1 &
pids+=($!)
voipd_config "$d/cfg/voipd/config.toml" "\"udp:127.0.0.1:$(free_port)\""
# Our voice: a tone, so that the mixer adds real audio to what each leg sends.
sed -i -e 's|input = "null"|input = "tone:440"|' \
  -e "s|aor = \"sip:alice@127.0.0.1\"|aor = \"sip:alice@127.0.0.1:$sport\"|" "$d/cfg/voipd/config.toml"
XDG_CONFIG_HOME="$d/cfg" XDG_RUNTIME_DIR="$d/run" XDG_STATE_HOME="$d/state" \
  "$bin/voipd" 2>"$d/voipd.log" & vpid=$!
pids+=("$vpid")
sleep 1
ctl() { XDG_RUNTIME_DIR="$d/run" "$bin/voipctl" "$@"; }

cpu_over() { # seconds → % of a core
  local a b; a=$(cpu "$vpid"); sleep "$1"; b=$(cpu "$vpid")
  python3 -c "print(100*($b-$a)/$ticks/$1)"
}

seq "$LEGS" | XDG_RUNTIME_DIR="$d/run" xargs -P 8 -I{} "$bin/voipctl" dial --account alice "sip:leg{}@127.0.0.1:$sport" >/dev/null
active=$(wait_active "$d/run" "$LEGS")
sleep 2
idle_rss=$(rss "$vpid")
plain=$(cpu_over 10)

ids=$(ctl --json calls | python3 -c 'import json,sys; print(" ".join(str(c["id"]) for c in json.load(sys.stdin)["calls"]))')
set -- $ids
while [ $# -ge 2 ]; do ctl conference "$1" "$2" >/dev/null; shift 2; done
in_conf=$(ctl --json calls | python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin)["calls"] if c.get("conference",0)))')
sleep 2
mixed=$(cpu_over 10)
conf_rss=$(rss "$vpid")
threads_now=$(threads "$vpid")

python3 - "$LEGS" "$CONFS" "$active" "$in_conf" "$plain" "$mixed" "$idle_rss" "$conf_rss" "$threads_now" <<'PY'
import sys
legs, confs, active, in_conf = map(int, sys.argv[1:5])
plain, mixed = float(sys.argv[5]), float(sys.argv[6])
rss0, rss1, threads = int(sys.argv[7]), int(sys.argv[8]), sys.argv[9]
print(f"{active} of {legs} calls active; {in_conf} of them in {confs} conferences")
print(f"plain calls: {plain:.1f}% of a core, {plain/legs:.3f}% per call")
print(f"conferences: {mixed:.1f}% of a core, {mixed/confs:.3f}% per conference, {mixed/legs:.3f}% per leg "
      f"(mixing adds {(mixed-plain)/legs:+.3f}% per leg, {100*(mixed-plain)/max(plain,1e-9):+.0f}%)")
print(f"RSS {rss0} kB as plain calls, {rss1} kB mixed ({(rss1-rss0)/confs:+.1f} kB per conference); {threads} threads")
PY
ctl shutdown >/dev/null 2>&1 || kill "$vpid"
wait "$vpid" 2>/dev/null || true
