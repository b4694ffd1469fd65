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


class Raw:
    """A client that returns each reply as the bytes the server sent, for
    comparing byte for byte (RESP2, or RESP3 after HELLO 3)."""

    def __init__(self, port, proto=2):
        self.c = Conn(port)
        if proto == 3:
            self("HELLO", "3")

    def _line(self):
        return self.c._line() + b"\r\n"

    def _need(self, n):
        while len(self.c.buf) < n:
            self.c._fill()
        d, self.c.buf = self.c.buf[:n], self.c.buf[n:]
        return d

    def _read(self):
        line = self._line()
        t = line[:1]
        if t in b"$=!":
            n = int(line[1:-2])
            return line if n < 0 else line + self._need(n + 2)
        if t in b"*~>%|":
            n = int(line[1:-2])
            if t in b"%|":
                n *= 2
            return line + b"".join(self._read() for _ in range(max(n, 0)))
        return line

    def __call__(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.c.s.sendall(out)
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


# Sorted sets, run on a fresh keyspace in RESP2 and again in RESP3: every
# reply compared byte for byte (RESP3 answers scores as doubles).
ZSET_SCRIPT = [
    ("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZADD", "z", "1.5", "a"),
    ("ZADD", "z", "CH", "1.5", "a", "9", "d"), ("ZSCORE", "z", "a"), ("ZSCORE", "z", "nosuch"),
    ("ZSCORE", "nokey", "a"), ("ZADD", "z", "0.1", "f"), ("ZSCORE", "z", "f"),
    ("ZADD", "z", "1e308", "g"), ("ZADD", "z", "-0", "h"), ("ZSCORE", "z", "h"),
    ("ZADD", "z", "+inf", "i", "-inf", "j"), ("ZADD", "z", "inf", "i2", "-Infinity", "j2"),
    ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("ZADD", "z", "nan", "x"), ("ZADD", "z", "abc", "x"),
    ("ZADD", "z", "", "x"), ("ZADD", "z", " 1", "x"), ("ZADD", "z", "1 ", "x"),
    ("ZADD", "z", "1e400", "x"), ("ZADD", "z", "1e-400", "x"), ("ZADD", "z", "0x10", "hex"),
    ("ZSCORE", "z", "hex"), ("ZADD", "z", "1", "x", "bad", "y"), ("ZCARD", "z"), ("EXISTS", "x"),
    ("ZADD", "z"), ("ZADD", "z", "1"), ("ZADD", "z", "NX", "1"), ("ZADD", "z", "1", "a", "2"),
    ("ZADD", "z", "NX", "XX", "1", "a"), ("ZADD", "z", "GT", "LT", "1", "a"),
    ("ZADD", "z", "NX", "GT", "1", "a"), ("ZADD", "z", "INCR", "1", "a", "2", "b"),
    ("ZADD", "z", "NX", "5", "a", "5", "new"), ("ZSCORE", "z", "a"),
    ("ZADD", "z", "XX", "5", "a", "5", "new2"), ("ZSCORE", "z", "new2"),
    ("ZADD", "z", "GT", "CH", "1", "a", "100", "b"),
    ("ZADD", "z", "LT", "CH", "1", "a", "100", "c"),
    ("ZADD", "z", "XX", "GT", "CH", "200", "b", "1", "zz"), ("ZADD", "z", "INCR", "2.5", "a"),
    ("ZADD", "z", "INCR", "NX", "2.5", "a"), ("ZADD", "z", "INCR", "XX", "2.5", "nosuch"),
    ("ZADD", "z", "INCR", "XX", "1", "a"), ("ZADD", "z", "INCR", "GT", "-1", "a"),
    ("ZADD", "z", "INCR", "LT", "-1", "a"), ("ZADD", "nokey", "XX", "1", "a"),
    ("ZADD", "nokey", "XX", "INCR", "1", "a"), ("EXISTS", "nokey"),
    ("ZADD", "z", "nx", "ch", "incr", "1", "fresh"), ("ZINCRBY", "z", "1", "a"),
    ("ZINCRBY", "z", "-1.25", "brand"), ("ZINCRBY", "z", "x", "a"), ("ZINCRBY", "z", "nx", "a"),
    ("ZINCRBY", "z", "1"), ("ZINCRBY", "z", "+inf", "inf"), ("ZINCRBY", "z", "-inf", "inf"),
    ("ZADD", "z", "INCR", "-inf", "inf"), ("ZSCORE", "z", "inf"), ("ZINCRBY", "z", "0.1", "tenth"),
    ("ZINCRBY", "z", "0.2", "tenth"), ("ZMSCORE", "z", "a", "nosuch", "tenth"),
    ("ZMSCORE", "nokey", "a", "b"), ("ZMSCORE", "z"), ("ZCARD", "z"), ("ZCARD", "nokey"),
    ("ZCARD", "z", "x"), ("DEL", "z"),
    ("ZADD", "s", "1", "one", "2", "two", "3", "three", "4", "four", "5", "five", "5", "five2"),
    ("ZCOUNT", "s", "-inf", "+inf"), ("ZCOUNT", "s", "(1", "(5"), ("ZCOUNT", "s", "(1", "5"),
    ("ZCOUNT", "s", "2", "2"), ("ZCOUNT", "s", "(2", "2"), ("ZCOUNT", "s", "3", "2"),
    ("ZCOUNT", "s", "x", "2"), ("ZCOUNT", "s", "1", "(x"), ("ZCOUNT", "s", "(", "3"),
    ("ZCOUNT", "s", "", "3"), ("ZCOUNT", "s", "nan", "3"), ("ZCOUNT", "s", " 1", "3"),
    ("ZCOUNT", "nokey", "1", "2"), ("ZCOUNT", "nokey", "a", "2"), ("ZRANGE", "s", "0", "-1"),
    ("ZRANGE", "s", "0", "-1", "WITHSCORES"), ("ZRANGE", "s", "-2", "-1"),
    ("ZRANGE", "s", "-100", "1"), ("ZRANGE", "s", "5", "100"), ("ZRANGE", "s", "3", "1"),
    ("ZRANGE", "s", "6", "7"), ("ZRANGE", "s", "-9223372036854775808", "9223372036854775807"),
    ("ZRANGE", "s", "0", "9223372036854775808"), ("ZRANGE", "s", "0", "1", "REV"),
    ("ZRANGE", "s", "0", "-1", "REV", "WITHSCORES"), ("ZRANGE", "s", "0", "1", "LIMIT", "0", "1"),
    ("ZRANGE", "s", "(1", "5", "BYSCORE"), ("ZRANGE", "s", "5", "(1", "BYSCORE", "REV"),
    ("ZRANGE", "s", "(1", "5", "BYSCORE", "REV"),
    ("ZRANGE", "s", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"),
    ("ZRANGE", "s", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "-1", "WITHSCORES"),
    ("ZRANGE", "s", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"),
    ("ZRANGE", "s", "-inf", "+inf", "BYSCORE", "LIMIT", "6", "2"),
    ("ZRANGE", "s", "-inf", "+inf", "BYSCORE", "LIMIT", "5", "0"),
    ("ZRANGE", "s", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "3", "WITHSCORES"),
    ("ZRANGE", "s", "-inf", "+inf", "BYSCORE", "REV"), ("ZRANGE", "s", "-", "+", "BYLEX"),
    ("ZRANGE", "s", "0", "1", "BYSCORE", "BYLEX"), ("ZRANGE", "s", "0", "1", "REV", "REV"),
    ("ZRANGE", "s", "-", "+", "BYLEX", "WITHSCORES"), ("ZRANGE", "s", "0", "1", "LIMIT", "0"),
    ("ZRANGE", "s", "0", "1", "LIMIT", "x", "1", "BYSCORE"), ("ZRANGE", "s", "0", "1", "FOO"),
    ("ZRANGE", "s", "a", "1"), ("ZRANGE", "s", "0"), ("ZRANGE", "nokey", "0", "-1"),
    ("ZRANGE", "nokey", "x", "-1"), ("ZRANGEBYSCORE", "s", "2", "4"),
    ("ZRANGEBYSCORE", "s", "(2", "(4", "WITHSCORES"),
    ("ZRANGEBYSCORE", "s", "-inf", "inf", "LIMIT", "2", "2"), ("ZRANGEBYSCORE", "s", "4", "2"),
    ("ZRANGEBYSCORE", "s", "2", "4", "REV"), ("ZRANGEBYSCORE", "s", "2", "4", "BYLEX"),
    ("ZRANGEBYSCORE", "s", "2", "4", "LIMIT", "0"), ("ZRANGEBYSCORE", "s", "2", "x"),
    ("ZREVRANGEBYSCORE", "s", "4", "2"), ("ZREVRANGEBYSCORE", "s", "2", "4"),
    ("ZREVRANGEBYSCORE", "s", "+inf", "(2", "WITHSCORES", "LIMIT", "1", "10"),
    ("ZREVRANGE", "s", "0", "1"), ("ZREVRANGE", "s", "0", "-1", "WITHSCORES"),
    ("ZREVRANGE", "s", "-2", "-1"), ("ZREVRANGE", "s", "0", "1", "REV"),
    ("ZREVRANGE", "s", "0", "1", "BYSCORE"), ("ZREVRANGE", "s", "0", "1", "LIMIT", "0", "1"),
    ("ZRANK", "s", "three"), ("ZRANK", "s", "nosuch"), ("ZRANK", "nokey", "a"),
    ("ZREVRANK", "s", "three"), ("ZREVRANK", "s", "one"), ("ZRANK", "s"),
    ("ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "f", "0", "g"),
    ("ZRANGEBYLEX", "l", "-", "+"), ("ZRANGEBYLEX", "l", "[b", "(e"),
    ("ZRANGEBYLEX", "l", "(b", "[e"), ("ZRANGEBYLEX", "l", "[aa", "[ee"),
    ("ZRANGEBYLEX", "l", "-", "[c", "LIMIT", "1", "5"), ("ZRANGEBYLEX", "l", "+", "-"),
    ("ZRANGEBYLEX", "l", "[e", "[b"), ("ZRANGEBYLEX", "l", "[c", "(c"),
    ("ZRANGEBYLEX", "l", "[c", "[c"), ("ZRANGEBYLEX", "l", "b", "[c"),
    ("ZRANGEBYLEX", "l", "", "[c"), ("ZRANGEBYLEX", "l", "-x", "+"), ("ZRANGEBYLEX", "l", "[", "+"),
    ("ZRANGEBYLEX", "l", "-", "("), ("ZRANGEBYLEX", "l", "-", "+", "WITHSCORES"),
    ("ZREVRANGEBYLEX", "l", "+", "-"), ("ZREVRANGEBYLEX", "l", "(e", "[b", "LIMIT", "1", "2"),
    ("ZREVRANGEBYLEX", "l", "-", "+"), ("ZRANGE", "l", "[f", "(b", "BYLEX", "REV"),
    ("ZLEXCOUNT", "l", "-", "+"), ("ZLEXCOUNT", "l", "[b", "(e"), ("ZLEXCOUNT", "l", "b", "e"),
    ("ZLEXCOUNT", "nokey", "-", "+"), ("ZLEXCOUNT", "nokey", "x", "+"),
    ("ZRANGESTORE", "dst", "s", "0", "2"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
    ("ZRANGESTORE", "dst", "s", "+inf", "(3", "BYSCORE", "REV", "LIMIT", "0", "2"),
    ("ZRANGE", "dst", "0", "-1", "WITHSCORES"), ("ZRANGESTORE", "dst", "l", "[b", "[d", "BYLEX"),
    ("ZRANGE", "dst", "0", "-1"), ("ZRANGESTORE", "dst", "s", "10", "20"), ("EXISTS", "dst"),
    ("ZRANGESTORE", "dst", "nokey", "0", "-1"), ("ZRANGESTORE", "dst", "s", "0", "1", "WITHSCORES"),
    ("SET", "str", "v"), ("ZRANGESTORE", "str", "s", "0", "0"), ("TYPE", "str"),
    ("ZRANGESTORE", "dst", "str", "0", "0"), ("ZRANGESTORE", "s2", "s", "0", "-1"),
    ("ZRANGESTORE", "s2", "s2", "1", "2"), ("ZRANGE", "s2", "0", "-1"),
    ("ZREM", "s2", "x", "five", "five", "four"), ("ZREM", "s2", "five2"), ("EXISTS", "s2"),
    ("ZREM", "nokey", "a"), ("ZREM", "s"),
    ("ZADD", "r", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f"),
    ("ZREMRANGEBYRANK", "r", "0", "0"), ("ZREMRANGEBYRANK", "r", "-2", "-1"),
    ("ZREMRANGEBYRANK", "r", "5", "10"), ("ZREMRANGEBYRANK", "r", "x", "1"),
    ("ZRANGE", "r", "0", "-1"), ("ZREMRANGEBYSCORE", "r", "(2", "3"),
    ("ZREMRANGEBYSCORE", "r", "a", "3"), ("ZREMRANGEBYLEX", "r", "-", "(d"),
    ("ZREMRANGEBYLEX", "r", "x", "(d"), ("ZRANGE", "r", "0", "-1"),
    ("ZREMRANGEBYRANK", "r", "0", "-1"), ("EXISTS", "r"), ("ZREMRANGEBYSCORE", "nokey", "1", "2"),
    ("ZREMRANGEBYSCORE", "nokey", "x", "2"), ("ZADD", "p", "1", "a", "2", "b", "3", "c", "4", "d"),
    ("ZPOPMIN", "p"), ("ZPOPMAX", "p"), ("ZPOPMIN", "p", "0"), ("ZPOPMIN", "p", "-1"),
    ("ZPOPMIN", "p", "x"), ("ZPOPMIN", "p", "1", "2"), ("ZPOPMAX", "p", "10"), ("EXISTS", "p"),
    ("ZPOPMIN", "nokey"), ("ZPOPMIN", "nokey", "2"), ("ZPOPMAX", "nokey", "-1"),
    ("ZADD", "one", "7.5", "only"), ("ZRANDMEMBER", "one"), ("ZRANDMEMBER", "nokey"),
    ("ZRANDMEMBER", "one", "3"), ("ZRANDMEMBER", "one", "-3"),
    ("ZRANDMEMBER", "one", "-3", "WITHSCORES"), ("ZRANDMEMBER", "one", "1", "WITHSCORES"),
    ("ZRANDMEMBER", "one", "0"), ("ZRANDMEMBER", "nokey", "5"),
    ("ZRANDMEMBER", "one", "2", "WITHSCORE"), ("ZRANDMEMBER", "one", "x"),
    ("ZRANDMEMBER", "one", "-9223372036854775808"),
    ("ZRANDMEMBER", "one", "9223372036854775807", "WITHSCORES"),
    ("ZRANDMEMBER", "one", "1", "WITHSCORES", "x"), ("ZRANDMEMBER", "s", "100", "WITHSCORES"),
    ("ZSCAN", "s", "0"), ("ZSCAN", "s", "0", "MATCH", "f*"), ("ZSCAN", "s", "0", "COUNT", "1"),
    ("ZSCAN", "s", "x"), ("ZSCAN", "s", "0", "COUNT", "0"), ("ZSCAN", "s", "0", "TYPE", "zset"),
    ("ZSCAN", "s", "0", "MATCH"), ("ZSCAN", "nokey", "0"), ("ZSCAN", "nokey", "0", "BAD"),
    ("ZSCAN", "str", "0"), ("ZADD", "fl", "1.1", "a", "-0", "b", "inf", "c"), ("ZSCAN", "fl", "0"),
    ("ZADD", "u1", "1", "a", "2", "b", "3", "c"),
    ("ZADD", "u2", "10", "b", "20", "c", "30", "d", "40", "e"),
    ("SADD", "set", "a", "d", "x", "y", "z"), ("ZUNIONSTORE", "out", "2", "u1", "u2"),
    ("ZRANGE", "out", "0", "-1", "WITHSCORES"),
    ("ZUNIONSTORE", "out", "3", "u1", "u2", "set", "WEIGHTS", "2", "0.5", "inf"),
    ("ZRANGE", "out", "0", "-1", "WITHSCORES"),
    ("ZUNIONSTORE", "out", "2", "u1", "u2", "AGGREGATE", "MAX"),
    ("ZRANGE", "out", "0", "-1", "WITHSCORES"),
    ("ZINTERSTORE", "out", "2", "u1", "u2", "AGGREGATE", "min"),
    ("ZRANGE", "out", "0", "-1", "WITHSCORES"), ("ZINTERSTORE", "out", "3", "u1", "u2", "set"),
    ("ZRANGE", "out", "0", "-1", "WITHSCORES"),
    ("ZINTERSTORE", "out", "2", "u1", "u2", "WEIGHTS", "1", "-inf"),
    ("ZRANGE", "out", "0", "-1", "WITHSCORES"), ("ZDIFFSTORE", "out", "2", "u2", "u1"),
    ("ZRANGE", "out", "0", "-1", "WITHSCORES"),
    ("ZDIFFSTORE", "out", "2", "u2", "u1", "WEIGHTS", "1", "2"),
    ("ZDIFFSTORE", "out", "1", "nokey"), ("EXISTS", "out"), ("ZUNIONSTORE", "out", "0", "u1"),
    ("ZUNIONSTORE", "out", "3", "u1", "u2"), ("ZUNIONSTORE", "out", "x", "u1"),
    ("ZUNIONSTORE", "out", "2", "u1", "str"),
    ("ZUNIONSTORE", "out", "2", "u1", "u2", "WEIGHTS", "1"),
    ("ZUNIONSTORE", "out", "2", "u1", "u2", "WEIGHTS", "1", "x"),
    ("ZUNIONSTORE", "out", "2", "u1", "u2", "AGGREGATE", "avg"),
    ("ZUNIONSTORE", "out", "2", "u1", "u2", "FOO"), ("ZINTERSTORE", "out", "2", "u1", "nokey"),
    ("ZDIFFSTORE", "out", "0", "u1"), ("ZUNIONSTORE", "u1", "2", "u1", "u1"),
    ("ZRANGE", "u1", "0", "-1", "WITHSCORES"), ("ZADD", "str", "1", "a"), ("ZSCORE", "str", "a"),
    ("ZRANGE", "str", "0", "-1"), ("ZCARD", "str"), ("ZRANGEBYSCORE", "str", "x", "1"),
    ("ZRANGEBYSCORE", "str", "0", "1"), ("ZRANK", "str", "a"), ("ZREM", "str", "a"),
    ("ZPOPMIN", "str"), ("ZRANDMEMBER", "str"), ("ZINCRBY", "str", "1", "a"),
    ("ZMSCORE", "str", "a"), ("ZCOUNT", "str", "0", "1"), ("ZLEXCOUNT", "str", "-", "+"),
    ("ZREMRANGEBYRANK", "str", "0", "1"), ("LPUSH", "s", "x"), ("GET", "s"), ("TYPE", "s"),
    ("TYPE", "l"), ("SCAN", "0", "TYPE", "zset", "COUNT", "1000"), ("EXPIRE", "s", "100"),
    ("TTL", "s"), ("RENAME", "s", "s3"), ("ZCARD", "s3"), ("TTL", "s3"), ("DEL", "s3", "l"),
    ("EXISTS", "s3"), ("ZADD", "t", "1", "x"), ("PEXPIRE", "t", "1"),
]


# LPUSHX/RPUSHX, LSET, LMOVE/RPOPLPUSH (same key, both ends, missing and
# wrong-type source or destination), RENAMENX, TOUCH, (P)EXPIRETIME, HSETNX,
# HSTRLEN, HINCRBYFLOAT, SMISMEMBER, SMOVE, LTRIM, LINSERT, LREM and LPOS.
LIST_SCRIPT = [
    ("LPUSHX", "l", "a"), ("RPUSHX", "l", "a", "b"), ("EXISTS", "l"), ("RPUSH", "l", "a"),
    ("LPUSHX", "l", "b", "c"), ("RPUSHX", "l", "d", "e"), ("LRANGE", "l", "0", "-1"),
    ("SET", "s", "x"), ("LPUSHX", "s", "a"), ("RPUSHX", "s", "a"), ("LPUSHX", "l"),
    ("LSET", "l", "0", "z"), ("LSET", "l", "-1", "y"), ("LSET", "l", "5", "q"),
    ("LSET", "l", "-6", "q"), ("LSET", "l", "x", "q"), ("LSET", "nol", "x", "q"),
    ("LSET", "nol", "0", "q"), ("LSET", "s", "0", "q"), ("LSET", "l", "2"),
    ("LRANGE", "l", "0", "-1"),
    ("LMOVE", "l", "m", "LEFT", "RIGHT"), ("LMOVE", "l", "m", "right", "left"),
    ("LMOVE", "l", "m", "LEFT", "LEFT"), ("LMOVE", "l", "m", "RIGHT", "RIGHT"),
    ("LRANGE", "l", "0", "-1"), ("LRANGE", "m", "0", "-1"),
    ("LMOVE", "l", "l", "LEFT", "RIGHT"), ("LRANGE", "l", "0", "-1"),
    ("LMOVE", "l", "l", "RIGHT", "LEFT"), ("LRANGE", "l", "0", "-1"),
    ("LMOVE", "l", "m", "UP", "LEFT"), ("LMOVE", "l", "m", "LEFT", "DOWN"),
    ("LMOVE", "nol", "m", "UP", "LEFT"), ("LMOVE", "nol", "m", "LEFT", "LEFT"),
    ("LMOVE", "nol", "s", "LEFT", "LEFT"), ("LMOVE", "l", "s", "LEFT", "LEFT"),
    ("LMOVE", "s", "m", "LEFT", "LEFT"), ("LMOVE", "l", "m", "LEFT"),
    ("RPOPLPUSH", "m", "l"), ("RPOPLPUSH", "m", "m"), ("RPOPLPUSH", "nol", "m"),
    ("RPOPLPUSH", "m", "s"), ("RPOPLPUSH", "s", "m"), ("RPOPLPUSH", "m"),
    ("RPUSH", "one", "v"), ("RPOPLPUSH", "one", "one"), ("LRANGE", "one", "0", "-1"),
    ("RPOPLPUSH", "one", "two"), ("EXISTS", "one"), ("LMOVE", "two", "one", "LEFT", "RIGHT"),
    ("EXISTS", "two"), ("LRANGE", "one", "0", "-1"), ("LRANGE", "l", "0", "-1"),
    ("LRANGE", "m", "0", "-1"), ("EXPIRE", "one", "100"),
    ("RENAMENX", "one", "l"), ("RENAMENX", "one", "one"), ("RENAMENX", "nokey", "x"),
    ("RENAMENX", "nokey", "nokey"), ("RENAMENX", "one", "fresh"), ("EXISTS", "one"),
    ("TYPE", "fresh"), ("TTL", "fresh"), ("RENAMENX", "fresh"),
    ("TOUCH", "fresh", "l", "nokey", "fresh"), ("TOUCH",), ("TOUCH", "nokey"),
    ("EXPIRETIME", "nokey"), ("PEXPIRETIME", "nokey"), ("EXPIRETIME", "l"),
    ("PEXPIRETIME", "l"), ("PEXPIREAT", "l", "4102444800123"), ("EXPIRETIME", "l"),
    ("PEXPIRETIME", "l"), ("EXPIREAT", "s", "4102444800"), ("PEXPIRETIME", "s"),
    ("EXPIRETIME",), ("PEXPIRETIME", "a", "b"),
    ("HSETNX", "h", "f", "1"), ("HSETNX", "h", "f", "2"), ("HSETNX", "h", "g", ""),
    ("HMGET", "h", "f", "g"), ("HSETNX", "s", "f", "1"), ("HSETNX", "h", "f"),
    ("HSTRLEN", "h", "f"), ("HSTRLEN", "h", "g"), ("HSTRLEN", "h", "nof"),
    ("HSTRLEN", "nokey", "f"), ("HSTRLEN", "s", "f"), ("HSTRLEN", "h"),
    ("SADD", "set", "a", "b", "c"), ("SMISMEMBER", "set", "a", "x", "c", "a"),
    ("SMISMEMBER", "nokey", "a", "b"), ("SMISMEMBER", "s", "a"), ("SMISMEMBER", "set"),
    ("SMOVE", "set", "set2", "a"), ("SMOVE", "set", "set2", "a"), ("SMOVE", "set", "set", "b"),
    ("SMOVE", "set", "set", "x"), ("SMOVE", "nokey", "s", "a"), ("SMOVE", "set", "s", "b"),
    ("SMOVE", "s", "set", "b"), ("SMOVE", "set", "set2", "b"), ("SMOVE", "set", "set2", "c"),
    ("EXISTS", "set"), ("SMISMEMBER", "set2", "a", "b", "c"), ("SCARD", "set2"), ("SMOVE", "set2", "x"),
    ("RPUSH", "t", "1", "2", "3", "4", "5", "6"), ("LTRIM", "t", "1", "-2"),
    ("LRANGE", "t", "0", "-1"), ("LTRIM", "t", "-100", "100"), ("LRANGE", "t", "0", "-1"),
    ("LTRIM", "t", "2", "1"), ("EXISTS", "t"), ("LTRIM", "t", "0", "-1"),
    ("RPUSH", "t", "1", "2", "3"), ("LTRIM", "t", "5", "10"), ("EXISTS", "t"),
    ("RPUSH", "t", "1", "2", "3"), ("LTRIM", "t", "-1", "-1"), ("LRANGE", "t", "0", "-1"),
    ("LTRIM", "t", "x", "1"), ("LTRIM", "nokey", "x", "1"), ("LTRIM", "s", "0", "1"),
    ("LTRIM", "t", "0"),
    ("RPUSH", "i", "a", "b", "c", "b"), ("LINSERT", "i", "BEFORE", "b", "x"),
    ("LINSERT", "i", "after", "b", "y"), ("LINSERT", "i", "AFTER", "c", "z"),
    ("LINSERT", "i", "BEFORE", "a", "0"), ("LINSERT", "i", "AFTER", "b", "w"),
    ("LINSERT", "i", "BEFORE", "nope", "q"), ("LRANGE", "i", "0", "-1"),
    ("LINSERT", "i", "MIDDLE", "a", "q"), ("LINSERT", "nokey", "BEFORE", "a", "q"),
    ("LINSERT", "nokey", "MIDDLE", "a", "q"), ("LINSERT", "s", "BEFORE", "a", "q"),
    ("LINSERT", "i", "BEFORE", "a"), ("EXISTS", "nokey"),
    ("RPUSH", "r", "a", "b", "a", "c", "a", "b", "a"), ("LREM", "r", "2", "a"),
    ("LRANGE", "r", "0", "-1"), ("RPUSH", "r", "a", "b", "a"), ("LREM", "r", "-2", "a"),
    ("LRANGE", "r", "0", "-1"), ("LREM", "r", "0", "b"), ("LRANGE", "r", "0", "-1"),
    ("LREM", "r", "0", "nope"), ("LREM", "r", "-9223372036854775808", "a"),
    ("LRANGE", "r", "0", "-1"), ("LREM", "r", "0", "c"), ("EXISTS", "r"),
    ("LREM", "nokey", "0", "a"), ("LREM", "nokey", "x", "a"), ("LREM", "s", "0", "a"),
    ("LREM", "i", "1"),
    ("RPUSH", "p", "a", "b", "c", "a", "b", "a"), ("LPOS", "p", "a"), ("LPOS", "p", "b"),
    ("LPOS", "p", "z"), ("LPOS", "p", "a", "RANK", "2"), ("LPOS", "p", "a", "RANK", "-1"),
    ("LPOS", "p", "a", "RANK", "-2"), ("LPOS", "p", "a", "RANK", "4"),
    ("LPOS", "p", "a", "COUNT", "0"), ("LPOS", "p", "a", "COUNT", "2"),
    ("LPOS", "p", "a", "COUNT", "2", "RANK", "-1"), ("LPOS", "p", "a", "COUNT", "0", "RANK", "2"),
    ("LPOS", "p", "a", "MAXLEN", "3"), ("LPOS", "p", "a", "MAXLEN", "3", "COUNT", "0"),
    ("LPOS", "p", "a", "MAXLEN", "2", "RANK", "-1"), ("LPOS", "p", "z", "COUNT", "0"),
    ("LPOS", "p", "a", "RANK", "0"), ("LPOS", "p", "a", "RANK", "x"),
    ("LPOS", "p", "a", "RANK", "-9223372036854775808"), ("LPOS", "p", "a", "COUNT", "-1"),
    ("LPOS", "p", "a", "COUNT", "x"), ("LPOS", "p", "a", "MAXLEN", "-1"),
    ("LPOS", "p", "a", "MAXLEN", "x"), ("LPOS", "p", "a", "RANK"), ("LPOS", "p", "a", "FOO"),
    ("LPOS", "nokey", "a"), ("LPOS", "nokey", "a", "COUNT", "1"), ("LPOS", "s", "a"),
    ("LPOS", "nokey", "a", "RANK", "0"), ("LPOS", "p"),
    ("HINCRBYFLOAT", "hf", "a", "1.5"), ("HINCRBYFLOAT", "hf", "a", "-0.25"),
    ("HINCRBYFLOAT", "hf", "a", "1e3"), ("HINCRBYFLOAT", "hf", "a", "3.0e-1"),
    ("HSET", "hf", "i", "10", "s", "x", "sp", " 1"), ("HINCRBYFLOAT", "hf", "i", "0.1"),
    ("HINCRBYFLOAT", "hf", "s", "1"), ("HINCRBYFLOAT", "hf", "sp", "1"),
    ("HINCRBYFLOAT", "hf", "a", "x"), ("HINCRBYFLOAT", "hf", "a", "inf"),
    ("HINCRBYFLOAT", "hf", "a", "nan"), ("HINCRBYFLOAT", "hf", "a", ""),
    ("HSET", "hf", "big", "1.7e308"), ("HINCRBYFLOAT", "hf", "big", "1.7e308"),
    ("HINCRBYFLOAT", "s", "a", "1"), ("HINCRBYFLOAT", "nohf", "a", "x"),
    ("EXISTS", "nohf"), ("HINCRBYFLOAT", "hf", "a"), ("HMGET", "hf", "a", "i", "big"),
]


def lists(vkd_port, ref_port):
    for proto in (2, 3):
        vkd, ref = Raw(vkd_port, proto), Raw(ref_port, proto)
        for c in (vkd, ref):
            c("FLUSHALL")
        bad = []
        for cmd in LIST_SCRIPT:
            got, want = vkd(*cmd), ref(*cmd)
            if got != want:
                bad.append(f"{' '.join(cmd)}: vkd {got!r} redis {want!r}")
        check(not bad, f"RESP{proto}: {len(LIST_SCRIPT)} list, set, hash and key "
              "commands answer byte for byte as redis-server's", "\n".join(bad[:40]))


def lists_big(vkd_port, ref_port):
    """LTRIM, LINSERT, LREM and LPOS on a list long enough to run in several slices."""
    vkd, ref = Raw(vkd_port), Raw(ref_port)
    steps = [("DEL", "big")]
    for b in range(0, 200000, 10000):
        steps.append(("RPUSH", "big", *(f"e{i}" for i in range(b, b + 10000))))
    steps += [("LINSERT", "big", "BEFORE", "e199999", "x"), ("LINSERT", "big", "AFTER", "e1", "y"),
              ("LINSERT", "big", "AFTER", "e100000", "z"), ("LINSERT", "big", "BEFORE", "no", "q"),
              ("LTRIM", "big", "1000", "-1001"), ("LLEN", "big"), ("LRANGE", "big", "0", "4"),
              ("LRANGE", "big", "-5", "-1"), ("LINDEX", "big", "99001"),
              ("RPUSH", "big", *(["d", "k"] * 5000)), ("LPUSH", "big", *(["k", "d"] * 5000)),
              ("LREM", "big", "3000", "d"), ("LREM", "big", "-3000", "k"), ("LLEN", "big"),
              ("LRANGE", "big", "0", "9"), ("LRANGE", "big", "-10", "-1"), ("LREM", "big", "0", "d"),
              ("LLEN", "big"), ("LRANGE", "big", "-10", "-1"), ("LPOS", "big", "e150000"),
              ("LPOS", "big", "k", "RANK", "-1000"), ("LPOS", "big", "k", "COUNT", "0"),
              ("LPOS", "big", "nope", "COUNT", "0"), ("LTRIM", "big", "1", "0"),
              ("EXISTS", "big")]
    bad = [f"{' '.join(c[:3])}: vkd {g[:200]!r} redis {w[:200]!r}"
           for c in steps for g, w in [(vkd(*c), ref(*c))] if g != w]
    check(not bad, "LTRIM, LINSERT, LREM and LPOS on a 200,000-element list answer as redis-server's",
          "\n".join(bad[:10]))


def zsets(vkd_port, ref_port):
    for proto in (2, 3):
        vkd, ref = Raw(vkd_port, proto), Raw(ref_port, proto)
        for c in (vkd, ref):
            c("FLUSHALL")
        bad = []
        for cmd in ZSET_SCRIPT:
            got, want = vkd(*cmd), ref(*cmd)
            if cmd[0] == "SCAN":  # the order of keys is the hash table's
                got, want = sorted(got.split(b"\r\n")), sorted(want.split(b"\r\n"))
            if got != want:
                bad.append(f"{' '.join(cmd)}: vkd {got!r} redis {want!r}")
        check(not bad, f"RESP{proto}: {len(ZSET_SCRIPT)} sorted-set commands answer byte for "
              "byte as redis-server's", "\n".join(bad[:40]))


def zsets_big(vkd_port, ref_port):
    """Sorted sets past Redis's listpack limits (129 members, or a member over
    64 bytes): the same replies; ZSCAN and ZRANDMEMBER, whose order is the
    hash table's or random, by what they hold."""
    rnd = random.Random(17)
    pairs = []
    for i in range(400):
        pairs += [rnd.choice(["%d" % rnd.randint(-50, 50), "%.3f" % rnd.uniform(-1e3, 1e3),
                              "inf", "-inf", "1e-300", "-0"]), "m%d" % rnd.randint(0, 300)]
    script = [("ZADD", "big", *pairs), ("ZADD", "long", "1", "x" * 65, "2", "y"),
              ("ZADD", "big", "-0", "negzero"), ("ZSCORE", "big", "negzero"),
              ("ZADD", "long", "-0", "nz"), ("ZRANGE", "long", "0", "-1", "WITHSCORES"),
              ("ZCARD", "big"), ("ZRANGE", "big", "0", "-1", "WITHSCORES"),
              ("ZRANGE", "big", "100", "120", "REV", "WITHSCORES"),
              ("ZRANGEBYSCORE", "big", "(-10", "10", "WITHSCORES", "LIMIT", "3", "20"),
              ("ZREVRANGEBYSCORE", "big", "+inf", "(0", "LIMIT", "5", "7"),
              ("ZCOUNT", "big", "-inf", "(0"), ("ZCOUNT", "big", "0", "0"),
              ("ZRANK", "big", "m7"), ("ZREVRANK", "big", "m7"), ("ZRANK", "big", "m250"),
              ("ZINCRBY", "big", "2.5", "m7"), ("ZRANK", "big", "m7"),
              ("ZRANGESTORE", "st", "big", "-inf", "0", "BYSCORE"),
              ("ZRANGE", "st", "0", "-1", "WITHSCORES"),
              ("ZRANGESTORE", "st2", "big", "0", "9"), ("ZRANGE", "st2", "0", "-1", "WITHSCORES"),
              ("ZUNIONSTORE", "un", "2", "big", "long", "WEIGHTS", "2", "-1"),
              ("ZRANGE", "un", "0", "-1", "WITHSCORES"),
              ("ZINTERSTORE", "in", "2", "big", "st", "AGGREGATE", "MAX"),
              ("ZRANGE", "in", "0", "-1", "WITHSCORES"),
              ("ZDIFFSTORE", "df", "2", "big", "st"), ("ZRANGE", "df", "0", "-1", "WITHSCORES"),
              ("ZPOPMIN", "big", "3"), ("ZPOPMAX", "big"), ("ZREMRANGEBYSCORE", "big", "(-5", "5"),
              ("ZREMRANGEBYRANK", "big", "10", "19"), ("ZREM", "big", "m1", "m2", "m3", "m300"),
              ("ZRANGE", "big", "0", "-1", "WITHSCORES"),
              ("ZRANDMEMBER", "big", "1000", "WITHSCORES"),
              ("ZRANDMEMBER", "long", "5")]
    for proto in (2, 3):
        vkd, ref = Raw(vkd_port, proto), Raw(ref_port, proto)
        for c in (vkd, ref):
            c("FLUSHALL")
        bad = []
        for cmd in script:
            got, want = vkd(*cmd), ref(*cmd)
            if got != want:
                bad.append(f"{' '.join(cmd)[:80]}: vkd {got[:300]!r} redis {want[:300]!r}")
        check(not bad, f"RESP{proto}: {len(script)} commands on large sorted sets answer as "
              "redis-server's", "\n".join(bad[:10]))
    vkd, ref = Conn(vkd_port), Conn(ref_port)

    def scan_all(c, key, *opts):
        cursor, seen = b"0", set()
        while True:
            cursor, items = c("ZSCAN", key, cursor, *opts)
            seen |= {(items[i], items[i + 1]) for i in range(0, len(items), 2)}
            if cursor == b"0":
                return seen
    for opts in ((), ("COUNT", "7"), ("MATCH", "m1*")):
        got, want = scan_all(vkd, "big", *opts), scan_all(ref, "big", *opts)
        check(got == want, f"ZSCAN big {' '.join(opts)}: the same members and scores",
              f"{sorted(got ^ want)[:10]}")
    members = dict(zip(*[iter(vkd("ZRANGE", "big", "0", "-1", "WITHSCORES"))] * 2))
    ok = True
    for count in (1, 5, 50, len(members) - 1):
        r = vkd("ZRANDMEMBER", "big", count, "WITHSCORES")
        got = list(zip(r[::2], r[1::2]))
        ok &= len(got) == count and len({m for m, _ in got}) == count and \
            all(members.get(m) == s for m, s in got)
    for count in (-1, -5, -1000):
        r = vkd("ZRANDMEMBER", "big", count)
        ok &= len(r) == -count and all(m in members for m in r)
    check(ok, "ZRANDMEMBER: distinct members for a positive count, repeats for a negative one")


def zset_ops(rnd):
    """A seeded random sorted-set command: small sets (Redis's listpacks), lex
    ranges only on zl, whose scores are all 0 (a lex range over mixed scores
    has no defined answer)."""
    keys = ["z1", "z2", "z3"]
    k = rnd.choice(keys + ["nokey", "str"])
    scores = ["0", "-0", "1", "2", "-3", "1.5", "0.1", "1e3", "inf", "-inf", "+inf", "7", "x",
              "(1", ""]
    bounds = ["-inf", "+inf", "(0", "0", "(1.5", "2", "(5", "10", "-5", "(-inf", "(+inf", "x", "3"]
    lexbounds = ["-", "+", "[m1", "(m1", "[m15", "(m5", "[m", "m2", "(", "["]
    indexes = [0, 1, 2, -1, -2, 5, 30, -30, 9223372036854775807, -9223372036854775808]

    def m():
        return "m%d" % rnd.randint(0, 20)

    def score():
        return rnd.choice(scores + ["%d" % rnd.randint(-20, 20)])

    def bound():
        return rnd.choice(bounds)

    def lexb():
        return rnd.choice(lexbounds)

    def idx():
        return str(rnd.choice(indexes))
    op = rnd.randrange(16)
    if op < 3:
        flags = rnd.sample(["NX", "XX", "GT", "LT", "CH", "INCR"], rnd.randint(0, 2))
        pairs = [x for _ in range(rnd.choice([1, 1, 2, 3])) for x in (score(), m())]
        return ("ZADD", k, *flags, *pairs)
    if op == 3:
        return ("ZADD", "zl", "0", m())
    if op == 4:
        return ("ZINCRBY", k, score(), m())
    if op == 5:
        return ("ZREM", k, *[m() for _ in range(rnd.randint(1, 3))])
    if op == 6:
        typ = rnd.choice([[], ["BYSCORE"], ["BYLEX"]])
        if typ == ["BYLEX"]:
            k, lo, hi = "zl", lexb(), lexb()
        elif typ:
            lo, hi = bound(), bound()
        else:
            lo, hi = idx(), idx()
        opts = typ + rnd.sample(["REV", "WITHSCORES"], rnd.randint(0, 2))
        if typ and rnd.random() < 0.5:
            opts += ["LIMIT", str(rnd.randint(-1, 4)), str(rnd.randint(-2, 4))]
        return ("ZRANGE", k, lo, hi, *opts)
    if op == 7:
        c = rnd.choice(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"])
        opts = rnd.sample(["WITHSCORES"], rnd.randint(0, 1))
        if rnd.random() < 0.5:
            opts += ["LIMIT", str(rnd.randint(-1, 4)), str(rnd.randint(-2, 4))]
        return (c, k, bound(), bound(), *opts)
    if op == 8:
        c = rnd.choice(["ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZLEXCOUNT", "ZREMRANGEBYLEX"])
        return (c, "zl", lexb(), lexb())
    if op == 9:
        return (rnd.choice(["ZCOUNT", "ZREMRANGEBYSCORE"]), k, bound(), bound())
    if op == 10:
        return (rnd.choice(["ZRANK", "ZREVRANK", "ZSCORE"]), k, m())
    if op == 11:
        return (rnd.choice(["ZRANGE", "ZREVRANGE", "ZREMRANGEBYRANK"]), k, idx(), idx())
    if op == 12:
        count = [str(rnd.randint(0, 4))] if rnd.random() < 0.5 else []
        return (rnd.choice(["ZPOPMIN", "ZPOPMAX"]), k, *count)
    if op == 13:
        c = rnd.choice(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"])
        srcs = rnd.sample(keys + ["nokey", "s1"], 2)
        opts = []
        if c != "ZDIFFSTORE" and rnd.random() < 0.5:
            opts += ["WEIGHTS", rnd.choice(["1", "2", "-1", "0", "0.5", "inf"]),
                     rnd.choice(["1", "3", "-inf"])]
        if c != "ZDIFFSTORE" and rnd.random() < 0.5:
            opts += ["AGGREGATE", rnd.choice(["SUM", "MIN", "MAX"])]
        return (c, rnd.choice(keys), "2", *srcs, *opts)
    if op == 14:
        src, lo, hi, typ = k, idx(), idx(), []
        if rnd.random() < 0.5:
            src, lo, hi, typ = rnd.choice(keys), bound(), bound(), ["BYSCORE"]
        return ("ZRANGESTORE", rnd.choice(keys), src, lo, hi, *typ,
                *rnd.sample(["REV"], rnd.randint(0, 1)))
    return (rnd.choice(["ZCARD", "ZSCAN", "ZMSCORE"]), k, *(["0"] if op % 2 else [m(), m()]))


def zsets_random(vkd_port, ref_port):
    rnd = random.Random(23)
    for proto in (2, 3):
        vkd, ref = Raw(vkd_port, proto), Raw(ref_port, proto)
        for c in (vkd, ref):
            c("FLUSHALL")
            c("SET", "str", "v")
            c("SADD", "s1", "m1", "m2", "m3", "m20")
        bad, n = [], 2000
        for _ in range(n):
            cmd = zset_ops(rnd)
            if cmd[0] == "ZSCAN" or cmd[0] == "ZCARD":
                cmd = cmd[:2] + (("0",) if cmd[0] == "ZSCAN" else ())
            if cmd[0] == "ZMSCORE" and len(cmd) < 3:
                cmd += ("m1",)
            got, want = vkd(*cmd), ref(*cmd)
            if got != want:
                bad.append(f"{' '.join(cmd)}: vkd {got!r} redis {want!r}")
        for k in ("z1", "z2", "z3", "zl"):
            got, want = (c("ZRANGE", k, "0", "-1", "WITHSCORES") for c in (vkd, ref))
            if got != want:
                bad.append(f"at the end, {k}: vkd {got!r} redis {want!r}")
        check(not bad, f"RESP{proto}: {n} random sorted-set commands answer as redis-server's",
              "\n".join(bad[:20]))


# Transactions: (connection, command) steps, a and b being two clients.
MULTI_SCRIPT = [
    ("a", "EXEC"), ("a", "DISCARD"), ("a", "MULTI"), ("a", "MULTI"), ("a", "SET", "k", "1"),
    ("a", "INCR", "k"), ("a", "ZADD", "z", "1", "m"), ("a", "ZSCORE", "z", "m"),
    ("a", "GET", "nosuchkey"), ("a", "LPUSH", "k", "x"), ("a", "WATCH", "k"), ("a", "UNWATCH"),
    ("a", "EXEC"), ("a", "GET", "k"), ("a", "MULTI"), ("a", "SET", "k", "2"), ("a", "DISCARD"),
    ("a", "GET", "k"), ("a", "MULTI"), ("a", "SET", "k", "3"), ("a", "NOSUCHCOMMAND"),
    ("a", "GET", "k"), ("a", "EXEC"), ("a", "GET", "k"), ("a", "EXEC"), ("a", "MULTI"),
    ("a", "SET", "k"), ("a", "SET", "k", "4"), ("a", "EXEC"), ("a", "GET", "k"), ("a", "MULTI"),
    ("a", "MULTI", "x"), ("a", "EXEC"), ("a", "MULTI"), ("a", "EXEC"), ("a", "WATCH"),
    ("a", "WATCH", "w", "w2"), ("b", "SET", "w", "changed"), ("a", "MULTI"), ("a", "SET", "k", "5"),
    ("a", "EXEC"), ("a", "GET", "k"), ("a", "WATCH", "w"), ("a", "MULTI"), ("a", "SET", "k", "6"),
    ("a", "EXEC"), ("a", "GET", "k"), ("a", "WATCH", "w"), ("b", "GET", "w"),
    ("b", "SET", "other", "1"), ("a", "MULTI"), ("a", "INCR", "k"), ("a", "EXEC"),
    ("a", "WATCH", "w"), ("a", "MULTI"), ("b", "DEL", "w"), ("a", "SET", "k", "7"), ("a", "EXEC"),
    ("a", "WATCH", "nokey"), ("b", "DEL", "nokey"), ("a", "MULTI"), ("a", "PING"), ("a", "EXEC"),
    ("a", "WATCH", "z"), ("b", "ZADD", "z", "2", "m"), ("a", "MULTI"), ("a", "PING"), ("a", "EXEC"),
    ("a", "WATCH", "z"), ("b", "ZADD", "z", "NX", "3", "m"), ("a", "MULTI"), ("a", "PING"),
    ("a", "EXEC"), ("a", "WATCH", "x1"), ("b", "MSET", "x0", "1", "x1", "2"), ("a", "MULTI"),
    ("a", "PING"), ("a", "EXEC"), ("a", "WATCH", "k"), ("b", "FLUSHALL"), ("a", "MULTI"),
    ("a", "PING"), ("a", "EXEC"), ("a", "SET", "t", "v"), ("a", "WATCH", "t"),
    ("a", "PEXPIRE", "t", "1"), ("a", "SLEEP"), ("a", "MULTI"), ("a", "PING"), ("a", "EXEC"),
    ("a", "WATCH", "k"), ("a", "MULTI"), ("a", "WATCH", "k"), ("a", "UNWATCH"), ("a", "EXEC"),
    ("a", "WATCH", "k"), ("a", "UNWATCH"), ("b", "SET", "k", "8"), ("a", "MULTI"),
    ("a", "GET", "k"), ("a", "EXEC"), ("a", "MULTI"), ("a", "SET", "q", "1"),
    ("b", "SET", "q", "2"), ("a", "GET", "q"), ("a", "EXEC"), ("a", "MULTI"),
    ("a", "INCRBYFLOAT", "f", "1.5"), ("a", "ZADD", "z", "INCR", "1", "m"), ("a", "ZPOPMIN", "z"),
    ("a", "HSET", "h", "a", "1"), ("a", "HGETALL", "h"), ("a", "EXEC"),
    # a move, a rename touch both keys; a RENAMENX that does nothing touches none
    ("b", "RPUSH", "src", "1", "2"), ("a", "WATCH", "dst"), ("b", "RPOPLPUSH", "src", "dst"),
    ("a", "MULTI"), ("a", "LRANGE", "dst", "0", "-1"), ("a", "EXEC"), ("a", "WATCH", "dst"),
    ("b", "LMOVE", "src", "dst", "LEFT", "LEFT"), ("a", "MULTI"), ("a", "EXEC"),
    ("a", "WATCH", "new"), ("b", "RENAMENX", "dst", "new"), ("a", "MULTI"), ("a", "EXEC"),
    ("b", "SET", "old", "1"), ("a", "WATCH", "new"), ("b", "RENAMENX", "old", "new"),
    ("a", "MULTI"), ("a", "LRANGE", "new", "0", "-1"), ("a", "EXEC"),
    ("a", "MULTI"), ("a", "LPUSHX", "new", "x"), ("a", "LSET", "new", "0", "y"),
    ("a", "LMOVE", "new", "new", "LEFT", "RIGHT"), ("a", "EXEC"),
    ("b", "SADD", "set8", "m"), ("a", "WATCH", "set9"), ("b", "SMOVE", "set8", "set9", "m"),
    ("a", "MULTI"), ("a", "SCARD", "set9"), ("a", "EXEC"),
    # an LTRIM that trims nothing still counts as a write of its key
    ("b", "RPUSH", "tw", "1"), ("a", "WATCH", "tw"), ("b", "LTRIM", "tw", "0", "-1"),
    ("a", "MULTI"), ("a", "LLEN", "tw"), ("a", "EXEC"), ("a", "WATCH", "tw"),
    ("b", "LINSERT", "tw", "BEFORE", "no", "x"), ("a", "MULTI"), ("a", "LLEN", "tw"), ("a", "EXEC"),
]


def transactions(vkd_port, ref_port):
    for proto in (2, 3):
        conns = {}
        for name, port in (("vkd", vkd_port), ("ref", ref_port)):
            conns[name] = {"a": Raw(port, proto), "b": Raw(port, proto)}
            conns[name]["a"]("FLUSHALL")
        bad = []
        for i, step in enumerate(MULTI_SCRIPT):
            who, cmd = step[0], step[1:]
            if cmd == ("SLEEP",):
                time.sleep(0.01)
                continue
            got, want = conns["vkd"][who](*cmd), conns["ref"][who](*cmd)
            if got != want:
                bad.append(f"step {i}, {who}: {' '.join(cmd)}: vkd {got!r} redis {want!r}")
        check(not bad, f"RESP{proto}: {len(MULTI_SCRIPT)} transaction steps on two connections "
              "answer byte for byte as redis-server's", "\n".join(bad[:30]))


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
        lists(srv.port, ref_port)
        lists_big(srv.port, ref_port)
        zsets(srv.port, ref_port)
        zsets_big(srv.port, ref_port)
        zsets_random(srv.port, ref_port)
        transactions(srv.port, ref_port)
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
