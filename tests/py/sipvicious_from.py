#!/usr/bin/env python3
"""Runs a SIPVicious tool (svwar, svmap, …) with every socket it binds on BIND_IP.
svwar's own -b is parsed but never used (sipvicious 0.3.3 to 0.3.8), so it would scan
from whatever address the kernel picks: here, the provider's, which voipd trusts.

usage: sipvicious_from.py BIND_IP TOOL_PATH [TOOL ARGS...]
"""
import os
import runpy
import socket
import sys

bind_ip, tool = sys.argv[1], sys.argv[2]
_bind = socket.socket.bind


def bind(self, address):
    return _bind(self, (bind_ip,) + tuple(address[1:]))


socket.socket.bind = bind
sys.argv = [tool] + sys.argv[3:]
# As when run itself: its own directory first (the package and its metadata are there).
sys.path.insert(0, os.path.dirname(os.path.realpath(tool)))
runpy.run_path(tool, run_name="__main__")
