#!/usr/bin/env python3
"""docs/writing-a-module.md, run: install vkd into a temporary prefix with `cmake --install`,
build docs/examples/hello-module with its own Makefile against the installed headers (found
with `pkg-config --cflags vkd`), install it into `pkg-config --variable=moduledir vkd`, check
it with the installed `vkd --check-config`, then serve it with the installed vkd and talk to it.
Also checks that a second `cmake --install` keeps a config the user edited."""

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


def run(cmd, **kw):
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    print(p.stdout, end="", flush=True)
    if p.returncode != 0:
        sys.exit(f"FAIL: exit status {p.returncode}: {' '.join(cmd)}")
    return p.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    a = ap.parse_args()
    for tool in ("make", "pkg-config", "cc"):
        if not shutil.which(tool):
            skip(f"install_hello_module/no-{tool}", f"{tool} is not installed")

    tmp = tempfile.mkdtemp(prefix="vkd-install-")
    vkd = None
    try:
        prefix = os.path.join(tmp, "prefix")
        run(["cmake", "--install", a.build_dir, "--prefix", prefix])
        pcdirs = [os.path.join(prefix, d, "pkgconfig") for d in ("lib", "lib64", "share")]
        pcdirs += [os.path.join(prefix, "lib", d, "pkgconfig")
                   for d in os.listdir(os.path.join(prefix, "lib"))]
        env = dict(os.environ, PKG_CONFIG_PATH=":".join(pcdirs))
        cflags = run(["pkg-config", "--cflags", "vkd"], env=env).strip()
        if cflags != f"-I{prefix}/include":
            sys.exit(f"FAIL: pkg-config --cflags vkd gave {cflags!r}, want -I{prefix}/include")
        moduledir = run(["pkg-config", "--variable=moduledir", "vkd"], env=env).strip()

        # The example, outside the source tree, so only the installed headers can be found.
        src = os.path.join(tmp, "hello-module")
        shutil.copytree(os.path.join(a.source_dir, "docs", "examples", "hello-module"), src)
        run(["make", "-C", src, "CFLAGS=-O2 -g -Wall -Wextra -Werror"], env=env)
        run(["make", "-C", src, "install"], env=env)
        if not os.path.exists(os.path.join(moduledir, "hello.so")):
            sys.exit(f"FAIL: make install did not put hello.so into {moduledir}")

        # Configs as the guide writes them, on a port free now, and a private control socket.
        port = free_port()
        conf = os.path.join(tmp, "vkd.d")
        os.mkdir(conf)
        with open(os.path.join(src, "hello.conf")) as f:
            text = f.read().replace("127.0.0.1:7070", f"127.0.0.1:{port}")
        with open(os.path.join(conf, "hello.conf"), "w") as f:
            f.write(text)
        with open(os.path.join(conf, "vkd.conf"), "w") as f:
            f.write(f"[Daemon]\nWorkers=2\nDrainTimeoutSec=5\nControlSocket={tmp}/control.sock\n")
        vkd_bin = os.path.join(prefix, "sbin", "vkd")
        args = ["--conf-dir", conf, "--module-dir", moduledir]
        out = run([vkd_bin, "--check-config"] + args)
        if "configuration OK: 1 service(s)" not in out:
            sys.exit("FAIL: --check-config did not report the hello service")

        vkd = spawn([vkd_bin, "--foreground"] + args)
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline or vkd.poll() is not None:
                    sys.exit("FAIL: the hello service did not come up")
                time.sleep(0.05)
        with s:
            f = s.makefile("rwb")
            greeting = f.readline()
            f.write(b"world\n")
            f.flush()
            answer = f.readline()
            f.close()  # the socket's descriptor stays open while its file is
        print(f"hello service said {greeting!r}, then {answer!r}")
        if greeting != b"hi! send a line.\n" or answer != b"hi, world\n":
            sys.exit("FAIL: unexpected answer from the hello module")
        vkd.send_signal(signal.SIGTERM)
        rc = vkd.wait(timeout=30)
        vkd = None
        if rc != 0:
            sys.exit(f"FAIL: vkd exited {rc} on SIGTERM")

        # A second install keeps what the user changed in /etc.
        etc_conf = os.path.join(prefix, "etc", "vkd.d", "echo.conf")
        with open(etc_conf, "a") as f:
            f.write("# edited by the user\n")
        run(["cmake", "--install", a.build_dir, "--prefix", prefix])
        with open(etc_conf) as f:
            if "# edited by the user" not in f.read():
                sys.exit("FAIL: cmake --install overwrote an edited config")
        print("PASS")
        return 0
    finally:
        if vkd:
            vkd.kill()
            vkd.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
