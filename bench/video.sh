#!/usr/bin/env bash
# Video calls at 640×480, 15 fps, VP8 (at most 1 Mbit/s), each end sending and receiving:
# CALLS calls between two voipd daemons on loopback (A dials, B answers by itself), then
# CALLS calls between two baresip instances (its vp8 module, fakevideo as camera and
# display) on the same machine. Measures each process's CPU over 15 s and its RSS idle and
# with the calls up, checks the pictures arrive at their size and rate, and prints per
# call end (one party: encode 640×480 + decode 640×480, plus its G.711 audio) the CPU and
# RSS, and how many such calls two cores would hold.
#
# The pictures differ: voipd sends its test pattern (colour bars, a moving square, a
# clock), baresip's fakevideo one still picture (three coloured thirds); both are near
# still, and VP8 codes them with few bits. The video bitrate on the wire (captured on
# loopback when run as root) is printed beside the CPU for that reason. With VIDEO_Y4M
# both send the same clip instead (voipd's `source`, baresip's avformat module, which
# pauses for seconds at each loop: give a clip of 40 s or more).
#
# usage: bench/video.sh [CALLS]                 (default 4)
#        VOIPD_ONLY=1 bench/video.sh …           (skip baresip)
#        VIDEO_Y4M=/abs/clip.y4m bench/video.sh  (640×480 4:2:0 clip of 40 s or more, sent by both)
#        VOIPD_BENCH_NO_BUILD=1 bench/video.sh   (use the release binaries as they are)
# Needs baresip (baresip-core; baresip-ffmpeg for VIDEO_Y4M). Loopback only; it stops all
# it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-4}"
SECS=15
Y4M="${VIDEO_Y4M:-}"
MODS=/usr/lib/baresip/modules
if [ -z "${VOIPD_ONLY:-}" ]; then
  command -v baresip >/dev/null || { echo "baresip missing (apt-get install baresip-core baresip-ffmpeg)" >&2; exit 1; }
  need=(g711 ausine aubridge vp8 fakevideo account menu ctrl_tcp)
  [ -n "$Y4M" ] && need+=(avformat)
  for m in "${need[@]}"; do
    [ -f "$MODS/$m.so" ] || { echo "baresip module $MODS/$m.so missing (apt-get install baresip-core baresip-ffmpeg)" >&2; exit 1; }
  done
fi
if [ -n "$Y4M" ]; then
  case "$Y4M" in /*.y4m) ;; *) echo "VIDEO_Y4M: an absolute path to a .y4m file" >&2; exit 1 ;; esac
  head -c 100 "$Y4M" | head -1 | grep -q '^YUV4MPEG2 .*W640 H480' \
    || { echo "$Y4M: not a 640×480 Y4M clip" >&2; exit 1; }
fi
. bench/lib.sh
# VOIPD_BENCH_NO_BUILD=1: bench_start without its cargo build.
if [ "${VOIPD_BENCH_NO_BUILD:-}" = 1 ]; then cargo() { :; }; fi
bench_start videobench
for b in voipd voipctl; do [ -x "$bin/$b" ] || { echo "$bin/$b missing: build it (cargo build --release)" >&2; exit 1; }; done

fail() { # message, then the logs
  echo "video bench: $1" >&2
  for f in "$work"/*.log "$work"/*/log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  exit 1
}

cpu_of() { # SECONDS PID… → each PID's CPU over SECONDS, % of a core, a line each
  local s=$1; shift
  local a=() b=() i
  for p in "$@"; do a+=("$(cpu "$p")"); done
  sleep "$s"
  for p in "$@"; do b+=("$(cpu "$p")"); done
  for i in "${!a[@]}"; do python3 -c "print(round(100*(${b[$i]}-${a[$i]})/$ticks/$s, 2))"; done
}

# Video RTP on loopback over SECONDS (UDP payloads with an RTP dynamic payload type, each
# packet once, as received): kbit/s in all, or "?" without the right to capture (root).
cat > "$work/sniff.py" <<'PY'
import socket, sys, time
try:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind(("lo", 0))
except OSError:
    print("?"); sys.exit()
s.settimeout(0.2)
total, end = 0, time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        data, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    ip = data[14:]
    if addr[2] != socket.PACKET_HOST or len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
        continue
    rtp = ip[(ip[0] & 15) * 4 + 8:]
    if len(rtp) >= 12 and rtp[0] >> 6 == 2 and rtp[1] & 0x7f >= 96:
        total += len(rtp)
