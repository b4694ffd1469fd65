#!/usr/bin/env python3
"""An idle storm: N keep-alive connections to vkd-echo go idle until every one hibernates, then
all close at once. Prints the server's CPU time per hibernated connection closed and how long a
new client waits for its echo meanwhile (issue targets: 20 us, 50 ms). Medians of -r runs, the
server fresh for each, pinned to CPU 0 (the client to CPU 1 with two or more CPUs).

usage: idle_storm.py [-n CONNS] [-r REPS] [--isolation MODE] [VKD_ECHO]"""
import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("-n", type=int, default=5000)
ap.add_argument("-r", type=int, default=3)
ap.add_argument("--isolation", default="isolated")
ap.add_argument("echo", nargs="?", default=os.path.join(
    os.environ.get("BUILD_DIR", os.path.join(HERE, "..", "..", "build")),
    "services", "echo", "vkd-echo"))
a = ap.parse_args()
want = a.n + 100
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < want:
    sys.exit(f"idle_storm: the open-file limit ({hard}) is below {want}")
resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
if os.cpu_count() >= 2:
    os.sched_setaffinity(0, {1})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def one_run():
    port = free_port()
    srv = subprocess.Popen(["taskset", "-c", "0", a.echo, "--listen", f"127.0.0.1:{port}",
                            "--isolation", a.isolation, "--max-conns", str(a.n + 10)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conns = []
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("idle_storm: the server did not start")
                time.sleep(0.05)
        for _ in range(a.n):
            c = socket.create_connection(("127.0.0.1", port), timeout=30)
            c.sendall(b"x\n")
            conns.append(c)
        for c in conns:
            c.recv(16)
        time.sleep(2.5)  # idle processes hibernate after 1 s; the trim runs in batches
        t0 = cpu_s(srv.pid)
        for c in conns:
            c.close()
        conns = []
        t = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
            c.sendall(b"y\n")
            c.recv(16)
        wait_ms = (time.monotonic() - t) * 1000
        time.sleep(1.5)  # the closes are all processed by then
        return (cpu_s(srv.pid) - t0) * 1e6 / a.n, wait_ms
    finally:
        for c in conns:
            c.close()
        srv.kill()
        srv.wait()


runs = [one_run() for _ in range(a.r)]
for i, (us, ms) in enumerate(runs):
    print(f"idle_storm: run {i + 1}: {us:.1f} us CPU per hibernated close, new client {ms:.1f} ms",
          file=sys.stderr)
print(f"idle storm ({a.n} hibernated connections closed at once, {a.isolation}), medians of "
      f"{a.r}: {statistics.median(r[0] for r in runs):.1f} us of server CPU per close; a new "
      f"client answered in {statistics.median(r[1] for r in runs):.1f} ms")
