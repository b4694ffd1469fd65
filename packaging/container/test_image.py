#!/usr/bin/env python3
"""The vkd image, built and run with podman as a user would (issue 22).

Builds packaging/Containerfile from the Debian package the package_deb test made, on a local
stand-in for debian:bookworm-slim (make-base.sh: debootstrap, cached in --cache; no registry is
ever reached), then, with ports published on 127.0.0.1:

  serve    curl (HTTP), nc (echo) and redis-cli (RESP) from outside get their answers; the
           health check (`vkdctl check ready`, kept because the image is in Docker format) is
           healthy; the image carries its OCI labels and runs as vkd, not root
  logs     `podman logs` has plain lines: no raw <N> priority prefix
  stop     `podman stop` in the middle of a load loop (echo and RESP on open connections, HTTP
           on a new connection per request): every request sent gets its answer, new
           connections after the stop are refused rather than cut, and the container exits 0
           (vkd's own exit) well before the engine's 10 s grace
  red      a second container with a service that cannot start (Optional=yes): the health
           check goes red while `vkdctl check live` stays 0
  kube     packaging/kubernetes: the Deployment and its ConfigMap under `podman kube play`
           pass their readiness and liveness probes, serve through host ports, run read-only
           as uid 999 without capabilities, stop with exit 0; every manifest (Service and
           StatefulSet too, which podman cannot play) has the fields Kubernetes requires

Exit 77 (skipped) when podman is missing or the image cannot be built here; under CI=true that
is a failure. Prints the image size, the time from `podman run` to ready and the stop figures.
"""

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
BASE = "localhost/vkd-base:bookworm-slim"
TAG = "localhost/vkd-test:latest"
VKD_UID = 999  # the image's vkd user (checked after the build)
ARGS = argparse.Namespace()


class Fail(Exception):
    pass