print(round(total * 8 / float(sys.argv[1]) / 1000))
PY
# video_kbps: video kbit/s sent per call end, as captured over 3 s ("?" when it cannot be).
video_kbps() { local k; k=$(python3 "$work/sniff.py" 3); [ "$k" = "?" ] && echo "?" || python3 -c "print(round($k/(2*$N)))"; }

# report NAME CALLS CPU_A CPU_B RSS0_A RSS1_A RSS0_B RSS1_B THREADS_A THREADS_B FPS_AVG FPS_MIN SIZES KBPS
# (one line of results, kept for the table at the end)
results=()
report() {
  results+=("$*")
  python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 13.5 else 1)" "${12}" \
    || echo "WARNING: $1 received as few as ${12} fps in a call, not 15: pictures are lost or not sent, and its CPU is for fewer of them" >&2
}

### voipd ##############################################################################
ap=$(free_port); bp=$(free_port)
vconf() { # dir id listen-port peer-port [account line]
  mkdir -p "$1/cfg/voipd" "$1/run" "$1/state"
  voipd_config "$1/cfg/voipd/config.toml" "\"udp:127.0.0.1:$3\"" \
    "video = \"both\"
video_codecs = [\"vp8\"]
max_calls = $N
${5:-}"
  # The account's provider is the other daemon: its calls are taken as the provider's.
  sed -i -e "s|id = \"alice\"|id = \"$2\"|" \
    -e "s|aor = \"sip:alice@127.0.0.1\"|aor = \"sip:$2@127.0.0.1:$4\"|" "$1/cfg/voipd/config.toml"
  cat >> "$1/cfg/voipd/config.toml" <<CFG
[video]
size = "640x480"
fps = 15
max_kbps = 1000
source = "${Y4M:-pattern}"
sink = "null"
CFG
}
vconf "$work/a" alice "$ap" "$bp"
vconf "$work/b" bob "$bp" "$ap" 'answer = { mode = "auto" }'
for s in a b; do
  XDG_CONFIG_HOME="$work/$s/cfg" XDG_RUNTIME_DIR="$work/$s/run" XDG_STATE_HOME="$work/$s/state" \
    "$bin/voipd" 2>"$work/$s/log" &
  pids+=($!)
  eval "vpid_$s=$!"
done
ctl() { local s=$1; shift; XDG_RUNTIME_DIR="$work/$s/run" "$bin/voipctl" "$@"; }
for s in a b; do
  for _ in $(seq 50); do ctl "$s" status >/dev/null 2>&1 && break; sleep 0.1; done
  ctl "$s" status >/dev/null 2>&1 || fail "voipd $s did not start"
done
sleep 1
idle_a=$(rss "$vpid_a"); idle_b=$(rss "$vpid_b")

# The video of each call on one side, as JSON: {id: {frames, sent, w, h, kbps, lost, codec, dir}}.
vvideo() {
  ctl "$1" --json calls | python3 -c '
import json, sys
out = {}
for c in json.load(sys.stdin).get("calls", []):
    v = c.get("video") or {}
    if c["state"] == "active":
        out[c["id"]] = {"frames": v.get("frames_received", 0), "sent": v.get("frames_sent", 0),
                        "w": v.get("width", 0), "h": v.get("height", 0), "kbps": v.get("target_kbps", 0),
                        "lost": v.get("packets_lost", 0), "codec": v.get("codec", ""), "dir": v.get("direction", "")}
print(json.dumps(out))'
}

seq "$N" | XDG_RUNTIME_DIR="$work/a/run" xargs -P 4 -I{} "$bin/voipctl" dial --account alice "sip:bob@127.0.0.1:$bp" >/dev/null
[ "$(wait_active "$work/a/run" "$N")" -ge "$N" ] || fail "voipd: not all $N calls became active on A"
[ "$(wait_active "$work/b/run" "$N")" -ge "$N" ] || fail "voipd: not all $N calls became active on B"
# Pictures in every call, both ways.
flowing() { # JSON of one side → true when all N calls have received pictures
  python3 -c 'import json,sys; v=json.loads(sys.argv[1]); sys.exit(0 if len(v)>=int(sys.argv[2]) and all(c["frames"]>0 for c in v.values()) else 1)' "$1" "$N"
}
for _ in $(seq 100); do
  flowing "$(vvideo a)" && flowing "$(vvideo b)" && break
  sleep 0.2
done
flowing "$(vvideo a)" && flowing "$(vvideo b)" || fail "voipd: no video in some calls: A $(vvideo a) B $(vvideo b)"
sleep 3

# Received rate and size over the window: frames received per call between two looks.
frames_py='
import json, sys
t0, t1 = float(sys.argv[1]), float(sys.argv[2])
before, after = json.loads(sys.argv[3]), json.loads(sys.argv[4])
fps = [(after[k]["frames"] - before[k]["frames"]) / (t1 - t0) for k in after if k in before]
sizes = sorted({"%dx%d" % (v["w"], v["h"]) for v in after.values()})
kbps = sum(v["kbps"] for v in after.values()) / max(len(after), 1)
lost = sum(v["lost"] - before.get(k, {"lost": 0})["lost"] for k, v in after.items())
codecs = sorted({v["codec"] + "/" + v["dir"] for v in after.values() if v.get("codec")})
print("%.1f %.1f %s %.0f %d %s" % (sum(fps) / max(len(fps), 1), min(fps) if fps else 0, ",".join(sizes), kbps, lost, ",".join(codecs) or "-"))'
va0=$(vvideo a); vb0=$(vvideo b); t0=$(date +%s.%N)
read -r cpu_a cpu_b < <(cpu_of "$SECS" "$vpid_a" "$vpid_b" | paste -sd' ')
va1=$(vvideo a); vb1=$(vvideo b); t1=$(date +%s.%N)
rss_a=$(rss "$vpid_a"); rss_b=$(rss "$vpid_b"); th_a=$(threads "$vpid_a"); th_b=$(threads "$vpid_b")
wire=$(video_kbps)
read -r fa_avg fa_min fa_size fa_kbps fa_lost fa_codec < <(python3 -c "$frames_py" "$t0" "$t1" "$va0" "$va1")
read -r fb_avg fb_min fb_size fb_kbps fb_lost fb_codec < <(python3 -c "$frames_py" "$t0" "$t1" "$vb0" "$vb1")
echo "voipd:   $N calls A→B, video $fa_codec; A receives $fa_avg fps (min $fa_min) $fa_size, $fa_lost lost, its encoder's target $fa_kbps kbit/s;" \
  "B receives $fb_avg fps (min $fb_min) $fb_size, $fb_lost lost, target $fb_kbps kbit/s; on the wire $wire kbit/s per call end"
report voipd "$N" "$cpu_a" "$cpu_b" "$idle_a" "$rss_a" "$idle_b" "$rss_b" "$th_a" "$th_b" \
  "$(python3 -c "print(round(($fa_avg+$fb_avg)/2,1))")" "$(python3 -c "print(min($fa_min,$fb_min))")" \
  "$(echo "$fa_size,$fb_size" | tr ',' '\n' | sort -u | paste -sd,)" "$wire"
for s in a b; do ctl "$s" shutdown >/dev/null 2>&1 || true; done
for p in "$vpid_a" "$vpid_b"; do
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill "$p" 2>/dev/null || true
done

### baresip ############################################################################
if [ -z "${VOIPD_ONLY:-}" ]; then
  # ctrl_tcp: netstring JSON commands. `bctl PORT CMD [PARAMS]` prints the answer;
  # `bctl PORT video LINES` prints each call's video as JSON (as vvideo above).
  cat > "$work/bctl.py" <<'PY'
import json, re, socket, sys, time
port, cmd = int(sys.argv[1]), sys.argv[2]
s = None
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port)); break
    except OSError:
        time.sleep(0.1)
