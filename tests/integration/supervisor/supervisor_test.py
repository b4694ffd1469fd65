#!/usr/bin/env python3
"""Integration tests of the vkd supervisor: the real daemon, the real echo module, real
clients. One case per ctest test (see supervisor.cmake):

  standalone         starts from the example configs on test-picked ports (TCP v4, v6, unix
                     socket with a mode), answers, logs plain vkd[pid] lines (stderr is a
                     pipe, not the journal: no <N> prefix), stops on SIGTERM
  journal_log        with $JOURNAL_STREAM naming stderr, every line carries its <N> priority
                     prefix and no vkd[pid] (journald adds it); LogLevel= drops lower ones
  nofile             the soft open-file limit is raised to the hard one (workers inherit it);
                     a hard limit below what MaxConnections= can hold is named in one warning,
                     not repeated by a reload that changes nothing
  check_config       --check-config on a good config and on each kind of broken one
  check_all_errors   a bad [Service] value does not hide bad [Module] keys: all reported
  start_errors       a module that cannot load refuses the start (file:line, module named);
                     Optional=yes starts the rest
  socket_activation  under systemd-socket-activate with two named sockets and NOTIFY_SOCKET
  reload             20 SIGHUPs (half broken) under 200 busy connections: no failed request
  reload_all_errors  a reload reports every problem, [Module] keys included, and keeps running
  restart            a worker killed with SIGKILL comes back; a crash storm marks it failed
  idle               IdleTimeoutSec= closes a silent connection, not a busy one
  stop               SIGINT exits 0; SIGTERM serves open connections while draining, refuses
                     new ones at once (none left queued to be reset at exit), kills what is
                     left at DrainTimeoutSec= and exits 0
  privileges         (root only) workers run as nobody with NoNewPrivs
  units              systemd-analyze verify on units/, the launchd plist parses
  one_worker         a module whose state is one process (redis) runs in one worker whatever
                     the daemon's Workers=; Workers=2 for it is a config error with file:line
"""

import os
import plistlib
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

from vkdtest import (WAIT, Fail, check, children, connect, echo_roundtrip, free_port,
                     have_ipv6, log, main, proc_status, recv_exactly, recv_until_closed,
                     skip, stop_daemon,
                     wait_until)

# A line on stderr that is not the journal: plain, no "<N>" priority prefix.
LOG_LINE = re.compile(r"^vkd\[\d+\]: \S")
# A line on stderr that is the journal: the priority prefix, and journald adds the rest.
JOURNAL_LINE = re.compile(r"^<[0-7]>[^<\s]")


def workers_of(d, n):
    """Waits until d has n worker children and returns their pids."""
    return wait_until(f"{n} workers of pid {d.pid}",
                      lambda: (lambda c: c if len(c) == n else None)(children(d.pid)))


# ---------------------------------------------------------------- standalone


