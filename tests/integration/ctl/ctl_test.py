#!/usr/bin/env python3
"""Integration tests of the control socket and vkdctl: the real daemon, real clients, the real
vkdctl binary. One case per ctest test (see ctl.cmake); the helpers are the supervisor tests'
(../supervisor/vkdtest.py).

  status    counters match what the test did (connections, bytes, requests), a NULL
            dereference shows in faults, a worker killed with SIGKILL shows its restart and
            no count is lost; --json checked field by field; exit codes 0, 3 and 4
  commands  reload (good: new generation; broken: every file:line error, exit 1, the old
            config keeps serving), restart SERVICE (new workers, counts kept), stop
  access    (root only) a peer running as nobody: refused at the socket without the group;
            with ControlSocketGroup= it reads status but cannot reload, restart or stop
  check     `vkdctl check` (ready) and `check live`: an Optional=yes service that could not load
            is not ready (1) though vkd is live (0); ready (0) once it is gone; a worker
            crash storm is not ready; a drain is not ready yet live; no daemon is 7 for both
  metrics   `vkdctl metrics` after traffic: counters moved by what was sent, a cumulative
            latency histogram; `promtool check metrics` and `check rules` (docs/examples)
            pass; a real Prometheus scrapes it (through a test-side HTTP bridge) every second
            and its query API answers the counter and its rate
  robust    garbage, an oversized line, a silent client, a client that never reads, one
            client too many: each is answered or closed, the daemon keeps serving and answering

Figures reach the supervisor on the workers' tick (every 200 ms) and have no event of their
own, so the tests poll `vkdctl status --json` until the expected values arrive, with a deadline.
"""

import json
import os
import pwd
import re
import grp
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "supervisor"))

from vkdtest import (WAIT, Fail, check, connect, echo_roundtrip, free_port,  # noqa: E402
                     log, main, recv_exactly, skip, stop_daemon, wait_until)
from vkdproc import kill_tree, spawn  # noqa: E402

ARGS = {}


def vkdctl(env, *args, user=None, timeout=WAIT, socket_path=None):
    """Runs vkdctl against env's daemon; returns (rc, stdout, stderr)."""
    argv = [ARGS["vkdctl"], "--socket", socket_path or ctl_path(env), *args]
    if user:
        argv = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups"] + argv
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    log(f"vkdctl {' '.join(args)} -> {p.returncode}")
    for line in (p.stderr.splitlines() + p.stdout.splitlines())[:60]:
        print(f"  ctl| {line}", flush=True)
    return p.returncode, p.stdout, p.stderr


def ctl_path(env):
    return os.path.join(env.tmp, "ctl.sock")


def status(env, *names):
    rc, out, _ = vkdctl(env, "status", "--json", *names)
    check(rc in (0, 3, 4), f"status --json: rc {rc}")
    return json.loads(out)


def service(st, name):
    for s in st["services"]:
        if s["name"] == name:
            return s
    raise Fail(f"no service {name} in status")


def wait_status(env, what, pred, timeout=WAIT):
    """Polls status until pred(status) is true; returns that status."""
    last = {}

    def probe():
        last["st"] = status(env)
        return last["st"] if pred(last["st"]) else None

    try:
        return wait_until(what, probe, timeout=timeout, step=0.1)
    except Fail:
        print(json.dumps(last.get("st"), indent=1)[:4000], flush=True)
        raise


def lines_service(env, name, port, workers=2, **keys):
    k = {"Module": ARGS["ctl_module"], "Listen": f"127.0.0.1:{port}", "Workers": str(workers)}
    k.update(keys)
    env.write_service(name, k)


def lines_session(addr, lines):
    """One connection sending each line and reading its echo; returns bytes sent."""
    sent = 0
    with connect(addr) as s:
        for line in lines:
            s.sendall(line)
            check(recv_exactly(s, len(line)) == line, "line echo mismatch")
            sent += len(line)
    return sent


def raw_request(path, obj_or_bytes, timeout=10):
    """One request on a fresh control connection; returns the parsed reply."""
    data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else \
        (json.dumps(obj_or_bytes) + "\n").encode()
    with connect(path, timeout) as s:
        s.sendall(data)
        return json.loads(read_line(s))


def closed(s):
    """Whether the peer closed s (end of stream; a reset when it left our bytes unread)."""
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


def read_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            raise Fail(f"control connection closed after {buf[:200]!r}")
        buf += chunk
    return buf


# ---------------------------------------------------------------- status


U64 = int


def check_fields(obj, spec, where):
    """spec: key -> type or (type, value) or a callable(value) -> bool."""
    for key, want in spec.items():
        check(key in obj, f"{where}: no field {key!r} in {sorted(obj)}")
        v = obj[key]
        if isinstance(want, tuple):
            t, val = want
            check(isinstance(v, t) and v == val, f"{where}.{key} = {v!r}, want {val!r}")
        elif isinstance(want, type):
            check(isinstance(v, want) and not (want is int and isinstance(v, bool)),
                  f"{where}.{key} = {v!r}, want a {want.__name__}")
        else:
            check(want(v), f"{where}.{key} = {v!r} is not as expected")


