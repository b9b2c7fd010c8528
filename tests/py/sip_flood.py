#!/usr/bin/env python3
"""A flood of mutated SIP messages over UDP: each is a seed (a real message) with random
mutations, as a fuzzer or a broken peer would send: bit flips, bytes inserted, removed
or repeated, lines dropped, duplicated or swapped, cut short. Seeded, so a failure can be
replayed.

usage: sip_flood.py TARGET_IP PORT BIND_IP COUNT RATE SEED_DIR [RANDOM_SEED]
prints {"sent": N}
"""
import json
import os
import random
import socket
import sys
import time


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        if not data:
            break
        i = rng.randrange(len(data))
        if op == 0:
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[i:i] = bytes(rng.choice([b"\r\n", b":", b";", b"<", b">", b"\x00", b" ", b"%", b"\xff", b"9999999999"]))
        elif op == 2:
            del data[i : i + rng.randint(1, 16)]
        elif op == 3:
            j = min(len(data), i + rng.randint(1, 64))
            data[j:j] = data[i:j] * rng.randint(1, 20)
        elif op == 4:
            lines = bytes(data).split(b"\r\n")
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            data = bytearray(b"\r\n".join(lines))
        elif op == 5:
            lines = bytes(data).split(b"\r\n")
            k = rng.randrange(len(lines))
            if rng.random() < 0.5:
                del lines[k]
            else:
                lines.insert(k, lines[k])
            data = bytearray(b"\r\n".join(lines))
        else:
            del data[i:]
    return bytes(data[:65000])


def main():
    target, port, bind_ip = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    count, rate, seed_dir = int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
    rng = random.Random(int(sys.argv[7]) if len(sys.argv) > 7 else 1)
    seeds = []
    for name in sorted(os.listdir(seed_dir)):
        with open(os.path.join(seed_dir, name), "rb") as f:
            seeds.append(f.read())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((bind_ip, 0))
    start = time.monotonic()
    for n in range(count):
        # Paced: a flood the kernel drops before voipd reads it would prove little.
        ahead = n / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
        msg = mutate(rng, rng.choice(seeds))
        # Fresh identities: retransmissions would only be absorbed.
        msg = msg.replace(b"z9hG4bK", b"z9hG4bK" + str(n).encode() + b"x", 1)
        try:
            sock.sendto(msg, (target, port))
        except OSError:
            pass
    print(json.dumps({"sent": count}))


if __name__ == "__main__":
    main()
