#!/usr/bin/env bash
# Call load: SIPp's built-in UAC (INVITE with SDP, ACK, hold the call, BYE), with RTP
# echoed back by SIPp, against voipd in auto-answer and against baresip in auto-answer on
# the same machine, one after the other. Prints per peer and phase: calls/s completed,
# failures, concurrent calls held with RTP flowing, RSS and CPU per call.
#
# usage: bench/calls.sh [RATE] [CONCURRENT]     (default: 200 calls/s; 500 concurrent)
#        VOIPD_ONLY=1 bench/calls.sh …           (skip baresip)
#        MUX=1 bench/calls.sh …                  (SIPp offers rtcp-mux: one socket per call)
#        PROFILE=FILE bench/calls.sh …           (also perf-records voipd for 5 s at the peak
#                                                 of the hold phase; the report goes to FILE,
#                                                 the recording, with call graphs, to FILE.data)
#        VIA_KAMAILIO=1 bench/calls.sh …         (voipd only, registered at Kamailio (KAM_CHILDREN
#                                                 UDP workers, default 4; KAM_MEM MB), which
#                                                 challenges each INVITE and BYE with 407 and
#                                                 relays; SIPp calls as bob, answering them)
# Needs sipp (sip-tester) and baresip (baresip-core). Loopback only; it stops all it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-200}"
CONC="${2:-500}"
HOLD_S=10
[ -n "${PROFILE:-}" ] && { command -v perf >/dev/null || { echo "perf missing (apt-get install linux-perf)" >&2; exit 1; }; }
for t in sipp baresip; do command -v $t >/dev/null || { echo "$t missing (apt-get install sip-tester baresip-core)" >&2; exit 1; }; done
. bench/lib.sh
bench_start callbench

# SIPp as caller; prints "ok failed elapsed".
run_sipp() { # target rate count duration_ms peak_var
  local target=$1 rate=$2 count=$3 dur=$4 tag=$5
  local stats="$work/stats-$tag.csv"
  local t0; t0=$(date +%s.%N)
  sipp "$target" "${SCENARIO[@]}" -s alice -i 127.0.0.1 -p "$(free_port)" -mi 127.0.0.1 -mp "$(( $(free_port) & ~1 ))" \
    -rtp_echo -r "$rate" -m "$count" -d "$dur" -l $((count)) -nostdin -timeout 300s \
    -default_behaviors "$BEHAVIORS" -trace_stat -stf "$stats" -fd 1 \
    -trace_err -error_file "$work/errors-$tag.log" >/dev/null 2>&1 || true
  local t1; t1=$(date +%s.%N)
  python3 - "$stats" "$t0" "$t1" <<'PY'
import sys
rows=[l.rstrip("\n").split(";") for l in open(sys.argv[1]) if l.strip()]
h,last=rows[0],rows[-1]
print(last[h.index("SuccessfulCall(C)")], last[h.index("FailedCall(C)")], f"{float(sys.argv[3])-float(sys.argv[2]):.1f}")
PY
}

# Why SIPp failed calls, most common first (retransmissions to finished calls left out).
why_failed() {
  local f="$work/errors-$1.log"
  grep -q 'Aborting\|[Tt]imeout' "$f" 2>/dev/null || return 0
  echo "  failures ($1):"
  grep 'Aborting\|[Tt]imeout' "$f" | grep -v 'Dead call' \
    | sed -e "s/.*Aborting call on unexpected message.*\(while [a-z]*\).*received '\(.*\)/unexpected \2 \1/" \
          -e 's/^[0-9-]*\t[0-9:.]*\t[0-9.]*: //' | sort | uniq -c | sort -rn | head -5 | sed 's/^/    /'
}

