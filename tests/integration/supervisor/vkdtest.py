"""Helpers for the vkd supervisor's integration tests (Python 3, standard library only).

A test starts the real `vkd` with configs it writes into a temporary directory, on ports it
picks on 127.0.0.1, and owns a datagram socket that vkd's sd_notify() messages go to
(NOTIFY_SOCKET). Readiness is always a signal, never a sleep: READY=1 on that socket, a log
line on vkd's stderr, or a process state in /proc; every wait has a deadline.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from vkdskip import SKIP, skip  # noqa: E402,F401  (re-exported: the cases skip with it)
from vkdproc import kill_tree, spawn  # noqa: E402

WAIT = 30  # seconds any single wait may take before the test fails


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def log(msg):
    print(f"# {msg}", flush=True)


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port that is free now on host (the kernel picks it)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def connect(addr, timeout=10):
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    elif ":" in addr[0]:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(addr)
    except BaseException:
        s.close()
        raise
    return s


def recv_exactly(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise Fail(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_until_closed(s):
    """Everything s receives until the peer closes (bounded by s's timeout)."""
    buf = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return buf
        buf += chunk


def echo_roundtrip(addr, payload=b"hello vkd\n", rounds=1, timeout=10):
    """Sends payload `rounds` times on one connection, expects each back, then closes."""
    with connect(addr, timeout) as s:
        for _ in range(rounds):
            s.sendall(payload)
            got = recv_exactly(s, len(payload))
            if got != payload:
                raise Fail(f"echo from {addr}: sent {payload!r}, got {got!r}")


class Notify:
    """The datagram socket a service manager would own; vkd sends its sd_notify() here."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait(self, key, timeout=WAIT):
        """Waits for a message holding the line `key` (e.g. "READY=1") that was not seen yet;
        returns the whole message."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail(f"no {key} on NOTIFY_SOCKET within {timeout} s "
                           f"(got {self.messages!r})")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            self.messages.append(data)
            if key in data.split("\n"):
                return data

    def close(self):
        self.sock.close()


