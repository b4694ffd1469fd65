#!/usr/bin/env python3
"""vkd end to end under systemd as PID 1, doing what docs/getting-started.md tells a user.

A minimal Debian bookworm rootfs (debootstrap, built once and cached in the build tree) is
booted with `systemd-nspawn --boot --register=no --keep-unit --volatile=overlay` (the rootfs
stays pristine) in a cgroup of its own, on the host's network. The guest is driven with
`nsenter -t <guest init> -a ...`. In it:

  dpkg -i vkd.deb                 creates the vkd user, enables and starts vkd.socket
  systemctl start vkd.socket      on a port free on the host (a drop-in replaces 7007)
  connect from the host           the first connection starts vkd.service; echo answers
  cp http.conf /etc/vkd.d/        the HTTP example, on another free port
  vkd --check-config; systemctl reload vkd
  HTTP GET from the host          the new service answers
  vkdctl status                   shows both services
  journalctl -u vkd               vkd's lines with their priorities (PRIORITY= 5, 6, ...)
  systemctl stop vkd              drains and exits 0 (Result=success)

Needs root, systemd-nspawn (systemd-container), debootstrap, nsenter and the package built by
the package_deb test; otherwise it says what is missing and exits 77 (ctest: skipped). A
rootfs that cannot be built or a guest that does not boot is a skip too, but under CI=true
every one of these is a failure (tests/lib/vkdskip.py).

usage: e2e_systemd.py --deb PATH --cache DIR
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "lib"))
from vkdskip import skip_code  # noqa: E402

T0 = time.monotonic()


class Skip(Exception):
    """Skip(what, why): the test cannot run here; `what` is the id vkdskip knows it by."""


class Fail(Exception):
    pass


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def wait_until(what, fn, timeout=30, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if r:
            return r
        if time.monotonic() > deadline:
            raise Fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- rootfs


def mirror():
    """The Debian mirror this host's apt uses (deb822 or one-line format)."""
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        try:
            with open(path) as f:
                for line in f:
                    w = line.split()
                    if w[:1] == ["URIs:"] and len(w) > 1:
                        return w[1]
                    if w[:1] == ["deb"] and len(w) > 2:
                        return w[2] if not w[1].startswith("[") else w[3]
        except OSError:
            pass
    return "http://deb.debian.org/debian"


def deb_depends(deb):
    """First alternative of each Depends: of the package (what dpkg -i needs offline)."""
    out = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    return [d.split("|")[0].split("(")[0].strip() for d in out.split(",") if d.strip()]


