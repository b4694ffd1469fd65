#!/usr/bin/env python3
"""The redis service, end to end: vkd-redis (the redis module on the
stand-alone host) against redis-cli, redis-benchmark and raw sockets. Each
check names what it proves; the first failure ends the run with its details.

usage: redis_test.py VKD_REDIS"""
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standalone import Checks, Server as StandaloneServer, raw, skip  # noqa: E402

VKD_REDIS = sys.argv[1]
CLI = shutil.which("redis-cli")
BENCH = shutil.which("redis-benchmark")


check = Checks()


def Server(*sets):
    """vkd-redis with these --set KEY=VALUE pairs."""
    return StandaloneServer(check, VKD_REDIS, *[a for kv in sets for a in ("--set", kv)])


def cli(srv, *args, stdin=None, timeout=60):
    r = subprocess.run([CLI, "-h", srv.host, "-p", str(srv.port), *args], input=stdin,
                       capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")



def exchange(srv, data, want, timeout=5.0):
    """Sends data on a fresh connection, reads until `want` bytes came."""
    s = socket.create_connection((srv.host, srv.port))
    s.settimeout(timeout)
    s.sendall(data)
    out = b""
    while len(out) < want:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out


def bench(srv, *extra):
    """redis-benchmark --csv; returns {test: rps} or fails the check.

    A check that every test completes, not a measurement (tests/bench/redis.sh measures): 20,000
    requests a test. With 100,000 the six tests took 80 s on a loaded 2-core machine (isolated
    mode, 50 clients: a protection switch per request) and crossed the timeout."""
    args = [BENCH, "-h", srv.host, "-p", str(srv.port), "-t", "set,get,incr,lpush,lpop,mset",
            "-n", "20000", "--csv", *extra]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    rows = {}
    for line in r.stdout.splitlines():
        cells = [c.strip('"') for c in line.split('","')]
        if len(cells) >= 2 and cells[0] != "test":
            try:
                rows[cells[0]] = float(cells[1])
            except ValueError:
                pass
    return r, rows


def main():
    if not CLI or not BENCH:
        skip("redis_clients/no-redis-tools",
             "redis-cli/redis-benchmark not installed (Debian: redis-tools)")
    srv = Server()

    # Interactive use through a pipe: one command a line, replies as redis-cli prints them.
    rc, out, err = cli(srv, stdin=b"PING\nSET greeting hello\nGET greeting\nINCR n\nINCR n\n"
                       b"LPUSH l a b c\nLRANGE l 0 -1\nHSET h f v\nHGETALL h\nGET l\n"
                       b"NOSUCH x y\nSELECT 1\n")
    check(rc == 0, "redis-cli reads commands from a pipe", err)
    check(out.split("\n")[:8] == ["PONG", "OK", "hello", "1", "2", "3", "c", "b"],
          "replies in order", out)
    check("WRONGTYPE Operation against a key holding the wrong kind of value" in out,
          "WRONGTYPE error as Redis words it", out)
    check("ERR unknown command 'NOSUCH', with args beginning with: 'x' 'y'" in out,
          "unknown command error as Redis words it", out)
    check("ERR DB index is out of range" in out, "only database 0", out)

    # RESP3 through redis-cli -3 (HELLO 3 first).
    rc, out, err = cli(srv, "-3", "--no-raw", "HGETALL", "h")
    check(rc == 0 and "1# \"f\" => \"v\"" in out, "HELLO 3 switches to RESP3 maps", out + err)

    # Mass insertion with --pipe.
    with tempfile.NamedTemporaryFile() as f:
        for i in range(100000):
            k = b"key:%d" % i
            f.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(k), k))
        f.flush()
        t0 = time.monotonic()
        r = subprocess.run([CLI, "-h", srv.host, "-p", str(srv.port), "--pipe"],
                           stdin=open(f.name, "rb"), capture_output=True, text=True,
                           timeout=120)
        took = time.monotonic() - t0
    check(r.returncode == 0 and "errors: 0, replies: 100000" in r.stdout,
          f"redis-cli --pipe inserts 100,000 keys ({took:.2f} s)", r.stdout + r.stderr)
    check(cli(srv, "GET", "key:99999")[1].strip() == "key:99999", "a piped key reads back")
    cli(srv, "DEL", "greeting", "n", "l", "h")
    check(cli(srv, "DBSIZE")[1].strip() == "100000", "DBSIZE = 100000",
          cli(srv, "DBSIZE")[1])

    # redis-benchmark, without and with pipelining: every test completes, no errors.
    for extra in ([], ["-P", "16"]):
        r, rows = bench(srv, *extra)
        want = {"SET", "GET", "INCR", "LPUSH", "LPOP", "MSET (10 keys)"}
        check(r.returncode == 0 and want <= set(rows) and all(v > 0 for v in rows.values())
              and "rror" not in r.stderr,
              f"redis-benchmark {' '.join(extra) or '-P 1'} completes: " +
              ", ".join(f"{k} {v:.0f}/s" for k, v in rows.items()), r.stdout + r.stderr)

    # Expiry observed over time: TTL counts down, then the key is gone; active
    # expiry removes keys nobody reads.
    cli(srv, "SET", "temp", "x", "EX", "2")
    ttl0 = int(cli(srv, "TTL", "temp")[1])
    check(ttl0 in (1, 2), f"TTL right after SET EX 2 is {ttl0}")
    deadline = time.monotonic() + 10
    ttls = [ttl0]
    while time.monotonic() < deadline:
        t = int(cli(srv, "TTL", "temp")[1])
        if t != ttls[-1]:
            ttls.append(t)
        if t == -2:
            break
        time.sleep(0.1)
    check(ttls[-1] == -2 and ttls == sorted(ttls, reverse=True),
          f"TTL counts down to -2 (gone): {ttls}")
    pipe = b"".join(b"SET vol:%d v PX 100\r\n" % i for i in range(200))
    exchange(srv, pipe, 5 * 200)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = cli(srv, "INFO", "keyspace")[1]
        if "expires=0" in info or "expires" not in info:
            break
        time.sleep(0.1)
    check("expires=0" in info or "expires" not in info,
          "active expiry deletes 200 keys nobody reads", info)

    # INFO sections.
    info = cli(srv, "INFO")[1]
    for sec in ("# Server", "# Clients", "# Memory", "# Stats", "# Keyspace"):
        check(sec in info, f"INFO has {sec}", info)
    check(re.search(r"db0:keys=1000\d\d,", info), "INFO keyspace counts the keys", info)

    # A size from the client at the edge of long long is refused; the store lives on.
    rc, out, err = cli(srv, "SETRANGE", "edge", "9223372036854775807", "A")
    check("ERR string exceeds maximum allowed size (proto-max-bulk-len)" in out and
          cli(srv, "PING")[1].strip() == "PONG",
          "SETRANGE at offset LLONG_MAX answers an error, the store keeps running", out + err)

    # Raw protocol: inline commands, pipelining, protocol errors.
    out = exchange(srv, b"PING\r\nECHO hi\r\n*1\r\n$4\r\nPING\r\n", 7 + 8 + 7)
    check(out == b"+PONG\r\n$2\r\nhi\r\n+PONG\r\n", "inline and multibulk commands mix", out)
    out, closed = raw(srv, b"PING\r\n*1\r\n$x\r\n")
    check(out == b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n" and closed,
          "a protocol error is answered and closes the connection", out)
    out, closed = raw(srv, b"*3000000000\r\n")
    check(out == b"-ERR Protocol error: invalid multibulk length\r\n" and closed,
          "a multibulk count over the limit is refused", out)
    out, closed = raw(srv, b"QUIT\r\nPING\r\n")
    check(out == b"+OK\r\n" and closed, "QUIT answers +OK and closes", out)

    # Values larger than a message, both ways, and commands with many arguments.
    big = os.urandom(600000).hex().encode()  # 1.2 MB
    rc, out, err = cli(srv, "-x", "SET", "big", stdin=big)
    check(out.strip() == "OK", "SET of a 1.2 MB value", out + err)
    r = subprocess.run([CLI, "-h", srv.host, "-p", str(srv.port), "--no-raw", "STRLEN", "big"],
                       capture_output=True, text=True, timeout=30)
    check(r.stdout.strip() == f"(integer) {len(big)}", "STRLEN of it", r.stdout)
    r = subprocess.run([CLI, "-h", srv.host, "-p", str(srv.port), "GET", "big"],
                       capture_output=True, timeout=30)
    check(r.stdout.rstrip(b"\n") == big, "GET returns the 1.2 MB value intact")
    args = []
    for i in range(2000):
        args += [f"m:{i}", str(i)]
    rc, out, err = cli(srv, "MSET", *args)
    check(out.strip() == "OK" and cli(srv, "GET", "m:1999")[1].strip() == "1999",
          "MSET with 4,000 arguments", out + err)
    srv.stop()

    # MaxMemory: writes refused beyond it, reads still served.
    srv = Server("MaxMemory=1mb")
    rc, out, err = cli(srv, "SET", "a", "b")
    check(out.strip() == "OK", "a write under MaxMemory works", out)
    cli(srv, "-x", "SET", "fat", stdin=b"x" * 2000000)
    rc, out, err = cli(srv, "SET", "c", "d")
    check("OOM command not allowed when used memory > 'maxmemory'." in out,
          "-OOM beyond MaxMemory", out)
    check(cli(srv, "GET", "a")[1].strip() == "b", "reads still work beyond MaxMemory")
    srv.stop()

    # Memory that runs out inside a command is an error reply, not the end of
    # the process: the address space is capped 64 MB above what it uses.
    # (Under ASan a failed malloc returns NULL only when told to.)
    srv = StandaloneServer(check, VKD_REDIS,
                           env={"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
                                ":allocator_may_return_null=1"})
    with open(f"/proc/{srv.p.pid}/status") as f:
        vm = int(re.search(r"VmSize:\s+(\d+) kB", f.read()).group(1)) * 1024
    resource.prlimit(srv.p.pid, resource.RLIMIT_AS, (vm + (64 << 20), resource.RLIM_INFINITY))
    rc, out, err = cli(srv, "SETRANGE", "huge", "300000000", "A")
    check("OOM command not allowed when used memory > 'maxmemory'." in out,
          "SETRANGE that cannot get 300 MB answers -OOM", out + err)
    rc, out, err = cli(srv, "APPEND", "huge", "x")
    check(out.strip() == "1" and cli(srv, "PING")[1].strip() == "PONG",
          "the store goes on, the failed SETRANGE left nothing behind", out + err)
    srv.stop()

    # Long work runs in slices: with a CPU budget of 60 ms per dispatch (the
    # kernel ends a process that overruns one; the default is 500 ms), every
    # command on 200,000 keys answers, and so does the replay of their
    # append-only file. Not less: the 100,000-member SADD below is one command
    # no slice splits, and on a loaded CI machine its parse took more than 20
    # ms; a budget kill inside malloc then deadlocks the store (an open
    # problem, docs/security.md).
    with tempfile.TemporaryDirectory() as d:
        budget = os.environ.get("VKD_TEST_CPU_BUDGET_MS", "60")  # more under ASan: redis.cmake
        conf = ["--cpu-budget-ms", budget, "--set", "AppendOnly=yes", "--set", "AppendFsync=no",
                "--set", f"Dir={d}"]
        srv = StandaloneServer(check, VKD_REDIS, *conf)
        n = 200000

        def resp(*args):
            return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        with tempfile.NamedTemporaryFile() as f:
            for i in range(n):
                f.write(resp(b"SET", b"key:%d" % i, b"v"))
            f.write(resp(b"SADD", b"big", *[b"m%d" % i for i in range(100000)]))
            # 50,000 pairs: as many arguments as the SADD, whose parse (one piece,
            # at replay too) is what a small budget allows
            f.write(resp(b"ZADD", b"bigz", *[x for i in range(50000)
                                             for x in (b"%d" % (i * 7919 % 50000), b"m%d" % i)]))
            f.flush()
            r = subprocess.run([CLI, "-h", srv.host, "-p", str(srv.port), "--pipe"],
                               stdin=open(f.name, "rb"), capture_output=True, text=True,
                               timeout=120)
        check(f"errors: 0, replies: {n + 2}" in r.stdout,
              "200,000 keys, a set of 100,000 and a sorted set of 50,000", r.stdout + r.stderr)
        t0 = time.monotonic()
        rc, out, err = cli(srv, "KEYS", "*")
        check(len(out.split()) == n + 2,
              f"KEYS * lists {n + 1} keys under a {budget} ms budget ({time.monotonic() - t0:.2f} s)",
              err)
        rc, out, err = cli(srv, "SCAN", "0", "COUNT", "1000000000000")
        check(out.split()[0] == "0" and len(out.split()) == n + 3,
              "SCAN with a huge COUNT visits the whole keyspace in one call", err)
        dels = resp(b"DEL", *[b"key:%d" % i for i in range(100000)])
        out = exchange(srv, dels, len(b":100000\r\n"), timeout=60)
        check(out == b":100000\r\n", "one DEL of 100,000 keys", out)
        check(cli(srv, "DEL", "big")[1].strip() == "1" and cli(srv, "PING")[1].strip() == "PONG",
              "DEL of a set of 100,000 members (freed in slices afterwards)")
        check(cli(srv, "ZUNIONSTORE", "bigu", "2", "bigz", "bigz", "WEIGHTS", "1", "2")[1].strip()
              == "50000", "ZUNIONSTORE of two sorted sets of 50,000 under the budget")
        out = cli(srv, "ZRANGE", "bigz", "0", "-1", "WITHSCORES")[1].split()
        check(len(out) == 100000 and out[:2] == ["m0", "0"] and
              [int(s) for s in out[1::2]] == list(range(50000)),
              "ZRANGE of 50,000 members with scores, in order", out[:4])
        rc, out, err = cli(srv, "ZSCAN", "bigz", "0", "COUNT", "1000000000")
        check(out.split()[0] == "0" and len(out.split()) == 100001,
              "ZSCAN with a huge COUNT visits the whole sorted set in one call", err)
        check(cli(srv, "ZREMRANGEBYSCORE", "bigz", "-inf", "24999")[1].strip() == "25000" and
              cli(srv, "DEL", "bigz")[1].strip() == "1" and
              cli(srv, "PING")[1].strip() == "PONG",
              "ZREMRANGEBYSCORE of 25,000, then DEL of the rest (freed in slices afterwards)")
        srv.kill9()
        srv = StandaloneServer(check, VKD_REDIS, *conf)
        check(cli(srv, "DBSIZE")[1].strip() == str(n - 100000 + 1) and
              cli(srv, "ZSCORE", "bigu", "m3")[1].strip() == str(3 * 7919 % 50000 * 3),
              "the append-only file of all that replays under the same budget",
              cli(srv, "DBSIZE")[1])
        check(cli(srv, "FLUSHALL")[1].strip() == "OK" and cli(srv, "DBSIZE")[1].strip() == "0" and
              cli(srv, "SET", "after", "1")[1].strip() == "OK",
              "FLUSHALL of 100,000 keys; the store goes on")
        srv.stop()

    # Unknown keys are refused at start, naming where.
    r = subprocess.run([VKD_REDIS, "--listen", "127.0.0.1:0", "--set", "Bogus=1"],
                       capture_output=True, text=True, timeout=10)
    check(r.returncode != 0 and "Bogus" in r.stderr and "--set" in r.stderr,
          "an unknown module key is an init error naming it", r.stderr)

    # Append-only file: data survives kill -9; a torn tail is cut off.
    with tempfile.TemporaryDirectory() as d:
        conf = ["AppendOnly=yes", "AppendFsync=always", f"Dir={d}"]
        srv = Server(*conf)
        cli(srv, "SET", "persist:a", "1")
        cli(srv, "INCR", "persist:a")
        cli(srv, "RPUSH", "persist:l", "x", "y")
        cli(srv, "RPUSH", "persist:m", "a", "b", "c", "b", "d")
        for cmd in (("LINSERT", "persist:m", "BEFORE", "c", "x"), ("LREM", "persist:m", "-1", "b"),
                    ("LSET", "persist:m", "0", "A"), ("LTRIM", "persist:m", "0", "3"),
                    ("RPOPLPUSH", "persist:m", "persist:m2"),
                    ("RENAMENX", "persist:m2", "persist:m3"),
                    ("HINCRBYFLOAT", "persist:h", "f", "1.5"),
                    ("HINCRBYFLOAT", "persist:h", "f", "0.25"), ("SADD", "persist:s", "a", "b"),
                    ("SMOVE", "persist:s", "persist:s2", "a")):
            cli(srv, *cmd)
        cli(srv, "SET", "persist:ttl", "v", "EX", "1000")
        cli(srv, "SET", "persist:gone", "v", "PX", "1")
        cli(srv, "ZADD", "persist:z", "1", "a", "2.5", "b", "-inf", "c", "3", "d", "4", "e")
        cli(srv, "ZINCRBY", "persist:z", "0.25", "a")
        cli(srv, "ZADD", "persist:z", "GT", "CH", "1", "b", "10", "d")
        cli(srv, "ZREM", "persist:z", "e")
        cli(srv, "ZPOPMIN", "persist:z")
        cli(srv, "ZUNIONSTORE", "persist:u", "2", "persist:z", "persist:z", "WEIGHTS", "1", "2")
        cli(srv, "ZRANGESTORE", "persist:r", "persist:z", "(2", "+inf", "BYSCORE")
        zbefore = [cli(srv, "ZRANGE", k, "0", "-1", "WITHSCORES")[1]
                   for k in ("persist:z", "persist:u", "persist:r")]
        tx = (b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$4\r\ntx:a\r\n$1\r\n1\r\n"
              b"*2\r\n$4\r\nINCR\r\n$4\r\ntx:a\r\n*2\r\n$3\r\nGET\r\n$4\r\ntx:a\r\n"
              b"*1\r\n$4\r\nEXEC\r\n")
        want = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n"
        got = exchange(srv, tx, len(want))
        check(got == want, "MULTI/EXEC over one connection", got)
        srv.kill9()
        aof = os.path.join(d, "appendonly.aof")
        check(os.path.getsize(aof) > 0, "the AOF holds the writes")
        srv = Server(*conf)
        check(cli(srv, "GET", "persist:a")[1].strip() == "2", "after kill -9: string is back")
        check(cli(srv, "LRANGE", "persist:l", "0", "-1")[1].split() == ["x", "y"],
              "after kill -9: list is back")
        moved = [cli(srv, "LRANGE", k, "0", "-1")[1].split() for k in ("persist:m", "persist:m3")]
        moved += [cli(srv, "HGET", "persist:h", "f")[1].split(),
                  cli(srv, "SMEMBERS", "persist:s2")[1].split()]
        check(moved == [["A", "b", "x"], ["c"], ["1.75"], ["a"]],
              "after kill -9: LINSERT, LREM, LSET, LTRIM, RPOPLPUSH, RENAMENX, HINCRBYFLOAT, "
              "SMOVE replayed", moved)
        ttl = int(cli(srv, "TTL", "persist:ttl")[1])
        check(900 < ttl <= 1000, f"after kill -9: TTL kept as an absolute time ({ttl})")
        check(cli(srv, "EXISTS", "persist:gone")[1].strip() == "0",
              "after kill -9: an expired key stays expired")
        zafter = [cli(srv, "ZRANGE", k, "0", "-1", "WITHSCORES")[1]
                  for k in ("persist:z", "persist:u", "persist:r")]
        check(zafter == zbefore and zafter[0].split() == ["a", "1.25", "b", "2.5", "d", "10"],
              "after kill -9: sorted sets are back (ZADD, ZINCRBY, ZREM, ZPOPMIN, ZUNIONSTORE, "
              "ZRANGESTORE replayed)", f"{zafter} vs {zbefore}")
        check(cli(srv, "GET", "tx:a")[1].strip() == "2", "after kill -9: a transaction is back")
        srv.kill9()
        size = os.path.getsize(aof)
        with open(aof, "ab") as f:
            f.write(b"*3\r\n$3\r\nSET\r\n$4\r\ntorn\r\n$10\r\nabc")  # a record cut short
        srv = Server(*conf)
        check(cli(srv, "GET", "persist:a")[1].strip() == "2" and
              cli(srv, "EXISTS", "torn")[1].strip() == "0",
              "a torn last record is dropped, the rest loaded")
        check(os.path.getsize(aof) == size, "the torn record is truncated from the file")
        cli(srv, "SET", "after", "ok")
        srv.p.terminate()
        srv.p.wait(timeout=10)
        check("truncated" in srv.p.stderr.read(), "the truncation is logged as a warning")
        srv = Server(*conf)
        check(cli(srv, "GET", "after")[1].strip() == "ok", "writes after recovery persist")
        srv.kill9()
        size = os.path.getsize(aof)
        with open(aof, "ab") as f:  # whole records, but a MULTI whose EXEC never came
            f.write(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$5\r\nhalf1\r\n$1\r\nx\r\n")
        srv = Server(*conf)
        check(cli(srv, "EXISTS", "half1")[1].strip() == "0" and os.path.getsize(aof) == size,
              "a MULTI without its EXEC at the end of the file is dropped, and cut off")
        cli(srv, "SET", "after2", "ok")
        srv.kill9()
        srv = Server(*conf)
        check(cli(srv, "GET", "after2")[1].strip() == "ok" and
              cli(srv, "GET", "after")[1].strip() == "ok",
              "writes after a dropped MULTI persist (not queued into it)")
        srv.stop()

    check.summary()


main()
