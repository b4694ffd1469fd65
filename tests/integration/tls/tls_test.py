#!/usr/bin/env python3
"""TLS terminated in the worker's kernel (issue #18, first step), end to end with real clients.

Each case makes a throwaway CA and a server certificate for 127.0.0.1 with `openssl req` in the
test's temporary directory, starts the real vkd with [Service] TLS*= keys, and talks to
unmodified modules through it:
  echo      openssl s_client gets its line back from the echo module
  http      curl --cacert: two requests on one connection to http11's hello handler
  static    curl --cacert: a 3 MB file from http11's static handler (sendfile over TLS
            goes through the output ring) arrives byte for byte
  versions  TLS 1.2 and 1.3 both negotiate by default; TLSProtocols=TLSv1.3 refuses 1.2
  garbage   bytes that are no ClientHello cost only that connection: same workers, next served
  bad_conf  --check-config names file:line for each wrong TLS key
"""

import os
import re
import select
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "supervisor"))
from vkdtest import (WAIT, check, children, free_port, log, main, skip,  # noqa: E402
                     stop_daemon, wait_until)


def need(tool):
    if not subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode == 0:
        skip(f"{tool} not installed")


def run(argv, **kw):
    log("run: " + " ".join(argv))
    return subprocess.run(argv, capture_output=True, timeout=WAIT, **kw)


def make_pki(env):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it (ECDSA P-256)."""
    need("openssl")
    d = env.tmp
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    r = run(["openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
             "-subj", "/CN=vkd test CA", "-days", "2"])
    check(r.returncode == 0, f"CA: {r.stderr!r}")
    r = run(["openssl", "req", "-x509", *ec, "-keyout", f"{d}/server.key",
             "-out", f"{d}/server.pem", "-subj", "/CN=127.0.0.1", "-days", "2",
             "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
    check(r.returncode == 0, f"server certificate: {r.stderr!r}")
    return {"TLSCertificate": f"{d}/server.pem", "TLSKey": f"{d}/server.key"}


def start(env, module="echo", extra=None, module_keys=None):
    port = free_port()
    keys = {"Module": module, "Listen": f"127.0.0.1:{port}"}
    keys.update(make_pki(env))
    keys.update(extra or {})
    env.write_service("svc", keys, module_keys)
    d = env.start()
    env.notify.wait("READY=1")
    return d, port


def s_client_line(env, port, line, extra=()):
    """Sends one line through openssl s_client and returns the first line that comes back."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-quiet",
                          "-verify_return_error", "-CAfile", f"{env.tmp}/ca.pem", *extra],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(line)
        p.stdin.flush()
        got = b""
        deadline = time.monotonic() + WAIT
        while not got.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([p.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        p.kill()
        p.wait(WAIT)
        log("s_client stderr: " + p.stderr.read().decode(errors="replace").strip())


def case_echo(env):
    d, port = start(env)
    for i in range(3):
        want = b"hello over tls %d\n" % i
        got = s_client_line(env, port, want)
        check(got == want, f"echo over TLS: got {got!r}, want {want!r}")
    stop_daemon(env, d)
    # Each s_client was killed, without close_notify: an end of stream, as over TCP.
    errors = [line for line in d.log_lines() if "uncaught error" in line]
    check(not errors, f"a client that just closed ended as an error: {errors}")


def case_http(env):
    need("curl")
    d, port = start(env, "http11", {"Isolation": "isolated"}, {"Handler": "hello"})
    url = f"https://127.0.0.1:{port}/"
    r = run(["curl", "-sS", "--max-time", "10", "--cacert", f"{env.tmp}/ca.pem",
             "-w", "|%{http_code} %{num_connects} %{ssl_verify_result}\n", url, url])
    out = r.stdout.decode()
    log(f"curl: rc {r.returncode} {out!r} {r.stderr!r}")
    check(r.returncode == 0, f"curl over TLS: rc {r.returncode}: {r.stderr!r}")
    tails = re.findall(r"\|(\d+) (\d+) (\d+)\n", out)
    check(tails == [("200", "1", "0"), ("200", "0", "0")],
          f"two requests, one verified connection: {tails}")
    # The plaintext port is gone: a plain HTTP request gets no HTTP answer.
    r = run(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
             f"http://127.0.0.1:{port}/"])
    check(r.stdout.decode() != "200", f"plain HTTP on the TLS port answered 200")
    stop_daemon(env, d)


def case_static(env):
    need("curl")
    root = os.path.join(env.tmp, "www")
    os.mkdir(root)
    os.chmod(env.tmp, 0o755)
    body = os.urandom(3 << 20)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(body)
    os.chmod(root, 0o755)
    d, port = start(env, "http11", None, {"Handler": "static", "Root": root})
    out = os.path.join(env.tmp, "got.bin")
    r = run(["curl", "-sS", "--max-time", "20", "--cacert", f"{env.tmp}/ca.pem", "-o", out,
             "-w", "%{http_code} %{time_total}", f"https://127.0.0.1:{port}/big.bin"])
    log(f"curl: {r.stdout!r} (code, seconds)")
    check(r.returncode == 0 and r.stdout.startswith(b"200 "), f"curl: rc {r.returncode} {r.stdout!r} "
          f"{r.stderr!r}")
    with open(out, "rb") as f:
        got = f.read()
    check(got == body, f"static file over TLS: {len(got)} bytes, want {len(body)}, "
          f"equal prefix {os.path.commonprefix([got, body]).__len__()}")
    stop_daemon(env, d)


def negotiated(env, port, flag):
    r = run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief", flag,
             "-CAfile", f"{env.tmp}/ca.pem"], stdin=subprocess.DEVNULL)
    m = re.search(r"Protocol version: (\S+)", r.stderr.decode() + r.stdout.decode())
    return m.group(1) if m else None