def rootfs(cache, deb):
    """A bookworm rootfs with systemd and the package's dependencies, built once."""
    include = sorted(set(["systemd", "systemd-sysv", "dbus"] + deb_depends(deb)))
    root = os.path.join(cache, "rootfs")
    stamp = os.path.join(cache, "rootfs.include")
    try:
        with open(stamp) as f:
            if f.read().split() == include and os.path.isdir(root):
                log(f"rootfs: cached in {root}")
                return root
    except OSError:
        pass
    shutil.rmtree(root, ignore_errors=True)
    tmp = root + ".new"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(cache, exist_ok=True)
    log(f"rootfs: debootstrap bookworm with {','.join(include)} (once; cached)")
    p = subprocess.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(include),
                        "bookworm", tmp, mirror()],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print(p.stdout[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
        raise Skip("e2e_systemd/no-rootfs",
                   "debootstrap could not build a bookworm rootfs (no mirror reachable?)")
    os.rename(tmp, root)
    with open(stamp, "w") as f:
        f.write(" ".join(include) + "\n")
    log("rootfs: built")
    return root


# ---------------------------------------------------------------- the guest


class Guest:
    def __init__(self, root, share):
        self.name = f"vkd-e2e-{os.getpid()}"
        self.cgroup = None
        # A cgroup of its own (in the named systemd hierarchy, or the unified one), so that
        # parallel runs do not share one.
        for base in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
            if os.path.exists(os.path.join(base, "cgroup.procs")):
                self.cgroup = os.path.join(base, self.name)
                os.mkdir(self.cgroup)
                break
        cg = self.cgroup

        def enter_cgroup():
            if cg:
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))

        self.console = open(os.path.join(share, "console.log"), "w")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--volatile=overlay",
             "--quiet", "-D", root, "--machine", self.name, "--bind-ro", f"{share}:/e2e"],
            stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT,
            preexec_fn=enter_cgroup)
        self.leader = wait_until("the guest's init", self._find_leader, timeout=30)
        wait_until("/run/systemd/private in the guest", lambda: os.path.exists(
            f"/proc/{self.leader}/root/run/systemd/private"), timeout=30)
        state = self.run("systemctl", "is-system-running", "--wait", check_rc=False).strip()
        log(f"guest booted: init pid {self.leader}, system {state}")
        check(state in ("running", "degraded"), f"guest system state {state!r}")

    def _find_leader(self):
        """The guest's PID 1: a descendant of nspawn whose innermost pid is 1."""
        if self.proc.poll() is not None:
            raise Fail(f"systemd-nspawn exited {self.proc.returncode}")
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                kids = []
            for k in kids:
                try:
                    with open(f"/proc/{k}/status") as f:
                        ns = [l for l in f if l.startswith("NSpid:")][0].split()
                except (OSError, IndexError):
                    continue
                if ns[-1] == "1" and len(ns) > 2:
                    return k
                todo.append(k)
        return None

    def run(self, *cmd, check_rc=True, input=None):
        p = subprocess.run(["nsenter", "-t", str(self.leader), "-a", "--"] + list(cmd),
                           input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=120)
        log(f"guest$ {' '.join(cmd)}  -> {p.returncode}")
        if p.stdout.strip():
            print("    " + p.stdout.rstrip().replace("\n", "\n    "), flush=True)
        if check_rc and p.returncode != 0:
            raise Fail(f"in the guest: {' '.join(cmd)} exited {p.returncode}")
        return p.stdout

    def write(self, path, text):
        self.run("sh", "-c", f"mkdir -p \"$(dirname '{path}')\" && cat > '{path}'", input=text)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # nspawn asks the guest's init to halt
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.console.close()
        if self.cgroup:
            for d, _, _ in sorted(os.walk(self.cgroup), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


# ---------------------------------------------------------------- clients on the host


def echo(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    return got


def http_get(port):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n")
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    return got


def http_answers(port):
    try:
        return http_get(port)
    except OSError:
        return None


# ---------------------------------------------------------------- the test


def scenario(g):
    p_echo, p_http = free_port(), free_port()
    log(f"ports on the host: echo {p_echo}, http {p_http}")

    # vkd.socket on a port free on the host, before the package starts it.
    g.write("/etc/systemd/system/vkd.socket.d/e2e.conf",
            f"[Socket]\nListenStream=\nListenStream=127.0.0.1:{p_echo}\n")
    g.run("dpkg", "-i", "/e2e/vkd.deb")
    check(g.run("id", "-u", "vkd", check_rc=False).strip().isdigit(), "no vkd user")
    check(g.run("systemctl", "is-enabled", "vkd.socket", check_rc=False).strip() == "enabled",
          "vkd.socket is not enabled")
    # The service follows the socket's address (a user edits the conffile the same way).
    g.run("sed", "-i", "-e", f"s/^Listen=127.0.0.1:7007$/Listen=127.0.0.1:{p_echo}/",
          "-e", "/^Listen=\\[::1\\]:7007$/d", "/etc/vkd.d/echo.conf")

    g.run("systemctl", "start", "vkd.socket")
    check(g.run("systemctl", "is-active", "vkd.service", check_rc=False).strip() != "active",
          "vkd.service runs before any connection: socket activation not exercised")

    # The first connection starts vkd.service.
    got = echo(p_echo, b"hello through systemd\n")
    check(got == b"hello through systemd\n", f"echo answered {got!r}")
    log("echo answered on the socket systemd holds; vkd.service was started by it")
    # The unit stays "activating" until vkd says READY=1 (Type=notify, after every worker
    # accepts), and the echo above can be answered before systemd has read that. A start job
    # joins the one the connection began and returns when the unit is up: the readiness wait.
    state = g.run("systemctl", "show", "-P", "ActiveState", "vkd.service").strip()
    check(state in ("activating", "active"), f"the connection did not start vkd.service: {state}")
    g.run("systemctl", "start", "vkd.service")
    check(g.run("systemctl", "is-active", "vkd.service", check_rc=False).strip() == "active",
          "vkd.service is not active")

    # A new service: the HTTP example, on a free port.
    g.run("sh", "-c", "sed -e 's/^Listen=127.0.0.1:8080$/Listen=127.0.0.1:%d/' "
          "-e '/^Listen=\\[::1\\]:8080$/d' /usr/share/doc/vkd/examples/conf/http.conf "
          "> /etc/vkd.d/http.conf" % p_http)
    g.run("vkd", "--check-config")
    g.run("systemctl", "reload", "vkd")
    resp = wait_until("the HTTP service after the reload", lambda: http_answers(p_http))
    check(resp.startswith(b"HTTP/1.1 200") and b"Hello, World!" in resp,
          f"HTTP answered {resp[:200]!r}")
    log("the HTTP service added by reload answered 200 Hello, World!")
    got = echo(p_echo, b"still here\n")
    check(got == b"still here\n", f"echo after reload answered {got!r}")

    status = g.run("vkdctl", "status")
    for svc in ("echo", "http"):
        check(svc in status, f"vkdctl status does not show {svc}")

    # journald keeps each line's priority.
    out = g.run("journalctl", "-u", "vkd.service", "-o", "json", "--no-pager")
    prios = {}
    for line in out.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("SYSLOG_IDENTIFIER") == "vkd":
            prios.setdefault(e.get("PRIORITY"), []).append(e.get("MESSAGE"))
    for p in sorted(prios):
        log(f"journal PRIORITY={p}: {len(prios[p])} line(s), e.g. {prios[p][0]!r}")
    check(any("ready: generation" in m for m in prios.get("5", [])),
          "no 'ready' line at priority 5 (notice) in the journal")
    check("6" in prios, "no line at priority 6 (info) in the journal")
    check(not any(str(m).startswith("<") for ms in prios.values() for m in ms),
          "a <N> prefix reached the journal as text")
    check(not any(str(m).startswith("vkd[") for ms in prios.values() for m in ms),
          "vkd[pid] in the message text: journald adds it already")

    # Stop: drains and exits 0.
    g.run("systemctl", "stop", "vkd.service")
    show = g.run("systemctl", "show", "vkd.service", "-p", "Result", "-p", "ExecMainStatus",
                 "-p", "ActiveState")
    check("Result=success" in show and "ExecMainStatus=0" in show,
          f"vkd.service did not stop cleanly: {show}")
    out = g.run("journalctl", "-u", "vkd.service", "-o", "json", "--no-pager")
    msgs = [e.get("MESSAGE", "") for e in map(json.loads, out.splitlines())
            if e.get("SYSLOG_IDENTIFIER") == "vkd"]
    check(msgs and msgs[-1].endswith("stopped") and any("draining" in m for m in msgs),
          f"vkd's last journal lines are not 'draining' ... 'stopped': {msgs[-3:]}")
    log("vkd.service stopped cleanly (Result=success, ExecMainStatus=0)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deb", required=True)
    ap.add_argument("--cache", required=True)
    a = ap.parse_args()
    guest = None
    share = None
    try:
        if os.geteuid() != 0:
            raise Skip("e2e_systemd/not-root", "not root: systemd-nspawn and debootstrap need root")
        for tool, pkg in (("systemd-nspawn", "systemd-container"), ("debootstrap", "debootstrap"),
                          ("nsenter", "util-linux"), ("dpkg-deb", "dpkg")):
            if not shutil.which(tool):
                raise Skip(f"e2e_systemd/no-{tool}", f"{tool} is not installed (Debian: {pkg})")
        if not os.path.exists(a.deb):
            raise Skip("e2e_systemd/no-deb",
                       f"no package at {a.deb}: the package_deb test did not build one")
        root = rootfs(os.path.abspath(a.cache), a.deb)
        share = tempfile.mkdtemp(prefix="vkd-e2e-")
        shutil.copy(a.deb, os.path.join(share, "vkd.deb"))
        try:
            guest = Guest(root, share)
        except Fail as e:
            with open(os.path.join(share, "console.log")) as f:
                print(f.read()[-3000:])
            raise Skip("e2e_systemd/no-boot",
                       f"this host cannot boot a systemd-nspawn container: {e}")
        scenario(guest)
        log("PASS")
        return 0
    except Skip as e:
        return skip_code(*e.args)
    except (Fail, OSError) as e:  # OSError: a client that timed out or was refused
        print(f"FAIL: {e}", flush=True)
        if guest:
            guest.run("journalctl", "-u", "vkd.socket", "-u", "vkd.service", "--no-pager",
                      check_rc=False)
        return 1
    finally:
        if guest:
            guest.stop()
        if share:
            shutil.rmtree(share, ignore_errors=True)
        log("done")


if __name__ == "__main__":
    sys.exit(main())
