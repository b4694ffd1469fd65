#!/usr/bin/env bash
# Instructions per request of vkd-http (hello handler), counted by callgrind: repeatable on a
# noisy machine where req/s are not, so a change to the kernel's hot path (the trust checks,
# say) can be weighed against another build in the same run. 10 connections, 16 requests
# pipelined each, N requests in all (default 32000); the server's whole run is counted (start
# and stop are a few hundred thousand instructions, under 1% at the default N).
#
# usage: instructions.sh [-n N] [-i ISOLATION] BUILD_DIR [BUILD_DIR...]
# Needs: valgrind, python3, curl.
set -euo pipefail
n=32000
iso=privileged
while getopts n:i: o; do
        case $o in
        n) n=$OPTARG ;;
        i) iso=$OPTARG ;;
        *) exit 2 ;;
        esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,9p' "$0"; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/client.py" <<'PY'
import socket, sys
port, n, depth = int(sys.argv[1]), int(sys.argv[2]), 16
req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * depth
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
one = socket.create_connection(("127.0.0.1", port))
one.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
answer = b""
while True:
    chunk = one.recv(65536)
    if not chunk:
        break
    answer += chunk
tail = answer[-8:]  # every answer ends with the same body
done = 0
while done < n:
    for s in conns:
        s.sendall(req)
    for s in conns:
        got = b""
        while got.count(b"HTTP/1.1 200") < depth or not got.endswith(tail):
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("the server closed a connection")
            got += chunk
    done += depth * len(conns)
PY
for build in "$@"; do
        bin=$build/services/http11/vkd-http
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        valgrind --tool=callgrind --callgrind-out-file="$work/cg" "$bin" --listen "127.0.0.1:$port" \
                --isolation "$iso" --cpu-budget-ms off >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
        python3 "$work/client.py" "$port" "$n"
        kill -TERM "$pid"
        wait "$pid" || true
        total=$(awk '/^summary:/{print $2}' "$work/cg")
        echo "$build: $total instructions, $((total / n)) per request ($iso, $n requests)"
done
