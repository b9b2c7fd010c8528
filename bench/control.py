#!/usr/bin/env python3
"""Helpers for bench/control.sh: round-trip timings and the event-stream checks.

usage: control.py latency LABEL N CMD...      time N runs of CMD, print p50/p90/p99 in ms
       control.py grpc-latency SOCKET N       GetStatus over one grpcio channel, N times
       control.py dbus-latency ADDRESS N      Get of a property over one D-Bus connection
       control.py events FILE...              per `voipctl --json watch` file: events, gaps
"""
import json
import statistics
import subprocess
import sys
import time


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def report(label, ms):
    print(f"{label:34} p50 {statistics.median(ms):6.2f} ms   p90 {pct(ms, 0.9):6.2f} ms   "
          f"p99 {pct(ms, 0.99):6.2f} ms   ({len(ms)} runs)")


def latency(label, n, cmd):
    ms = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        ms.append((time.perf_counter() - t) * 1000)
    report(label, ms)


def channel(sock):
    import grpc
    return grpc.insecure_channel(f"unix://{sock}", options=[("grpc.default_authority", "localhost")])


def grpc_latency(sock, n):
    ch = channel(sock)
    # Empty request in, raw bytes out: no .proto needed for a round trip.
    call = ch.unary_unary("/voipd.v1.Daemon/GetStatus", request_serializer=lambda _: b"",
                          response_deserializer=lambda b: b)
    call(None, timeout=5)
    ms = []
    for _ in range(n):
        t = time.perf_counter()
        call(None, timeout=5)
        ms.append((time.perf_counter() - t) * 1000)
    report("gRPC GetStatus (one channel)", ms)


def grpc_call(sock, n, method, text):
    """`method` over one channel, its request a message whose field 1 is `text`."""
    ch = channel(sock)
    raw = text.encode()
    assert len(raw) < 128
    req = b"\x0a" + bytes([len(raw)]) + raw
    call = ch.unary_unary(method, request_serializer=lambda r: r, response_deserializer=lambda b: b)
    size = len(call(req, timeout=5))
    ms = []
    for _ in range(n):
        t = time.perf_counter()
        call(req, timeout=5)
        ms.append((time.perf_counter() - t) * 1000)
    report(f"gRPC {method} {text!r} (one channel, {size} B answer)", ms)


def dbus_latency(address, n):
    from jeepney import DBusAddress, Properties
    from jeepney.io.blocking import open_dbus_connection
    conn = open_dbus_connection(bus=address)
    acct = DBusAddress("/org/voipd/Voipd/account/alice", bus_name="org.voipd.Voipd",
                       interface="org.voipd.Account1")
    get = Properties(acct).get("State")
    conn.send_and_get_reply(get)
    ms = []
    for _ in range(n):
        t = time.perf_counter()
        reply = conn.send_and_get_reply(get)
        ms.append((time.perf_counter() - t) * 1000)
    assert reply.body[0][1] == "unregistered", reply.body
    report("D-Bus Get Account1.State (one conn)", ms)


def events(files):
    for f in files:
        seqs = [json.loads(l)["seq"] for l in open(f) if l.strip()]
        seqs = [int(s) for s in seqs]
        gaps = sum(1 for a, b in zip(seqs, seqs[1:]) if b != a + 1)
        print(f"{f.rsplit('/', 1)[-1]:14} {len(seqs):7} events, seq {seqs[0] if seqs else '-'}.."
              f"{seqs[-1] if seqs else '-'}, gaps {gaps}")


if __name__ == "__main__":
    verb = sys.argv[1]
    if verb == "latency":
        latency(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    elif verb == "grpc-latency":
        grpc_latency(sys.argv[2], int(sys.argv[3]))
    elif verb == "grpc-call":
        grpc_call(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif verb == "dbus-latency":
        dbus_latency(sys.argv[2], int(sys.argv[3]))
    elif verb == "events":
        events(sys.argv[2:])