def case_standalone(env):
    p4 = free_port()
    listen = [f"127.0.0.1:{p4}"]
    addrs = [("127.0.0.1", p4)]
    if have_ipv6():
        p6 = free_port(socket.AF_INET6, "::1")
        listen.append(f"[::1]:{p6}")
        addrs.append(("::1", p6))
    sock_path = os.path.join(env.tmp, "echo.sock")
    listen.append(f"{sock_path} mode=0660")
    addrs.append(sock_path)
    env.write_service("echo", {"Listen": listen})

    d = env.start()
    ready = env.notify.wait("READY=1")
    check("STATUS=" in ready, f"READY=1 without STATUS=: {ready!r}")
    for a in addrs:
        echo_roundtrip(a, b"standalone %r\n" % (a,), rounds=3)
    mode = stat.S_IMODE(os.stat(sock_path).st_mode)
    check(mode == 0o660, f"unix socket mode {oct(mode)}, want 0o660")

    workers = workers_of(d, 2)
    for pid in workers:
        st = proc_status(pid)
        check(st["NoNewPrivs"].strip() == "1", f"worker {pid}: NoNewPrivs {st['NoNewPrivs']}")
    # many clients at once, spread over the workers
    errors = []

    def client(i):
        try:
            echo_roundtrip(addrs[i % len(addrs)], b"client %d\n" % i, rounds=5)
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append(f"{i}: {e!r}")

    ts = [threading.Thread(target=client, args=(i,)) for i in range(100)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(WAIT)
    check(not errors, f"failed clients: {errors[:5]}")

    stop_daemon(env, d)
    check(not os.path.exists(sock_path), "unix socket not removed at exit")
    bad = [x for x in d.log_lines() if not LOG_LINE.match(x)]
    check(not bad, f"log lines that are not plain vkd[pid]: lines: {bad[:5]}")
    check(any(re.match(r"vkd\[\d+\]: echo: 2 worker\(s\) accepting on", x)
              for x in d.log_lines()), "no 'accepting on' info line for the service")


# ---------------------------------------------------------------- journal_log


def case_journal_log(env):
    port = free_port()
    env.write_service("echo", {"Listen": f"127.0.0.1:{port}"})
    d = env.start(journal=True)
    env.notify.wait("READY=1")
    echo_roundtrip(("127.0.0.1", port))
    stop_daemon(env, d)
    bad = [x for x in d.log_lines() if not JOURNAL_LINE.match(x)]
    check(not bad, f"under the journal, lines without a bare <N> prefix: {bad[:5]}")
    check(any(re.match(r"<6>echo: 2 worker\(s\) accepting on", x) for x in d.log_lines()),
          "no '<6>echo: ... accepting on' line")

    # A $JOURNAL_STREAM naming some other file is not the journal: plain lines.
    d = env.start(env={"JOURNAL_STREAM": "1:1"})
    env.notify.wait("READY=1")
    stop_daemon(env, d)
    bad = [x for x in d.log_lines() if not LOG_LINE.match(x)]
    check(not bad, f"JOURNAL_STREAM of another file, yet: {bad[:5]}")

    # LogLevel= is honoured: at "warning" no info or debug line is written
    env.write_daemon({"LogLevel": "warning"})
    d = env.start(journal=True)
    env.notify.wait("READY=1")
    echo_roundtrip(("127.0.0.1", port))
    stop_daemon(env, d)
    noisy = [x for x in d.log_lines() if re.match(r"<[5-7]>", x)]
    check(not noisy, f"LogLevel=warning but got: {noisy[:5]}")


# ---------------------------------------------------------------- nofile


def open_files_limit(pid):
    """(soft, hard) of "Max open files" in /proc/pid/limits."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise Fail(f"no Max open files in /proc/{pid}/limits")


NOFILE_WARNING = r"open-file limit (\d+) \(hard (\d+)\) is below the (\d+) a worker may need"


def case_nofile(env):
    if not shutil.which("prlimit"):
        skip("supervisor_nofile/no-prlimit", "prlimit (util-linux) is not installed")
    port = free_port()
    env.write_service("echo", {"Listen": f"127.0.0.1:{port}", "MaxConnections": "1024"})

    # soft 256, hard 4096: raised to 4096 in the daemon and its workers, and enough: no warning
    d = env.start(wrapper=["prlimit", "--nofile=256:4096", "--"])
    env.notify.wait("READY=1")
    check(open_files_limit(d.pid) == (4096, 4096),
          f"vkd's open-file limit {open_files_limit(d.pid)}, want (4096, 4096)")
    for w in workers_of(d, 2):
        check(open_files_limit(w) == (4096, 4096),
              f"worker {w}: open-file limit {open_files_limit(w)}, want (4096, 4096)")
    echo_roundtrip(("127.0.0.1", port))
    stop_daemon(env, d)
    loud = [x for x in d.log_lines() if "open-file limit" in x]
    check(not loud, f"a warning with a limit high enough: {loud}")

    # hard 512 < 1024 connections + a listener + 32 of its own: one warning with the numbers
    d = env.start(wrapper=["prlimit", "--nofile=128:512", "--"])
    env.notify.wait("READY=1")
    _, m = d.wait_log(NOFILE_WARNING)
    check(m.groups() == ("512", "512", "1057"), f"warning names {m.groups()}, want 512/512/1057")
    echo_roundtrip(("127.0.0.1", port))
    d.signal(signal.SIGHUP)
    env.notify.wait("RELOADING=1")
    env.notify.wait("READY=1")
    echo_roundtrip(("127.0.0.1", port))
    stop_daemon(env, d)
    n = sum(1 for x in d.log_lines() if re.search(NOFILE_WARNING, x))
    check(n == 1, f"{n} open-file warnings for one shortfall, want 1")


# ---------------------------------------------------------------- configuration errors


def case_check_config(env):
    port = free_port()
    good = {"Listen": f"127.0.0.1:{port}"}
    env.write_service("echo", good)
    rc, out = env.run("--check-config")
    check(rc == 0 and "configuration OK" in out, f"good config: rc {rc}")

    # The project's own examples, exactly as shipped, are valid.
    examples = os.path.join(env.args.source_dir, "conf")
    rc, out = env.run("--check-config", "--conf-dir", examples, "--config",
                      os.path.join(examples, "vkd.conf"))
    check(rc == 0, f"conf/ examples: rc {rc}")

    mods = env.args.test_module_dir
    kinds = [
        ("unknown key", {"Colour": "blue"}, None, r"echo\.conf:\d+: Colour: unknown key"),
        ("bad size", {"HeapSize": "12Q"}, None, r"echo\.conf:\d+: HeapSize: "),
        ("bad duration", {"IdleTimeoutSec": "5 fortnights"}, None,
         r"echo\.conf:\d+: IdleTimeoutSec: "),
        ("unknown user", {"User": "no-such-user-vkd"}, None, r"echo\.conf:\d+: User: "),
        ("bad listen", {"Listen": "127.0.0.1:99999"}, None, r"echo\.conf:\d+: Listen: "),
        ("missing module", {"Module": "nosuchmodule"}, None,
         r"echo\.conf:\d+: Module: nosuchmodule \(.*/nosuchmodule\.so\): cannot load: "
         r"cannot open"),
        ("ABI mismatch", {"Module": f"{mods}/testmod_abi2.so"}, None,
         r"echo\.conf:\d+: Module: .*testmod_abi2\.so.*ABI 2\.0, this vkd speaks 1\.\d+"),
        ("unknown flag", {"Module": f"{mods}/testmod_flags.so"}, None,
         r"echo\.conf:\d+: Module: .*testmod_flags\.so.*has flags 0x80000000 this vkd does not "
         r"know \(module ABI 1\.\d+, this vkd speaks 1\.\d+\)"),
        ("newer minor ABI", {"Module": f"{mods}/testmod_minor.so"}, None,
         r"echo\.conf:\d+: Module: .*testmod_minor\.so.*built for module ABI 1\.\d+, newer than "
         r"the 1\.\d+ this vkd speaks"),
        ("no descriptor", {"Module": f"{mods}/testmod_nosym.so"}, None,
         r"echo\.conf:\d+: Module: .*exports no \"vk_module\""),
        ("no main", {"Module": f"{mods}/testmod_nomain.so"}, None,
         r"echo\.conf:\d+: Module: .*no connection coroutine"),
        ("descriptor too small", {"Module": f"{mods}/testmod_small.so"}, None,
         r"echo\.conf:\d+: Module: .*descriptor of 8 bytes"),
        ("init fails", {"Module": f"{mods}/testmod_initfail.so"}, {"Greeting": "fail"},
         r"echo: \S*echo\.conf:\d+: Greeting: refusing \"fail\"$"),  # at its own line
        ("undeclared module key", {"Module": f"{mods}/testmod_initfail.so"},
         {"Colour": "blue"}, r"echo\.conf:\d+: Colour: unknown key in \[Module\]"),
        ("echo takes no keys", {}, {"Greeting": "hi"},
         r"echo\.conf:\d+: Greeting: unknown key in \[Module\]"),
    ]
    for name, keys, module_keys, want in kinds:
        log(f"broken config: {name}")
        k = dict(good)
        k.update(keys)
        env.write_service("echo", k, module_keys)
        rc, out = env.run("--check-config")
        check(rc != 0, f"{name}: --check-config exited 0")
        check(re.search(want, out, re.M), f"{name}: no message like /{want}/ in:\n{out}")
        check(all(LOG_LINE.match(x) for x in out.splitlines()),
              f"{name}: unprefixed output:\n{out}")
    env.write_service("echo", good)

    # duplicate listener across two services
    env.write_service("other", good)
    rc, out = env.run("--check-config")
    check(rc != 0 and re.search(r"other\.conf:\d+: Listen: ", out), f"duplicate listen:\n{out}")
    env.remove_service("other")

    # a broken daemon file, and several errors at once: all are reported
    env.write_daemon({"Bogus": "1", "Workers": "many"})
    env.write_service("echo", dict(good, HeapSize="3K", Colour="red"))
    rc, out = env.run("--check-config")
    check(rc != 0, "several errors: exit 0")
    for want in (r"vkd\.conf:\d+: Bogus: unknown key", r"vkd\.conf:\d+: Workers: ",
                 r"echo\.conf:\d+: HeapSize: ", r"echo\.conf:\d+: Colour: unknown key"):
        check(re.search(want, out), f"several errors: no /{want}/ in:\n{out}")


def line_of(path, key):
    """The line number of the first Key= line of a file."""
    with open(path) as f:
        return next(i for i, x in enumerate(f, 1) if x.startswith(key + "="))


def broken_web(env, port, module_keys):
    """Writes web.conf: the http11 module, a HeapSize= that is no power of two and the given
    bad [Module] keys. Returns the messages expected for them, each with its file:line."""
    path = env.write_service("web", {"Listen": f"127.0.0.1:{port}", "Module": "http11",
                                     "HeapSize": "48K"}, module_keys)
    want = [rf"web\.conf:{line_of(path, 'HeapSize')}: HeapSize: \"48K\" is not a power of two"]
    for k in module_keys:
        what = "unknown key in \\[Module\\]" if k == "Colour" else "bad value"
        want.append(rf"web\.conf:{line_of(path, k)}: {k}: {what}")
    return want


def case_check_all_errors(env):
    """One bad [Service] value does not hide the bad [Module] keys of the same file: each
    problem is reported with its line, and the total counts them all."""
    env.write_service("echo", {"Listen": f"127.0.0.1:{free_port()}"})
    want = broken_web(env, free_port(), {"MaxHeaders": "lots", "Colour": "blue"})
    rc, out = env.run("--check-config")
    check(rc != 0, "--check-config exited 0")
    for w in want + [r"configuration has 3 error\(s\)"]:
        check(re.search(w, out), f"--check-config: no /{w}/ in:\n{out}")
    check(len(re.findall(r"error\(s\)", out)) == 1, f"one total, not one per stage:\n{out}")


def case_reload_all_errors(env):
    """The same for a reload: every problem is logged, and the running generation stays."""
    port = free_port()
    env.write_service("echo", {"Listen": f"127.0.0.1:{port}"})
    d = env.start()
    env.notify.wait("READY=1")
    mark = d.mark()
    want = broken_web(env, free_port(), {"MaxHeaders": "lots", "KeepAliveTimeoutSec": "never"})
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload failed; generation \d+ keeps running unchanged", mark)
    for w in want + [r"configuration has 3 error\(s\)"]:
        d.wait_log(w, mark)
    echo_roundtrip(("127.0.0.1", port))
    stop_daemon(env, d)


def case_start_errors(env):
    port, port2 = free_port(), free_port()
    mods = env.args.test_module_dir
    env.write_service("echo", {"Listen": f"127.0.0.1:{port}"})
    env.write_service("zbroken", {"Listen": f"127.0.0.1:{port2}",
                                  "Module": f"{mods}/testmod_abi2.so"})
    d = env.start()
    rc = d.wait_exit()
    check(rc != 0, "vkd started although a required module is broken")
    d.wait_log(r"zbroken: .*zbroken\.conf:\d+: Module: .*ABI 2\.0, this vkd speaks 1\.\d+")
    d.wait_log(r"refusing to start")

    env.write_service("zbroken", {"Listen": f"127.0.0.1:{port2}", "Optional": "yes",
                                  "Module": f"{mods}/testmod_abi2.so"})
    d = env.start()
    env.notify.wait("READY=1")
    d.wait_log(r"vkd\[\d+\]: zbroken: could not start; Optional=yes")
    echo_roundtrip(("127.0.0.1", port))
    stop_daemon(env, d)

    # an address that cannot be bound refuses the start too, naming file:line
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        env.write_service("zbroken", {"Listen": f"127.0.0.1:{taken}"})
        d = env.start()
        check(d.wait_exit() != 0, "vkd started on an address in use")
        d.wait_log(rf"zbroken\.conf:\d+: Listen: cannot listen on 127\.0\.0\.1:{taken}: ")


# ---------------------------------------------------------------- socket activation


def case_socket_activation(env):
    ssa = shutil.which("systemd-socket-activate")
    if not ssa:
        skip("supervisor_socket_activation/no-socket-activate",
             "systemd-socket-activate is not installed (Debian: systemd)")
    p1, p2, p3 = free_port(), free_port(), free_port()
    env.write_service("echo", {"Listen": "echo"})
    env.write_service("second", {"Listen": "systemd:second"})
    wrapper = [ssa, "-l", f"127.0.0.1:{p1}", "-l", f"127.0.0.1:{p2}", "-l", f"127.0.0.1:{p3}",
               "--fdname=echo:second:spare", "-E", f"NOTIFY_SOCKET={env.notify.path}", "--"]
    d = env.start(wrapper=wrapper)
    # systemd-socket-activate runs vkd on the first connection, like systemd does.
    d.wait_log(rf"Listening on 127\.0\.0\.1:{p3} as 5")
    first = connect(("127.0.0.1", p1))
    first.sendall(b"activated\n")
    env.notify.wait("READY=1")
    check(recv_line(first) == b"activated\n", "first connection not echoed")
    first.close()
    echo_roundtrip(("127.0.0.1", p1), b"on echo\n", rounds=3)
    echo_roundtrip(("127.0.0.1", p2), b"on second\n", rounds=3)
    # STATUS= is refreshed with live figures (every 5 s): the 3 connections, all closed
    deadline = time.monotonic() + 15
    live = None
    while live is None and time.monotonic() < deadline:
        env.notify.sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            msg = env.notify.sock.recv(4096).decode()
        except socket.timeout:
            continue
        m = re.search(r"STATUS=.*; 0 connection\(s\) open, (\d+) accepted", msg)
        if m and int(m.group(1)) == 3:
            live = msg
    check(live is not None, "no STATUS= with the live figures (3 accepted) within 15 s")
    d.wait_log(r"vkd\[\d+\]: socket systemd:spare \(127\.0\.0\.1:\d+\) was passed in but no "
               r"service uses it")
    d.wait_log(r"3 socket\(s\) passed in")
    # vkd bound nothing itself: every listening socket of the process is an inherited one
    check(all(x.startswith("Listening on") or LOG_LINE.match(x) or x.startswith("Execing")
              or x.startswith("Communication") for x in d.log_lines()), "unexpected output")
    stop_daemon(env, d)

    # a config naming a socket that was not passed is an error
    env.write_service("second", {"Listen": "systemd:missing"})
    p1 = free_port()
    wrapper = [ssa, "-l", f"127.0.0.1:{p1}", "--fdname=echo",
               "-E", f"NOTIFY_SOCKET={env.notify.path}", "--"]
    d = env.start(wrapper=wrapper)
    d.wait_log(rf"Listening on 127\.0\.0\.1:{p1} as 3")
    trigger = connect(("127.0.0.1", p1))
    check(d.wait_exit() != 0, "vkd started without the socket its config names")
    trigger.close()
    d.wait_log(r"second\.conf:\d+: Listen: no socket named \"missing\" was passed in")


def recv_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        c = s.recv(4096)
        if not c:
            break
        buf += c
    return buf


# ---------------------------------------------------------------- reload under load


class Load:
    """`n` client threads, each looping: connect, a few echo round trips, close. Every
    failure is counted; the loop is bounded by `stop` and by a total deadline."""

    def __init__(self, addr, n=200, rounds=3, deadline=240):
        self.addr = addr
        self.stop = threading.Event()
        self.ok = 0
        self.failures = []
        self.lock = threading.Lock()
        self.end = time.monotonic() + deadline
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(n)]
        self.rounds = rounds
        self.started = threading.Barrier(n + 1)

    def run(self, i):
        self.started.wait(WAIT)
        k = 0
        while not self.stop.is_set() and time.monotonic() < self.end:
            payload = b"client %d request %d\n" % (i, k)
            try:
                echo_roundtrip(self.addr, payload, rounds=self.rounds, timeout=20)
                with self.lock:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure is a test failure
                with self.lock:
                    self.failures.append(f"client {i} request {k}: {e!r}")
            k += 1

    def start(self):
        for t in self.threads:
            t.start()
        self.started.wait(WAIT)

    def count(self):
        with self.lock:
            return self.ok

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(WAIT)
        check(not any(t.is_alive() for t in self.threads), "clients did not finish")


def case_reload(env):
    port, port_extra = free_port(), free_port()
    addr = ("127.0.0.1", port)
    env.write_daemon({"DrainTimeoutSec": "60"})
    env.write_service("echo", {"Listen": f"127.0.0.1:{port}"})
    d = env.start()
    env.notify.wait("READY=1")
    # One connection accepted by the first generation lives through every reload: its worker
    # drains (DrainTimeoutSec=60) instead of dropping it.
    keep = connect(addr, timeout=20)
    keep_n = 0
    load = Load(addr)
    load.start()
    gen = 1
    for i in range(20):
        before = load.count()
        # progress between reloads: the service answered since the last one
        wait_until("requests served", lambda: load.count() >= before + 50)
        mark = d.mark()
        broken = i % 2 == 1
        if broken:
            kind = (i // 2) % 3
            if kind == 0:
                env.write_service("echo", {"Listen": f"127.0.0.1:{port}", "Colour": "blue"})
            elif kind == 1:
                env.write_service("echo", {"Listen": f"127.0.0.1:{port}",
                                           "Module": "nosuchmodule"})
            else:
                env.write_daemon({"Workers": "-1"})
        elif i % 4 == 2:
            # a good reload that adds a service on a new address ...
            env.write_service("extra", {"Listen": f"127.0.0.1:{port_extra}"})
        elif i % 4 == 0 and i:
            # ... and one that removes it again
            env.remove_service("extra")
        else:
            env.write_service("echo", {"Listen": f"127.0.0.1:{port}",
                                       "MaxConnections": str(1000 + i)})
        d.signal(signal.SIGHUP)
        env.notify.wait("RELOADING=1")
        env.notify.wait("READY=1")
        if broken:
            d.wait_log(r"reload failed; generation \d+ keeps running unchanged", mark)
            # restore the good config for the next round
            env.write_daemon({"DrainTimeoutSec": "60"})
            env.write_service("echo", {"Listen": f"127.0.0.1:{port}"})
        else:
            _, m = d.wait_log(r"reloaded: generation (\d+) running, generation (\d+) draining",
                              mark)
            check(int(m.group(1)) > gen, f"generation {m.group(1)} after {gen}")
            gen, old_gen = int(m.group(1)), int(m.group(2))
            if os.path.exists(os.path.join(env.conf_dir, "extra.conf")):
                echo_roundtrip(("127.0.0.1", port_extra), b"extra\n")
            elif i % 4 == 0 and i:
                # removed: closed once the old generation drained (its last worker gone)
                d.wait_log(rf"generation {old_gen} finished", mark)
                try:
                    connect(("127.0.0.1", port_extra), timeout=5).close()
                    raise Fail(f"removed listener 127.0.0.1:{port_extra} still accepts")
                except ConnectionRefusedError:
                    pass
        keep_n += 1
        msg = b"kept connection, after reload %d\n" % keep_n
        keep.sendall(msg)
        check(recv_exactly(keep, len(msg)) == msg, "the kept connection lost its echo")
        log(f"reload {i + 1}/20 ({'broken' if broken else 'good'}): "
            f"{load.count()} requests so far")
    load.finish()
    keep.close()
    log(f"{load.ok} requests, {len(load.failures)} failed")
    check(not load.failures, f"{len(load.failures)} failed requests: {load.failures[:5]}")
    check(load.ok >= 1000, f"only {load.ok} requests served")
    stop_daemon(env, d)


# ---------------------------------------------------------------- worker restarts


def case_syscall_filter(env):
    """A module that calls execve() kills only its own worker (SIGSYS from the allow-list);
    the supervisor says why and restarts it, and another service never notices."""
    p_echo, p_bad = free_port(), free_port()
    env.write_service("echo", {"Listen": f"127.0.0.1:{p_echo}"})
    env.write_service("bad", {"Listen": f"127.0.0.1:{p_bad}", "Workers": "1",
                              "Module": os.path.join(env.args.test_module_dir,
                                                     "testmod_execve.so")})
    d = env.start()
    env.notify.wait("READY=1")
    echo_roundtrip(("127.0.0.1", p_bad), b"harmless\n")
    mark = d.mark()
    with connect(("127.0.0.1", p_bad)) as s:
        s.sendall(b"exec\n")
        s.settimeout(10)
        check(s.recv(100) == b"", "the worker that called execve answered instead of dying")
    d.wait_log(r"bad: worker \d \(pid \d+\) killed by signal 31 \(Bad system call\): a system "
               r"call not on the allow-list \(SystemCallFilter=\); restarting it in", mark)
    d.wait_log(r"bad: worker \d ready", mark)
    for i in range(10):
        echo_roundtrip(("127.0.0.1", p_echo), b"echo unharmed %d\n" % i)
    echo_roundtrip(("127.0.0.1", p_bad), b"bad service restarted\n")
    stop_daemon(env, d)


def case_restart(env):
    port = free_port()
    addr = ("127.0.0.1", port)
    env.write_service("echo", {"Listen": f"127.0.0.1:{port}"})
    d = env.start()
    env.notify.wait("READY=1")
    workers = workers_of(d, 2)
    victim = workers[0]
    mark = d.mark()
    os.kill(victim, signal.SIGKILL)
    d.wait_log(rf"echo: worker \d \(pid {victim}\) killed by signal 9 .*; restarting it in", mark)
    d.wait_log(r"echo: worker \d ready", mark)
    now = workers_of(d, 2)
    check(victim not in now, "the killed worker is still listed")
    for i in range(20):
        echo_roundtrip(addr, b"after restart %d\n" % i)

    # a crash storm: more than 5 crashes within 10 s marks the service failed. The back-off
    # (0.1 s doubling) keeps 6 restarts well inside 10 s.
    mark = d.mark()
    for k in range(8):
        pid = workers_of(d, 2)[0]
        m = d.mark()
        os.kill(pid, signal.SIGKILL)
        _, got = d.wait_log(r"echo: worker \d ready|echo: .*failed: more than 5 worker crashes "
                            r"within 10 s", m)
        if "failed" in got.group(0):
            break
    else:
        raise Fail("8 crashes in a row did not mark the service failed")
    check(k <= 5, f"failed only after {k + 1} crashes in the loop")
    d.wait_log(r"vkd\[\d+\]: echo: .*failed: more than 5 worker crashes within 10 s", mark)
    # the remaining worker still serves
    echo_roundtrip(addr, b"still here\n")
    stop_daemon(env, d)


# ---------------------------------------------------------------- idle timeout


def case_idle(env):
    port = free_port()
    addr = ("127.0.0.1", port)
    env.write_service("echo", {"Listen": f"127.0.0.1:{port}", "IdleTimeoutSec": "500ms"})
    d = env.start()
    env.notify.wait("READY=1")
    # a busy connection outlives the timeout: it sends every 100 ms for 1.5 s (pacing, not
    # synchronisation)
    with connect(addr) as busy:
        for i in range(15):
            msg = b"busy %d\n" % i
            busy.sendall(msg)
            check(recv_exactly(busy, len(msg)) == msg, "busy connection lost its echo")
            time.sleep(0.1)
    # an idle one is closed by the server after about 500 ms
    with connect(addr) as idle:
        idle.sendall(b"then nothing\n")
        check(recv_exactly(idle, 13) == b"then nothing\n", "no echo")
        t0 = time.monotonic()
        idle.settimeout(10)
        check(idle.recv(100) == b"", "the idle connection got data instead of end of stream")
        waited = time.monotonic() - t0
    log(f"idle connection closed after {waited:.2f} s")
    check(0.4 <= waited <= 5, f"idle connection closed after {waited:.2f} s, want about 0.5")
    stop_daemon(env, d)


# ---------------------------------------------------------------- stopping


def case_stop(env):
    port = free_port()
    addr = ("127.0.0.1", port)
    env.write_daemon({"DrainTimeoutSec": "3"})
    env.write_service("echo", {"Listen": f"127.0.0.1:{port}"})

    # SIGINT (a terminal's ^C) with nothing to drain: exit 0 at once
    d = env.start()
    env.notify.wait("READY=1")
    echo_roundtrip(addr)
    d.signal(signal.SIGINT)
    env.notify.wait("STOPPING=1")
    check(d.wait_exit() == 0, "SIGINT: exit status not 0")

    # SIGTERM with an open connection: it is still served while draining, then its worker is
    # killed at DrainTimeoutSec= and vkd still exits 0
    d = env.start()
    env.notify.wait("READY=1")
    held = connect(addr, timeout=20)
    held.sendall(b"before stop\n")
    check(recv_exactly(held, 12) == b"before stop\n", "no echo before stop")
    mark = d.mark()
    d.signal(signal.SIGTERM)
    env.notify.wait("STOPPING=1")
    held.sendall(b"while draining\n")
    check(recv_exactly(held, 15) == b"while draining\n", "no echo while draining")
    # A new connection during the drain is refused at once (a client or a balancer tries
    # elsewhere), never left in the listen queue to be reset when vkd exits: one that got in
    # before the workers closed their sockets is served.
    refused = False
    for i in range(200):
        try:
            late = connect(addr, timeout=2)
        except ConnectionRefusedError:
            refused = True
            break
        with late:
            late.sendall(b"late\n")
            try:
                check(recv_exactly(late, 5) == b"late\n", "a late connection got no echo")
            except OSError as e:
                raise Fail(f"a connection made while draining was not served: {e!r}")
        time.sleep(0.005)
    check(refused, "new connections still accepted while draining")
    check(d.proc.poll() is None, "vkd had exited before refusing: the drain was cut short")
    d.wait_log(r"vkd\[\d+\]: echo: worker \d \(pid \d+\) still has connections after "
               r"DrainTimeoutSec=; killing it", mark)
    check(d.wait_exit() == 0, "SIGTERM after a forced drain: exit status not 0")
    held.close()


# ---------------------------------------------------------------- privileges


def case_privileges(env):
    if os.geteuid() != 0:
        skip("supervisor_privileges/not-root", "not root: cannot test the privilege drop")
    import grp
    import pwd

    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid)
    # Workers load the module after dropping to nobody, who may not be able to reach the build
    # tree (a clone under /root): load it from a copy in the test's world-readable directory.
    modules = os.path.join(env.tmp, "modules")
    os.mkdir(modules)
    shutil.copy(os.path.join(env.args.module_dir, "echo.so"), modules)
    os.chmod(os.path.join(modules, "echo.so"), 0o755)
    env.args.module_dir = modules
    port = free_port()
    env.write_service("echo", {"Listen": f"127.0.0.1:{port}", "User": "nobody"})
    d = env.start()
    env.notify.wait("READY=1")
    echo_roundtrip(("127.0.0.1", port))
    uid, gid = str(nobody.pw_uid), str(nobody.pw_gid)
    for pid in workers_of(d, 2):
        st = proc_status(pid)
        log(f"worker {pid}: Uid {st['Uid']} Gid {st['Gid']} Groups {st['Groups']!r} "
            f"NoNewPrivs {st['NoNewPrivs']}")
        check(st["Uid"].split() == [uid] * 4, f"worker {pid}: Uid {st['Uid']}")
        check(st["Gid"].split() == [gid] * 4, f"worker {pid}: Gid {st['Gid']}")
        check(st["Groups"].split() in ([], [gid]), f"worker {pid}: Groups {st['Groups']}")
        check(st["NoNewPrivs"].strip() == "1", f"worker {pid}: NoNewPrivs {st['NoNewPrivs']}")
        check(st["CapEff"].strip("0\t ") == "", f"worker {pid}: CapEff {st['CapEff']}")
    st = proc_status(d.pid)
    check(st["Uid"].split()[0] == "0", "the supervisor is no longer root")
    # the supervisor can still stop (signal) workers that run as another user
    stop_daemon(env, d)
    log(f"workers ran as {nobody.pw_name}:{group.gr_name}")


# ---------------------------------------------------------------- platform files


def case_units(env):
    src = env.args.source_dir
    with open(os.path.join(src, "launchd", "org.vkd.vkd.plist"), "rb") as f:
        plist = plistlib.load(f)
    check("echo" in plist.get("Sockets", {}), "plist: no Sockets/echo")
    sa = shutil.which("systemd-analyze")
    if not sa:
        skip("supervisor_units/no-systemd-analyze",
             "systemd-analyze is not installed (Debian: systemd)")
    units = os.path.join(env.tmp, "units")
    os.mkdir(units)
    for name in ("vkd.socket", "vkd.service"):
        with open(os.path.join(src, "units", name)) as f:
            text = f.read()
        # ExecStart= must name an existing file: point it at the build's vkd
        text = text.replace("/usr/sbin/vkd", os.path.abspath(env.args.vkd))
        with open(os.path.join(units, name), "w") as f:
            f.write(text)
    p = subprocess.run([sa, "verify", "vkd.socket", "vkd.service"], cwd=units,
                       capture_output=True, text=True, timeout=WAIT)
    print(p.stdout + p.stderr, flush=True)
    check(p.returncode == 0 and not (p.stdout + p.stderr).strip(),
          f"systemd-analyze verify: rc {p.returncode}")
    with open(os.path.join(src, "units", "vkd.service")) as f:
        service = f.read()
    for want in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID"):
        check(want in service, f"vkd.service lacks {want}")



# ---------------------------------------------------------------- containment


def case_containment(env):
    """A hostile module misbehaves in each way a connection can; each costs its connection only.

    Three services run the hostile test module (test_modules.c), one per isolation mode, one
    worker each, beside good clients that echo throughout. Every misbehaviour must close only its
    own connection, leave every worker's pid as it was, and log one line naming the service and
    the cause; a storm is rate-limited; the service's own process dying restarts its worker, which
    then serves again; SIGTERM stops the daemon while a connection is in a runaway loop."""

    mods = env.args.test_module_dir
    modes = ("isolated", "unprivileged", "privileged")
    ports = {m: free_port() for m in modes}
    env.write_daemon({"DrainTimeoutSec": "3"})
    for m in modes:
        env.write_service(f"h-{m}", {"Module": f"{mods}/testmod_hostile.so",
                                     "Listen": f"127.0.0.1:{ports[m]}", "Isolation": m,
                                     "Workers": "1"})
    d = env.start()
    env.notify.wait("READY=1")
    before = sorted(workers_of(d, 3))

    stop = threading.Event()
    good = {"ok": 0, "bad": []}

    def good_client(m):
        n = 0
        while not stop.is_set() and n < 2000:
            try:
                echo_roundtrip(("127.0.0.1", ports[m]), b"good %s %d\n" % (m.encode(), n))
                good["ok"] += 1
            except (OSError, Fail) as e:
                good["bad"].append(f"{m}: {e}")
            n += 1

    threads = [threading.Thread(target=good_client, args=(m,)) for m in modes]
    for t in threads:
        t.start()

    def misbehave(m, cmd):
        s = connect(("127.0.0.1", ports[m]), timeout=10)
        s.sendall(b"hello\n" + cmd + b"\n")
        got = recv_until_closed(s)
        s.close()
        check(got.startswith(b"hello\n"), f"{m}: the line before {cmd!r} was not echoed: {got!r}")

    # (command, what the log line must say)
    cases = [
        (b"segv", r"ended: fault: SIGSEGV at 0x10 .*\(pc 0x[0-9a-f]+ in testmod_hostile\.so"),
        (b"loop", r"ended: CPU budget: CPU budget of \d+ ms exceeded"),
        # Ended where it cannot hold a lock of the allocator's: a kill inside malloc used to
        # leave the worker's allocator locked, and the next allocation hung the worker.
        (b"mloop", r"ended: CPU budget: CPU budget of \d+ ms exceeded .*\(pc 0x[0-9a-f]+ in "
                   r"testmod_hostile\.so"),
        (b"mloop", r"ended: CPU budget: CPU budget of \d+ ms exceeded .*\(pc 0x[0-9a-f]+ in "
                   r"testmod_hostile\.so"),
        (b"nomem", r"ended: heap full: heap full: 16777216 bytes needed"),
        (b"raise", r"ended by an uncaught error: the hostile module raised this \(errno 71, line"),
        (b"fd", r"ended: corrupt heap: corrupt descriptor number in its heap"),
        (b"ring", r"ended: corrupt heap: corrupt ring in its heap"),
        (b"size", r"ended: corrupt heap: corrupt ring in its heap"),
        (b"self", r"ended: fault: SIGSEGV at 0x"),
    ]
    try:
        for m in modes:
            for cmd, pattern in cases:
                mark = d.mark()
                misbehave(m, cmd)
                d.wait_log(rf"vkd\[\d+\]: h-{m}: connection from 127\.0\.0\.1:\d+ {pattern}", mark)
                log(f"{m}: {cmd.decode()} ended its connection and was logged")
            check(sorted(children(d.pid)) == before, f"{m}: a worker's pid changed")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    check(not good["bad"], f"good clients failed: {good['bad'][:3]}")
    check(good["ok"] > 0, "no good round trip")
    log(f"good clients: {good['ok']} round trips, none failed; worker pids unchanged")

    # A storm: 40 faults in a burst give at most 10 lines a second and a count of the rest.
    mark = d.mark()
    for _ in range(40):
        misbehave("isolated", b"segv")
    echo_roundtrip(("127.0.0.1", ports["isolated"]))
    with d.cond:
        lines = [l for l in d.lines[mark:] if l and "h-isolated: connection from" in l]
    check(10 <= len(lines) < 40, f"a storm of 40 faults logged {len(lines)} lines")
    d.wait_log(r"h-isolated: \d+ more abnormal process ends in the last second were not logged",
               mark)

    # The service's own process dies: its worker says so and is restarted, then serves.
    mark = d.mark()
    victim = [p for p in children(d.pid)]
    misbehave("isolated", b"store")
    d.wait_log(r"h-isolated: the service's own process ended \(fault: SIGSEGV at 0x18", mark)
    d.wait_log(r"h-isolated: worker \d \(pid \d+\) exited with status 1; restarting it in", mark)
    d.wait_log(r"h-isolated: worker \d ready", mark)
    now = workers_of(d, 3)
    check(len(set(now) - set(victim)) == 1, "not exactly one worker was restarted")
    echo_roundtrip(("127.0.0.1", ports["isolated"]), b"served again\n")
    log("the service process's death restarted its worker, which serves again")

    # SIGTERM while a connection spins: the daemon still stops, exit 0.
    s = connect(("127.0.0.1", ports["privileged"]), timeout=10)
    s.sendall(b"loop\n")
    d.signal(signal.SIGTERM)
    check(d.wait_exit() == 0, "SIGTERM with a runaway connection: exit status not 0")
    s.close()
    log("SIGTERM stopped the daemon while a connection was in a runaway loop")


def case_one_worker(env):
    """Workers=auto used to give the redis service one store per worker: a key SET on one
    connection was missing on about half of the others."""
    port = free_port()
    env.write_daemon({"Workers": "2"})
    env.write_service("kv", {"Module": "redis", "Listen": f"127.0.0.1:{port}"},
                      {"AppendOnly": "no", "Dir": env.tmp})
    rc, out = env.run("--check-config")
    check(rc == 0, f"--check-config of a redis service without Workers=: rc {rc}")
    d = env.start()
    env.notify.wait("READY=1")
    workers_of(d, 1)

    def command(s, *args):
        s.sendall(b"*%d\r\n" % len(args) +
                  b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        got = b""
        while not got.endswith(b"\r\n"):
            chunk = s.recv(4096)
            check(chunk, "the server closed the connection")
            got += chunk
        return got

    conns = [connect(("127.0.0.1", port), timeout=10) for _ in range(64)]
    try:
        check(command(conns[0], b"SET", b"k", b"v") == b"+OK\r\n", "SET")
        seen = sum(command(s, b"GET", b"k") == b"$1\r\nv\r\n" for s in conns)
        check(seen == 64, f"{seen} of 64 connections see the key another SET")
    finally:
        for s in conns:
            s.close()
    log("one worker for redis under Workers=2: 64 of 64 connections see one keyspace")
    stop_daemon(env, d)

    path = env.write_service("kv", {"Module": "redis", "Listen": f"127.0.0.1:{port}",
                                    "Workers": "2"}, {"AppendOnly": "no", "Dir": env.tmp})
    with open(path) as f:
        line = next(i for i, l in enumerate(f, 1) if l.startswith("Workers="))
    rc, out = env.run("--check-config")
    check(rc != 0 and re.search(rf"kv\.conf:{line}: Workers: 2: module redis keeps its state "
                                r"in one process, so it runs in one worker only", out),
          f"Workers=2 for redis: rc {rc}, no file:line error")
    log("Workers=2 for redis is refused with its file and line")


CASES = {
    "one_worker": case_one_worker,
    "containment": case_containment,
    "standalone": case_standalone,
    "journal_log": case_journal_log,
    "nofile": case_nofile,
    "check_config": case_check_config,
    "start_errors": case_start_errors,
    "syscall_filter": case_syscall_filter,
    "socket_activation": case_socket_activation,
    "reload": case_reload,
    "check_all_errors": case_check_all_errors,
    "reload_all_errors": case_reload_all_errors,
    "restart": case_restart,
    "stop": case_stop,
    "idle": case_idle,
    "privileges": case_privileges,
    "units": case_units,
}

if __name__ == "__main__":
    main(CASES)
