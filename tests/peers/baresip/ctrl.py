#!/usr/bin/env python3
"""Minimal client for baresip's ctrl_tcp module (netstring-framed JSON).

Stdlib only. Reference for the Rust harness; see README.md in this dir.

Wire format (both directions):  <decimal length>:<JSON bytes>,
  command  -> {"command": "dial", "params": "sip:carol@127.0.0.1", "token": "t1"}
  response <- {"response": true, "ok": true, "data": "...", "token": "t1"}
  event    <- {"event": true, "type": "CALL_ESTABLISHED", "class": "call", ...}

Usage as a library:
    c = Ctrl("127.0.0.1", 4444)
    c.wait_event("REGISTER_OK", timeout=5)
    r = c.command("dial", "sip:carol@127.0.0.1")   # returns the response dict
    c.wait_event("CALL_ESTABLISHED", timeout=5)
    c.command("hangup")

Usage from the shell:
    ctrl.py PORT COMMAND [PARAMS]      # prints the response, then events for 1 s
    ctrl.py PORT --listen [SECONDS]    # prints events
"""
import itertools
import json
import socket
import sys
import time


class Ctrl:
    def __init__(self, host, port, connect_timeout=5.0):
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        self.buf = b""
        self.events = []          # every event seen, in order (also those consumed)
        self.pending = []         # events not yet returned by next_event/wait_event
        self._tok = itertools.count(1)

    def close(self):
        self.sock.close()

    # ---- framing -------------------------------------------------------
    def send(self, obj):
        data = json.dumps(obj).encode()
        self.sock.sendall(b"%d:%s," % (len(data), data))

    def _read_msg(self, timeout):
        """Return one decoded JSON message, or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            colon = self.buf.find(b":")
            if colon > 0:
                n = int(self.buf[:colon])
                end = colon + 1 + n
                if len(self.buf) > end:
                    if self.buf[end:end + 1] != b",":
                        raise ValueError("bad netstring: %r" % self.buf[:end + 1])
                    payload = self.buf[colon + 1:end]
                    self.buf = self.buf[end + 1:]
                    return json.loads(payload)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise EOFError("ctrl_tcp connection closed")
            self.buf += chunk

    def _dispatch(self, msg):
        if msg.get("event"):
            self.events.append(msg)
            self.pending.append(msg)
            return None
        return msg

    # ---- API -----------------------------------------------------------
    def command(self, command, params=None, timeout=5.0):
        """Send a command, return its response dict (events are queued)."""
        token = "t%d" % next(self._tok)
        obj = {"command": command, "token": token}
        if params is not None:
            obj["params"] = params
        self.send(obj)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_msg(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise TimeoutError("no response to %r" % obj)
            resp = self._dispatch(msg)
            if resp is not None and resp.get("token") == token:
                return resp

    def next_event(self, timeout=5.0):
        """Return the next queued/incoming event, or None on timeout."""
        if self.pending:
            return self.pending.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_msg(max(0.0, deadline - time.monotonic()))
            if msg is None:
                return None
            self._dispatch(msg)
            if self.pending:
                return self.pending.pop(0)

    def wait_event(self, etype, timeout=5.0, **match):
        """Wait for an event whose "type" == etype (and whose other fields
        equal **match). Non-matching events are dropped from the queue
        (they stay in self.events). Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next_event(max(0.0, deadline - time.monotonic()))
            if ev is None:
                raise TimeoutError("no %s event (seen: %s)" % (
                    etype, [e.get("type") for e in self.events]))
            if ev.get("type") == etype and all(ev.get(k) == v for k, v in match.items()):
                return ev


def main(argv):
    port = int(argv[1])
    c = Ctrl("127.0.0.1", port)
    if argv[2] == "--listen":
        secs = float(argv[3]) if len(argv) > 3 else 10.0
        end = time.monotonic() + secs
        while time.monotonic() < end:
            ev = c.next_event(end - time.monotonic())
            if ev:
                print(json.dumps(ev), flush=True)
        return
    resp = c.command(argv[2], argv[3] if len(argv) > 3 else None)
    print(json.dumps(resp))
    if resp.get("data"):
        print(resp["data"])
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        ev = c.next_event(end - time.monotonic())
        if ev:
            print(json.dumps(ev), flush=True)


if __name__ == "__main__":
    main(sys.argv)