def case_status(env):
    p_lines, p_echo = free_port(), free_port()
    lines_service(env, "lines", p_lines)
    env.write_service("echo", {"Listen": f"127.0.0.1:{p_echo}", "Isolation": "privileged"})
    env.write_service("broken", {"Listen": f"127.0.0.1:{free_port()}", "Module": "nosuchmodule",
                                 "Optional": "yes"})
    # A module with a service process of its own (test_modules.c: its process faults on "store").
    p_store = free_port()
    env.write_service("store", {"Module": ARGS["hostile_module"],
                                "Listen": f"127.0.0.1:{p_store}", "Workers": "1"})
    d = env.start()
    env.notify.wait("READY=1")

    # N connections x 3 lines each on `lines`: N accepted, 3N requests, every byte counted
    n = 20
    sent = 0
    for i in range(n):
        sent += lines_session(("127.0.0.1", p_lines),
                              [b"line %d.%d\n" % (i, k) for k in range(3)])
    # echo: bytes and connections, no requests
    echo_sent = 0
    for i in range(5):
        payload = b"echo payload %d\n" % i
        echo_roundtrip(("127.0.0.1", p_echo), payload)
        echo_sent += len(payload)

    st = wait_status(env, "lines and echo counted",
                     lambda st: service(st, "lines")["counters"]["closed"] == n and
                     service(st, "echo")["counters"]["closed"] == 5)
    c = dict(service(st, "lines")["counters"])
    # Isolated (the default): at least one protection change a connection but the first of each
    # worker; privileged echo: none.
    # (Sequential connections reuse one open heap and may cost none: see the store below.)
    check(isinstance(c.pop("protects"), int), "lines: no protection count")
    check(service(st, "echo")["counters"]["protects"] == 0, "privileged echo changed protections")
    want = {"accepted": n, "active": 0, "closed": n, "requests": 3 * n, "bytes_in": sent,
            "bytes_out": sent, "errors": 0, "faults": 0, "cpu_kills": 0, "nomem": 0,
            "timeouts": 0, "service_procs": 0, "service_ends": 0}
    check(c == want, f"lines counters {c}, want {want}")
    c = service(st, "echo")["counters"]
    check(c["accepted"] == 5 and c["requests"] == 0 and c["bytes_in"] == echo_sent and
          c["bytes_out"] == echo_sent, f"echo counters {c}")

    # --json, field by field
    check_fields(st, {"ok": (bool, True), "daemon": dict, "services": list}, "status")
    check_fields(st["daemon"], {
        "pid": (int, d.pid), "version": str, "state": (str, "running"), "uptime_ms": int,
        "started_at": lambda v: isinstance(v, int) and abs(v - time.time()) < 3600,
        "generation": (int, 1), "workers": (int, 5), "control_socket": (str, ctl_path(env)),
        "control_clients": lambda v: isinstance(v, int) and 1 <= v <= 64,
        "memory": dict}, "daemon")
    check_fields(st["daemon"]["memory"], {"rss": lambda v: isinstance(v, int) and v > 0,
                                          "allocator": str}, "daemon.memory")
    if st["daemon"]["memory"]["allocator"] == "jemalloc":
        check_fields(st["daemon"]["memory"], {"allocated": int, "resident": int},
                     "daemon.memory")
    check([s["name"] for s in st["services"]] == ["broken", "echo", "lines", "store"],
          f"services in order: {[s['name'] for s in st['services']]}")
    s = service(st, "lines")
    check_fields(s, {
        "name": (str, "lines"), "state": (str, "running"), "cause": lambda v: v is None,
        "generation": (int, 1), "config": (str, os.path.join(env.conf_dir, "lines.conf")),
        "listeners": (list, [f"127.0.0.1:{p_lines}"]), "module": dict,
        "isolation": (str, "isolated"), "workers": list, "workers_configured": (int, 2),
        "workers_ready": (int, 2), "restarts": (int, 0), "counters": dict, "latency_us": dict,
        "memory": dict}, "lines")
    check_fields(s["module"], {"name": (str, "ctltest"), "version": (str, "1.2.3"),
                               "file": (str, ARGS["ctl_module"])}, "lines.module")
    check(len(s["workers"]) == 2, f"lines workers: {s['workers']}")
    for w in s["workers"]:
        check_fields(w, {"index": int, "pid": lambda v: isinstance(v, int) and v > 0,
                         "state": (str, "ready"), "generation": (int, 1), "uptime_ms": int,
                         "restarts": (int, 0), "rss": lambda v: isinstance(v, int) and v > 0},
                     "lines.worker")
    check(sorted(w["index"] for w in s["workers"]) == [0, 1], "worker indexes")
    lat = s["latency_us"]
    check_fields(lat, {"p50": int, "p90": int, "p99": int, "p999": int,
                       "histogram": lambda v: isinstance(v, list) and len(v) == 32},
                 "lines.latency_us")
    check(sum(lat["histogram"]) == 3 * n, f"histogram holds {sum(lat['histogram'])} requests")
    check(0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"],
          f"quantiles not ordered: {lat}")
    check(s["memory"]["rss"] == sum(w["rss"] for w in s["workers"]), "service rss = workers'")
    b = service(st, "broken")
    check(b["state"] == "failed" and isinstance(b["cause"], str) and b["cause"],
          f"broken: {b['state']} {b['cause']!r}")

    rc, out, _ = vkdctl(env, "status", "echo")
    check(rc == 0 and "Isolation: 0 protection change(s)" in out, f"status echo: {out}")

    # A service process is shown apart: it is no connection, and its death is counted.
    c = service(st, "store")["counters"]
    check(c["service_procs"] == 1 and c["service_ends"] == 0 and c["active"] == 0 and
          c["accepted"] == 0 and c["closed"] == 0, f"store before any connection: {c}")
    rc, out, _ = vkdctl(env, "status", "store")
    check(rc == 0 and "Service: 1 process(es) running, 0 ended unasked" in out and
          "0 accepted, 0 active" in out, f"status store: rc {rc}")
    mark = d.mark()
    with connect(("127.0.0.1", p_store)) as s:
        s.sendall(b"store\n")
        s.settimeout(WAIT)
        while s.recv(4096):
            pass
    d.wait_log(r"store: worker \d ready", mark)
    st = wait_status(env, "the service process's end counted",
                     lambda st: service(st, "store")["counters"]["service_ends"] == 1 and
                     service(st, "store")["counters"]["service_procs"] == 1 and
                     service(st, "store")["workers_ready"] == 1)
    s = service(st, "store")
    c = s["counters"]
    # (The connection that was open went with its worker: counted accepted, not closed.)
    check(s["restarts"] == 1 and c["active"] == 0 and c["accepted"] == 1 and
          c["errors"] == 0 and c["faults"] == 0, f"store after its process died: "
          f"restarts {s['restarts']}, {c}")
    rc, out, _ = vkdctl(env, "status", "store")
    check("Service: 1 process(es) running, 1 ended unasked" in out, "status store after")

    # Two isolated connections taking turns in one worker: each turn closes one heap and opens
    # the other, two protection changes at least.
    before = c["protects"]
    with connect(("127.0.0.1", p_store)) as a, connect(("127.0.0.1", p_store)) as b:
        for i in range(4):
            for x in (a, b):
                x.sendall(b"turn %d\n" % i)
                check(recv_exactly(x, 7) == b"turn %d\n" % i, "store: no echo of a turn")
    st = wait_status(env, "the turns' protection changes counted",
                     lambda st: service(st, "store")["counters"]["protects"] >= before + 14)
    rc, out, _ = vkdctl(env, "status", "store")
    check(rc == 0 and re.search(r"Isolation: \d+ protection change\(s\)", out),
          f"status store: {out}")

    # exit codes: 0 running, 3 not running (a failed service), 4 unknown service
    rc, out, _ = vkdctl(env, "status")
    check(rc == 0 and "lines - running" in out and "ctltest 1.2.3" in out, f"status: rc {rc}")
    check("\033[" not in out, "colour codes when stdout is not a terminal")
    check(vkdctl(env, "status", "lines", "echo")[0] == 0, "status lines echo: want 0")
    check(vkdctl(env, "status", "broken")[0] == 3, "status of a failed service: want 3")
    rc, _, err = vkdctl(env, "status", "nosuch")
    check(rc == 4 and "nosuch" in err, f"status of an unknown service: rc {rc}, want 4")
    st = status(env, "lines", "nosuch")
    check([s["name"] for s in st["services"]] == ["lines"] and
          st["unknown_services"] == ["nosuch"], "status with names filters")

    # a connection that dereferences NULL: counted as a fault and an error; the worker lives
    with connect(("127.0.0.1", p_lines)) as s:
        s.sendall(b"crash\n")
        s.settimeout(WAIT)
        check(s.recv(10) == b"", "the faulting connection was not closed")
    wait_status(env, "the fault counted",
                lambda st: service(st, "lines")["counters"]["faults"] == 1)
    st = status(env)
    c = service(st, "lines")["counters"]
    check(c["errors"] == 1 and c["accepted"] == n + 1 and c["requests"] == 3 * n,
          f"after the fault: {c}")
    check(service(st, "lines")["restarts"] == 0, "a fault in a connection restarted a worker")
    lines_session(("127.0.0.1", p_lines), [b"after the fault\n"])

    # a worker killed with SIGKILL: its restart shows, and no count is lost
    wait_status(env, "all counted", lambda st: service(st, "lines")["counters"]["closed"] ==
                n + 2)
    before = service(status(env), "lines")
    victim = before["workers"][0]["pid"]
    mark = d.mark()
    os.kill(victim, signal.SIGKILL)
    d.wait_log(rf"lines: worker \d \(pid {victim}\) killed by signal 9", mark)
    d.wait_log(r"lines: worker \d ready", mark)
    st = wait_status(env, "the restart shown", lambda st: service(st, "lines")["restarts"] == 1
                     and service(st, "lines")["workers_ready"] == 2)
    s = service(st, "lines")
    pids = [w["pid"] for w in s["workers"]]
    check(victim not in pids, f"killed worker {victim} still listed: {pids}")
    check(sorted(w["restarts"] for w in s["workers"]) == [0, 1], "per-worker restarts")
    c, c0 = s["counters"], before["counters"]
    for k in ("accepted", "closed", "requests", "bytes_in", "bytes_out", "errors", "faults"):
        check(c[k] == c0[k], f"{k}: {c0[k]} before the kill, {c[k]} after")
    check(sum(s["latency_us"]["histogram"]) == c["requests"], "histogram lost requests")

    stop_daemon(env, d)
    rc, _, err = vkdctl(env, "status")
    check(rc == 3 and "not running" in err, f"status without a daemon: rc {rc}, want 3")
    check(vkdctl(env, "reload")[0] == 7, "reload without a daemon: want 7")


