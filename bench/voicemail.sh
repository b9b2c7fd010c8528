#!/usr/bin/env bash
# Answering-machine load: SIPp's built-in UAC calls voipd N times at once; nobody answers,
# the machine picks up at once, plays its greeting and beep, and records each caller (RTP
# echoed back by SIPp) until SIPp hangs up after HOLD seconds. Prints voipd's CPU and RSS
# per recording while all N record, and the bytes each recorded minute takes on disk.
#
# usage: bench/voicemail.sh [N] [HOLD]      (default: 100 recordings, 60 s each)
# Needs sipp (sip-tester). Loopback only; it stops all it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100}"
HOLD="${2:-60}"
command -v sipp >/dev/null || { echo "sipp missing (apt-get install sip-tester)" >&2; exit 1; }
. bench/lib.sh
bench_start vmbench

vport=$(free_port)
mkdir -p "$work/v/cfg/voipd" "$work/v/run"
# silence_secs = 0: SIPp echoes what it hears, and after the beep that is silence.
voipd_config "$work/v/cfg/voipd/config.toml" "\"udp:127.0.0.1:$vport\"" \
  "answering_machine = { after_secs = 0, max_secs = $((HOLD + 60)), silence_secs = 0, min_secs = 1 }
[voicemail]
max_count = $((N * 2))
max_mib = 4096"
XDG_CONFIG_HOME="$work/v/cfg" XDG_RUNTIME_DIR="$work/v/run" XDG_STATE_HOME="$work/v/state" \
  "$bin/voipd" 2>"$work/voipd.log" & pids+=($!); vpid=$!
for _ in $(seq 100); do [ -S "$work/v/run/voipd/voipd.sock" ] && break; sleep 0.1; done
sleep 0.5
idle_rss=$(rss "$vpid")

# N calls at 50 a second, each held HOLD s; SIPp echoes the RTP it gets.
sipp "127.0.0.1:$vport" -sn uac -s alice -i 127.0.0.1 -p "$(free_port)" -mi 127.0.0.1 \
  -mp "$(( $(free_port) & ~1 ))" -rtp_echo -r 50 -m "$N" -l "$N" -d $((HOLD * 1000)) \
  -nostdin -timeout $((HOLD + 120))s -trace_err -error_file "$work/sipp-errors.log" \
  >/dev/null 2>&1 & sipp_pid=$!; pids+=($sipp_pid)

active=$(wait_active "$work/v/run" "$N")
# The greeting and beep play for the first 2 s; measure the recording after them.
sleep 3
window=$(( HOLD - 3 - N / 50 - 5 ))
[ "$window" -lt 5 ] && window=5
c0=$(cpu "$vpid"); t0=$(date +%s.%N)
sleep "$window"
c1=$(cpu "$vpid"); t1=$(date +%s.%N)
busy_rss=$(rss "$vpid")
wait "$sipp_pid" || true

# Every message kept: wait until the list holds N (or stops growing).
for _ in $(seq 60); do
  kept=$(XDG_RUNTIME_DIR="$work/v/run" "$bin/voipctl" --json voicemail list --limit 10000 \
    | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("messages",[])))')
  [ "$kept" -ge "$N" ] && break
  sleep 1
done
XDG_RUNTIME_DIR="$work/v/run" "$bin/voipctl" --json voicemail list --limit 10000 > "$work/list.json"
python3 - "$work/list.json" "$N" "$active" "$idle_rss" "$busy_rss" "$c0" "$c1" "$t0" "$t1" "$ticks" <<'PY'
import json, os, sys
lst, n, active, idle, busy, c0, c1, t0, t1, ticks = sys.argv[1:]
msgs = json.load(open(lst)).get("messages", [])
n, active, idle, busy = int(n), int(active), int(idle), int(busy)
cpu = (int(c1) - int(c0)) / int(ticks) / (float(t1) - float(t0)) * 100
minutes = sum(m["duration_ms"] for m in msgs) / 60000
size = sum(os.path.getsize(m["file"]) for m in msgs)
print(f"recordings at once: {active} of {n} (all ringing calls answered by the machine)")
print(f"voipd CPU while {active} record: {cpu:.1f} % of one core, {cpu / max(active, 1):.3f} % per recording")
print(f"voipd RSS: idle {idle / 1024:.1f} MiB, recording {busy / 1024:.1f} MiB, "
      f"{(busy - idle) / max(active, 1):.0f} KiB per recording")
print(f"messages kept: {len(msgs)}, {minutes:.1f} min recorded, {size / 1e6:.1f} MB: "
      f"{size / max(minutes, 1e-9) / 1e3:.0f} kB per recorded minute")
PY
