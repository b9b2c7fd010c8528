# Shared by the bench scripts (sourced, not run).

# bench_start NAME: builds voipd and voipctl (release) into $bin (VOIPD_BIN=DIR: takes
# them from DIR instead, e.g. an earlier build to compare with), makes a scratch dir
# $work, and at exit stops everything in $pids (a PID, or -PGID for a process group) and
# removes $work.
bench_start() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voipd-target}"
  . "$(dirname "${BASH_SOURCE[0]}")/../daemon/layout/env.sh"
  if [ -n "${VOIPD_BIN:-}" ]; then
    bin="$VOIPD_BIN"
  else
    cargo build --release -q -p voipd -p voipctl
    bin="$CARGO_TARGET_DIR/release"
  fi
  work=$(mktemp -d "/tmp/voipd-$1.XXXXXX")
  pids=()
  trap bench_stop EXIT
}
bench_stop() { for p in "${pids[@]}"; do kill -- "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }

# Per process: resident memory (kB), CPU ticks (user+system, and user), threads.
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
ucpu() { awk '{print $14}' "/proc/$1/stat"; }
threads() { awk '/Threads/ {print $2}' "/proc/$1/status"; }
ticks=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_active RUNDIR N: waits (up to 60 s) until the voipd whose runtime dir is RUNDIR has N
# calls active; prints how many it has.
wait_active() {
  local active=0
  for _ in $(seq 120); do
    active=$(XDG_RUNTIME_DIR="$1" "$bin/voipctl" --json calls | python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin).get("calls",[]) if c["state"]=="active"))')
    [ "$active" -ge "$2" ] && break
    sleep 0.5
  done
  echo "$active"
}

# voipd_config FILE LISTEN [LINE]: voipd listening on LISTEN (the body of a TOML list of
# "TRANSPORT:IP:PORT"), with account alice whose provider is 127.0.0.1, G.711 only,
# silence as input, nothing recorded, quiet logs; LINE is added to the account.
voipd_config() {
  cat > "$1" <<CFG
[log]
level = "warn"
[sip]
listen = [$2]
[audio]
input = "null"
output = "null"
[[account]]
id = "alice"
aor = "sip:alice@127.0.0.1"
enabled = false
codecs = ["pcmu"]
${3:-}
CFG
}

# dialer_config FILE SIPP_PORT LINE: as voipd_config on a free udp port, with alice's
# provider the SIPp at 127.0.0.1:SIPP_PORT, to which dial_many sends the calls.
dialer_config() {
  voipd_config "$1" "\"udp:127.0.0.1:$(free_port)\"" "$3"
  sed -i "s|aor = \"sip:alice@127.0.0.1\"|aor = \"sip:alice@127.0.0.1:$2\"|" "$1"
}

# dial_many RUNDIR N SIPP_PORT: the voipd whose runtime dir is RUNDIR dials N calls as
# alice, 8 `voipctl dial` at a time.
dial_many() {
  seq "$2" | XDG_RUNTIME_DIR="$1" xargs -P 8 -I{} "$bin/voipctl" dial --account alice \
    "sip:bench{}@127.0.0.1:$3" >/dev/null
}

# media_totals RUNDIR: over the calls of the voipd whose runtime dir is RUNDIR, the RTP
# packets sent, received and failing authentication so far, then how the media are
# protected.
media_totals() {
  XDG_RUNTIME_DIR="$1" "$bin/voipctl" --json calls | python3 -c '
import json, sys
calls = json.load(sys.stdin).get("calls", [])
media = [c.get("media", {}) for c in calls]
total = lambda k: sum(int(m.get(k, 0)) for m in media)
protection = ",".join(sorted(set(c.get("media_encryption", "?") for c in calls))) or "-"
print(total("packets_sent"), total("packets_received"), total("packets_auth_failed"), protection)'
}

# autoanswer_config FILE PORT: as voipd_config on udp PORT, answering every call at once.
# (An account takes 4 calls at once by default: a load needs room for all of them.)
autoanswer_config() { voipd_config "$1" "\"udp:127.0.0.1:$2\"" 'answer = { mode = "auto" }
max_calls = 100000'; }