# ---------------------------------------------------------------- commands


def case_commands(env):
    p_lines = free_port()
    lines_service(env, "lines", p_lines)
    d = env.start()
    env.notify.wait("READY=1")
    addr = ("127.0.0.1", p_lines)
    for i in range(10):
        lines_session(addr, [b"a\n", b"b\n"])
    wait_status(env, "counted", lambda st: service(st, "lines")["counters"]["requests"] == 20)

    # a good reload: a second service appears, a new generation runs, counts are kept
    p_echo = free_port()
    env.write_service("echo", {"Listen": f"127.0.0.1:{p_echo}"})
    rc, out, _ = vkdctl(env, "reload")
    check(rc == 0, f"good reload: rc {rc}")
    st = status(env)
    check(st["daemon"]["generation"] == 2, f"generation {st['daemon']['generation']}, want 2")
    check(service(st, "echo")["state"] == "running", "the new service is not running")
    check(service(st, "lines")["counters"]["requests"] == 20, "a reload lost counts")
    echo_roundtrip(("127.0.0.1", p_echo))

    # a broken reload: every error with file:line, exit 1, the old generation keeps serving
    env.write_service("echo", {"Listen": f"127.0.0.1:{p_echo}", "Colour": "blue",
                               "HeapSize": "12Q"})
    rc, out, err = vkdctl(env, "reload")
    check(rc == 1, f"broken reload: rc {rc}, want 1")
    check(any(l.endswith("echo.conf") is False and "echo.conf:" in l and ": Colour: " in l
              for l in err.splitlines()), "no file:line: Colour: error")
    check(any("echo.conf:" in l and ": HeapSize: " in l for l in err.splitlines()),
          "no file:line: HeapSize: error")
    rc, out, _ = vkdctl(env, "--json", "reload")
    rep = json.loads(out)
    check(rc == 1 and rep["ok"] is False and isinstance(rep["errors"], list) and
          len(rep["errors"]) >= 2, f"broken reload --json: {rep}")
    st = status(env)
    check(st["daemon"]["generation"] == 2, "a broken reload replaced the generation")
    echo_roundtrip(("127.0.0.1", p_echo))
    lines_session(addr, [b"still\n"])
    env.write_service("echo", {"Listen": f"127.0.0.1:{p_echo}"})

    # restart one service: new workers, the old ones drain, counts are kept
    st = wait_status(env, "counted", lambda st: service(st, "lines")["counters"]["requests"] ==
                     21)
    old = {w["pid"] for w in service(st, "lines")["workers"]}
    echo_pids = {w["pid"] for w in service(st, "echo")["workers"]}
    with connect(addr) as held:  # a connection open across the restart keeps working
        held.sendall(b"held\n")
        check(recv_exactly(held, 5) == b"held\n", "no echo")
        rc, _, _ = vkdctl(env, "restart", "lines")
        check(rc == 0, f"restart lines: rc {rc}")
        st = status(env)
        s = service(st, "lines")
        ready = {w["pid"] for w in s["workers"] if w["state"] == "ready"}
        check(len(ready) == 2 and not (ready & old), f"after restart: {s['workers']}")
        check({w["pid"] for w in service(st, "echo")["workers"]} == echo_pids,
              "restart lines touched echo")
        held.sendall(b"held again\n")
        check(recv_exactly(held, 11) == b"held again\n", "the held connection broke")
    lines_session(addr, [b"new worker\n"])
    st = wait_status(env, "counts after restart",
                     lambda st: service(st, "lines")["counters"]["requests"] == 24 and
                     all(w["pid"] not in old for w in service(st, "lines")["workers"]))
    check(service(st, "lines")["restarts"] == 2, "restarts after restart SERVICE")
    rc, _, err = vkdctl(env, "restart", "nosuch")
    check(rc == 4, f"restart of an unknown service: rc {rc}, want 4")

    # stop: vkdctl waits until the daemon is gone
    rc, _, _ = vkdctl(env, "stop")
    check(rc == 0, f"stop: rc {rc}")
    rc = d.wait_exit()
    check(rc == 0, f"vkd exited {rc} after vkdctl stop")
    check(not os.path.exists(ctl_path(env)), "control socket left behind")
    check(vkdctl(env, "status")[0] == 3, "status after stop: want 3")