def case_versions(env):
    d, port = start(env)
    for flag, want in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        got = negotiated(env, port, flag)
        check(got == want, f"default TLSProtocols, {flag}: negotiated {got}, want {want}")
    stop_daemon(env, d)
    d, port = start(env, extra={"TLSProtocols": "TLSv1.3"})
    check(negotiated(env, port, "-tls1_3") == "TLSv1.3", "TLSProtocols=TLSv1.3: 1.3 refused")
    got = negotiated(env, port, "-tls1_2")
    check(got is None, f"TLSProtocols=TLSv1.3 but TLS 1.2 negotiated ({got})")
    stop_daemon(env, d)


def case_garbage(env):
    env.write_daemon({"Workers": "1"})
    d, port = start(env)
    workers = wait_until("one worker", lambda: (lambda c: c if len(c) == 1 else None)(
        children(d.pid)))
    for junk in (b"GET / HTTP/1.0\r\n\r\n", b"\x16\x03\x01\x00\x05hello", b"\x00" * 600):
        s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        s.sendall(junk)
        try:
            rest = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                rest += chunk
        except ConnectionResetError:
            rest = b""
        s.close()
        check(not rest.startswith(junk), f"garbage {junk[:8]!r} echoed in plaintext")
        check(sorted(children(d.pid)) == sorted(workers), "a worker ended on garbage")
    got = s_client_line(env, port, b"still served\n")
    check(got == b"still served\n", f"after garbage: {got!r}")
    stop_daemon(env, d)


def case_bad_conf(env):
    port = free_port()
    pki = make_pki(env)
    r = run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", f"{env.tmp}/other.key"])
    check(r.returncode == 0, "second key")
    base = {"Listen": f"127.0.0.1:{port}", **pki}
    env.write_service("echo", base)
    rc, out = env.run("--check-config")
    check(rc == 0, f"good TLS config refused: {out}")
    kinds = [
        ({"TLSCertificate": f"{env.tmp}/missing.pem"}, r"echo\.conf:\d+: TLSCertificate: cannot read .*missing\.pem: No such file"),
        ({"TLSKey": f"{env.tmp}/other.key"}, r"echo\.conf:\d+: TLSKey: the key does not match"),
        ({"TLSProtocols": "TLSv1.2 TLSv9"}, r"echo\.conf:\d+: TLSProtocols: unknown protocol \"TLSv9\""),
        ({"TLSCiphers": "NO-SUCH-CIPHER"}, r"echo\.conf:\d+: TLSCiphers: no usable cipher"),
        ({"TLSCipherSuites": "TLS_NO_SUCH"}, r"echo\.conf:\d+: TLSCipherSuites: no usable"),
        ({"TLSKey": "relative.key"}, r"echo\.conf:\d+: TLSKey: .*not an absolute path"),
    ]
    for keys, pattern in kinds:
        env.write_service("echo", {**base, **keys})
        rc, out = env.run("--check-config")
        check(rc != 0 and re.search(pattern, out), f"{keys}: rc {rc}, want /{pattern}/ in {out!r}")
    env.write_service("echo", {"Listen": f"127.0.0.1:{port}", "TLSKey": pki["TLSKey"]})
    rc, out = env.run("--check-config")
    check(rc != 0 and re.search(r"echo\.conf:\d+: TLSKey: needs TLSCertificate=", out), out)


CASES = {"echo": case_echo, "http": case_http, "static": case_static,
         "versions": case_versions,
         "garbage": case_garbage, "bad_conf": case_bad_conf}

if __name__ == "__main__":
    main(CASES)
