#!/usr/bin/env bash
# Remakes daemon/layout/startup.names, the functions that a release voipd runs from its
# start to idle: it runs voipd under callgrind with the embedded default config, on a
# private session bus, then without one, twice (a first start and a restart), each through
# its start, 20 s of idleness
# (the heap trimmer's look included) and one `voipctl status`, then lists every function of
# voipd's own binary that ran. Run it again when start-up changes much: `check.sh` (run by
# `./dev test` and `bench/idle.sh`) says how many of the listed functions a binary still has.
#
# usage: daemon/layout/profile.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
command -v dbus-daemon >/dev/null || { echo "dbus-daemon is missing: apt-get install dbus-daemon" >&2; exit 1; }
# The release build, a scratch dir, and the processes stopped at exit, as the benches have.
. bench/lib.sh
bench_start layout
# run BUS: one pass, with a session bus or without one (the daemon carries on without it).
run() {
  local w="$work/$1"
  mkdir -p "$w/cfg" "$w/run" "$w/state"
  export XDG_CONFIG_HOME="$w/cfg" XDG_RUNTIME_DIR="$w/run" XDG_STATE_HOME="$w/state"
  export DBUS_SESSION_BUS_ADDRESS="unix:path=$w/run/bus"
  if [ "$1" = bus ]; then
    dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --nofork --nopidfile >/dev/null 2>&1 &
    pids+=($!)
  fi
  valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$w/callgrind.out" "$bin/voipd" 2>"$w/voipd.log" &
  local voipd=$!
  pids+=("$voipd")
  for _ in $(seq 120); do "$bin/voipctl" status >/dev/null 2>&1 && break; sleep 0.5; done
  "$bin/voipctl" status >/dev/null || { cat "$w/voipd.log" >&2; exit 1; }
  sleep 20
  "$bin/voipctl" status >/dev/null
  kill -TERM "$voipd"
  wait "$voipd" || true
  if [ "$1" = bus ] && ! grep -q "D-Bus: org.voipd.Voipd" "$w/voipd.log"; then
    echo "voipd did not take the bus:" >&2; cat "$w/voipd.log" >&2; exit 1
  fi
  # A cost block names its object (ob=), then its function (fn=); 'N marks a recursion's
  # depth; "(below main)" and bare addresses are not functions of the binary.
  awk '/^ob=/ {ob = substr($0, 4)} /^fn=/ && ob ~ /\/voipd$/ && !/^fn=(\(|0x)/ {print substr($0, 4)}' \
    "$w/callgrind.out" | sed "s/'[0-9]*\$//" >> "$work/functions"
}
run bus
run nobus
# A restart, the usual start: the store the pass before made is read, its log recovered.
run nobus
c++filt -i < "$work/functions" | daemon/layout/cc --normalize | LC_ALL=C sort -u \
  > daemon/layout/startup.names
echo "daemon/layout/startup.names: $(wc -l < daemon/layout/startup.names) functions"