# ---------------------------------------------------------------- access


def case_access(env):
    if os.geteuid() != 0:
        skip("ctl_access/not-root", "not root: cannot run vkdctl as another user")
    nobody = pwd.getpwnam("nobody").pw_uid
    nogroup = grp.getgrnam("nogroup").gr_gid
    # nobody must be able to reach and run vkdctl: from a private build directory (a clone in
    # root's home), a copy in the test's own directory (0755) is used, so this never skips.
    def runs_as_nobody(exe):
        return subprocess.run(["setpriv", f"--reuid={nobody}", f"--regid={nogroup}",
                               "--clear-groups", exe, "--help"],
                              capture_output=True).returncode == 0
    if not runs_as_nobody(ARGS["vkdctl"]):
        copy = os.path.join(env.tmp, "vkdctl")
        shutil.copy(ARGS["vkdctl"], copy)
        os.chmod(copy, 0o755)
        log(f"nobody cannot run {ARGS['vkdctl']} (a private build directory?): using {copy}")
        ARGS["vkdctl"] = copy
        check(runs_as_nobody(copy), f"nobody cannot run {copy} either")
    port = free_port()
    lines_service(env, "lines", port, workers=1)
    who = (nobody, nogroup)

    # not in the socket's group: the socket's mode 0660 refuses the connection
    d = env.start()
    env.notify.wait("READY=1")
    mode = os.stat(ctl_path(env)).st_mode & 0o777
    check(mode == 0o660, f"control socket mode {oct(mode)}, want 0o660")
    rc, _, err = vkdctl(env, "status", user=who)
    check(rc == 4 and "permission denied" in err, f"nobody without the group: rc {rc}")
    # and the daemon refuses it too when the file mode would let it in
    os.chmod(ctl_path(env), 0o666)
    rc, _, err = vkdctl(env, "status", user=who)
    check(rc == 4 and "permission denied" in err, f"nobody, socket 0666: rc {rc}")
    rc, _, err = vkdctl(env, "stop", user=who)
    check(rc == 4 and "permission denied" in err, f"nobody stop, socket 0666: rc {rc}")
    stop_daemon(env, d)

    # in ControlSocketGroup=: reads status, may not change anything
    env.write_daemon({"ControlSocketGroup": "nogroup"})
    d = env.start()
    env.notify.wait("READY=1")
    check(os.stat(ctl_path(env)).st_gid == nogroup, "control socket not owned by nogroup")
    rc, out, _ = vkdctl(env, "status", "--json", user=who)
    check(rc == 0 and json.loads(out)["services"][0]["name"] == "lines",
          f"status as a group member: rc {rc}")
    check(vkdctl(env, "services", user=who)[0] == 0, "services as a group member")
    mark = d.mark()
    for cmd in (["reload"], ["stop"], ["restart", "lines"]):
        rc, _, err = vkdctl(env, *cmd, user=who)
        check(rc == 4 and "permission denied" in err, f"{cmd} as nobody: rc {rc}, want 4")
    st = status(env)
    check(st["daemon"]["state"] == "running" and st["daemon"]["generation"] == 1 and
          service(st, "lines")["restarts"] == 0, "a refused command half-happened")
    check(not any("reloading" in x or "stopping" in x or "restarting" in x
                  for x in d.log_lines()[mark:]), "a refused command left a trace in the log")
    lines_session(("127.0.0.1", port), [b"served\n"])
    stop_daemon(env, d)


