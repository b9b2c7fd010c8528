#!/usr/bin/env bash
# The control plane under load, against a release voipd on a private dbus-daemon:
#  - round trips: `voipctl status` and `busctl get-property` as whole commands (process
#    start included), and GetStatus over one grpcio channel; p50/p90/p99;
#  - the event stream: 10 `voipctl --json watch` while SIPp calls at RATE/s (about three
#    events per call) for 10 s; per watcher the events it got and the gaps in their seq;
#  - a watcher that reads nothing meanwhile: how it is cut off, and voipd's RSS.
# usage: bench/control.sh [RATE]     (default 350 calls/s, about 1,000 events/s)
# Needs sipp, dbus-daemon, busctl and the grpcio venv (./dev test installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voipd-target}"
RATE="${1:-350}"
PY="${VOIPD_TEST_PYTHON:-/var/tmp/voipd-venv/bin/python3}"
for t in sipp dbus-daemon busctl "$PY"; do command -v "$t" >/dev/null || { echo "$t missing (./dev test installs it)" >&2; exit 1; }; done
# jeepney: a pure-Python D-Bus client, for property reads without a process per read.
"$PY" -c 'import jeepney' 2>/dev/null || "$PY" -m pip install -q jeepney
cargo build --release -q -p voipd -p voipctl
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d /tmp/voipd-ctlbench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. bench/lib.sh

cat > "$work/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=$work/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>
CONF
dbus-daemon --config-file="$work/bus.conf" --nofork 2>/dev/null & pids+=($!)
export DBUS_SESSION_BUS_ADDRESS="unix:path=$work/bus"

mkdir -p "$work/cfg/voipd" "$work/run"
vport=$(free_port)
autoanswer_config "$work/cfg/voipd/config.toml" "$vport"
export XDG_CONFIG_HOME="$work/cfg" XDG_RUNTIME_DIR="$work/run" XDG_STATE_HOME="$work/state"
sock="$work/run/voipd/voipd.sock"
"$bin/voipd" 2>"$work/voipd.log" & pids+=($!); vpid=$!
for _ in $(seq 100); do busctl --address="$DBUS_SESSION_BUS_ADDRESS" list --no-legend 2>/dev/null | grep -q org.voipd.Voipd && break; sleep 0.05; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$vpid/status"; }

echo "== round trips"
"$PY" bench/control.py latency "voipctl status (whole command)" 300 "$bin/voipctl" --socket "$sock" status
"$PY" bench/control.py latency "busctl get-property (whole command)" 300 \
  busctl --address="$DBUS_SESSION_BUS_ADDRESS" get-property org.voipd.Voipd /org/voipd/Voipd/account/alice org.voipd.Account1 State
"$PY" bench/control.py grpc-latency "$sock" 2000
"$PY" bench/control.py dbus-latency "$DBUS_SESSION_BUS_ADDRESS" 2000

echo "== event stream: 10 watchers, SIPp at $RATE calls/s for 10 s"
for i in $(seq 10); do "$bin/voipctl" --socket "$sock" --json watch > "$work/watch-$i.jsonl" & pids+=($!); done
# A stalled script: voipctl's output goes to a reader that sleeps, so voipctl blocks on
# its pipe and stops reading the stream.
"$bin/voipctl" --socket "$sock" --json watch 2>"$work/slow.err" \
  | ( sleep 14; wc -l >"$work/slow.count" ) & slowpid=$!; pids+=($slowpid)
sleep 1
rss0=$(rss)
t0=$(date +%s.%N)
sipp "127.0.0.1:$vport" -sn uac -s alice -i 127.0.0.1 -p "$(free_port)" -r "$RATE" -m $((RATE * 10)) -d 200 \
  -nostdin -timeout 60s -default_behaviors all,-bye -trace_stat -stf "$work/sipp.csv" >/dev/null 2>&1 || true
t1=$(date +%s.%N)
sleep 1
rss1=$(rss)
first=$(head -1 "$work/watch-1.jsonl" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["seq"])')
last=$(tail -1 "$work/watch-1.jsonl" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["seq"])')
python3 -c "print(f'events emitted: {$last-$first+1} in {$t1-$t0:.1f} s = {($last-$first+1)/($t1-$t0):.0f} events/s')"
"$PY" bench/control.py events "$work"/watch-*.jsonl
wait "$slowpid" || true
echo "stalled watcher: got $(cat "$work/slow.count") events, then: $(tr '\n' ' ' <"$work/slow.err")"
echo "voipd RSS: $rss0 kB before, $rss1 kB after (slow watcher and 10 watchers connected)"
