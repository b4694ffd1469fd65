#!/usr/bin/env bash
# How long `vkdctl status --json` takes on a busy daemon: 4 echo services (2 workers each) on
# 127.0.0.1, 1,000 connections held open across them, then RUNS timed runs of vkdctl; prints
# every run's wall time and the median (target: under 10 ms).
#
#   tests/bench/vkdctl_status.sh [BUILD_DIR] [RUNS]     (default: build, 50)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
runs=${2:-50}
vkd=$build/vkd/supervisor/vkd
ctl=$build/vkd/ctl/vkdctl
[ -x "$vkd" ] && [ -x "$ctl" ] || { echo "build vkd and vkdctl in $build first" >&2; exit 2; }

tmp=$(mktemp -d)
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT
mkdir "$tmp/vkd.d"
cat >"$tmp/vkd.conf" <<CONF
[Daemon]
Workers=2
ControlSocket=$tmp/ctl.sock
ConfDir=$tmp/vkd.d
LogLevel=warning
DrainTimeoutSec=1
CONF
ports=()
for i in 1 2 3 4; do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        ports+=("$port")
        printf '[Service]\nModule=echo\nListen=127.0.0.1:%s\nMaxConnections=10000\nIdleTimeoutSec=infinity\n' \
                "$port" >"$tmp/vkd.d/svc$i.conf"
done
ulimit -n 8192 2>/dev/null || true
"$vkd" --config "$tmp/vkd.conf" --module-dir "$build/modules" 2>"$tmp/vkd.log" &
pids+=($!)
for _ in $(seq 100); do
        "$ctl" --socket "$tmp/ctl.sock" status >/dev/null 2>&1 && break
        sleep 0.1
done

# 1,000 connections, each made to echo once (so it is accepted and counted), then held open
# until stdin closes.
python3 - "$tmp/ready" "${ports[@]}" <<'PY' &
import socket, sys
ready, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
conns = []
for i in range(1000):
    s = socket.create_connection(("127.0.0.1", ports[i % len(ports)]))
    s.sendall(b"x\n"); assert s.recv(2) == b"x\n"
    conns.append(s)
open(ready, "w").close()
sys.stdin.read() if not sys.stdin.isatty() else None
import time; time.sleep(3600)
PY
pids+=($!)
for _ in $(seq 300); do [ -e "$tmp/ready" ] && break; sleep 0.1; done
[ -e "$tmp/ready" ] || { echo "connections not up" >&2; exit 1; }
for _ in $(seq 50); do   # the figures arrive on the workers' next tick
        active=$("$ctl" --socket "$tmp/ctl.sock" --json status | python3 -c \
                'import json,sys; print(sum(s["counters"]["active"] for s in json.load(sys.stdin)["services"]))')
        [ "$active" -ge 1000 ] && break
        sleep 0.1
done
echo "services: 4, workers: 8, open connections: $active"

times=()
for _ in $(seq "$runs"); do
        t0=$(date +%s%N)
        "$ctl" --socket "$tmp/ctl.sock" --json status >/dev/null
        t1=$(date +%s%N)
        times+=($(((t1 - t0) / 1000)))
done
printf '%s\n' "${times[@]}" | sort -n | awk -v runs="$runs" '
        { t[NR] = $1 }
        END {
                m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
                printf "vkdctl status --json: %d runs, min %.2f ms, median %.2f ms, max %.2f ms\n",
                        runs, t[1] / 1000, m / 1000, t[NR] / 1000
        }'
