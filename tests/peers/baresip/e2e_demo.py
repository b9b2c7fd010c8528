#!/usr/bin/env python3
"""Proof-of-recipe: Kamailio + two headless baresip instances, one call.

    python3 e2e_demo.py [CODEC] [udp|tcp] [--dtmf DIGITS] [--keep] [-q]

CODEC is an audio_codecs value: PCMU, PCMA, G722/16000/1, opus/48000/2.

A = bob   (ausine 440 Hz), dials carol via ctrl_tcp
B = carol (ausine 1000 Hz), answermode=auto
Call lasts ~3 s, A hangs up. Both record with sndfile; the script checks
with a pure-Python Goertzel that A's decoded file has 1000 Hz and B's has
440 Hz. Everything lives in a mktemp dir; every process is stopped by PID.
Stdlib only. Exit status 0 = pass.
"""
import json
import math
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ctrl import Ctrl  # noqa: E402

KAMCFG = os.path.join(HERE, "..", "kamailio.cfg")

CONFIG_TMPL = """\
poll_method		epoll
sip_listen		127.0.0.1:{sip_port}
call_local_timeout	120
call_max_calls		4
audio_source		ausine,{freq}
audio_player		aubridge,{name}-null
audio_alert		aubridge,{name}-null
ausrc_srate		48000
ausrc_channels		2
audio_level		no
rtp_ports		{rtp_lo}-{rtp_hi}
net_interface		127.0.0.1
module_path		/usr/lib/baresip/modules
module			g711.so
module			g722.so
module			opus.so
module			ausine.so
module			aubridge.so
module			sndfile.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:{ctrl_port}
snd_path		{rec_dir}
statmode_default	off
"""

ACCOUNT_TMPL = ('<sip:{user}@127.0.0.1;transport={transport}>;auth_pass={pw};'
                'outbound="sip:127.0.0.1:{kam_port};transport={transport}";'
                'answermode={answermode};audio_codecs={codec};regint=600\n')


def free_port(n=1, even=False):
    """A random high port p such that p..p+n-1 are free for UDP and TCP."""
    while True:
        p = random.randint(20000, 60000 - n)
        if even:
            p &= ~1
        ok = True
        for q in range(p, p + n):
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind(("127.0.0.1", q))
                except OSError:
                    ok = False
                finally:
                    s.close()
        if ok:
            return p


def goertzel_power(samples, rate, freq):
    k = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + k * s1 - s2
        s2, s1 = s1, s0
    return (s1 * s1 + s2 * s2 - k * s1 * s2) / max(1, len(samples)) ** 2