# ---------------------------------------------------------------- robustness


def case_robust(env):
    port = free_port()
    lines_service(env, "lines", port, workers=1)
    d = env.start()
    env.notify.wait("READY=1")
    path = ctl_path(env)

    def alive():
        lines_session(("127.0.0.1", port), [b"ping\n"])
        check(vkdctl(env, "status")[0] == 0, "status stopped answering")

    # garbage and protocol errors: an error reply each, on the same connection
    with connect(path) as s:
        for bad, want in [(b"garbage\n", "not a JSON object"),
                          (b"[1,2,3]\n", "one JSON object"),
                          (b'{"command": 5}\n', "command"),
                          (b'{"command":"frobnicate","id":"x1"}\n', "unknown command"),
                          (b'{"command":"status"} trailing\n', "one JSON object"),
                          (b'{"command":"status","services":"lines"}\n', "array"),
                          (b'{"command":"restart"}\n', "service"),
                          (b"\x00\xff\xfe\n", "")]:
            s.sendall(bad)
            rep = json.loads(read_line(s))
            check(rep["ok"] is False and want in rep["error"], f"{bad!r}: {rep}")
        rep = json.loads(read_line(s) if s.sendall(b'{"command":"status","id":42}\n') is None
                         else b"")
        check(rep["ok"] is True and rep["id"] == 42, "status after garbage on one connection")
    alive()

    # a line longer than the limit: an error reply, then the connection is closed
    with connect(path) as s:
        try:
            s.sendall(b"x" * 70000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        rep = json.loads(read_line(s))
        check(rep["ok"] is False and "longer than" in rep["error"], f"oversized: {rep}")
        s.settimeout(WAIT)
        check(closed(s), "oversized line: connection not closed")
    alive()

    # a silent client does not hold anything up, and is closed after the timeout (10 s)
    silent = connect(path)
    t0 = time.monotonic()
    alive()
    # a client that never reads: requests pipelined, replies pile up in its socket
    lazy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.connect(path)
    lazy.setblocking(False)
    try:
        lazy.send(b'{"command":"status"}\n' * 2000)
    except BlockingIOError:
        pass
    alive()
    # one client too many: told so, the others unaffected
    many = [connect(path) for _ in range(62)]  # + silent + lazy = 64
    extra = connect(path)
    rep = json.loads(read_line(extra))
    check(rep["ok"] is False and "too many" in rep["error"], f"65th client: {rep}")
    extra.close()
    for s in many:
        s.close()
    alive()
    silent.settimeout(20)
    got = silent.recv(4096)
    waited = time.monotonic() - t0
    check(b"timed out" in got, f"silent client got {got!r}")
    check(9 <= waited <= 20, f"silent client closed after {waited:.1f} s, want ~10 s")
    check(closed(silent), "silent client not closed")
    silent.close()
    # the lazy one is closed once it made no progress for the timeout
    lazy.setblocking(True)
    lazy.settimeout(20)
    total = 0
    while True:
        try:
            chunk = lazy.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        total += len(chunk)
    check(total > 0, "the lazy client got nothing")
    lazy.close()
    alive()
    check(d.proc.poll() is None, "vkd died")
    stop_daemon(env, d)


# ---------------------------------------------------------------- slots


def proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return stat[stat.rindex(")") + 2]


def case_slots(env):
    """Control slots come back as soon as their clients are gone: closed connections are noticed
    before a new one is turned away, and clients that leave abruptly (mid-request, before
    their reply, before being accepted) leave nothing held; status counts the slots in use."""
    lines_service(env, "lines", free_port(), workers=1)
    d = env.start()
    env.notify.wait("READY=1")
    path = ctl_path(env)

    def in_use():
        rep = raw_request(path, {"command": "status"})
        check(rep["ok"] is True, f"status: {rep}")
        return rep["daemon"]["control_clients"]

    def freeze():  # the daemon stopped for real, not just signalled, so it cannot look
        os.kill(d.pid, signal.SIGSTOP)
        wait_until("vkd stopped", lambda: proc_state(d.pid) == "T", step=0.001)

    held = connect(path)  # the one other client that stays open throughout
    check(in_use() == 2, "status does not count the held client and itself")

    # Every slot taken, then all but the held one closed while the daemon cannot look, and a new
    # client waiting: when the daemon looks again it must see the hangups before turning the new
    # client away (it once accepted first, and answered "too many control clients").
    for rnd in range(5):
        many = [connect(path) for _ in range(63)]  # + held = 64
        with connect(path) as extra:
            rep = json.loads(read_line(extra))
        check(rep["ok"] is False and "too many" in rep["error"], f"65th client: {rep}")
        freeze()
        try:
            for s in many:
                s.close()
            late = connect(path)  # in the listen backlog until the daemon runs again
            late.sendall(b'{"command":"status"}\n')
        finally:
            os.kill(d.pid, signal.SIGCONT)
        with late:
            rep = json.loads(read_line(late))
        check(rep["ok"] is True, f"round {rnd}: a client after 63 hangups was refused: {rep}")
        check(rep["daemon"]["control_clients"] == 2,
              f"round {rnd}: {rep['daemon']['control_clients']} slots in use, want 2")

    # A burst of clients that connect and leave before the daemon accepts any: it accepts them
    # in one go, and the dead ones must not take the slots a live client in the burst needs.
    filler = connect(path)
    wait_until("the filler client accepted", lambda: in_use() == 3)
    freeze()
    try:
        for _ in range(62):  # + held + filler = 64
            connect(path).close()
        late = connect(path)
        late.sendall(b'{"command":"status"}\n')
    finally:
        os.kill(d.pid, signal.SIGCONT)
    with late:
        rep = json.loads(read_line(late))
    check(rep["ok"] is True, f"a live client in a burst of 62 dead ones was refused: {rep}")
    filler.close()

    # Clients that leave abruptly, many times over the limit.
    partial = b'{"command":"stat'
    def connect_when_taken():
        # a burst can fill the listen backlog: the client waits, as vkdctl's connect would
        deadline = time.monotonic() + WAIT
        while True:
            try:
                return connect(path)
            except BlockingIOError:
                check(time.monotonic() < deadline, "the control socket's backlog stays full")
                time.sleep(0.005)

    for i in range(200):
        s = connect_when_taken()
        kind = i % 4
        if kind == 1:
            s.sendall(b'{"command":"status"}\n')  # and never reads the reply
        elif kind == 2:
            s.sendall(partial)  # half a request
        elif kind == 3:
            s.sendall(b'{"command":"status"}\n' * 50)  # pipelined, unread
        s.close()
    wait_until("every abrupt client's slot back", lambda: in_use() == 2, timeout=WAIT)

    def alone():  # the last in_use() client's hangup may be seen just after held's request
        held.sendall(b'{"command":"status"}\n')
        rep = json.loads(read_line(held))
        check(rep["ok"] is True, f"the held client: {rep}")
        return rep["daemon"]["control_clients"] == 1
    wait_until("the held client alone on the control socket", alone)
    held.close()
    stop_daemon(env, d)


# ---------------------------------------------------------------- check


# ---------------------------------------------------------------- metrics


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')


def parse_metrics(text):
    """The samples of a Prometheus text exposition: {(name, frozenset(labels)): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m, f"not a sample line: {line!r}")
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        key = (m.group(1), labels)
        check(key not in out, f"duplicate series {line!r}")
        out[key] = float(m.group(3))
    return out


def sample(ms, name, **labels):
    key = (name, frozenset(labels.items()))
    check(key in ms, f"no sample {name}{labels}")
    return ms[key]


def need_tool(name):
    path = shutil.which(name)
    if not path:
        skip(f"ctl_metrics/no-{name}", f"{name} not found (Debian package prometheus)")
    return path


def http_get(url, timeout=5):
    import urllib.request
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def metrics_bridge(env):
    """An HTTP endpoint on a free port serving `vkdctl metrics` fresh on each GET /metrics (the
    way node_exporter's textfile collector or an exec exporter would). Returns (server, port)."""
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            p = subprocess.run([ARGS["vkdctl"], "--socket", ctl_path(env), "metrics"],
                               capture_output=True, timeout=WAIT)
            ok = self.path == "/metrics" and p.returncode == 0
            self.send_response(200 if ok else 500)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(p.stdout if ok else p.stderr)

        def log_message(self, *a):
            pass

    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, port


def case_metrics(env):
    promtool, prometheus = need_tool("promtool"), need_tool("prometheus")
    p_lines, p_echo = free_port(), free_port()
    lines_service(env, "lines", p_lines)
    env.write_service("echo", {"Listen": f"127.0.0.1:{p_echo}"})
    env.start()
    env.notify.wait("READY=1")

    n = 12
    sent = 0
    for i in range(n):
        sent += lines_session(("127.0.0.1", p_lines),
                              [b"line %d.%d\n" % (i, k) for k in range(3)])
    wait_status(env, "lines counted", lambda st: service(st, "lines")["counters"]["closed"] == n)

    rc, out, _ = vkdctl(env, "metrics")
    check(rc == 0, f"vkdctl metrics: rc {rc}")
    ms = parse_metrics(out)
    for name, want in [("vkd_connections_accepted_total", n), ("vkd_connections_closed_total", n),
                       ("vkd_connections_active", 0), ("vkd_requests_total", 3 * n),
                       ("vkd_received_bytes_total", sent), ("vkd_sent_bytes_total", sent),
                       ("vkd_connection_errors_total", 0), ("vkd_faults_total", 0),
                       ("vkd_cpu_budget_kills_total", 0), ("vkd_workers_configured", 2),
                       ("vkd_workers_ready", 2), ("vkd_worker_restarts_total", 0),
                       ("vkd_request_duration_seconds_count", 3 * n)]:
        got = sample(ms, name, service="lines")
        check(got == want, f"{name}{{service=lines}} = {got}, want {want}")
    check(sample(ms, "vkd_requests_total", service="echo") == 0, "echo has no requests")
    check(sample(ms, "vkd_config_generation") == 1, "generation 1")
    check(any(k[0] == "vkd_build_info" and v == 1 for k, v in ms.items()), "no vkd_build_info")
    # The histogram: cumulative, +Inf is the count, bounds in seconds rising from 1 us.
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in ms.items()
                     if k[0] == "vkd_request_duration_seconds_bucket" and
                     dict(k[1])["service"] == "lines")
    check(buckets[0][0] == 1e-06 and buckets[-1][0] == float("inf"), f"bounds {buckets[:2]}")
    check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), f"not cumulative {buckets}")
    check(buckets[-1][1] == 3 * n, f"+Inf bucket {buckets[-1]}")
    # _sum, in seconds, lies between the bounds its buckets give (each request in [le/2, le)).
    lo = hi = 0.0
    for (le, c), prev in zip(buckets[:-1], [(0, 0)] + buckets[:-2]):
        lo += (c - prev[1]) * (le / 2 if le > 1e-06 else 0)
        hi += (c - prev[1]) * le
    got = sample(ms, "vkd_request_duration_seconds_sum", service="lines")
    check(buckets[-1][1] == buckets[-2][1] and lo - 1e-6 <= got <= hi + 1e-6,
          f"_sum {got} not in [{lo}, {hi}]")
    rss = [v for k, v in ms.items() if k[0] == "vkd_worker_resident_memory_bytes" and
           dict(k[1])["service"] == "lines"]
    check(len(rss) == 2 and all(v > 0 for v in rss), f"worker rss {rss}")

    # A fault (a NULL dereference in a connection) and a worker killed: the error kinds and the
    # restart show, and every series stays unique (parse_metrics) after the restart.
    with connect(("127.0.0.1", p_lines)) as s:
        s.sendall(b"crash\n")
        s.settimeout(WAIT)
        check(s.recv(10) == b"", "the faulting connection was not closed")
    wait_status(env, "the fault counted",
                lambda st: service(st, "lines")["counters"]["faults"] == 1)
    victim = service(status(env), "lines")["workers"][0]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_status(env, "the restart shown", lambda st: service(st, "lines")["restarts"] == 1 and
                service(st, "lines")["workers_ready"] == 2)
    rc, out, _ = vkdctl(env, "metrics")
    check(rc == 0, f"vkdctl metrics: rc {rc}")
    ms = parse_metrics(out)
    for name, want in [("vkd_faults_total", 1), ("vkd_connection_errors_total", 1),
                       ("vkd_worker_restarts_total", 1), ("vkd_requests_total", 3 * n),
                       ("vkd_connections_accepted_total", n + 1)]:
        got = sample(ms, name, service="lines")
        check(got == want, f"after the fault and the kill: {name} = {got}, want {want}")

    p = subprocess.run([promtool, "check", "metrics"], input=out, capture_output=True, text=True,
                       timeout=WAIT)
    print(p.stdout + p.stderr, flush=True)
    check(p.returncode == 0, f"promtool check metrics: rc {p.returncode}")
    rules = os.path.join(env.args.source_dir, "docs", "examples", "vkd-alerts.yml")
    p = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True,
                       timeout=WAIT)
    print(p.stdout + p.stderr, flush=True)
    check(p.returncode == 0, f"promtool check rules: rc {p.returncode}")

    # A real Prometheus scrapes the figures (every second) and answers a query on them.
    srv, bridge = metrics_bridge(env)
    web = free_port()
    conf = os.path.join(env.tmp, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                f"rule_files: [{rules}]\n"
                "scrape_configs:\n  - job_name: vkd\n"
                f"    static_configs: [{{targets: ['127.0.0.1:{bridge}']}}]\n")
    prom = spawn([prometheus, f"--config.file={conf}",
                  f"--storage.tsdb.path={os.path.join(env.tmp, 'tsdb')}",
                  f"--web.listen-address=127.0.0.1:{web}"],
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=open(os.path.join(env.tmp, "prometheus.log"), "w"))
    try:
        def ready():
            check(prom.poll() is None, f"prometheus exited {prom.returncode}")
            try:
                return http_get(f"http://127.0.0.1:{web}/-/ready", 2)[0] == 200
            except OSError:
                return False
        wait_until("prometheus ready", ready, step=0.2)

        import urllib.parse

        def query(q):
            url = f"http://127.0.0.1:{web}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            res = json.loads(http_get(url)[1])
            check(res["status"] == "success", f"query {q}: {res}")
            return res["data"]["result"]

        def counted():
            r = query('vkd_requests_total{service="lines"}')
            return r and float(r[0]["value"][1]) == 3 * n
        wait_until("prometheus has vkd_requests_total", counted, step=0.5)

        # More requests: their rate shows (rate over 10 s: more than one scrape after them).
        for i in range(n):
            lines_session(("127.0.0.1", p_lines), [b"more %d\n" % i])

        def rising():
            r = query('rate(vkd_requests_total{service="lines"}[10s])')
            return r and float(r[0]["value"][1]) > 0
        wait_until("prometheus sees the request rate", rising, step=0.5)

        # The rate rises with the first scrape that saw any of them; a worker publishes every
        # 200 ms, so the rest may come a scrape later.
        def all_counted():
            r = query('vkd_requests_total{service="lines"}')
            return r and float(r[0]["value"][1]) == 4 * n
        wait_until("prometheus has every request after more", all_counted, step=0.5)
        log("prometheus scraped and answered")
    except Fail:
        with open(os.path.join(env.tmp, "prometheus.log")) as f:
            print(f.read()[-4000:], flush=True)
        raise
    finally:
        kill_tree(prom)
        srv.shutdown()