class Daemon:
    """A running process (vkd, or a wrapper that execs it) whose stderr is collected. It ends
    with the test however the test ends (tests/lib/vkdproc.py)."""

    def __init__(self, argv, env=None, name="vkd", journal=False):
        """journal: stderr poses as the journal ($JOURNAL_STREAM names the pipe's dev:ino)."""
        self.name = name
        self.lines = []
        self.cond = threading.Condition()
        full_env = dict(os.environ)
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.pop("LISTEN_FDS", None)
        full_env.pop("JOURNAL_STREAM", None)
        r, w = os.pipe()
        if journal:
            st = os.fstat(w)
            full_env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        full_env.update(env or {})
        log("start: " + " ".join(argv))
        try:
            self.proc = spawn(argv, env=full_env, stdin=subprocess.DEVNULL, stdout=w, stderr=w)
        finally:
            os.close(w)
        self.proc.stdout = os.fdopen(r, "rb")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    @property
    def pid(self):
        return self.proc.pid

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            print(f"  {self.name}| {line}", flush=True)
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # end of output
            self.cond.notify_all()

    def mark(self):
        """A position in the log: later waits only look at lines after it."""
        with self.cond:
            return len(self.lines)

    def wait_log(self, pattern, start=0, timeout=WAIT):
        """Waits for a log line at index >= start matching pattern; returns (index, match)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        raise Fail(f"{self.name} ended its output without a line like "
                                   f"/{pattern}/")
                    m = rx.search(line)
                    if m:
                        return i, m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail(f"no line like /{pattern}/ from {self.name} within {timeout} s")
                self.cond.wait(left)

    def log_lines(self):
        with self.cond:
            return [x for x in self.lines if x is not None]

    def wait_exit(self, timeout=WAIT):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Fail(f"{self.name} (pid {self.pid}) did not exit within {timeout} s")
        self.reader.join(timeout)
        return rc

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        kill_tree(self.proc)


def children(ppid):
    """Pids whose parent is ppid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the command may hold spaces and parentheses: fields start after the last ')'
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == ppid and fields[0] != "Z":
            out.append(int(d))
    return sorted(out)


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def wait_until(what, fn, timeout=WAIT, step=0.02):
    """Polls fn() until it returns something true (for states that have no signal of their
    own, like a process appearing in /proc); bounded."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fail(f"{what}: not within {timeout} s")
        time.sleep(step)


# ---------------------------------------------------------------- configs


def set_keys(text, section, keys):
    """Sets Key=value lines in [section] of an INI text: replaces an existing (possibly
    commented-out) key, else appends after the section header. A value None removes the key.
    Listen may be a list (every Listen= line is replaced)."""
    lines = text.split("\n")
    out = []
    cur = None
    done = set()
    for line in lines:
        m = re.match(r"^\[(.+)\]\s*$", line)
        if m:
            if cur == section:
                out.extend(_pending(keys, done))
            cur = m.group(1)
            out.append(line)
            continue
        km = re.match(r"^#?\s*([A-Za-z][A-Za-z0-9]*)=", line)
        if cur == section and km and km.group(1) in keys:
            k = km.group(1)
            if k in done:
                continue
            done.add(k)
            out.extend(_lines(k, keys[k]))
            continue
        out.append(line)
    if cur == section:
        out.extend(_pending(keys, done))
    elif section not in [re.match(r"^\[(.+)\]", x).group(1) for x in lines
                         if re.match(r"^\[(.+)\]", x)]:
        out.append(f"[{section}]")
        out.extend(_pending(keys, done))
    return "\n".join(out)


def _lines(k, v):
    if v is None:
        return []
    if isinstance(v, list):
        return [f"{k}={x}" for x in v]
    return [f"{k}={v}"]


def _pending(keys, done):
    out = []
    for k, v in keys.items():
        if k not in done:
            done.add(k)
            out.extend(_lines(k, v))
    return out


class Env:
    """A temporary conf dir made from the project's example configs."""

    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="vkd-test-")
        os.chmod(self.tmp, 0o755)
        self.conf_dir = os.path.join(self.tmp, "vkd.d")
        os.mkdir(self.conf_dir)
        self.config = os.path.join(self.tmp, "vkd.conf")
        self.notify = Notify(self.tmp)
        self.daemons = []
        with open(os.path.join(args.source_dir, "conf", "echo.conf")) as f:
            self.example_service = f.read()
        with open(os.path.join(args.source_dir, "conf", "vkd.conf")) as f:
            self.example_daemon = f.read()
        self.write_daemon({})

    def write(self, path, text):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)  # a reload never sees half a file

    def write_daemon(self, keys):
        base = {"Workers": "2", "LogLevel": "debug", "ConfDir": self.conf_dir,
                "DrainTimeoutSec": "20", "ControlSocket": os.path.join(self.tmp, "ctl.sock")}
        base.update(keys)
        self.write(self.config, set_keys(self.example_daemon, "Daemon", base))

    def write_service(self, name, keys, module_keys=None):
        text = set_keys(self.example_service, "Service", keys)
        if module_keys:
            text = set_keys(text, "Module", module_keys)
        path = os.path.join(self.conf_dir, name + ".conf")
        self.write(path, text)
        return path

    def remove_service(self, name):
        os.unlink(os.path.join(self.conf_dir, name + ".conf"))

    def vkd_argv(self, *extra):
        return [self.args.vkd, "--conf-dir", self.conf_dir, "--config", self.config,
                "--module-dir", self.args.module_dir, *extra]

    def start(self, *extra, wrapper=None, env=None, journal=False):
        argv = (wrapper or []) + self.vkd_argv(*extra)
        e = {"NOTIFY_SOCKET": self.notify.path}
        e.update(env or {})
        d = Daemon(argv, env=e, journal=journal)
        self.daemons.append(d)
        return d

    def run(self, *extra, timeout=WAIT):
        """Runs vkd to completion (e.g. --check-config); returns (rc, output)."""
        argv = self.vkd_argv(*extra)
        log("run: " + " ".join(argv))
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, text=True)
        for line in (p.stdout + p.stderr).splitlines():
            print(f"  vkd| {line}", flush=True)
        return p.returncode, p.stdout + p.stderr

    def close(self):
        for d in self.daemons:
            d.kill()
        self.notify.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def stop_daemon(env, d, timeout=WAIT):
    """SIGTERM: expects STOPPING=1 and exit status 0."""
    d.signal(signal.SIGTERM)
    env.notify.wait("STOPPING=1", timeout)
    rc = d.wait_exit(timeout)
    check(rc == 0, f"vkd exited {rc} on SIGTERM, want 0")


def main(cases, argv=None):
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--vkd", required=True)
    ap.add_argument("--module-dir", required=True)
    ap.add_argument("--test-module-dir", default="")
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("case", choices=sorted(cases))
    args = ap.parse_args(argv)
    env = Env(args)
    try:
        rc = cases[args.case](env) or 0
    except Fail as e:
        print(f"FAIL: {e}", flush=True)
        rc = 1
    finally:
        env.close()
    if rc == 0:
        print("PASS", flush=True)
    sys.exit(rc)
