#!/usr/bin/env python3
"""The redis module under the vkd daemon, as a user runs it: the store is the
module's service process, started by each worker; with AppendOnly=yes the
data outlives `vkdctl restart redis`, `vkdctl reload` and a stop and start of
the daemon. redis-cli is the client.

usage: redis_daemon.py VKD VKDCTL MODULE_DIR"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from vkdskip import skip  # noqa: E402
from vkdproc import spawn  # noqa: E402

VKD, VKDCTL, MODULES = sys.argv[1:4]
passed = 0


def check(cond, what, detail=""):
    global passed
    if not cond:
        print(f"FAIL: {what}\n{detail}", file=sys.stderr)
        sys.exit(1)
    passed += 1
    print(f"ok: {what}")


def cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                       timeout=10)
    return r.stdout.strip()


if not shutil.which("redis-cli"):
    skip("redis_daemon/no-redis-cli", "redis-cli is not installed (Debian: redis-tools)")
tmp = tempfile.mkdtemp(prefix="vkd-redis-")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
conf = os.path.join(tmp, "vkd.d")
os.mkdir(conf)
ctl_sock = os.path.join(tmp, "control.sock")
with open(os.path.join(conf, "vkd.conf"), "w") as f:
    f.write(f"[Daemon]\nWorkers=1\nDrainTimeoutSec=5\nControlSocket={ctl_sock}\n")
with open(os.path.join(conf, "redis.conf"), "w") as f:
    f.write(f"[Service]\nModule=redis\nListen=127.0.0.1:{port}\nWorkers=1\nHeapSize=64K\n"
            f"RingSize=4K\n[Module]\nAppendOnly=yes\nAppendFsync=always\nDir={tmp}\n")
ctl = [VKDCTL, "--socket", ctl_sock]
procs = []


def start(stderr=None):
    p = spawn([VKD, "--conf-dir", conf, "--module-dir", MODULES], stderr=stderr)
    procs.append(p)
    deadline = time.monotonic() + 30
    while cli(port, "PING") != "PONG":
        if time.monotonic() > deadline or p.poll() is not None:
            sys.exit("FAIL: vkd with the redis module did not answer PING")
        time.sleep(0.05)  # polling the port: redis-cli is the readiness check here
    return p


try:
    d = start()
    check(cli(port, "SET", "k1", "v1") == "OK", "SET through the daemon's store")
    check(cli(port, "RPUSH", "list", "a", "b", "c") == "3", "RPUSH")
    check(cli(port, "GET", "k1") == "v1", "GET it back")
    info = cli(port, "INFO", "everything")
    with open(f"/proc/{d.pid}/maps") as f:
        allocator = "jemalloc-" if "libjemalloc" in f.read() else "libc"
    check("\nused_cpu_user:" in info and f"\nmem_allocator:{allocator}" in info and
          "\naof_enabled:1" in info and "\ncmdstat_set:calls=1," in info and
          cli(port, "PING") == "PONG",
          f"INFO under the worker's system call filter: CPU times, {allocator}, the AOF, "
          "command statistics; the worker lives on", info)

    r = subprocess.run(ctl + ["restart", "redis"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "vkdctl restart redis", r.stdout + r.stderr)
    check(cli(port, "GET", "k1") == "v1" and cli(port, "LLEN", "list") == "3",
          "the data survives restarting the service (append-only file replayed)")
    check(cli(port, "SET", "k2", "v2") == "OK", "SET after the restart")

    r = subprocess.run(ctl + ["reload"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "vkdctl reload", r.stdout + r.stderr)
    check(cli(port, "GET", "k1") == "v1" and cli(port, "GET", "k2") == "v2",
          "the data survives a reload")

    r = subprocess.run(ctl + ["stop"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and d.wait(timeout=30) == 0, "vkdctl stop: vkd exits 0",
          r.stdout + r.stderr)
    d = start()
    check(cli(port, "GET", "k2") == "v2" and cli(port, "LRANGE", "list", "0", "-1") ==
          "a\nb\nc", "the data survives stopping and starting the daemon")
    subprocess.run(ctl + ["stop"], capture_output=True, timeout=30)
    d.wait(timeout=30)

    # A torn tail (a crash mid-write) is cut off and said so in a plain line: stderr is a
    # file here, not the journal, so no <N> priority prefix (a container engine shows it raw).
    aof = [os.path.join(tmp, x) for x in os.listdir(tmp) if x.endswith(".aof")]
    check(len(aof) == 1, "one append-only file", str(os.listdir(tmp)))
    with open(aof[0], "ab") as f:
        f.write(b"*3\r\n$3\r\nSET\r\n$2\r\nk3")
    log_path = os.path.join(tmp, "stderr.log")
    with open(log_path, "wb") as log:
        d = start(stderr=log)
    check(cli(port, "GET", "k2") == "v2", "the data before the torn record is kept")
    subprocess.run(ctl + ["stop"], capture_output=True, timeout=30)
    d.wait(timeout=30)
    with open(log_path, errors="replace") as f:
        text = f.read()
    check("torn or bad record" in text, "the torn record is logged", text)
    raw = [x for x in text.splitlines() if x[:1] == "<"]
    check(not raw, "no raw <N> priority prefix outside the journal", "\n".join(raw))
    # The store told to end as the daemon stops saves and returns: an end it was asked for, not
    # a death that restarts (or fails) its worker.
    bad = [x for x in text.splitlines()
           if "service's own process ended" in x or "exited with status" in x]
    check(not bad, "a clean stop logs no service death", "\n".join(bad))
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
print(f"{passed} passed, 0 failed")