measure() { # name pid target
  local name=$1 pid=$2 target=$3
  local idle_rss; idle_rss=$(rss "$pid")
  # Phase 1: CONC concurrent calls held HOLD_S s with RTP both ways; sample at the peak.
  # First, so that RSS per call counts from the idle daemon (after a burst of calls, the
  # allocator keeps freed memory a while, and it would be counted as the held calls').
  # Set up at 100 calls/s, or in 20 s when there are more than 2,000.
  local ramp=$(( CONC > 2000 ? CONC / 20 : 100 ))
  # (Longer with a profile, and with many calls: listing them to count packets takes time.)
  local hold_s=$(( HOLD_S + ${PROFILE:+6} + 0 + (CONC > 2000 ? 30 : 0) ))
  local hold_ms=$((hold_s * 1000 + CONC * 1000 / ramp))
  run_sipp "$target" "$ramp" "$CONC" "$hold_ms" "$name-conc" > "$work/conc-$name.out" &
  local sp=$!
  sleep $((CONC / ramp + 2))
  local peak_rss; peak_rss=$(rss "$pid"); local th; th=$(threads "$pid")
  local p0 t0 rtp=""
  # (The daemon counts when the listing starts: the time is taken just before.)
  [ "$name" = voipd ] && { t0=$(date +%s.%N); p0=$(media_totals "$work/v/run"); }
  local ca ua; ca=$(cpu "$pid"); ua=$(ucpu "$pid"); sleep 5; local cb ub; cb=$(cpu "$pid"); ub=$(ucpu "$pid")
  if [ "$name" = voipd ]; then
    # What really flowed: at the peak a tick that overran would send less than 50/s.
    local t1 p1; t1=$(date +%s.%N); p1=$(media_totals "$work/v/run")
    rtp=$(python3 -c "a,b=map(int,'$p0'.split()[:2]); c,d=map(int,'$p1'.split()[:2]); t=$t1-$t0; print(f'RTP per call {(c-a)/t/$CONC:.1f} packets/s sent, {(d-b)/t/$CONC:.1f} received')")
  fi
  if [ -n "${PROFILE:-}" ] && [ "$name" = voipd ]; then
    # Where the time goes at the peak: user and kernel, by function.
    perf record -q -F 999 -g -p "$pid" -o "$work/perf.data" -- sleep 5 >/dev/null 2>&1
    perf report -i "$work/perf.data" --stdio --no-children --sort sym --percent-limit 1 -g none \
      2>/dev/null | grep -v '^#' | grep -v '^$' > "$PROFILE" || true
    cp "$work/perf.data" "$PROFILE.data"
  fi
  wait "$sp"
  read -r ok failed secs < "$work/conc-$name.out"
  why_failed "$name-conc"
  printf '%-8s hold      %5s concurrent calls with RTP: %s completed, %s failed; RSS %s kB idle, %s kB at peak (%s kB/call); CPU %s%% of a core at peak (%s%%/call; user %s%%/call, the rest kernel); %s threads\n' \
    "$name" "$CONC" "$ok" "$failed" "$idle_rss" "$peak_rss" \
    "$(python3 -c "print(round(($peak_rss-$idle_rss)/$CONC,1))")" \
    "$(python3 -c "print(round(100*($cb-$ca)/$ticks/5))")" \
    "$(python3 -c "print(round(100*($cb-$ca)/$ticks/5/$CONC,3))")" \
    "$(python3 -c "print(round(100*($ub-$ua)/$ticks/5/$CONC,3))")" "$th"
  [ -z "$rtp" ] || echo "         $rtp"
  # Phase 2: completed calls/s, short calls (1 s each) at RATE for 10 s.
  # calls/s: completed over the wall time less the last call's 1 s.
  local c0; c0=$(cpu "$pid")
  read -r ok failed secs < <(run_sipp "$target" "$RATE" $((RATE * 10)) 1000 "$name-rate")
  local c1; c1=$(cpu "$pid")
  why_failed "$name-rate"
  printf '%-8s rate      %5s calls offered at %s/s: %s completed, %s failed, %s s, %s calls/s, CPU %s%%\n' \
    "$name" $((RATE * 10)) "$RATE" "$ok" "$failed" "$secs" \
    "$(python3 -c "print(int($ok/max($secs-1,1)))")" "$(python3 -c "print(round(100*($c1-$c0)/$ticks/$secs))")"
}


