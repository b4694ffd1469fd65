#!/usr/bin/env python3
"""Memory per idle keep-alive HTTP connection: opens N connections to a
server, sends one GET on each and reads its response (so each connection is
accepted, parsed and answered), then leaves them idle for SETTLE seconds and
reports the growth of the server's RSS per connection, busy and settled.

usage: http_idle.py HOST:PORT SERVER_PID [N=10000] [SETTLE=2]"""
import os
import resource
import socket
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


host, port = sys.argv[1].rsplit(":", 1)
pid = int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
settle = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
before = rss_kb(pid)
req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
socks = []
for _ in range(n):
    s = socket.create_connection((host, int(port)))
    s.sendall(req)
    got = b""
    while b"\r\n\r\n" not in got or not got.endswith(b"Hello, World!"):
        b = s.recv(4096)
        if not b:
            raise SystemExit("server closed a keep-alive connection")
        got += b
    socks.append(s)
busy = rss_kb(pid)
time.sleep(settle)  # the definition of idle here, not a wait for an event
settled = rss_kb(pid)
# they are all still usable
for s in socks[:100]:
    s.sendall(req)
    if b"200 OK" not in s.recv(4096):
        raise SystemExit("an idle connection did not answer again")
print(f"http_idle: conns={n} busy_per_conn_bytes={(busy - before) * 1024 / n:.0f} "
      f"idle_per_conn_bytes={(settled - before) * 1024 / n:.0f}")
