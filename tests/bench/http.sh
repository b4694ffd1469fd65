#!/usr/bin/env bash
# HTTP benchmark, every peer in the same run: nginx (one worker, `return 200`),
# raw_http (a minimal epoll server: the floor) and vkd-http (the http11
# module, hello handler) privileged, isolated and unprivileged. One server pinned to CPU 0,
# wrk (one thread) pinned to CPU 1. For each of R repetitions, each server
# fresh:
#   (a) 100 connections, 16 requests (-p DEPTH) pipelined per write: requests/s;
#   (b) 1000 connections, no pipelining: requests/s, and the server's CPU
#       seconds (utime+stime from /proc) per 100k requests.
# Then the medians and the ratios to nginx and to the floor. Servers bind
# 127.0.0.1 only; each wrk run is bounded by -d.
#
# usage: http.sh [-r REPS] [-d SECONDS] [-p DEPTH]   (BUILD_DIR: the build, default build/)
# Needs: wrk, nginx (apt-get install wrk nginx-light).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
source "$here/lib.sh"
build=${BUILD_DIR:-$root/build}
reps=5
secs=5
depth=16
while getopts "r:d:p:" o; do
        case $o in
        r) reps=$OPTARG ;;
        d) secs=$OPTARG ;;
        p) depth=$OPTARG ;;
        *) exit 2 ;;
        esac
done
for t in wrk nginx taskset python3; do
        command -v "$t" >/dev/null || { echo "http.sh: $t is not installed" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

[[ $depth =~ ^[1-9][0-9]*$ ]] || { echo "http.sh: -p wants a number" >&2; exit 2; }
cat >"$work/pipeline.lua" <<LUA
init = function(args)
        local r = {}
        for i = 1, $depth do r[i] = wrk.format(nil, "/") end
        req = table.concat(r)
end
request = function() return req end
LUA

free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start NAME: starts the server, sets $pid and $url; waits for it to accept.
start() {
        local port
        port=$(free_port)
        case $1 in
        nginx)
                mkdir -p "$work/nginx"
                cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
        access_log off;
        keepalive_requests 1000000;
        client_body_temp_path $work/nginx;
        server {
                listen 127.0.0.1:$port;
                location / { return 200 "Hello, World!"; }
        }
}
CONF
                taskset -c 0 nginx -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
                ;;
        raw) taskset -c 0 "$build/tests/bench/raw_http" --listen "127.0.0.1:$port" >/dev/null & ;;
        vkd-priv) taskset -c 0 "$build/services/http11/vkd-http" --listen "127.0.0.1:$port" \
                        --isolation privileged --max-conns 4096 >/dev/null & ;;
        vkd-iso) taskset -c 0 "$build/services/http11/vkd-http" --listen "127.0.0.1:$port" \
                        --isolation isolated --max-conns 4096 >/dev/null & ;;
        vkd-unpriv) taskset -c 0 "$build/services/http11/vkd-http" --listen "127.0.0.1:$port" \
                        --isolation unprivileged --max-conns 4096 >/dev/null & ;;
        esac
        pid=$!
        url=http://127.0.0.1:$port/
        for _ in $(seq 100); do
                curl -s -o /dev/null "$url" && return 0
                sleep 0.05 # polling the port: nginx has no readiness line
        done
        echo "http.sh: $1 did not start" >&2
        exit 1
}

# The server's own process, for its CPU time (nginx: the worker).
server_pid() {
        if [[ $1 == nginx ]]; then pgrep -P "$pid" | head -1; else echo "$pid"; fi
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

rps() { awk '/Requests\/sec/ {print $2}'; }

servers=(nginx raw vkd-priv vkd-iso vkd-unpriv)
for s in "${servers[@]}"; do : >"$work/$s.pipe"; : >"$work/$s.conc"; : >"$work/$s.cpu"; done
hz=$(getconf CLK_TCK)
for r in $(seq "$reps"); do
        for s in "${servers[@]}"; do
                start "$s"
                taskset -c 1 wrk -t1 -c100 -d"${secs}s" -s "$work/pipeline.lua" "$url" |
                        rps >>"$work/$s.pipe"
                sp=$(server_pid "$s")
                c0=$(cpu_ticks "$sp")
                out=$(taskset -c 1 wrk -t1 -c1000 -d"${secs}s" --timeout 10s "$url")
                c1=$(cpu_ticks "$sp")
                req=$(echo "$out" | awk '/requests in/ {print $1}')
                echo "$out" | rps >>"$work/$s.conc"
                awk -v c=$((c1 - c0)) -v hz="$hz" -v n="$req" \
                        'BEGIN { printf "%.3f\n", c / hz / n * 100000 }' >>"$work/$s.cpu"
                kill "$pid"
                wait "$pid" 2>/dev/null || true
                echo "rep $r $s: pipelined $(tail -1 "$work/$s.pipe") req/s," \
                        "1000 conns $(tail -1 "$work/$s.conc") req/s," \
                        "$(tail -1 "$work/$s.cpu") CPU-s/100k" >&2
        done
done

printf "\npipelined: %d requests a write on 100 connections\n" "$depth"
printf "%-10s %14s %14s %16s\n" server "pipelined/s" "1000conns/s" "CPU-s/100k req"
for s in "${servers[@]}"; do
        printf "%-10s %14.0f %14.0f %16.3f\n" "$s" "$(median_file "$work/$s.pipe")" \
                "$(median_file "$work/$s.conc")" "$(median_file "$work/$s.cpu")"
done
ng_p=$(median_file "$work/nginx.pipe")
raw_p=$(median_file "$work/raw.pipe")
for s in vkd-priv vkd-iso vkd-unpriv; do
        p=$(median_file "$work/$s.pipe")
        awk -v p="$p" -v n="$ng_p" -v f="$raw_p" -v s="$s" \
                'BEGIN { printf "%s pipelined: %.2fx nginx, %.2fx the raw floor\n", s, p / n, p / f }'
done
for s in vkd-iso vkd-unpriv; do
        awk -v i="$(median_file "$work/$s.pipe")" -v p="$(median_file "$work/vkd-priv.pipe")" \
                -v s="$s" 'BEGIN { printf "%s / vkd-priv, pipelined: %.2f\n", s, i / p }'
done
