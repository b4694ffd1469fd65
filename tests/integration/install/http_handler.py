#!/usr/bin/env python3
"""docs/writing-a-module.md, the HTTP part, run: install vkd into a temporary
prefix, build docs/examples/http-handler (a module with its own handler on
libvkd_http11) with its Makefile against the installed headers and library
(pkg-config vkd-http11), serve it with the installed vkd and ask it with
curl: a GET, a chunked POST streamed through the handler, and a config key
the module refuses."""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from vkdskip import skip  # noqa: E402
from vkdproc import spawn  # noqa: E402


def run(cmd, ok=True, **kw):
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    print(p.stdout, end="", flush=True)
    if ok and p.returncode != 0:
        sys.exit(f"FAIL: exit status {p.returncode}: {' '.join(cmd)}")
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    a = ap.parse_args()
    for tool in ("make", "pkg-config", "cc", "curl"):
        if not shutil.which(tool):
            skip(f"install_http_handler/no-{tool}", f"{tool} is not installed")
    tmp = tempfile.mkdtemp(prefix="vkd-http-handler-")
    vkd = None
    try:
        prefix = os.path.join(tmp, "prefix")
        run(["cmake", "--install", a.build_dir, "--prefix", prefix])
        libs = [os.path.join(prefix, "lib")] + [
            os.path.join(prefix, "lib", d) for d in os.listdir(os.path.join(prefix, "lib"))]
        env = dict(os.environ, PKG_CONFIG_PATH=":".join(os.path.join(d, "pkgconfig") for d in libs))
        moduledir = run(["pkg-config", "--variable=moduledir", "vkd"], env=env).stdout.strip()
        src = os.path.join(tmp, "http-handler")
        shutil.copytree(os.path.join(a.source_dir, "docs", "examples", "http-handler"), src)
        run(["make", "-C", src, "CFLAGS=-O2 -g -Wall -Wextra -Werror"], env=env)
        run(["make", "-C", src, "install"], env=env)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        conf = os.path.join(tmp, "vkd.d")
        os.mkdir(conf)
        with open(os.path.join(src, "greet.conf")) as f:
            text = f.read().replace("127.0.0.1:8088", f"127.0.0.1:{port}")
        with open(os.path.join(conf, "greet.conf"), "w") as f:
            f.write(text)
        with open(os.path.join(conf, "vkd.conf"), "w") as f:
            f.write(f"[Daemon]\nWorkers=1\nDrainTimeoutSec=5\nControlSocket={tmp}/control.sock\n")
        vkd_bin = os.path.join(prefix, "sbin", "vkd")
        args = ["--conf-dir", conf, "--module-dir", moduledir]

        # the module brings its handler: Handler= in its config is refused, with file:line
        bad = os.path.join(tmp, "bad.d")
        shutil.copytree(conf, bad)
        with open(os.path.join(bad, "greet.conf"), "a") as f:
            f.write("Handler=hello\n")
        p = run([vkd_bin, "--check-config", "--conf-dir", bad, "--module-dir", moduledir],
                ok=False)
        if p.returncode == 0 or "greet.conf:" not in p.stdout or "Handler" not in p.stdout:
            sys.exit("FAIL: Handler= in the greet module's config was not refused with file:line")

        vkd = spawn([vkd_bin] + args)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            r = subprocess.run(["curl", "-sS", "--max-time", "5", url + "/world"],
                               capture_output=True)
            if r.returncode == 0:
                break
            if time.monotonic() > deadline or vkd.poll() is not None:
                sys.exit("FAIL: the greet service did not come up")
            time.sleep(0.05)
        if r.stdout != b"hello, world\n":
            sys.exit(f"FAIL: GET /world answered {r.stdout!r}")
        body = os.urandom(1 << 20)
        sum_ = 0
        for b in body:
            sum_ = (sum_ * 31 + b) & 0xffffffff
        path = os.path.join(tmp, "body")
        with open(path, "wb") as f:
            f.write(body)
        r = subprocess.run(["curl", "-sS", "--max-time", "20", "-H", "Transfer-Encoding: chunked",
                            "--data-binary", "@" + path, url + "/upload"], capture_output=True)
        want = f"{len(body)} bytes, sum {sum_:08x}\n".encode()
        if r.stdout != want:
            sys.exit(f"FAIL: chunked POST of 1 MiB answered {r.stdout!r}, want {want!r}")
        print(f"greet said {want!r} for a 1 MiB chunked upload")
        vkd.send_signal(signal.SIGTERM)
        rc = vkd.wait(timeout=30)
        vkd = None
        if rc != 0:
            sys.exit(f"FAIL: vkd exited {rc} on SIGTERM")
        print("PASS")
        return 0
    finally:
        if vkd:
            vkd.kill()
            vkd.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
