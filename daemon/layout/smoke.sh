#!/usr/bin/env bash
# Whether a release voipd, laid out (check.sh), gives back its start-up-only code once
# started and works on after it: started with the embedded default config in scratch
# dirs, it must say within 15 s that it gave back more than 1 MB, its RSS must have fallen
# by at least 0.5 MB since "ready", `voipctl status` must answer, and SIGTERM must stop it
# cleanly. Debug builds do not give anything back (memory::release_startup_code), so the
# end-to-end tests, which run those, do not cover this.
#
# usage: daemon/layout/smoke.sh DIR   (holding voipd and voipctl)
set -euo pipefail
bin="$1"
work=$(mktemp -d)
voipd=
cleanup() {
  [ -z "$voipd" ] || kill -KILL "$voipd" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "smoke.sh: $1" >&2; cat "$work/voipd.log" >&2; exit 1; }
mkdir -p "$work/cfg" "$work/run" "$work/state"
export XDG_CONFIG_HOME="$work/cfg" XDG_RUNTIME_DIR="$work/run" XDG_STATE_HOME="$work/state"
export DBUS_SESSION_BUS_ADDRESS="unix:path=$work/run/no-bus" RUST_LOG=voipd=debug
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$voipd/status"; }
"$bin/voipd" 2>"$work/voipd.log" &
voipd=$!
for _ in $(seq 150); do grep -q " ready, " "$work/voipd.log" && break; sleep 0.1; done
grep -q " ready, " "$work/voipd.log" || fail "voipd did not become ready"
ready=$(rss)
for _ in $(seq 150); do grep -q "gave back" "$work/voipd.log" && break; sleep 0.1; done
kb=$(sed -n 's/.*gave back \([0-9]*\) kB of start-up code.*/\1/p' "$work/voipd.log")
[ -n "$kb" ] || fail "voipd did not give back its start-up code"
[ "$kb" -gt 1024 ] || fail "voipd gave back only $kb kB of start-up code"
after=$(rss)
[ $((ready - after)) -ge 512 ] || fail "RSS went from $ready kB at ready to $after kB"
"$bin/voipctl" status >/dev/null || fail "voipctl status failed after the give-back"
kill -TERM "$voipd"
wait "$voipd" || fail "voipd exited with $? on SIGTERM"
voipd=
echo "start-up code given back: $kb kB; RSS $ready kB at ready, $after kB after"