if s is None:
    sys.exit(f"baresip's ctrl_tcp on {port} does not answer")
s.settimeout(10)
buf, token = b"", 0
def command(c, p=""):
    global buf, token
    token += 1
    body = json.dumps({"command": c, "params": p, "token": str(token)})
    s.sendall(f"{len(body)}:{body},".encode())
    while True:
        while b":" in buf:
            n, rest = buf.split(b":", 1)
            if len(rest) < int(n) + 1:
                break
            msg, buf = json.loads(rest[:int(n)]), rest[int(n) + 1:]
            if msg.get("response") and msg.get("token") == str(token):
                return msg.get("data", "")
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("baresip closed ctrl_tcp")
        buf += chunk
if cmd == "video":
    out = {}
    for line in range(1, int(sys.argv[3]) + 1):
        if "not found" in command("line", str(line)):
            continue
        d = command("video_debug")
        disp = re.search(r"vidisp: \S+ (\d+) x (\d+) frames=(\d+)", d)
        src = re.search(r"source: .* frames=(\d+)", d)
        tx = re.search(r"TX: packets=\d+, octets=(\d+)", d)
        lost = re.search(r"lost=(-?\d+)", d)
        enc = re.search(r"tx: encode: (\S+)", d)
        vdir = re.search(r"video dir=(\S+)", d)
        if disp:
            out[line] = {"frames": int(disp.group(3)), "sent": int(src.group(1)) if src else 0,
                         "w": int(disp.group(1)), "h": int(disp.group(2)),
                         "octets": int(tx.group(1)) if tx else 0, "lost": int(lost.group(1)) if lost else 0,
                         "codec": enc.group(1) if enc else "", "dir": vdir.group(1) if vdir else "",
                         "t": time.time()}
    print(json.dumps(out))
