#!/usr/bin/env bash
# The store with a long history: N text messages (default 100,000) sent to a release voipd
# over SIP by SIPp (100 peers, each a contact among 1,000 imported from a vCard file), then
#  - `voipctl message list --with "Peer 42"` (a contact's name: resolved, then its 1,000
#    messages' newest 100) and `voipctl contacts list 42` (search) as whole commands, and
#    the same requests over one gRPC channel; p50/p90/p99;
#  - the store's growth per message (the file after voipd has stopped and checkpointed).
# usage: bench/messages.sh [N] [RATE]     (defaults 100000 messages at 2000/s)
# Needs sipp and the grpcio venv (./dev test installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voipd-target}"
N="${1:-100000}"
RATE="${2:-2000}"
PY="${VOIPD_TEST_PYTHON:-/var/tmp/voipd-venv/bin/python3}"
for t in sipp "$PY"; do command -v "$t" >/dev/null || { echo "$t missing (./dev test installs it)" >&2; exit 1; }; done
cargo build --release -q -p voipd -p voipctl
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d /tmp/voipd-msgbench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. bench/lib.sh

mkdir -p "$work/cfg/voipd" "$work/run"
vport=$(free_port)
cat > "$work/cfg/voipd/config.toml" <<CFG
[log]
level = "warn"
[sip]
listen = ["udp:127.0.0.1:$vport"]
[presence]
subscribe = false
[[account]]
id = "alice"
aor = "sip:alice@127.0.0.1"
enabled = false
CFG
export XDG_CONFIG_HOME="$work/cfg" XDG_RUNTIME_DIR="$work/run" XDG_STATE_HOME="$work/state"
sock="$work/run/voipd/voipd.sock"
ctl() { "$bin/voipctl" --socket "$sock" "$@"; }
db="$work/state/voipd/voipd.db"
# The file's size once its write-ahead log is folded in (voipd stopped).
stored() { "$PY" -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA wal_checkpoint(TRUNCATE)")' "$db"; stat -c %s "$db"; }
"$bin/voipd" 2>"$work/voipd.log" & pids+=($!); vpid=$!
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.05; done

# 1,000 contacts, the first 100 being the peers that write.
"$PY" - "$work/contacts.vcf" "$work/peers.csv" <<'PYEOF'
import sys
with open(sys.argv[1], "w") as v, open(sys.argv[2], "w") as p:
    p.write("SEQUENTIAL\n")
    for i in range(1000):
        v.write(f"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Peer {i}\r\nIMPP:sip:peer{i}@127.0.0.1\r\n"
                f"TEL:+49 30 {100000 + i}\r\nEND:VCARD\r\n")
        if i < 100:
            p.write(f"peer{i};Peer {i}\n")
PYEOF
ctl contacts import "$work/contacts.vcf"
kill -TERM "$vpid"; wait "$vpid" 2>/dev/null || true
size0=$(stored)
"$bin/voipd" 2>>"$work/voipd.log" & pids+=($!); vpid=$!
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.05; done

echo "== $N messages from 100 peers at $RATE/s (SIPp, each answered once stored)"
t0=$(date +%s.%N)
sipp "127.0.0.1:$vport" -sf bench/message_flood.xml -inf "$work/peers.csv" -s alice -i 127.0.0.1 \
  -p "$(free_port)" -r "$RATE" -m "$N" -nostdin -timeout 600s \
  -trace_stat -stf "$work/sipp.csv" >/dev/null 2>&1 || true
t1=$(date +%s.%N)
"$PY" - "$work/sipp.csv" "$t0" "$t1" "$N" <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
h, last = rows[0], rows[-1]
ok, failed = int(last[h.index("SuccessfulCall(C)")]), int(last[h.index("FailedCall(C)")])
secs = float(sys.argv[3]) - float(sys.argv[2])
print(f"stored and answered: {ok} of {sys.argv[4]}, failed {failed}, in {secs:.1f} s ({ok / secs:.0f}/s)")
PYEOF
rss() { awk '/VmRSS/ {print $2}' "/proc/$vpid/status"; }
echo "voipd RSS right after: $(rss) kB (the MESSAGE server transactions live on 64*T1 = 32 s)"

echo "== queries on $N messages and 1,000 contacts"
"$PY" bench/control.py latency 'voipctl message list --with "Peer 42" (whole command)' 200 \
  "$bin/voipctl" --socket "$sock" message list --with "Peer 42"
"$PY" bench/control.py latency 'voipctl message list --with sip:peer42@127.0.0.1 (whole command)' 200 \
  "$bin/voipctl" --socket "$sock" message list --with sip:peer42@127.0.0.1
"$PY" bench/control.py latency 'voipctl message list (newest 100, whole command)' 200 \
  "$bin/voipctl" --socket "$sock" message list
"$PY" bench/control.py latency 'voipctl contacts list 42 (search, whole command)' 200 \
  "$bin/voipctl" --socket "$sock" contacts list 42
"$PY" bench/control.py latency '/bin/true (what starting a process costs)' 200 /bin/true
"$PY" bench/control.py grpc-call "$sock" 500 "/voipd.v1.Messages/List" "Peer 42"
"$PY" bench/control.py grpc-call "$sock" 500 "/voipd.v1.Contacts/List" "42"
sleep 35
echo "voipd RSS 35 s later: $(rss) kB"
n=$(ctl --json message list --with "Peer 42" --limit 10000 | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["messages"]))')
echo "messages with Peer 42: $n"

kill -TERM "$vpid"; wait "$vpid" 2>/dev/null || true
size1=$(stored)
echo "== store: $size0 bytes before, $size1 after ($(( (size1 - size0) / N )) bytes per message)"
