#!/usr/bin/env python3
"""Opens and closes many Watch streams (voipd.v1.Events/Watch) over the control socket,
as a flaky frontend would: ROUNDS times, BATCH streams at once, held for a moment (so
that the daemon has taken each up) and then cancelled.

usage: watch_churn.py SOCKET_PATH ROUNDS BATCH
"""
import sys
import time

import grpc


def main():
    path, rounds, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    channel = grpc.insecure_channel(f"unix://{path}")
    # The method by name: WatchRequest is empty, so its encoding is no bytes at all.
    watch = channel.unary_stream(
        "/voipd.v1.Events/Watch",
        request_serializer=lambda _: b"",
        response_deserializer=lambda b: b,
    )
    for _ in range(rounds):
        streams = [watch(None) for _ in range(batch)]
        time.sleep(0.2)
        for s in streams:
            s.cancel()
    channel.close()
    print(f"{rounds * batch} streams opened and closed")


if __name__ == "__main__":
    main()