else:
    print(command(cmd, " ".join(sys.argv[3:])))
PY
  bctl() { python3 "$work/bctl.py" "$@"; }
  bconf() { # dir sip-port ctrl-port account
    mkdir -p "$1/home"
    local src="fakevideo,nil" mod="fakevideo.so"
    [ -n "$Y4M" ] && { src="avformat,$Y4M"; mod="avformat.so"; }
    cat > "$1/config" <<CFG
poll_method epoll
sip_listen 127.0.0.1:$2
call_local_timeout 120
call_max_calls $((N + 4))
audio_source ausine,440
audio_player aubridge,$(basename "$1")-null
audio_alert aubridge,$(basename "$1")-null
ausrc_srate 48000
ausrc_channels 2
audio_level no
rtp_ports 10000-40000
net_interface 127.0.0.1
module_path $MODS
module g711.so
module ausine.so
module aubridge.so
module vp8.so
module fakevideo.so
$( [ "$mod" = fakevideo.so ] || echo "module $mod" )
video_source $src
video_display fakevideo,nil
video_size 640x480
video_fps 15
video_bitrate 1000000
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:$3
statmode_default off
CFG
    echo "$4" > "$1/accounts"
  }
  pa=$(free_port); pb=$(free_port); ca=$(free_port); cb=$(free_port)
  bconf "$work/ba" "$pa" "$ca" "<sip:a@127.0.0.1;transport=udp>;regint=0;audio_codecs=PCMU;video_codecs=VP8"
  bconf "$work/bb" "$pb" "$cb" "<sip:b@127.0.0.1;transport=udp>;regint=0;answermode=auto;audio_codecs=PCMU;video_codecs=VP8"
  for s in ba bb; do
    ( cd "$work/$s" && HOME="$work/$s/home" exec baresip -f "$work/$s" </dev/null >"$work/$s/log" 2>&1 ) &
    pids+=($!)
    eval "bpid_$s=$!"
  done
  bctl "$ca" about >/dev/null || fail "baresip a did not start"
  bctl "$cb" about >/dev/null || fail "baresip b did not start"
  sleep 1
  idle_a=$(rss "$bpid_ba"); idle_b=$(rss "$bpid_bb")
  for _ in $(seq "$N"); do bctl "$ca" dial "sip:b@127.0.0.1:$pb" >/dev/null; done
  established() { bctl "$1" listcalls | grep -c ESTABLISHED || true; }
  for _ in $(seq 100); do
    [ "$(established "$ca")" -ge "$N" ] && [ "$(established "$cb")" -ge "$N" ] && break
    sleep 0.2
  done
  [ "$(established "$ca")" -ge "$N" ] && [ "$(established "$cb")" -ge "$N" ] \
    || fail "baresip: $(established "$ca") and $(established "$cb") of $N calls established"
  for _ in $(seq 100); do
    flowing "$(bctl "$ca" video "$N")" && flowing "$(bctl "$cb" video "$N")" && break
    sleep 0.2
  done
  flowing "$(bctl "$ca" video "$N")" && flowing "$(bctl "$cb" video "$N")" \
    || fail "baresip: no video in some calls: A $(bctl "$ca" video "$N") B $(bctl "$cb" video "$N")"
  sleep 3

  # As frames_py, the send rate from the RTP octets sent over the window.
  bframes_py='