def check_verb(env, *args):
    rc, out, _ = vkdctl(env, "check", *args, timeout=15)
    return rc, out


def case_check(env):
    p_lines, p_echo = free_port(), free_port()
    lines_service(env, "lines", p_lines)
    env.write_service("echo", {"Listen": f"127.0.0.1:{p_echo}"})
    env.write_service("broken", {"Listen": f"127.0.0.1:{free_port()}", "Module": "nosuchmodule",
                                 "Optional": "yes"})
    d = env.start()
    env.notify.wait("READY=1")

    # `status` says running (exit 0) with a service failed; `check` does not
    check(vkdctl(env, "status")[0] == 0, "status: want 0")
    rc, out = check_verb(env)
    check(rc == 1 and "not ready: broken: failed" in out, f"check with broken: rc {rc}: {out}")
    rc, out = check_verb(env, "live")
    check(rc == 0 and out.startswith("live:"), f"check live with broken: rc {rc}: {out}")
    rc, out = check_verb(env, "--json")
    j = json.loads(out)
    check(rc == 1 and j["live"] is True and j["ready"] is False and
          any(r.startswith("broken: failed") for r in j["reasons"]), f"check --json: {out}")

    # without it every service serves with all its workers
    env.remove_service("broken")
    check(vkdctl(env, "reload")[0] == 0, "reload without broken")
    rc, out = check_verb(env, "ready")
    check(rc == 0 and out.startswith("ready: 2 service(s)"), f"check after reload: rc {rc}: {out}")

    # a crash storm on lines: not ready, whatever the worker that still serves
    for k in range(8):
        st = service(status(env), "lines")
        if st["state"] == "failed":
            break
        pids = [w["pid"] for w in st["workers"] if w["pid"]]
        if pids:
            m = d.mark()
            os.kill(pids[0], signal.SIGKILL)
            d.wait_log(r"lines: worker \d ready|lines: .*failed: more than 5", m)
    st = wait_status(env, "lines failed", lambda st: service(st, "lines")["state"] == "failed")
    rc, out = check_verb(env)
    check(rc == 1 and "not ready: lines: failed" in out, f"check after a storm: rc {rc}: {out}")
    check(check_verb(env, "live")[0] == 0, "check live after a storm: want 0")
    env.write_service("lines", {"Module": ARGS["ctl_module"], "Listen": f"127.0.0.1:{p_lines}",
                                "Workers": "2", "MaxConnections": "100"})
    check(vkdctl(env, "reload")[0] == 0, "reload after the storm")
    wait_until("ready again", lambda: check_verb(env)[0] == 0, timeout=WAIT, step=0.2)

    # a drain: an open connection keeps vkd draining; not ready at once, yet live
    held = connect(("127.0.0.1", p_echo))
    held.sendall(b"held\n")
    check(recv_exactly(held, 5) == b"held\n", "the held connection got no echo")
    d.signal(signal.SIGTERM)
    env.notify.wait("STOPPING=1")
    rc, out = check_verb(env)
    check(rc == 1 and "not ready: vkd is stopping" in out, f"check while draining: rc {rc}: {out}")
    rc, out = check_verb(env, "live")
    check(rc == 0, f"check live while draining: rc {rc}: {out}")
    held.close()
    check(d.wait_exit() == 0, "vkd did not exit 0 after the drain")
    for what in ("ready", "live"):
        rc, out = check_verb(env, what)
        check(rc == 7 and out.startswith("not live"), f"check {what} without vkd: rc {rc}: {out}")
    rc, _ = check_verb(env, "bogus")
    check(rc == 2, f"check bogus: rc {rc}, want 2")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    ap.add_argument("--vkdctl", required=True)
    ap.add_argument("--ctl-module", required=True)
    ap.add_argument("--hostile-module", required=True)
    mine, rest = ap.parse_known_args()
    ARGS.update(vkdctl=mine.vkdctl, ctl_module=mine.ctl_module, hostile_module=mine.hostile_module)
    main({"status": case_status, "commands": case_commands, "access": case_access,
          "robust": case_robust, "slots": case_slots, "check": case_check,
          "metrics": case_metrics}, rest)
