"""Shared by the tests that drive a service module on the stand-alone host
(vkd-http, vkd-redis) and the daemon-level scripts: a checker that counts
and stops at the first failure, a server on 127.0.0.1:0 that is ready when it
prints its `listening HOST:PORT` line, and a raw-socket exchange."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from vkdskip import skip  # noqa: E402,F401  (re-exported for the scripts that use this)
from vkdproc import spawn  # noqa: E402


class Checks:
    """check(cond, what, detail): prints "ok: what", or fails the run with detail."""

    def __init__(self):
        self.passed = 0

    def __call__(self, cond, what, detail=""):
        if not cond:
            print(f"FAIL: {what}\n{detail}", file=sys.stderr)
            sys.exit(1)
        self.passed += 1
        print(f"ok: {what}")

    def summary(self):
        print(f"{self.passed} passed, 0 failed")


class Server:
    """A stand-alone host (argv) with --listen 127.0.0.1:0; ready when it prints its
    'listening' line, so nothing sleeps. However the run ends (a failed check, an exception, a
    signal) the server ends with it (tests/lib/vkdproc.py). env: variables to add to its
    environment."""

    def __init__(self, check, *argv, env=None):
        self.check = check
        self.p = spawn([*argv, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True,
                       env={**os.environ, **env} if env else None)
        line = self.p.stdout.readline()  # blocks until ready or exit
        m = re.match(r"listening (\S+):(\d+)", line)
        if not m:
            self.p.kill()
            raise SystemExit(f"server did not start: {line!r} {self.p.stderr.read()}")
        self.host, self.port = m.group(1), int(m.group(2))
        self.url = f"http://{self.host}:{self.port}"

    def stop(self):
        self.p.terminate()
        try:
            rc = self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = "killed"
        self.check(rc == 0, f"server exits 0 on SIGTERM (got {rc})", self.p.stderr.read())

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=10)
        return self.p.stderr.read()


def raw(srv, data, timeout=3.0, pieces=None):
    """Sends data (optionally `pieces` bytes at a time), reads until the server closes or
    the time is up: (bytes, closed). A reset counts as closed."""
    s = socket.create_connection((srv.host, srv.port))
    s.settimeout(timeout)
    if pieces:
        for i in range(0, len(data), pieces):
            s.sendall(data[i:i + pieces])
    else:
        s.sendall(data)
    out, closed = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            out += b
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True  # the response, if any, must already be in out
    s.close()
    return out, closed
