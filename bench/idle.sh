#!/usr/bin/env bash
# An idle voipd (embedded default config, no accounts) beside an idle baresip (G.711, Opus,
# no accounts), started together: resident memory (anonymous and mapped files) 12 s after
# start, threads, and context switches over the next WATCH seconds, summed over each
# program's threads (issue #20's targets: ≤ 8 MB RSS, a fixed number of threads, no
# wakeups in 30 s). MAPS=1 also lists voipd's largest resident mappings; HISTORY=N starts
# voipd on a store with N calls and 5 × N messages in it, as a daemon restarted after a while.
#
# usage: [HISTORY=N] bench/idle.sh [WATCH]      (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
WATCH="${1:-30}"
. bench/lib.sh
command -v baresip >/dev/null || { echo "baresip is missing: apt-get install baresip-core" >&2; exit 1; }
bench_start idle
mkdir -p "$work/cfg" "$work/run" "$work/state" "$work/baresip"
export XDG_CONFIG_HOME="$work/cfg" XDG_RUNTIME_DIR="$work/run" XDG_STATE_HOME="$work/state"
if [ -n "${HISTORY:-}" ]; then
  # A daemon with a past: a first start makes the store, which is then filled with HISTORY
  # calls and 5 × HISTORY messages (HISTORY=20000: a 25 MB file), and the daemon started again.
  "$bin/voipd" 2>"$work/first.log" & first=$!
  for _ in $(seq 100); do "$bin/voipctl" status >/dev/null 2>&1 && break; sleep 0.1; done
  kill -TERM "$first"; wait "$first" || true
  python3 - "$work/state/voipd/voipd.db" "$HISTORY" <<'PY'
import sqlite3, sys
db, n = sqlite3.connect(sys.argv[1]), int(sys.argv[2])
db.executemany("INSERT INTO calls (direction, account, remote_uri, remote_name, started_ms, "
               "ended_ms, end_code, end_reason, missed, seen) VALUES ('incoming', 'alice', ?, ?, ?, ?, "
               "200, 'hung up', 0, 1)",
               ((f"sip:bob{i}@example.com", f"Bob {i}", 1.7e12 + i, 1.7e12 + i + 5000) for i in range(n)))
db.executemany("INSERT INTO messages (account, incoming, peer, body, at_ms, status, sip_call_id, "
               "sip_cseq, read) VALUES ('alice', 1, ?, ?, ?, 'received', ?, 1, 1)",
               ((f"sip:bob{i % 50}@example.com", f"message {i}, with some words to make it longer",
                 1.7e12 + i, f"cid{i}") for i in range(5 * n)))
db.commit()
PY
fi
"$bin/voipd" 2>"$work/voipd.log" & pids+=($!)
voipd=$!
cat > "$work/baresip/config" <<CFG
poll_method epoll
sip_listen 127.0.0.1:$(free_port)
audio_player aubridge,nil
audio_source ausine,440
audio_alert aubridge,nil
module_path /usr/lib/baresip/modules
module g711.so
module opus.so
module ausine.so
module aubridge.so
module_tmp account.so
module_app menu.so
CFG
: > "$work/baresip/accounts"
baresip -f "$work/baresip" </dev/null >"$work/baresip.log" 2>&1 & pids+=($!)
baresip=$!
sleep 12
for p in "$voipd" "$baresip"; do
  kill -0 "$p" 2>/dev/null || { echo "PID $p exited at its start:" >&2; cat "$work"/*.log >&2; exit 1; }
done

# Voluntary and involuntary context switches, summed over the process's threads.
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }
mem() { awk '/^(VmRSS|RssAnon|RssFile):/ {printf "%s %.1f MB  ", $1, $2 / 1024}' "/proc/$1/status"; }
declare -A before threads0
for p in "$voipd" "$baresip"; do before[$p]=$(switches "$p"); threads0[$p]=$(threads "$p"); done
sleep "$WATCH"
for name in voipd baresip; do
  p=${!name}
  printf '%-8s %s threads %s -> %s, context switches in %s s: %s\n' "$name" "$(mem "$p")" \
    "${threads0[$p]}" "$(threads "$p")" "$WATCH" $(($(switches "$p") - before[$p]))
done
daemon/layout/check.sh "$bin/voipd" || true
if [ -n "${MAPS:-}" ]; then
  echo "voipd's largest resident mappings (kB):"
  awk '/^[0-9a-f]+-[0-9a-f]+ / {name = $6 ? $6 : "[anonymous]"} /^Rss:/ {rss[name] += $2}
       END {for (n in rss) if (rss[n] >= 100) printf "%8d  %s\n", rss[n], n}' \
    "/proc/$voipd/smaps" | sort -rn
fi