def analyse(path):
    """Return (rate, channels, seconds, rms, {freq: relative power})."""
    with wave.open(path) as w:
        rate, ch, n = w.getframerate(), w.getnchannels(), w.getnframes()
        raw = w.readframes(n)
    vals = struct.unpack("<%dh" % (len(raw) // 2), raw)[::ch]  # first channel
    # skip the first 0.5 s (jitter buffer / codec start), analyse <= 2 s
    seg = vals[int(rate * 0.5):int(rate * 2.5)]
    rms = math.sqrt(sum(v * v for v in seg) / max(1, len(seg)))
    powers = {f: goertzel_power(seg, rate, f) for f in (440, 1000, 2000, 3000)}
    return rate, ch, n / float(rate or 1), rms, powers


def dominant(powers):
    return max(powers, key=powers.get)


def main():
    args = sys.argv[1:]
    codec = args[0] if args and not args[0].startswith("-") else "PCMU"
    transport = args[1] if len(args) > 1 and args[1] in ("udp", "tcp") else "udp"
    dtmf = args[args.index("--dtmf") + 1] if "--dtmf" in args else None
    keep = "--keep" in args
    quiet = "-q" in args

    tmp = tempfile.mkdtemp(prefix="baresip-e2e-")
    procs = []
    t_start = time.monotonic()
    ok = False
    try:
        kam_port = free_port()
        kam_run = os.path.join(tmp, "kam")
        os.mkdir(kam_run)
        kam_log = open(os.path.join(tmp, "kamailio.log"), "w")
        kam = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-f", KAMCFG, "-Y", kam_run,
             "-P", os.path.join(kam_run, "kamailio.pid"),
             "-A", "LISTEN_PORT=%d" % kam_port],
            stdout=kam_log, stderr=subprocess.STDOUT)
        procs.append(kam)
        while "KAMAILIO-READY" not in open(kam_log.name).read():
            if kam.poll() is not None:
                raise RuntimeError("kamailio exited")
            time.sleep(0.02)

        inst = {}
        for name, user, pw, freq, am in (("a", "bob", "bobpw", 440, "manual"),
                                         ("b", "carol", "carolpw", 1000, "auto")):
            d = os.path.join(tmp, name)
            home = os.path.join(d, "home")
            rec = os.path.join(d, "rec")
            os.makedirs(home)
            os.makedirs(rec)
            sip_port = free_port(2)        # SIP uses port and port+1 (TLS)
            ctrl_port = free_port()
            rtp_lo = free_port(10, even=True)   # RTP even, RTCP = RTP+1
            with open(os.path.join(d, "config"), "w") as f:
                f.write(CONFIG_TMPL.format(sip_port=sip_port, freq=freq, name=name,
                                           rtp_lo=rtp_lo, rtp_hi=rtp_lo + 9,
                                           ctrl_port=ctrl_port, rec_dir=rec))
            # empty accounts file: the account is added with "uanew" once we
            # are connected, so the REGISTER_OK event can't be missed
            open(os.path.join(d, "accounts"), "w").close()
            out = open(os.path.join(d, "stdout.log"), "w")
            t0 = time.monotonic()
            p = subprocess.Popen(["baresip", "-f", d], cwd=d, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT,
                                 env=dict(os.environ, HOME=home))
            procs.append(p)
            c = Ctrl("127.0.0.1", ctrl_port)
            t1 = time.monotonic()
            c.command("uanew", ACCOUNT_TMPL.format(user=user, pw=pw, transport=transport,
                                                   kam_port=kam_port, answermode=am,
                                                   codec=codec).strip())
            ev = c.wait_event("REGISTER_OK", timeout=10)
            print("%s: ctrl_tcp up after %.3f s" % (name, t1 - t0))
            inst[name] = dict(dir=d, rec=rec, ctrl=c, proc=p, user=user)
            print("%s (%s) registered in %.3f s: %s" % (name, user, time.monotonic() - t0,
                                                         ev))

        a, b = inst["a"]["ctrl"], inst["b"]["ctrl"]
        r = a.command("dial", "sip:carol@127.0.0.1")
        print("dial response:", r)
        # note: with answermode=auto there is NO CALL_INCOMING event on B
        ev_a = a.wait_event("CALL_ESTABLISHED", timeout=10)
        print("A event:", ev_a)
        ev_b = b.wait_event("CALL_ESTABLISHED", timeout=10)
        print("B event:", ev_b)

        if dtmf:
            time.sleep(1.0)
            # one command, several digits: sent one after the other as
            # RFC 4733 events (PT 101, ~180 ms each)
            t_dtmf = time.monotonic()
            print("sndcode:", a.command("sndcode", dtmf))
            n = 0
            while n < len(dtmf):
                ev = b.wait_event("CALL_DTMF_END", timeout=2)
                n += 1
            print("%d digits received in %.2f s" % (n, time.monotonic() - t_dtmf))
            time.sleep(1.0)
        else:
            time.sleep(3.0)
        stat = a.command("callstat").get("data", "")
        if not quiet:
            print("A callstat:", stat)
        # codec check: the "local formats" of the audio media must be exactly
        # the requested codec (+ telephone-event). An unknown audio_codecs
        # name silently offers ALL codecs.
        sect = stat.split("local formats:")[1].split("remote formats:")[0]
        fmts = [ln.split()[1].split("/")[0].lower() for ln in sect.splitlines()
                if ln.strip() and ln.split()[0].isdigit()]
        fmts = [f for f in fmts if f != "telephone-event"]
        print("negotiated audio formats:", fmts)
        codec_ok = fmts == [codec.split("/")[0].lower()]
        print("hangup:", a.command("hangup"))
        print("A event:", a.wait_event("CALL_CLOSED", timeout=10))
        print("B event:", b.wait_event("CALL_CLOSED", timeout=10))
        time.sleep(0.3)
        for name in ("a", "b") if not quiet else ():
            print("%s all events:" % name)
            for e in inst[name]["ctrl"].events:
                print("   ", json.dumps(e))

        expect = {"a": 1000, "b": 440}
        ok = codec_ok
        if dtmf:
            got = "".join(e.get("param", "") for e in inst["b"]["ctrl"].events
                          if e.get("type") == "CALL_DTMF_START")
            print("DTMF sent %r, B received %r" % (dtmf, got))
            ok = ok and got == dtmf
        for name in ("a", "b"):
            files = sorted(os.listdir(inst[name]["rec"]))
            print("%s recordings: %s" % (name, files))
            for fn in files:
                rate, ch, secs, rms, pw = analyse(os.path.join(inst[name]["rec"], fn))
                dom = dominant(pw)
                print("  %-40s %5d Hz %d ch %.2f s rms=%7.1f dominant=%d  %s" % (
                    fn, rate, ch, secs, rms, dom,
                    " ".join("%d:%.3g" % kv for kv in sorted(pw.items()))))
                if fn.endswith("-dec.wav") and (dom != expect[name] or rms < 100):
                    ok = False
            if not any(f.endswith("-dec.wav") for f in files):
                ok = False
        print("RESULT codec=%s transport=%s: %s" % (codec, transport, "PASS" if ok else "FAIL"))
    finally:
        # baresips first (SIGTERM = graceful: un-REGISTER, needs Kamailio
        # alive; a 2nd SIGTERM forces exit), then Kamailio.
        t_stop = time.monotonic()
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        print("shutdown took %.2f s" % (time.monotonic() - t_stop))
        print("total wall time %.2f s, tmp=%s" % (time.monotonic() - t_start, tmp))
        if not keep and ok:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
