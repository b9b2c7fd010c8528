#!/usr/bin/env bash
# Events out to home automation under call load: SIPp's built-in UAC calls voipd (auto
# answer, G.711, RTP echoed) at RATE calls/s for 10 s, first with nothing listening, then
# with every event published to a mosquitto broker (MQTT, QoS 1) and POSTed to a webhook
# (HTTP/1.1 keep-alive, HMAC-signed). Prints calls completed and failed in each run (the
# second must not do worse), events emitted, events received by an MQTT subscriber and by
# the webhook receiver, and voipd's CPU. Then hook start latency: a hook on each of 300
# contact_changed events writes how long after the event it started.
#
# usage: bench/automation.sh [RATE]     (default: 200 calls/s)
# Needs sipp (sip-tester), mosquitto and mosquitto-clients. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-200}"
for t in sipp mosquitto mosquitto_sub; do command -v $t >/dev/null || { echo "$t missing (apt-get install sip-tester mosquitto mosquitto-clients)" >&2; exit 1; }; done
. bench/lib.sh
bench_start automation

mport=$(free_port)
printf 'user root\nlistener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n' "$mport" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >/dev/null 2>&1 & pids+=($!)
wport=$(free_port)
cat > "$work/receiver.py" <<'PY'
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
count = 0
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers["Content-Length"]))
        count += 1
        if count % 100 == 0:
            open(sys.argv[2], "w").write(str(count))
        self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$work/receiver.py" "$wport" "$work/webhook-count" & pids+=($!)
sleep 0.5
mosquitto_sub -p "$mport" -q 1 -t 'voipd/event/#' > "$work/mqtt.txt" & pids+=($!)

# run NAME EXTRA_CONFIG: one voipd, RATE calls/s for 10 s; prints what came of it.
run() {
  local name=$1 extra=$2 dir="$work/$1"
  mkdir -p "$dir/cfg/voipd" "$dir/run"
  local vport; vport=$(free_port)
  autoanswer_config "$dir/cfg/voipd/config.toml" "$vport"
  printf '%s\n' "$extra" >> "$dir/cfg/voipd/config.toml"
  XDG_CONFIG_HOME="$dir/cfg" XDG_RUNTIME_DIR="$dir/run" XDG_STATE_HOME="$dir/state" \
    "$bin/voipd" 2>"$dir/voipd.log" & local vpid=$!; pids+=($vpid)
  sleep 1
  local m0 w0; m0=$(wc -l < "$work/mqtt.txt"); w0=$(cat "$work/webhook-count" 2>/dev/null || echo 0)
  local c0; c0=$(cpu "$vpid")
  local t0; t0=$(date +%s.%N)
  sipp "127.0.0.1:$vport" -sn uac -s alice -i 127.0.0.1 -p "$(free_port)" -mi 127.0.0.1 -mp "$(( $(free_port) & ~1 ))" \
    -rtp_echo -r "$RATE" -m $((RATE * 10)) -d 1000 -l $((RATE * 10)) -nostdin -timeout 120s \
    -default_behaviors all,-bye -trace_stat -stf "$dir/stats.csv" >/dev/null 2>&1 || true
  local t1; t1=$(date +%s.%N); local c1; c1=$(cpu "$vpid")
  sleep 2
  # Events emitted: the seq of an event made now, less one.
  XDG_RUNTIME_DIR="$dir/run" "$bin/voipctl" --json watch > "$dir/seq.json" & local wp=$!
  sleep 0.3; XDG_RUNTIME_DIR="$dir/run" "$bin/voipctl" contacts add "probe" -a probe@127.0.0.1 >/dev/null
  sleep 0.5; kill "$wp" 2>/dev/null || true
  local emitted; emitted=$(python3 -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1]) if x.strip()]; print(l[0]["seq"]-1 if l else 0)' "$dir/seq.json")
  local m1 w1; m1=$(wc -l < "$work/mqtt.txt"); w1=$(cat "$work/webhook-count" 2>/dev/null || echo 0)
  python3 - "$dir/stats.csv" "$name" "$t0" "$t1" "$c0" "$c1" "$ticks" "$emitted" "$((m1 - m0))" "$((w1 - w0))" "$(grep -c 'dropped' "$dir/voipd.log" || true)" <<'PY'
import sys
rows=[l.rstrip("\n").split(";") for l in open(sys.argv[1]) if l.strip()]
h,last=rows[0],rows[-1]
ok,failed=last[h.index("SuccessfulCall(C)")],last[h.index("FailedCall(C)")]
name,t0,t1,c0,c1,ticks,emitted,mq,wh,drops=sys.argv[2:]
secs=float(t1)-float(t0)
cpu=100*(int(c1)-int(c0))/int(ticks)/secs
print(f"{name:10} calls {ok} completed, {failed} failed in {secs:.1f} s; voipd CPU {cpu:.0f}% of a core; "
      f"{emitted} events ({int(emitted)/secs:.0f}/s); MQTT subscriber got {mq}, webhook got {wh} "
      f"(rounded down to 100); drop warnings in the log: {drops}")
PY
  kill "$vpid"; wait "$vpid" 2>/dev/null || true
}

run plain ""
run automation "[mqtt]
url = \"mqtt://127.0.0.1:$mport\"
client_id = \"bench\"
queue = 100000

[[webhook]]
url = \"http://127.0.0.1:$wport/hook\"
secret = \"bench-secret\"
queue = 100000"

# Hook start latency: from the event (VOIPD_TIME, ms) to the hook's first line of shell.
dir="$work/hooks"; mkdir -p "$dir/cfg/voipd" "$dir/run"
cat > "$dir/latency" <<SH
#!/bin/sh
echo \$(( \$(date +%s%3N) - VOIPD_TIME )) >> "$dir/latency.txt"
SH
chmod +x "$dir/latency"
autoanswer_config "$dir/cfg/voipd/config.toml" "$(free_port)"
printf '[presence]\nsubscribe = false\n[[hook]]\non = ["contact_changed"]\nexec = ["%s"]\n' "$dir/latency" >> "$dir/cfg/voipd/config.toml"
XDG_CONFIG_HOME="$dir/cfg" XDG_RUNTIME_DIR="$dir/run" XDG_STATE_HOME="$dir/state" \
  "$bin/voipd" 2>"$dir/voipd.log" & pids+=($!)
sleep 1
for i in $(seq 300); do XDG_RUNTIME_DIR="$dir/run" "$bin/voipctl" contacts add "c$i" -a "c$i@127.0.0.1" >/dev/null; done
sleep 1
python3 - "$dir/latency.txt" <<'PY'
import sys
v=sorted(int(x) for x in open(sys.argv[1]) if x.strip())
print(f"hooks      {len(v)} runs; start latency (event to the hook's shell running): median {v[len(v)//2]} ms, p99 {v[int(len(v)*0.99)-1]} ms, max {v[-1]} ms")
PY
