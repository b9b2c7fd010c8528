#!/usr/bin/env bash
# Where a call's memory goes: voipd built with dhat (the `dhat-heap` feature, in a target
# dir of its own) holds CONCURRENT calls from SIPp (G.711, RTP echoed both ways,
# rtcp-mux), and its heap at the peak is summed by allocation site, per call: what is
# allocated (the type, or the function that grew it) and where in voipd.
#
# usage: bench/heap.sh [CONCURRENT] [SITES]      (default: 500 calls; the 25 largest sites)
#        OUTBOUND=1 bench/heap.sh …               (voipd dials the calls, `voipctl dial`, to a
#                                                  SIPp that answers and echoes)
# Needs sipp (sip-tester). Loopback only; it stops all it starts. The first run builds
# voipd once more (a few minutes); dhat makes every allocation slower, so the figures are
# for memory only.
set -euo pipefail
cd "$(dirname "$0")/.."
CONC="${1:-500}"
SITES="${2:-25}"
command -v sipp >/dev/null || { echo "sipp missing (apt-get install sip-tester)" >&2; exit 1; }
dhat_dir="${CARGO_TARGET_DIR:-/var/tmp/voipd-target}-dhat"
CARGO_TARGET_DIR="$dhat_dir" CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --release -q -p voipd --features dhat-heap
VOIPD_BIN="$dhat_dir/release"
. bench/lib.sh
bench_start heap

mkdir -p "$work/v/cfg/voipd" "$work/v/run"
vport=$(free_port)
if [ -n "${OUTBOUND:-}" ]; then
  sport=$(free_port)
  sipp -sf bench/uas_echo_key.xml -i 127.0.0.1 -p "$sport" -mi 127.0.0.1 \
    -mp "$(( $(free_port) & ~1 ))" -rtp_echo -nostdin >/dev/null 2>&1 & pids+=($!)
  dialer_config "$work/v/cfg/voipd/config.toml" "$sport" 'media_encryption = "none"'
else
  autoanswer_config "$work/v/cfg/voipd/config.toml" "$vport"
fi
sed -i 's|^output = "null"|&\nrtp_ports = "10000-32767"|' "$work/v/cfg/voipd/config.toml"
# dhat writes dhat-heap.json into the working directory when voipd exits.
( cd "$work" && XDG_CONFIG_HOME="$work/v/cfg" XDG_RUNTIME_DIR="$work/v/run" \
  XDG_STATE_HOME="$work/v/state" exec "$bin/voipd" 2>"$work/voipd.log" ) & vpid=$!
pids+=("$vpid")
sleep 3
if [ -n "${OUTBOUND:-}" ]; then
  dial_many "$work/v/run" "$CONC" "$sport"
  wait_active "$work/v/run" "$CONC" > "$work/ok"
  sleep 5
  printf 'SuccessfulCall(C)\n%s\n' "$(cat "$work/ok")" > "$work/stats.csv"
  # Hung up one by one, so that the heap's peak is the hold, not a shutdown ending all
  # at once.
  XDG_RUNTIME_DIR="$work/v/run" "$bin/voipctl" --json calls \
    | python3 -c 'import json,sys; [print(c["id"]) for c in json.load(sys.stdin)["calls"]]' \
    | XDG_RUNTIME_DIR="$work/v/run" xargs -n 1 "$bin/voipctl" hangup >/dev/null
else
  ramp=100
  # Set up at 100 calls/s, all held 10 s together, then hung up by SIPp: the heap's peak
  # is the hold.
  sipp "127.0.0.1:$vport" -sf bench/uac_mux.xml -s alice -i 127.0.0.1 -p "$(free_port)" \
    -mi 127.0.0.1 -mp "$(( $(free_port) & ~1 ))" -rtp_echo -r "$ramp" -m "$CONC" -l "$CONC" \
    -d $(( (CONC / ramp + 10) * 1000 )) -nostdin -timeout 300s -default_behaviors all,-bye \
    -trace_stat -stf "$work/stats.csv" >/dev/null 2>&1 || true
fi
kill -TERM "$vpid"
wait "$vpid" || true
[ -s "$work/dhat-heap.json" ] || { echo "voipd wrote no profile (see $work/voipd.log)" >&2; exit 1; }
python3 - "$work/dhat-heap.json" "$CONC" "$SITES" "$work/stats.csv" <<'PY'
import collections, json, re, sys
d = json.load(open(sys.argv[1]))
n, top = int(sys.argv[2]), int(sys.argv[3])
rows = [l.rstrip("\n").split(";") for l in open(sys.argv[4]) if l.strip()]
ok = rows[-1][rows[0].index("SuccessfulCall(C)")]
pps, ft = d["pps"], d["ftbl"]
total = sum(p["gb"] for p in pps)
print(f"{n} calls held ({ok} completed); heap at the peak {total // 1024} kB, "
      f"{total / n:.0f} B per call (daemon's own included)")
ours = re.compile(r"\(((core|media|sip|sdp|api|store)/[^:]+|[a-z_]+\.rs):(\d+)")
plumbing = re.compile(r"(alloc|alloc_impl|alloc_impl_runtime|allocate|__rust_alloc|alloc_zeroed|"
                      r"__rust_alloc_zeroed|try_allocate_in|with_capacity_in|finish_grow|"
                      r"grow_amortized|grow_one|reserve|do_reserve_and_handle|box_new_uninit|"
                      r"<alloc::|<core::|exchange_malloc)\b")
sites, blocks = collections.Counter(), collections.Counter()
for p in pps:
    if not p["gb"]:
        continue
    frames = [ft[i] for i in p["fs"]]
    what = ""
    for f in frames[2:]:
        name = f.split(": ", 1)[-1]
        if not plumbing.match(name):
            what = re.sub(r"\(.*?/([^/]+:\d+):\d+\)$", r"[\1]", name)[:100]
            break
    where = [m.group(1) + ":" + m.group(3) for m in map(ours.search, frames) if m][:2]
    key = f"{what}  @ {' <- '.join(where)}"
    sites[key] += p["gb"]
    blocks[key] += p["gbk"]
print(f"{'B/call':>7} {'blocks':>6}  what, where")
for key, b in sites.most_common(top):
    print(f"{b / n:7.0f} {blocks[key] / n:6.1f}  {key}")
PY