SCENARIO=(-sn uac)
BEHAVIORS=all,-bye
[ -n "${MUX:-}" ] && SCENARIO=(-sf bench/uac_mux.xml)
# voipd: auto-answer, G.711 only, silence as input, nothing recorded.
mkdir -p "$work/v/cfg/voipd" "$work/v/run"
vport=$(free_port)
autoanswer_config "$work/v/cfg/voipd/config.toml" "$vport"
# Two ports per call, below the kernel's ephemeral range (32768 up), where SIPp and the
# others take theirs: 11,384 calls fit.
sed -i 's|^output = "null"|&\nrtp_ports = "10000-32767"|' "$work/v/cfg/voipd/config.toml"
target="127.0.0.1:$vport"
if [ -n "${VIA_KAMAILIO:-}" ]; then
  command -v kamailio >/dev/null || { echo "kamailio missing (apt-get install kamailio)" >&2; exit 1; }
  kport=$(free_port)
  mkdir -p "$work/k"
  setsid kamailio -DD -E -f tests/peers/kamailio.cfg -Y "$work/k" -P "$work/k/pid" -m "${KAM_MEM:-256}" \
    -A "LISTEN_PORT=$kport" -A "CHILDREN=${KAM_CHILDREN:-4}" >"$work/kamailio.log" 2>&1 & kpid=$!
  pids+=(-"$kpid")
  sleep 1
  # alice registers at Kamailio with her password.
  sed -i -e "s|aor = \"sip:alice@127.0.0.1\"|aor = \"sip:alice@127.0.0.1:$kport\"\npassword = \"alicepw\"|" \
    -e 's|enabled = false|enabled = true|' "$work/v/cfg/voipd/config.toml"
  target="127.0.0.1:$kport"
  SCENARIO=(-sf bench/uac_auth.xml -au bob -ap bobpw)
  # Kamailio's workers (several processes, UDP) may pass a call's 180 after its 200. A UA
  # ignores it; SIPp would abort the call. A call that really fails still times out.
  BEHAVIORS=all,-bye,-abortunexp
fi
XDG_CONFIG_HOME="$work/v/cfg" XDG_RUNTIME_DIR="$work/v/run" XDG_STATE_HOME="$work/v/state" \
  "$bin/voipd" 2>"$work/voipd.log" & pids+=($!); vpid=$!
sleep 1
if [ -n "${VIA_KAMAILIO:-}" ]; then
  for _ in $(seq 50); do
    XDG_RUNTIME_DIR="$work/v/run" "$bin/voipctl" accounts | grep -q registered && break
    sleep 0.2
  done
fi
ulimit -n 65536 2>/dev/null || true
measure voipd "$vpid" "$target"
kill "$vpid"; wait "$vpid" 2>/dev/null || true
[ -n "${VIA_KAMAILIO:-}" ] && exit 0

[ -n "${VOIPD_ONLY:-}" ] && exit 0

# baresip: auto-answer, G.711, a sine source (it needs one), no recording.
mkdir -p "$work/b/home"
bport=$(free_port)
rtp=$(( ($(free_port) & ~1) ))
cat > "$work/b/config" <<CFG
poll_method epoll
sip_listen 127.0.0.1:$bport
call_max_calls 4096
audio_source ausine,440
audio_player aubridge,bench-null
audio_alert aubridge,bench-null
ausrc_srate 48000
ausrc_channels 2
audio_level no
rtp_ports 10000-40000
net_interface 127.0.0.1
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aubridge.so
module_tmp account.so
module_app menu.so
statmode_default off
CFG
echo "<sip:alice@127.0.0.1;transport=udp>;regint=0;answermode=auto;audio_codecs=PCMU" > "$work/b/accounts"
( cd "$work/b" && HOME="$work/b/home" exec baresip -f "$work/b" </dev/null >"$work/baresip.log" 2>&1 ) & pids+=($!); bpid=$!
sleep 1
measure baresip "$bpid" "127.0.0.1:$bport"
