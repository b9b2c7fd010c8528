#!/usr/bin/env bash
# SRTP against clear RTP: voipd dials CONCURRENT calls to a SIPp UAS that echoes every
# media packet back (with SRTP it answers with voipd's own key, so that voipd decrypts
# what comes back: voipd pays for SRTP both ways, the echo for nothing), holds them, and
# measures voipd's CPU and RSS at the plateau; first in clear, then with SDES-SRTP
# (AES_CM_128_HMAC_SHA1_80, then AEAD_AES_128_GCM). Prints the figures side by side.
#
# usage: bench/srtp.sh [CONCURRENT]        (default 2000)
#        PROFILE=PREFIX bench/srtp.sh …     (also perf-records voipd for 5 s in each mode;
#                                            the report goes to PREFIX-MODE.txt)
#        ROUNDS=N bench/srtp.sh …           (the three modes N times over, in turn; the
#                                            ratios are of the medians: this VM's speed
#                                            drifts by a fifth from one minute to the next)
# Needs sipp (sip-tester). Loopback only; it stops all it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
CONC="${1:-2000}"
command -v sipp >/dev/null || { echo "sipp missing (apt-get install sip-tester)" >&2; exit 1; }
. bench/lib.sh
bench_start srtpbench
ulimit -n 65536 2>/dev/null || true

run() { # label account-lines
  local label=$1 lines=$2
  local d="$work/$label"
  mkdir -p "$d/cfg/voipd" "$d/run"
  local sport; sport=$(free_port)
  local mport=$(( ($(free_port) & ~1) ))
  sipp -sf bench/uas_echo_key.xml -i 127.0.0.1 -p "$sport" -mi 127.0.0.1 -mp "$mport" -rtp_echo \
    -nostdin -trace_err -error_file "$d/sipp-errors.log" >/dev/null 2>&1 &
  local spid=$!
  pids+=("$spid")
  dialer_config "$d/cfg/voipd/config.toml" "$sport" "$lines"
  XDG_CONFIG_HOME="$d/cfg" XDG_RUNTIME_DIR="$d/run" XDG_STATE_HOME="$d/state" \
    "$bin/voipd" 2>"$d/voipd.log" & local vpid=$!
  pids+=("$vpid")
  sleep 1
  local idle; idle=$(rss "$vpid")
  local t0; t0=$(date +%s.%N)
  dial_many "$d/run" "$CONC" "$sport"
  local t1; t1=$(date +%s.%N)
  local active; active=$(wait_active "$d/run" "$CONC")
  sleep 2
  local peak; peak=$(rss "$vpid")
  local s0; s0=$(media_totals "$d/run")
  local ca; ca=$(cpu "$vpid"); sleep 5; local cb; cb=$(cpu "$vpid")
  local s1; s1=$(media_totals "$d/run")
  read -r _ received failed enc <<<"$s1"
  # Packets moved in the 5 s, both ways: a saturated run moves fewer, which flatters it.
  local moved; moved=$(python3 -c "a='$s0'.split(); b='$s1'.split(); print(int(b[0])-int(a[0])+int(b[1])-int(a[1]))")
  printf '%-28s %5s of %s calls active (%s), dialled in %.1f s; CPU %3d%% of a core (%.4f%%/call); RSS %s kB idle, %s kB at peak (%.1f kB/call); %s packets received, %s failed authentication; %.1f packets/s per call\n' \
    "$label" "$active" "$CONC" "$enc" "$(python3 -c "print($t1-$t0)")" \
    "$(python3 -c "print(round(100*($cb-$ca)/$ticks/5))")" \
    "$(python3 -c "print(100*($cb-$ca)/$ticks/5/$CONC)")" \
    "$idle" "$peak" "$(python3 -c "print(($peak-$idle)/$CONC)")" "$received" "$failed" \
    "$(python3 -c "print($moved/5/$CONC)")"
  echo "$label $(python3 -c "print(100*($cb-$ca)/$ticks/5/$CONC)") $moved" >> "$work/per-call"
  if [ -n "${PROFILE:-}" ]; then
    perf record -q -F 999 -g -p "$vpid" -o "$d/perf.data" -- sleep 5 >/dev/null 2>&1
    perf report -i "$d/perf.data" --stdio --no-children --sort sym --percent-limit 0.7 -g none \
      2>/dev/null | grep -v '^#' | grep -v '^$' > "$PROFILE-${label// /-}.txt" || true
  fi
  XDG_RUNTIME_DIR="$d/run" "$bin/voipctl" shutdown >/dev/null 2>&1 || kill "$vpid"
  wait "$vpid" 2>/dev/null || true
  kill "$spid" 2>/dev/null || true
}

for _ in $(seq "${ROUNDS:-1}"); do
  run clear 'media_encryption = "none"'
  run "sdes AES_CM_128_HMAC_SHA1_80" 'media_encryption = "sdes"
srtp_suites = ["AES_CM_128_HMAC_SHA1_80"]'
  run "sdes AEAD_AES_128_GCM" 'media_encryption = "sdes"
srtp_suites = ["AEAD_AES_128_GCM"]'
done
python3 - "$work/per-call" <<'PY'
import statistics, sys
runs = {}
for l in open(sys.argv[1]).read().splitlines():
    label, cpu, moved = l.rsplit(" ", 2)
    runs.setdefault(label, []).append((float(cpu), float(cpu) / int(moved)))
med = {k: (statistics.median(c for c, _ in v), statistics.median(p for _, p in v)) for k, v in runs.items()}
base = med.pop("clear")
for label, (cpu, per_packet) in med.items():
    print(f"{label}: {cpu/base[0]:.2f}x the CPU per call of clear RTP, {per_packet/base[1]:.2f}x per packet"
          f" (medians of {len(runs[label])}; clear {base[0]:.4f}%/call)")
PY
