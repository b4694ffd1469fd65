#!/usr/bin/env bash
# The redis service against redis-server, same run, same core: redis-benchmark
# -t set,get -n N -c 50 at -P 1 and -P 16, servers pinned to one core and the
# client to another, medians of REPEATS runs and the ratio vkd / redis-server;
# then memory per key for 1,000,000 small keys (used_memory of each, and the
# resident-set growth of each process).
#
# usage: tests/bench/redis.sh [path/to/vkd-redis]
#   env: N=1000000 REPEATS=3 SERVER_CPU=0 CLIENT_CPU=1 KEYS=1000000
#        ISOLATIONS="isolated privileged" (vkd's --isolation modes to measure)
# Not a test: figures vary with the machine; read them side by side.
set -euo pipefail

VKD=${1:-build/services/redis/vkd-redis}
N=${N:-1000000}
REPEATS=${REPEATS:-3}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
KEYS=${KEYS:-1000000}
ISOLATIONS=${ISOLATIONS:-"isolated privileged"}
command -v redis-server >/dev/null || { echo "redis-server not installed" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not installed" >&2; exit 1; }
[ -x "$VKD" ] || { echo "no $VKD: build first" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_redis -> sets PORT and PID
start_redis() {
        PORT=$(free_port)
        taskset -c "$SERVER_CPU" redis-server --port "$PORT" --bind 127.0.0.1 --save '' \
                --appendonly no --io-threads 1 --daemonize no --logfile "$tmp/redis.log" &
        PID=$!
        pids+=("$PID")
        for _ in $(seq 100); do
                redis-cli -p "$PORT" ping >/dev/null 2>&1 && return 0
                sleep 0.05
        done
        echo "redis-server did not start" >&2
        exit 1
}

# start_vkd ISOLATION -> sets PORT and PID (readiness: its "listening" line)
start_vkd() {
        rm -f "$tmp/vkd.out"
        mkfifo "$tmp/vkd.out"
        taskset -c "$SERVER_CPU" "$VKD" --listen 127.0.0.1:0 --isolation "$1" >"$tmp/vkd.out" &
        PID=$!
        pids+=("$PID")
        read -r line <"$tmp/vkd.out"
        PORT=${line##*:}
        # keep the pipe drained
        cat "$tmp/vkd.out" >/dev/null &
}

stop() {
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
}

# bench PORT P -> "set_rps get_rps"
bench() {
        taskset -c "$CLIENT_CPU" redis-benchmark -p "$1" -t set,get -n "$N" -c 50 -P "$2" --csv |
                awk -F'","' '/^"SET"/{s=$2} /^"GET"/{g=$2} END{gsub(/"/,"",s); gsub(/"/,"",g); print s, g}'
}

median() { sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A res
for r in $(seq "$REPEATS"); do
        for P in 1 16; do
                start_redis
                read -r s g < <(bench "$PORT" "$P")
                stop
                res[redis,$P,set]+="$s "
                res[redis,$P,get]+="$g "
                for iso in $ISOLATIONS; do
                        start_vkd "$iso"
                        read -r s g < <(bench "$PORT" "$P")
                        stop
                        res[vkd-$iso,$P,set]+="$s "
                        res[vkd-$iso,$P,get]+="$g "
                done
                echo "run $r -P $P done" >&2
        done
done

echo "redis-benchmark -t set,get -n $N -c 50; server on cpu $SERVER_CPU, client on cpu $CLIENT_CPU;"
echo "medians of $REPEATS runs, requests/s ($(nproc) cores; a shared machine is noisy)"
printf '%-22s %4s %12s %12s %8s %8s\n' server P SET GET SETx GETx
for P in 1 16; do
        rs=$(echo "${res[redis,$P,set]}" | tr ' ' '\n' | grep . | median)
        rg=$(echo "${res[redis,$P,get]}" | tr ' ' '\n' | grep . | median)
        printf '%-22s %4s %12.0f %12.0f %8s %8s\n' redis-server "$P" "$rs" "$rg" 1.00 1.00
        for iso in $ISOLATIONS; do
                vs=$(echo "${res[vkd-$iso,$P,set]}" | tr ' ' '\n' | grep . | median)
                vg=$(echo "${res[vkd-$iso,$P,get]}" | tr ' ' '\n' | grep . | median)
                printf '%-22s %4s %12.0f %12.0f %8.2f %8.2f\n' "vkd ($iso)" "$P" "$vs" "$vg" \
                        "$(echo "$vs / $rs" | bc -l)" "$(echo "$vg / $rg" | bc -l)"
        done
done

# Memory per key: KEYS small keys ("key:<n>" -> "val:<n>") by --pipe.
python3 - "$KEYS" >"$tmp/keys.resp" <<'PY'
import sys
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    k = b"key:%d" % i
    v = b"val:%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
PY
rss() { awk '/VmRSS/{print $2 * 1024}' "/proc/$1/status"; }
used() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/{print $2+0}'; }
measure() {
        local u0 r0 u1 r1
        u0=$(used "$PORT"); r0=$(rss "$PID")
        redis-cli -p "$PORT" --pipe <"$tmp/keys.resp" >/dev/null
        u1=$(used "$PORT"); r1=$(rss "$PID")
        printf '%-22s %14.1f %14.1f\n' "$1" "$(echo "($u1 - $u0) / $KEYS" | bc -l)" \
                "$(echo "($r1 - $r0) / $KEYS" | bc -l)"
}
echo
echo "memory per key, $KEYS keys like key:123456 -> val:123456 (bytes/key)"
printf '%-22s %14s %14s\n' server used_memory RSS
start_redis
measure redis-server
stop
start_vkd privileged
measure vkd
stop