import json, sys
before, after = json.loads(sys.argv[1]), json.loads(sys.argv[2])
fps, kbps = [], []
for k, v in after.items():
    if k in before:
        dt = v["t"] - before[k]["t"]
        fps.append((v["frames"] - before[k]["frames"]) / dt)
        kbps.append(8 * (v["octets"] - before[k]["octets"]) / dt / 1000)
sizes = sorted({"%dx%d" % (v["w"], v["h"]) for v in after.values()})
codecs = sorted({v["codec"] + "/" + v["dir"] for v in after.values() if v["codec"]})
lost = sum(v["lost"] - before.get(k, {"lost": 0})["lost"] for k, v in after.items())
print("%.1f %.1f %s %.0f %d %s" % (sum(fps) / max(len(fps), 1), min(fps) if fps else 0, ",".join(sizes), sum(kbps) / max(len(kbps), 1), lost, ",".join(codecs) or "-"))'
  va0=$(bctl "$ca" video "$N"); vb0=$(bctl "$cb" video "$N")
  read -r cpu_a cpu_b < <(cpu_of "$SECS" "$bpid_ba" "$bpid_bb" | paste -sd' ')
  va1=$(bctl "$ca" video "$N"); vb1=$(bctl "$cb" video "$N")
  rss_a=$(rss "$bpid_ba"); rss_b=$(rss "$bpid_bb"); th_a=$(threads "$bpid_ba"); th_b=$(threads "$bpid_bb")
  wire=$(video_kbps)
  read -r fa_avg fa_min fa_size fa_kbps fa_lost fa_codec < <(python3 -c "$bframes_py" "$va0" "$va1")
  read -r fb_avg fb_min fb_size fb_kbps fb_lost fb_codec < <(python3 -c "$bframes_py" "$vb0" "$vb1")
  echo "baresip: $N calls A→B, video $fa_codec; A receives $fa_avg fps (min $fa_min) $fa_size, $fa_lost lost, sends $fa_kbps kbit/s (RTCP);" \
    "B receives $fb_avg fps (min $fb_min) $fb_size, $fb_lost lost, sends $fb_kbps kbit/s; on the wire $wire kbit/s per call end"
  report baresip "$N" "$cpu_a" "$cpu_b" "$idle_a" "$rss_a" "$idle_b" "$rss_b" "$th_a" "$th_b" \
    "$(python3 -c "print(round(($fa_avg+$fb_avg)/2,1))")" "$(python3 -c "print(min($fa_min,$fb_min))")" \
    "$(echo "$fa_size,$fb_size" | tr ',' '\n' | sort -u | paste -sd,)" "$wire"
  grep -iE "error|fail|warn" "$work/ba/log" "$work/bb/log" | grep -v "ctrl_tcp: failed to send" | sort | uniq -c | sort -rn | head -5 | sed 's/^/  baresip log: /' || true
fi

### the table ##########################################################################
python3 - "${results[@]}" <<'PY'
import sys
rows = [r.split() for r in sys.argv[1:]]
print()
print("Per call end (one party sending and receiving 640x480 15 fps VP8, with G.711 audio):")
print("  CPU/end = (CPU of A + CPU of B) / (2 x calls); RSS/end = (RSS with calls - idle) / calls, A and B averaged;")
print("  2 cores hold = 200 / CPU/end: the two-way video calls one daemon would hold on 2 cores (CPU alone).")
hdr = ("impl", "calls", "CPU A %", "CPU B %", "CPU/end %", "2 cores hold", "RSS/end kB", "idle RSS kB A/B",
       "threads A/B", "rx fps avg (min)", "rx size", "video kbit/s/end")
out = []
for r in rows:
    name, n = r[0], int(r[1])
    ca, cb = float(r[2]), float(r[3])
    i0a, i1a, i0b, i1b = map(int, r[4:8])
    per_end = (ca + cb) / (2 * n)
    out.append((name, str(n), f"{ca:.1f}", f"{cb:.1f}", f"{per_end:.2f}",
                f"{200 / per_end:.0f}" if per_end > 0 else "-",
                f"{((i1a - i0a) + (i1b - i0b)) / (2 * n):.0f}", f"{i0a}/{i0b}", f"{r[8]}/{r[9]}",
                f"{r[10]} ({r[11]})", r[12], r[13]))
w = [max(len(x[i]) for x in [hdr] + out) for i in range(len(hdr))]
for x in [hdr] + out:
    print("  ".join(c.ljust(w[i]) for i, c in enumerate(x)))
PY
