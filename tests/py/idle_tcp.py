#!/usr/bin/env python3
"""Opens many TCP connections to a SIP port and leaves them idle, as an attacker holding
a server's connections (and file descriptors) would: from SOURCES loopback addresses
(127.0.1.1, 127.0.1.2, …) in turn. Prints {"open": N} once all are made, then holds them
until its stdin closes.

usage: idle_tcp.py TARGET_IP PORT COUNT SOURCES
"""
import json
import resource
import socket
import sys


def main():
    target, port = sys.argv[1], int(sys.argv[2])
    count, sources = int(sys.argv[3]), int(sys.argv[4])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = []
    failed = 0
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((f"127.0.1.{1 + i % sources}", 0))
        s.settimeout(5)
        try:
            s.connect((target, port))
            held.append(s)
        except OSError:
            failed += 1
            s.close()
    print(json.dumps({"open": len(held), "failed": failed}), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
