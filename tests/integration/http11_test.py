#!/usr/bin/env python3
"""HTTP/1.1 service, end to end: vkd-http (the http11 module on the
stand-alone host) against curl, wrk and raw sockets. Each check names what it
proves; the first failure ends the run with its details.

usage: http11_test.py VKD_HTTP [WRK]"""
import atexit
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standalone import Checks, Server as StandaloneServer, raw, skip  # noqa: E402

VKD_HTTP = sys.argv[1]
WRK = sys.argv[2] if len(sys.argv) > 2 else shutil.which("wrk")


check = Checks()


def Server(*args):
    return StandaloneServer(check, VKD_HTTP, *args)


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True)
    return r.returncode, r.stdout, r.stderr


def status_of(resp):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", resp)
    return int(m.group(1)) if m else None


def head_then_get(srv, path, body):
    """A HEAD answer keeps the connection: pipelined behind it a GET gets its body, and curl
    reuses the connection for the next request."""
    where = srv.url + path
    req = b"HTTP/1.1\r\nHost: x\r\n\r\n"
    resp, closed = raw(srv, b"HEAD " + path.encode() + b" " + req + b"GET " + path.encode() +
                       b" " + req, 1.0)
    check(resp.count(b"HTTP/1.1 200 OK") == 2 and resp.endswith(b"\r\n\r\n" + body) and
          not closed, f"HEAD {path} then GET, pipelined: two answers, the connection kept",
          resp[:400])
    rc, out, err = curl("-I", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects} ",
                        where, where)
    check(rc == 0 and out.split() == [b"1", b"0"],
          f"HEAD {path}: curl reuses the connection for the next HEAD", out + err)


def trickle(srv, head, every, limit):
    """Sends head, then one body byte every `every` s: returns the seconds until the server
    closed the connection, or None when it still held it after `limit` s."""
    s = socket.create_connection((srv.host, srv.port))
    t0 = time.monotonic()
    try:
        s.sendall(head)
        s.settimeout(every)
        while time.monotonic() - t0 < limit:
            try:
                if not s.recv(65536):
                    return time.monotonic() - t0
            except socket.timeout:
                s.sendall(b"x")
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - t0
    finally:
        s.close()
    return None


# ---------------------------------------------------------------- hello
srv = Server("--set", "Handler=hello")
rc, out, err = curl("-i", srv.url + "/")
check(rc == 0 and out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nHello, World!"),
      "hello: 200 with its body", out + err)
check(re.search(rb"\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n", out) is not None,
      "hello: Date header in IMF-fixdate", out)
rc, out, err = curl("-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects} ",
                    srv.url + "/a", srv.url + "/b")
check(out.split() == [b"1", b"0"], "keep-alive: curl reuses one connection for two requests", out + err)
rc, out, err = curl("-I", srv.url + "/")
check(b"Content-Length: 13" in out and not out.endswith(b"Hello, World!"),
      "HEAD: headers with the GET length, no body", out)
head_then_get(srv, "/", b"Hello, World!")
n = 100
resp, _ = raw(srv, b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)), 1.0)
check(resp.count(b"HTTP/1.1 200 OK") == n, f"pipelining: {n} requests in one write, {n} responses",
      resp[:300])
