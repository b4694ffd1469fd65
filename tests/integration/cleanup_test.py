#!/usr/bin/env python3
"""A test that fails, or dies, leaves no server behind.

Each case runs a child Python process that starts a server the way the integration tests do
(standalone.Server, or vkdtest's Env.start for the daemon-level scripts), prints the server's
pid and then ends badly: a failed check, a Fail out of a case, an exception nobody catches,
SIGTERM (ctest's timeout, a ^C'd run) or SIGKILL. After the child is gone, the server must be
gone too (a zombie waiting for init to reap it counts as gone).

usage: cleanup_test.py SOURCE_DIR
"""

import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(HERE, "..", "..")

# A stand-in server: says it listens, then sleeps until it is killed (never on its own).
SERVER = "import time; print('listening 127.0.0.1:1', flush=True); time.sleep(600)"

CHILD = r"""
import os, signal, sys, time
sys.path.insert(0, {here!r})
sys.path.insert(0, os.path.join({here!r}, "supervisor"))
mode = sys.argv[1]
server = [sys.executable, "-c", {server!r}]
def wait_for_the_signal():
    # Not one time.sleep(600): a signal that lands after Python's last check for one and
    # before clock_nanosleep starts is taken by the C handler and then slept through (seen
    # under load: the child in clock_nanosleep, SIGTERM caught, nothing pending). Short sleeps
    # check for it every 50 ms.
    end = time.monotonic() + 600
    while time.monotonic() < end:
        time.sleep(0.05)
if mode.startswith("standalone"):
    from standalone import Checks, Server
    check = Checks()
    srv = Server(check, *server)
    print("SERVER", srv.p.pid, flush=True)
    if mode == "standalone-check":
        check(False, "a check that fails on purpose")
    elif mode == "standalone-raise":
        raise RuntimeError("an exception nobody catches")
    wait_for_the_signal()
else:
    import vkdtest
    def case(env):
        d = env.start(wrapper=server)
        d.wait_log("listening")  # running, past the one line it writes
        print("SERVER", d.pid, flush=True)
        if mode == "daemon-fail":
            raise vkdtest.Fail("a case that fails on purpose")
        wait_for_the_signal()
    vkdtest.main({{"case": case}}, ["--vkd", "/nonexistent", "--module-dir", "/nonexistent",
                                     "--source-dir", {src!r}, "case"])
"""

# mode: how the child ends (None: by itself)
CASES = {
    "standalone-check": None,
    "standalone-raise": None,
    "standalone-sigterm": signal.SIGTERM,
    "standalone-sigkill": signal.SIGKILL,
    "daemon-fail": None,
    "daemon-sigterm": signal.SIGTERM,
    "daemon-sigkill": signal.SIGKILL,
}


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def run(mode, sig):
    code = CHILD.format(here=HERE, server=SERVER, src=SRC)
    p = subprocess.Popen([sys.executable, "-c", code, mode], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    pid = None
    out = []
    for line in p.stdout:
        out.append(line)
        if line.startswith("SERVER "):
            pid = int(line.split()[1])
            break
    if pid is None:
        p.wait()
        return f"{mode}: the child started no server:\n{''.join(out)}"
    if sig is not None:
        p.send_signal(sig)
    try:
        out.append(p.communicate(timeout=90)[0])  # 30 s was once too short on a loaded CI machine
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return f"{mode}: the child did not end"
    if p.returncode == 0:
        return f"{mode}: the child exited 0, want a failure"
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        return (f"{mode}: the child ended ({p.returncode}) and left server {pid} running:\n"
                + "".join(out))
    print(f"ok: {mode}: the child ended ({p.returncode}), server {pid} is gone", flush=True)
    return None


def main():
    failures = [f for f in (run(m, s) for m, s in CASES.items()) if f]
    for f in failures:
        print(f"FAIL: {f}", flush=True)
    if failures:
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
