#!/usr/bin/env python3
"""vkd-redis against a real redis-server 7, side by side: the same commands
to both, the same replies expected. Covers KEYS/SCAN MATCH glob patterns
(a fixed table and seeded random ones), sizes and indexes at the edges of
long long, and INFO's section and field names and order.

Both listen on 127.0.0.1 ports they choose; both are stopped on every exit.
Without redis-server the test is skipped (77), or fails under CI=true (tests/lib/vkdskip.py).

usage: redis_compat.py VKD_REDIS"""
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standalone import Checks, Server, skip, spawn  # noqa: E402

VKD_REDIS = sys.argv[1]
check = Checks()


class Conn:
    """A RESP2 client that returns replies as Python values (errors as
    ('err', text), status replies as ('ok', text))."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.settimeout(20)
        self.buf = b""

    def _fill(self):
        b = self.s.recv(1 << 20)
        if not b:
            raise ConnectionError("server closed the connection")
        self.buf += b

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return ("ok", rest)
        if t == b"-":
            return ("err", rest)
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            d, self.buf = self.buf[:n], self.buf[n + 2:]
            return d
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ValueError(f"bad reply line {line!r}")

    def __call__(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self._read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(tmp):
    """redis-server on a free port, no persistence; returns (process, port)."""
    port = free_port()
    p = spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", tmp],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            if Conn(port)("PING") == ("ok", b"PONG"):
                return p, port
        except OSError:
            pass
        if p.poll() is not None or time.monotonic() > deadline:
            sys.exit("FAIL: redis-server did not start")
        time.sleep(0.05)  # polling the port: redis-server has no readiness line


KEYS = [b"", b"a", b"b", b"ab", b"abc", b"aXc", b"a*c", b"a?c", b"a[c", b"a]c", b"a-c",
        b"a\\c", b"a\\", b"\\", b"hello", b"hallo", b"hxllo", b"hllo", b"heeeello",
        b"h[e]llo", b"]", b"-", b"^", b"x^y", b"user:1", b"user:10", b"KEY", b"Key", b"*",
        b"?", b"[", b"[]", b"b]", b"aa", b"aaa", b"Z", b"\xff", b"\xe9t\xe9", b"a\x00b"]
PATTERNS = [b"*", b"**", b"", b"a*", b"*a", b"a*c", b"a?c", b"?", b"??", b"h?llo", b"h*llo",
            b"h[ae]llo", b"h[^e]llo", b"h[b-a]llo", b"[c-a]", b"[^a-c]", b"[abc", b"[]",
            b"[]a]", b"[\\]]", b"[^]", b"a\\*c", b"a\\\\c", b"a\\", b"\\", b"a\\b", b"[*]",
            b"user:[0-9]*", b"[a-]", b"[-a]", b"[a-c-e]", b"a[", b"*[", b"*]", b"[a-Z]",
            b"*a*", b"a*a*a", b"*?*", b"[!a]", b"a[^]c", b"[\\", b"[\x80-\xff]", b"[a-\xff]",
            b"\xe9*", b"a\x00*", b"*\x00b"]


def glob_cases(vkd, ref):
    for c in (vkd, ref):
        c("FLUSHALL")
        for k in KEYS:
            c("SET", k, "v")
    rnd = random.Random(15)
    alphabet = b"ab*?[]^-\\"
    fuzz = [bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 8))) for _ in range(3000)]
    bad = []
    for p in PATTERNS + fuzz:
        got, want = sorted(vkd("KEYS", p)), sorted(ref("KEYS", p))
        if got != want:
            bad.append(f"KEYS {p!r}: vkd {got} redis {want}")
    check(not bad, f"KEYS agrees with redis-server on {len(PATTERNS)} patterns and "
          f"{len(fuzz)} random ones", "\n".join(bad[:20]))
    got = sorted(vkd("SCAN", 0, "COUNT", 1000, "MATCH", "h[^e]llo")[1])
    check(got == sorted(ref("SCAN", 0, "COUNT", 1000, "MATCH", "h[^e]llo")[1]),
          "SCAN MATCH agrees", got)

    # more than 1000 nested stars: Redis gives up with no match
    for stars in (1000, 1001):
        for c in (vkd, ref):
            c("FLUSHALL")
            c("SET", b"a" * (stars + 1), "v")
        p = b"a*" * stars + b"a"
        check(vkd("KEYS", p) == ref("KEYS", p), f"{stars} nested stars: the same answer")

    # the pathological pattern answers at once, with nothing
    for c in (vkd, ref):
        c("FLUSHALL")
        c("SET", b"a" * 40, "v")
    p = b"a*" * 20 + b"b"
    t0 = time.monotonic()
    got = vkd("KEYS", p)
    took = time.monotonic() - t0
    check(got == [] == ref("KEYS", p) and took < 0.5,
          f"KEYS a*a*...*b (20 stars) on a 40-byte key: empty in {took * 1000:.1f} ms", got)


EDGES = [
    ("SETRANGE", "k", "9223372036854775807", "A"),
    ("SETRANGE", "k", "536870912", "A"),
    ("SET", "s", "hello"),
    ("SETRANGE", "s", "9223372036854775807", "A"),
    ("GETRANGE", "s", "-9223372036854775808", "9223372036854775807"),
    ("GETRANGE", "s", "9223372036854775807", "-9223372036854775808"),
    ("RPUSH", "l", "a", "b", "c"),
    ("LRANGE", "l", "-9223372036854775808", "9223372036854775807"),
    ("LINDEX", "l", "-9223372036854775808"),
    ("LPOP", "l", "9223372036854775807"),
    ("SET", "n", "9223372036854775806"),
    ("INCRBY", "n", "1"),
    ("INCRBY", "n", "1"),
    ("DECRBY", "n", "-9223372036854775808"),
    ("INCRBYFLOAT", "n", "1e4932"),
    ("SET", "m", "-9223372036854775808"),
    ("DECR", "m"),
    ("HINCRBY", "h", "f", "9223372036854775807"),
    ("HINCRBY", "h", "f", "1"),
    ("EXPIRE", "s", "9223372036854775807"),
    ("PEXPIREAT", "s", "9223372036854775807"),
    ("SET", "x", "v", "EX", "9223372036854775807"),
    ("SETEX", "x", "9223372036854775807", "v"),
    ("SCAN", "0", "COUNT", "9223372036854775807"),
]


def edges(vkd, ref):
    for c in (vkd, ref):
        c("FLUSHALL")
    bad = []
    for cmd in EDGES:
        got, want = vkd(*cmd), ref(*cmd)
        if cmd[0] == "SCAN":
            got, want = [got[0], sorted(got[1])], [want[0], sorted(want[1])]
        if got != want:
            bad.append(f"{' '.join(cmd)}: vkd {got} redis {want}")
    check(not bad, f"{len(EDGES)} commands at the edges of long long answer as redis-server",
          "\n".join(bad))


def info_fields(text):
    """{section: [field names in order]}, sections in order."""
    out, sec = {}, None
    for line in text.decode().split("\r\n"):
        if line.startswith("# "):
            sec = line[2:]
            out[sec] = []
        elif line and sec:
            out[sec].append(line.split(":", 1)[0])
    return out


VKD_ONLY = {"vkd_service"}
WANTED = {"mem_allocator", "used_memory_human", "used_cpu_sys", "used_cpu_user", "role",
          "connected_slaves", "master_repl_offset", "loading", "aof_enabled",
          "rdb_changes_since_last_save", "total_error_replies", "cluster_enabled", "run_id"}


def info(vkd, ref):
    got, want = info_fields(vkd("INFO", "everything")), info_fields(ref("INFO", "everything"))
    want.pop("Latencystats", None)  # per-command latency percentiles: not kept here
    check(list(got) == list(want), "INFO everything: Redis 7.0's sections, in its order",
          f"vkd {list(got)}\nredis {list(want)}")
    bad = []
    for sec, fields in got.items():
        if sec in ("Commandstats", "Errorstats", "Keyspace"):
            continue
        common = [f for f in fields if f not in VKD_ONLY]
        unknown = [f for f in common if f not in want[sec]]
        order = [f for f in want[sec] if f in common]
        if unknown or order != common:
            bad.append(f"{sec}: fields Redis lacks {unknown}; order {common} vs {order}")
    check(not bad, "every INFO field has Redis's name, in Redis's order", "\n".join(bad))
    have = {f for fields in got.values() for f in fields}
    check(WANTED <= have, "INFO has what clients and monitoring read", WANTED - have)
    for name, c in (("vkd", vkd), ("redis", ref)):
        secs = info_fields(c("INFO"))
        check("Commandstats" not in secs and "Errorstats" in secs,
              f"{name}: plain INFO leaves Commandstats out")

    # the same commands, the same counts (time aside)
    def stats(c):
        c("CONFIG", "RESETSTAT")
        for cmd in (("SET", "a", "1"), ("INCR", "a", "b", "c"), ("LPUSH", "a", "x"), ("GET", "a"),
                    ("NOSUCH",), ("HELLO", "4"), ("CLIENT", "SETNAME"), ("CLIENT", "NOSUCH"),
                    ("CLIENT", "GETNAME"), ("CONFIG", "GET", "maxmemory"), ("GET",),
                    ("DEL", "a"), ("COMMAND", "COUNT")):
            c(*cmd)
        lines = c("INFO", "commandstats", "errorstats").decode().split("\r\n")
        stat = sorted(re.sub(r"usec=\d+,usec_per_call=[\d.]+,", "", x) for x in lines)
        errors = c("INFO", "stats").decode().split("total_error_replies:")[1].split("\r")[0]
        return [x for x in stat if x], errors
    got, want = stats(vkd), stats(ref)
    check(got == want, "commandstats and errorstats count as redis-server's",
          f"vkd {got}\nredis {want}")


def main():
    if not shutil.which("redis-server"):
        skip("redis_compat/no-redis-server", "redis-server is not installed (Debian: redis-server)")
    tmp = tempfile.mkdtemp(prefix="vkd-redis-compat-")
    ref_p = None
    srv = Server(check, VKD_REDIS)
    try:
        ref_p, ref_port = start_redis(tmp)
        vkd, ref = Conn(srv.port), Conn(ref_port)
        glob_cases(vkd, ref)
        edges(vkd, ref)
        info(vkd, ref)
    finally:
        if ref_p:
            ref_p.terminate()
            ref_p.wait(timeout=10)
        if srv.p.poll() is None:
            srv.p.kill()
            srv.p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    check.summary()


main()