def log(msg):
    print(f"image: {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def unavailable(why):
    """A missing engine or a build that cannot run here: a skip, except in CI."""
    if os.environ.get("CI") == "true":
        raise Fail(f"{why} (CI=true: not skipped)")
    log(f"SKIP: {why}")
    sys.exit(SKIP)


def run(*argv, timeout=120, ok=True):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if ok and p.returncode != 0:
        raise Fail(f"{' '.join(argv)}: exit {p.returncode}\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_limits():
    """--ulimit values the engine can set here: podman's defaults (nofile 1048576) exceed the
    hard limits of some machines (CI's among them), and runc then refuses to start."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    n = 1048576 if hard == resource.RLIM_INFINITY else min(hard, 1048576)
    return ["--ulimit", f"nofile={n}:{n}", "--ulimit", "nproc=4096:4096"]


def wait_until(what, fn, timeout=30, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fail(f"not within {timeout} s: {what}")
        time.sleep(step)


def recv_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed mid-answer")
        buf += chunk
    return buf


class Container:
    def __init__(self, name, ports, extra=()):
        self.name = name
        self.ports = ports  # container port -> host port
        argv = ["podman", "run", "-d", "--runtime", "runc", "--name", name, *run_limits()]
        for cport, hport in ports.items():
            argv += ["-p", f"127.0.0.1:{hport}:{cport}"]
        argv += [*extra, TAG]
        # The control socket's directory from the host, so that readiness can be asked
        # during `podman stop` too, when the engine refuses `podman exec` (as a sidecar or a
        # node agent would ask it).
        self.ctl_dir = os.path.join(ARGS.cache, f"run-{name}")
        shutil.rmtree(self.ctl_dir, ignore_errors=True)
        os.makedirs(self.ctl_dir)
        os.chown(self.ctl_dir, VKD_UID, VKD_UID)
        argv[-1:-1] = ["-v", f"{self.ctl_dir}:/run/vkd"]
        run("podman", "rm", "-f", name, ok=False)
        self.t0 = time.monotonic()
        run(*argv)

    def exec(self, *argv, ok=False, timeout=30):
        return run("podman", "exec", self.name, *argv, ok=ok, timeout=timeout)

    def wait_ready(self, timeout=30):
        wait_until(f"{self.name} ready", lambda: self.exec("vkdctl", "check").returncode == 0,
                   timeout=timeout)
        return time.monotonic() - self.t0

    def host_check(self, *args):
        """vkdctl check from the host, through the shared control socket."""
        return run(ARGS.vkdctl, "--socket", os.path.join(self.ctl_dir, "control.sock"),
                   "--timeout", "3", "check", *args, ok=False).returncode

    def logs(self):
        p = run("podman", "logs", self.name, ok=False)
        return (p.stdout + p.stderr).splitlines()

    def remove(self):
        run("podman", "rm", "-f", "-t", "0", self.name, ok=False)


# ---------------------------------------------------------------- the cases


def case_serve(c):
    p = c.ports
    r = run("curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{p[8080]}/")
    check(r.stdout == "Hello, World!", f"curl: {r.stdout!r}")
    r = subprocess.run(["nc", "-q1", "127.0.0.1", str(p[7007])], input="hello vkd\n",
                       capture_output=True, text=True, timeout=10)
    check(r.stdout == "hello vkd\n", f"nc echo: {r.stdout!r}")
    if shutil.which("redis-cli"):
        rc = ["redis-cli", "-h", "127.0.0.1", "-p", str(p[6380])]
        check(run(*rc, "PING").stdout.strip() == "PONG", "redis-cli PING")
        run(*rc, "SET", "k", "from outside")
        check(run(*rc, "GET", "k").stdout.strip() == "from outside", "redis-cli GET")
    else:
        log("redis-cli not installed: RESP checked with a raw socket only")
    with socket.create_connection(("127.0.0.1", p[6380]), timeout=5) as s:
        s.sendall(b"PING\r\n")
        check(recv_line(s) == b"+PONG\r\n", "RESP PING")
    h = run("podman", "healthcheck", "run", c.name, ok=False)
    check(h.returncode == 0, f"healthcheck on a serving container: {h.returncode} {h.stdout}")
    who = c.exec("id", "-un", ok=True).stdout.strip()
    check(who == "vkd", f"podman exec runs as {who!r}, want vkd")
    top = run("podman", "top", c.name, "user", "args").stdout
    check(all(line.split()[0] == "vkd" for line in top.splitlines()[1:] if line.strip()),
          f"a process not run as vkd:\n{top}")


def case_logs(c):
    lines = c.logs()
    raw = [x for x in lines if re.match(r"^<[0-7]>", x)]
    check(not raw, f"podman logs has raw priority prefixes: {raw[:5]}")
    check(any(re.match(r"^vkd\[\d+\]: ready: generation 1 running", x) for x in lines),
          f"no plain 'ready' line in podman logs: {lines[:10]}")


def case_stop(c):
    p = c.ports
    stop = threading.Event()
    stats = {"echo": 0, "resp": 0, "http": 0, "refused": 0, "reset": 0}
    failures = []
    lock = threading.Lock()

    def count(k):
        with lock:
            stats[k] += 1

    def persistent(port, payload, want, key):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError as e:
            failures.append(f"{key}: connect before the stop: {e!r}")
            return
        with s:
            while not stop.is_set():
                try:
                    s.sendall(payload)
                    got = recv_line(s)
                except OSError as e:
                    failures.append(f"{key}: request on an open connection: {e!r}")
                    return
                if got != want:
                    failures.append(f"{key}: {got!r}")
                    return
                count(key)

    def http_loop():
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", p[8080], timeout=5)
            try:
                conn.connect()
            except ConnectionRefusedError:
                count("refused")  # turned away at the door: a balancer sends it elsewhere
                time.sleep(0.02)
                continue
            except OSError as e:
                failures.append(f"http connect: {e!r}")
                return
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                resp = conn.getresponse()
            except ConnectionResetError:
                # Reset before any byte of an answer, on a connection that had sent nothing
                # else: caught in a listen queue as it closed (Linux resets what a closed
                # listener still queues) or closed idle by the drain as its first request
                # arrived. Nothing was served and nothing half-done: the client sees a
                # refusal, as from a closed port, and tries elsewhere. Counted apart; a
                # request on an open connection must never fail (the persistent loops).
                count("reset")
                conn.close()
                continue
            except OSError as e:
                failures.append(f"http request on an accepted connection: {e!r}")
                return
            try:
                body = resp.read()
                if body != b"Hello, World!":
                    failures.append(f"http: {body!r}")
                    return
                count("http")
            except OSError as e:
                failures.append(f"http answer cut: {e!r}")
                return
            except http.client.HTTPException as e:
                failures.append(f"http: {e!r}")
                return
            finally:
                conn.close()

    threads = [threading.Thread(target=persistent, args=(p[7007], b"ping\n", b"ping\n", "echo"))
               for _ in range(4)]
    threads += [threading.Thread(target=persistent,
                                 args=(p[6380], b"PING\r\n", b"+PONG\r\n", "resp"))
                for _ in range(2)]
    threads += [threading.Thread(target=http_loop) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    before = dict(stats)
    t_stop = time.monotonic()
    stopper = subprocess.Popen(["podman", "stop", "-t", "10", c.name],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Readiness goes false at the start of the drain, while open connections are served.
    wait_until("not ready while draining", lambda: c.host_check() == 1, timeout=5, step=0.05)
    check(c.host_check("live") == 0, "not live while draining")
    time.sleep(1.0)
    during = dict(stats)
    stop.set()  # the clients finish and close: the drain ends with the last one
    for t in threads:
        t.join(15)
    out, _ = stopper.communicate(timeout=30)
    stop_s = time.monotonic() - t_stop
    check(stopper.returncode == 0, f"podman stop: exit {stopper.returncode}: {out}")
    code = run("podman", "inspect", "-f", "{{.State.ExitCode}}", c.name).stdout.strip()
    log(f"stop: {stop_s:.2f} s; requests before the stop {before}, by the end of the drain "
        f"{during}, at the end {stats}; failures {failures[:5]}")
    check(not failures, f"failed requests during the stop: {failures[:5]}")
    check(code == "0", f"container exit code {code}, want 0 (137: killed at the grace period)")
    check(stop_s < 9, f"stop took {stop_s:.1f} s: too close to the engine's 10 s grace")
    check(during["echo"] > before["echo"] and during["resp"] > before["resp"],
          f"open connections were not served during the drain: {before} -> {during}")
    lines = c.logs()
    check(not [x for x in lines if re.match(r"^<[0-7]>", x)], "raw prefixes after the stop")
    return stop_s, stats


def case_red(cache):
    broken = os.path.join(cache, "broken.conf")
    with open(broken, "w") as f:
        f.write("[Service]\nModule=nosuchmodule\nListen=0.0.0.0:7100\nOptional=yes\n")
    c = Container("vkd-test-red", {8080: free_port()},
                  ["-v", f"{broken}:/etc/vkd.d/zbroken.conf:ro"])
    try:
        wait_until("vkd answers", lambda: c.exec("vkdctl", "check", "live").returncode == 0)
        r = c.exec("vkdctl", "check")
        check(r.returncode == 1 and "not ready: zbroken: failed" in r.stdout,
              f"check with a failed service: {r.returncode} {r.stdout}")
        h = run("podman", "healthcheck", "run", c.name, ok=False)
        check(h.returncode != 0, f"healthcheck with a failed service: exit 0 ({h.stdout})")
        run("curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{c.ports[8080]}/")
        r = run("podman", "stop", "-t", "10", c.name)
        code = run("podman", "inspect", "-f", "{{.State.ExitCode}}", c.name).stdout.strip()
        check(code == "0", f"red container exit code {code}")
    finally:
        c.remove()


def case_kube():
    """The Kubernetes manifests: the Deployment and its ConfigMap under `podman kube play`,
    probes passed as written; the kinds podman lacks parse with the fields Kubernetes needs."""
    kdir = os.path.join(HERE, "..", "kubernetes")
    if not shutil.which("catatonit"):  # podman kube play makes its pause image with it
        if os.environ.get("CI") == "true":
            raise Fail("catatonit is not installed: podman kube play cannot run")
        log("SKIP kube: catatonit is not installed (Debian package catatonit)")
        return
    try:
        import yaml
    except ImportError:
        yaml = None
        log("python3-yaml not installed: the manifests' fields are not checked")
    grace_needed = 8 + 3  # the image's DrainTimeoutSec= and the preStop pause
    if yaml:
        for name in sorted(os.listdir(kdir)):
            if not name.endswith(".yaml"):
                continue
            with open(os.path.join(kdir, name)) as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
            for d in docs:
                for k in ("apiVersion", "kind", "metadata"):
                    check(k in d, f"{name}: {d.get('kind')} without {k}")
                check(d["metadata"].get("name"), f"{name}: {d['kind']} without a name")
                if d["kind"] in ("Deployment", "StatefulSet"):
                    spec = d["spec"]
                    sel = spec["selector"]["matchLabels"]
                    tl = spec["template"]["metadata"]["labels"]
                    check(all(tl.get(k) == v for k, v in sel.items()),
                          f"{name}: selector {sel} does not match the template's {tl}")
                    pod = spec["template"]["spec"]
                    check(pod["terminationGracePeriodSeconds"] > grace_needed,
                          f"{name}: terminationGracePeriodSeconds below the drain")
                    check(pod["securityContext"]["runAsNonRoot"] is True, f"{name}: root")
                    for c in pod["containers"]:
                        sc = c["securityContext"]
                        check(sc["readOnlyRootFilesystem"] and
                              not sc["allowPrivilegeEscalation"] and
                              sc["capabilities"]["drop"] == ["ALL"], f"{name}: securityContext")
                        check(c["readinessProbe"]["exec"]["command"][-1] == "ready" and
                              c["livenessProbe"]["exec"]["command"][-1] == "live",
                              f"{name}: probes")
                    if d["kind"] == "StatefulSet":
                        check(spec["serviceName"] and spec["volumeClaimTemplates"],
                              f"{name}: StatefulSet without serviceName or a volume")
                if d["kind"] == "Service":
                    check(d["spec"]["selector"] and d["spec"]["ports"], f"{name}: Service")

    hp, he = free_port(), free_port()
    with open(os.path.join(kdir, "deployment.yaml")) as f:
        dep = f.read()
    dep = dep.replace("image: localhost/vkd:latest", f"image: {TAG}")
    dep = dep.replace("replicas: 2", "replicas: 1")  # one host port each
    for cport, hport in ((8080, hp), (7007, he)):
        dep = dep.replace(f"              containerPort: {cport}\n",
                          f"              containerPort: {cport}\n"
                          f"              hostPort: {hport}\n              hostIP: 127.0.0.1\n")
    play = os.path.join(ARGS.cache, "kube-deployment.yaml")
    with open(play, "w") as f:
        f.write(dep)
    conf = os.path.join(ARGS.cache, "containers.conf")
    lim = run_limits()
    with open(conf, "w") as f:
        f.write("[containers]\ndefault_ulimits = [%s]\n[engine]\nruntime = \"runc\"\n" %
                ", ".join(f'"{lim[i]}"' for i in (1, 3)))
    env = dict(os.environ, CONTAINERS_CONF=conf)
    run("podman", "kube", "down", play, ok=False)
    p = subprocess.run(["podman", "kube", "play", "--configmap",
                        os.path.join(kdir, "configmap.yaml"), play], env=env,
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise Fail(f"podman kube play: {p.returncode}\n{p.stdout}{p.stderr}")
    ctr = p.stdout.split("Container:")[-1].split()[0]
    try:
        t0 = time.monotonic()
        probe = ["vkdctl", "--timeout", "2", "check", "ready"]
        wait_until("the readiness probe passes",
                   lambda: run("podman", "exec", ctr, *probe, ok=False).returncode == 0)
        log(f"kube: ready {time.monotonic() - t0:.2f} s after kube play")
        h = run("podman", "healthcheck", "run", ctr, ok=False)  # the liveness probe
        check(h.returncode == 0, f"kube: liveness probe (healthcheck) {h.returncode}")
        r = run("curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{hp}/")
        check(r.stdout == "Hello, World!", f"kube: curl {r.stdout!r}")
        r = subprocess.run(["nc", "-q1", "127.0.0.1", str(he)], input="pod\n",
                           capture_output=True, text=True, timeout=10)
        check(r.stdout == "pod\n", f"kube: nc {r.stdout!r}")
        info = json.loads(run("podman", "inspect", ctr).stdout)[0]
        check(info["HostConfig"]["ReadonlyRootfs"], "kube: root filesystem writable")
        check(info["Config"]["User"].split(":")[0] == "999", "kube: not run as 999")
        check(not info.get("EffectiveCaps"), f"kube: capabilities {info.get('EffectiveCaps')}")
        run("podman", "pod", "stop", "-t", "15", info["Pod"])
        code = run("podman", "inspect", "-f", "{{.State.ExitCode}}", ctr).stdout.strip()
        check(code == "0", f"kube: exit code {code} after the pod stopped")
        check(not [x for x in run("podman", "logs", ctr).stderr.splitlines()
                   if re.match(r"^<[0-7]>", x)], "kube: raw prefixes in the logs")
    finally:
        run("podman", "kube", "down", play, ok=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deb", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--vkdctl", required=True)
    args = ap.parse_args()
    ARGS.cache, ARGS.vkdctl = os.path.abspath(args.cache), args.vkdctl

    if not shutil.which("podman"):
        unavailable("podman is not installed (Debian packages podman runc)")
    if not shutil.which("runc"):
        unavailable("runc is not installed")
    if not os.path.exists(args.deb):
        unavailable(f"no package at {args.deb} (the package_deb test makes it)")
    t = time.monotonic()
    r = run("sh", os.path.join(HERE, "make-base.sh"), BASE, args.cache, timeout=900, ok=False)
    if r.returncode != 0:
        unavailable(f"no base image: {r.stderr[-1500:]}")
    log(f"base {BASE} in {time.monotonic() - t:.1f} s")
    old = run("podman", "image", "inspect", "-f", "{{.Id}}", TAG, ok=False).stdout.strip()
    t = time.monotonic()
    r = run("sh", os.path.join(HERE, "build-image.sh"), "--deb", args.deb, "-t", TAG,
            "--base", BASE, "--", "--runtime", "runc", *run_limits(), timeout=600, ok=False)
    print(r.stdout[-3000:], r.stderr[-3000:], flush=True)
    if r.returncode != 0:
        unavailable(f"podman build failed (exit {r.returncode})")
    log(f"image built in {time.monotonic() - t:.1f} s")
    if old and old != run("podman", "image", "inspect", "-f", "{{.Id}}", TAG).stdout.strip():
        run("podman", "rmi", old, ok=False)  # the previous run's, now untagged
    info = json.loads(run("podman", "image", "inspect", TAG).stdout)[0]
    labels = info.get("Labels") or info["Config"].get("Labels") or {}
    for k in ("org.opencontainers.image.source", "org.opencontainers.image.version",
              "org.opencontainers.image.licenses"):
        check(labels.get(k), f"label {k} missing: {labels}")
    hc = info.get("Healthcheck") or info["Config"].get("Healthcheck") or {}
    check("check" in " ".join(hc.get("Test", [])), f"no HEALTHCHECK with vkdctl check: {hc}")
    check(info["Config"].get("User") == "vkd", f"image user {info['Config'].get('User')!r}")
    check(info["Config"].get("StopSignal") in ("SIGTERM", "15"), "STOPSIGNAL")
    global VKD_UID
    VKD_UID = int(run("podman", "run", "--rm", "--runtime", "runc", *run_limits(),
                      "--entrypoint", "id", TAG, "-u").stdout)
    check(VKD_UID != 0, "the image runs as root")
    log(f"image size {info['Size'] / 1e6:.1f} MB, version {labels.get('org.opencontainers.image.version')}")

    c = Container("vkd-test", {7007: free_port(), 8080: free_port(), 6380: free_port()})
    try:
        ready_s = c.wait_ready()
        log(f"start to ready: {ready_s:.2f} s")
        case_serve(c)
        case_logs(c)
        case_stop(c)
    except Exception:
        for line in c.logs()[-40:]:
            print(f"  vkd| {line}", flush=True)
        raise
    finally:
        c.remove()
    case_red(args.cache)
    case_kube()
    log("all cases passed")


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