resp, closed = raw(srv, b"GET / HTTP/1.0\r\n\r\n")
check(status_of(resp) == 200 and closed, "HTTP/1.0 without keep-alive: answered, then closed")
resp, closed = raw(srv, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0.5)
check(b"Connection: keep-alive" in resp and not closed, "HTTP/1.0 keep-alive honoured")
resp, closed = raw(srv, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check(status_of(resp) == 200 and closed and b"Connection: close" in resp,
      "Connection: close honoured")

# Strictness: each error gets its status and the connection is closed.
bad = {
    "CL and TE": (400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "repeated CL": (400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                         b"Content-Length: 5\r\n\r\nhello"),
    "non-numeric CL": (400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello"),
    "TE not ending in chunked": (400, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
    "unknown coding before chunked": (501, b"POST / HTTP/1.1\r\nHost: x\r\n"
                                           b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    "TE.TE obfuscated": (400, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                              b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    "space before colon": (400, b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
    "obs-fold": (400, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
    "bare CR": (400, b"GET / HTTP/1.1\r\nHost: x\rY\r\n\r\n"),
    "NUL": (400, b"GET / HTTP/1.1\r\nHost: x\0\r\n\r\n"),
    "bad method": (400, b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
    "bad target": (400, b"GET nope HTTP/1.1\r\nHost: x\r\n\r\n"),
    "HTTP/2.0": (505, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
    "request line too long": (414, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    "method too long": (501, b"A" * 20000 + b" / HTTP/1.1\r\nHost: x\r\n\r\n"),
    "too many headers": (431, b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 200 + b"\r\n"),
    "body too large": (413, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n"),
    "no Host in 1.1": (400, b"GET / HTTP/1.1\r\n\r\n"),
    # RFC 9110 §9.3.6: a 2xx would open a tunnel; no handler implements one
    "CONNECT": (501, b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
}
for what, (want, req) in bad.items():
    resp, closed = raw(srv, req + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(status_of(resp) == want and closed and resp.count(b"HTTP/1.1 ") == 1,
          f"strict: {what} -> {want}, closed, the request smuggled behind it not served",
          resp[:200])
srv.stop()

# A head larger than the connection's buffer: the status names what overflowed it, even
# where the limits would have allowed more.
srv = Server("--set", "Handler=hello", "--set", "MaxRequestLine=1M", "--set",
             "MaxHeaderBytes=1M")
big = b"a" * 100000
for what, want, req in [
        ("100 KB target", 414, b"GET /" + big + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("100 KB method", 501, b"A" + big + b" / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("100 KB header field", 431, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + big + b"\r\n\r\n")]:
    resp, closed = raw(srv, req)
    check(status_of(resp) == want and closed, f"{what} over the buffer -> {want}", resp[:200])
srv.stop()

# ---------------------------------------------------------------- echo
srv = Server("--set", "Handler=echo", "--set", "HeaderTimeoutSec=1", "--set", "MaxBodyBytes=1M")
rc, out, err = curl("-d", "hello body", srv.url + "/p?q=1")
check(out.startswith(b"POST /p?q=1 HTTP/1.1\n") and out.endswith(b"\n\nhello body"),
      "echo: request line, headers and body reflected", out)
body = os.urandom(300000)
with tempfile.NamedTemporaryFile() as f:
    f.write(body)
    f.flush()
    rc, out, err = curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@" + f.name,
                        srv.url + "/up")
check(out.endswith(b"\n\n" + body), "chunked upload of 300 kB comes back whole (chunked response)",
      err)
rc, out, err = curl("-v", "-H", "Expect: 100-continue", "-d", "x" * 2000, srv.url + "/c")
check(b"< HTTP/1.1 100 Continue" in err and out.endswith(b"x" * 2000), "Expect: 100-continue", err)
resp, closed = raw(srv, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"4;ext=1\r\nabcd\r\n0\r\nTrailer-A: b\r\n\r\n", 1.0)
check(status_of(resp) == 200 and resp.endswith(b"abcd\r\n0\r\n\r\n") and not closed,
      "chunk extensions and trailers accepted", resp)
resp, closed = raw(srv, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"ffffffffffffffffffff\r\n")
check(closed, "chunk-size overflow: connection closed", resp)
t0 = time.monotonic()
resp, closed = raw(srv, b"GET / HTTP/1.1\r\nHost: x\r\n", 5.0, pieces=1)
took = time.monotonic() - t0
check(status_of(resp) == 408 and closed and took < 4,
      f"slowloris: an unfinished head is closed at the header timeout ({took:.1f} s)", resp)
srv.stop()

# A body that trickles in, each byte well within BodyTimeoutSec, ends at BodyDeadlineSec
# whether the handler reads it (echo) or the connection drops it (hello); one that stops ends
# at BodyTimeoutSec, in the handler's reads as in the connection's.
post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
for handler in ("echo", "hello"):
    for what, every, keys in [
            ("at 5 bytes/s is cut at BodyDeadlineSec=1", 0.2,
             ("BodyTimeoutSec=5", "BodyDeadlineSec=1")),
            ("that stops is cut at BodyTimeoutSec=1", 10,
             ("BodyTimeoutSec=1", "BodyDeadlineSec=60"))]:
        srv = Server("--set", "Handler=" + handler, "--set", keys[0], "--set", keys[1])
        took = trickle(srv, post, every, 6)
        check(took is not None and 0.9 < took < 4, f"{handler}: a body {what} "
              f"({'held 6 s' if took is None else f'{took:.1f} s'})")
        srv.stop()

# ---------------------------------------------------------------- static
root = tempfile.mkdtemp()
atexit.register(shutil.rmtree, root, True)
os.mkdir(os.path.join(root, "sub"))
with open(os.path.join(root, "index.html"), "w") as f:
    f.write("<h1>hi</h1>\n")
data = os.urandom(200000)
with open(os.path.join(root, "sub", "data.bin"), "wb") as f:
    f.write(data)
os.symlink("/etc/passwd", os.path.join(root, "link"))
# A symbolic link to a directory outside the root: O_NOFOLLOW guards only the last component,
# so only resolving the whole path beneath the root (openat2) keeps this file out of reach.
outside = tempfile.mkdtemp()
atexit.register(shutil.rmtree, outside, True)
with open(os.path.join(outside, "secret.txt"), "w") as f:
    f.write("outside the root\n")
os.symlink(outside, os.path.join(root, "linkdir"))
os.symlink(os.path.join(outside, "secret.txt"), os.path.join(root, "sub", "secret.txt"))
srv = Server("--set", "Handler=static", "--set", "Root=" + root)
rc, out, err = curl("-i", srv.url + "/")
check(out.startswith(b"HTTP/1.1 200") and b"Content-Type: text/html" in out and
      out.endswith(b"<h1>hi</h1>\n"), "static: index.html for /, with its MIME type", out)
rc, out, err = curl(srv.url + "/sub/data.bin")
check(out == data, "static: 200 kB file sent whole (sendfile)")
rc, out, err = curl("-i", "-r", "1000-1999", srv.url + "/sub/data.bin")
check(b"HTTP/1.1 206" in out and b"Content-Range: bytes 1000-1999/200000" in out and
      out.endswith(data[1000:2000]), "static: Range gives 206 with the right bytes")
rc, out, err = curl("-i", "-r", "300000-", srv.url + "/sub/data.bin")
check(b"HTTP/1.1 416" in out and b"Content-Range: bytes */200000" in out, "static: 416", out)
rc, out, err = curl("-I", srv.url + "/")
etag = re.search(rb"ETag: (\S+)\r\n", out).group(1)
lm = re.search(rb"Last-Modified: ([^\r]+)\r\n", out).group(1)
head_then_get(srv, "/", b"<h1>hi</h1>\n")
rc, out, err = curl("-i", "-H", b"If-None-Match: " + etag, srv.url + "/")
check(out.startswith(b"HTTP/1.1 304"), "static: If-None-Match -> 304", out)
rc, out, err = curl("-i", "-H", b"If-Modified-Since: " + lm, srv.url + "/")
check(out.startswith(b"HTTP/1.1 304"), "static: If-Modified-Since -> 304", out)
for path in ["/link", "/../etc/passwd", "/sub/../../etc/passwd", "/%2e%2e/etc/passwd"]:
    rc, out, err = curl("-i", "--path-as-is", srv.url + path)
    check(out.startswith(b"HTTP/1.1 404") and b"root:" not in out,
          f"static: no escape from the root via {path}", out[:200])
for path in ["/linkdir/secret.txt", "/linkdir/", "/sub/secret.txt"]:
    rc, out, err = curl("-i", "--path-as-is", srv.url + path)
    check(status_of(out) in (403, 404) and b"outside the root" not in out,
          f"static: a symbolic link under the root does not lead out of it: {path}", out[:200])
rc, out, err = curl("-i", "-X", "DELETE", srv.url + "/")
check(out.startswith(b"HTTP/1.1 405") and b"Allow: GET, HEAD" in out, "static: 405 with Allow")
resp, closed = raw(srv, b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
check(status_of(resp) == 501 and closed, "static: CONNECT -> 501, closed", resp[:200])
srv.stop()

# ---------------------------------------------------------------- load
if WRK:
    srv = Server("--set", "Handler=hello", "--max-conns", "4000")
    r = subprocess.run([WRK, "-t2", "-c1000", "-d3s", "--timeout", "5s", srv.url + "/"],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"(\d+) requests in", r.stdout)
    check(m and int(m.group(1)) > 1000 and "Non-2xx" not in r.stdout and
          "Socket errors" not in r.stdout,
          f"wrk, 1000 connections, 3 s: {m.group(1) if m else '?'} responses, all 2xx, "
          "no socket errors", r.stdout + r.stderr)
    srv.stop()

check.summary()
if not WRK:
    # Everything else passed; what did not run makes the whole test a skip, never a pass.
    skip("http11_clients/no-wrk", "wrk is not installed (Debian: wrk): the load check did not run")
