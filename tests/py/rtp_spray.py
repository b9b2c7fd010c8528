#!/usr/bin/env python3
"""Sprays RTP at a range of ports, as an attacker on the network would: PCMU packets with
a tone of its own (so that a recording shows whether it was played), a random SSRC, at a
given rate, from BIND_IP. Whatever comes back to it is counted: nothing should.

usage: rtp_spray.py TARGET_IP PORT_LO PORT_HI BIND_IP RATE_PPS SECONDS FREQ
prints one JSON object: {"sent": N, "received": M, "from": ["ip:port", ...]}
"""
import json
import math
import random
import select
import socket
import struct
import sys
import time


def ulaw(sample):
    """ITU-T G.711 mu-law of a 16-bit linear sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), clip) + bias
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def main():
    target = sys.argv[1]
    lo, hi = int(sys.argv[2]), int(sys.argv[3])
    bind_ip = sys.argv[4]
    rate, seconds, freq = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((bind_ip, 0))
    sock.setblocking(False)
    ssrc = random.getrandbits(32)
    seq = random.getrandbits(16)
    ts = random.getrandbits(32)
    frame = bytes(
        ulaw(int(12000 * math.sin(2 * math.pi * freq * n / 8000))) for n in range(160)
    )
    ports = list(range(lo, hi + 1))
    sent = received = 0
    senders = set()
    start = time.monotonic()
    end = start + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - start) * rate)
        while sent < due:
            hdr = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
            try:
                sock.sendto(hdr + frame, (target, ports[sent % len(ports)]))
            except OSError:
                pass  # ICMP port unreachable from a closed port: spray on
            sent += 1
            seq += 1
            ts += 160
        r, _, _ = select.select([sock], [], [], 0.002)
        while r:
            try:
                _, addr = sock.recvfrom(2048)
                received += 1
                senders.add(f"{addr[0]}:{addr[1]}")
            except BlockingIOError:
                break
            except OSError:
                continue
    print(json.dumps({"sent": sent, "received": received, "from": sorted(senders)}))


if __name__ == "__main__":
    main()
