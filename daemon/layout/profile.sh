#!/usr/bin/env bash
# Remakes daemon/layout/startup.names, the functions that a release voipd runs from its
# start to idle: it runs voipd under callgrind with the embedded default config, on a
# private session bus, then without one, twice (a first start and a restart), each through
# its start, 20 s of idleness (the heap trimmer's look included) and one `voipctl status`,
# then lists every function of voipd's own binary that ran, in two sections: first what ran
# while idle and answering (from the first answer to `voipctl status` to the shutdown),
# then, between the markers voipd::memory::startup_code_{begin,end}, what ran only during
# start-up or the shutdown, which the daemon gives back once started
# (memory::release_startup_code). Run it again when start-up changes much: `check.sh` (run
# by `./dev test` and `bench/idle.sh`) says how many of the listed functions a binary still
# has.
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
  # Started: what ran so far goes to callgrind.out.1, what runs while idle and answering
  # to callgrind.out.2, and the shutdown to callgrind.out.
  dump 1
  sleep 20
  "$bin/voipctl" status >/dev/null
  dump 2
  kill -TERM "$voipd"
  wait "$voipd" || true
  if [ "$1" = bus ] && ! grep -q "D-Bus: org.voipd.Voipd" "$w/voipd.log"; then
    echo "voipd did not take the bus:" >&2; cat "$w/voipd.log" >&2; exit 1
  fi
  functions "$w/callgrind.out.1" >> "$work/start"
  functions "$w/callgrind.out.2" >> "$work/after"
  functions "$w/callgrind.out" >> "$work/start"
}
# dump N: callgrind writes what ran since the last dump to callgrind.out.N.
dump() {
  callgrind_control -d "$voipd" >/dev/null 2>&1
  for _ in $(seq 100); do [ -s "$w/callgrind.out.$1" ] && return; sleep 0.1; done
  echo "callgrind did not write dump $1" >&2; exit 1
}
# The functions of voipd's binary in a callgrind dump, as the names file holds them. A cost
# block names its object (ob=), then its function (fn=); 'N marks a recursion's depth;
# "(below main)" and bare addresses are not functions of the binary.
functions() {
  awk '/^ob=/ {ob = substr($0, 4)} /^fn=/ && ob ~ /\/voipd$/ && !/^fn=(\(|0x)/ {print substr($0, 4)}' "$1" \
    | sed "s/'[0-9]*\$//" | c++filt -i | daemon/layout/cc --normalize
}
run bus
run nobus
# A restart, the usual start: the store the pass before made is read, its log recovered.
run nobus
LC_ALL=C sort -u "$work/after" > "$work/after.sorted"
LC_ALL=C sort -u "$work/start" | LC_ALL=C comm -23 - "$work/after.sorted" > "$work/start-only"
{
  cat "$work/after.sorted"
  echo "voipd::memory::startup_code_begin"
  cat "$work/start-only"
  echo "voipd::memory::startup_code_end"
} > daemon/layout/startup.names
echo "daemon/layout/startup.names: $(wc -l < "$work/after.sorted") functions run after start-up," \
  "$(wc -l < "$work/start-only") only during it"
