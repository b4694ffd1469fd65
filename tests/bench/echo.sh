#!/usr/bin/env bash
# Compares vkd-echo with raw_echo, the raw epoll floor, in one run: for each of
# R repetitions it runs both servers one after the other, each fresh, through
# echo_bench's throughput mode (C connections playing ping-pong with S-byte
# messages for T seconds) and then, on another fresh instance, its idle mode
# (I connections held open; server RSS growth per connection). It prints the
# median of each figure per server and the vkd/raw ratio. Servers bind
# 127.0.0.1 only; with two or more CPUs the server and the client are pinned
# to different ones. Every step is bounded in time (see run_with_server.sh).
#
# usage: echo.sh [-r REPS] [-t SECONDS] [-c CONNS] [-s SIZE] [-i IDLE_CONNS]
#                [VKD_ECHO [RAW_ECHO]]
# Paths may also come from the environment: VKD_ECHO, RAW_ECHO, ECHO_BENCH,
# or BUILD_DIR for all three (default: the repository's build/).
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/lib.sh
source "$here/lib.sh"
root=$(cd "$here/../.." && pwd)
run_with_server=$root/tests/integration/run_with_server.sh

reps=5
seconds=5
conns=100
size=64
idle_conns=10000

usage() {
        echo "usage: $prog [-r REPS] [-t SECONDS] [-c CONNS] [-s SIZE] [-i IDLE_CONNS]" \
                "[VKD_ECHO [RAW_ECHO]]" >&2
        exit 2
}

while getopts "r:t:c:s:i:h" opt; do
        case $opt in
        r) reps=$OPTARG ;;
        t) seconds=$OPTARG ;;
        c) conns=$OPTARG ;;
        s) size=$OPTARG ;;
        i) idle_conns=$OPTARG ;;
        *) usage ;;
        esac
done
shift $((OPTIND - 1))
(($# <= 2)) || usage
for n in "$reps" "$seconds" "$conns" "$size" "$idle_conns"; do
        [[ $n =~ ^[1-9][0-9]*$ ]] || usage
done

build=${BUILD_DIR:-$root/build}
vkd_echo=${1:-${VKD_ECHO:-$build/services/echo/vkd-echo}}
raw_echo=${2:-${RAW_ECHO:-$build/tests/bench/raw_echo}}
echo_bench=${ECHO_BENCH:-$build/tests/bench/echo_bench}
for f in "$vkd_echo" "$raw_echo" "$echo_bench"; do
        if [[ ! -x $f ]]; then
                echo "$prog: $f: not an executable (build first, or pass paths)" >&2
                exit 1
        fi
done

# Each side needs a descriptor per idle connection, plus a few.
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=1048576
if ((hard < idle_conns + 64)); then
        echo "$prog: the hard limit on open files ($hard) is too low for $idle_conns" \
                "connections" >&2
        exit 1
fi
ulimit -n "$hard"

bench_pin_cpus


# bench SERVER ARGS...: one fresh server, one echo_bench run; prints its line.
bench() {
        local server=$1 out
        shift
        out=$("$run_with_server" --client-timeout $((seconds + 120)) \
                "${server_pin[@]}" "$server" -- \
                "${client_pin[@]}" "$echo_bench" --connect @ADDR@ "$@") || {
                echo "$prog: echo_bench $* against $server failed" >&2
                exit 1
        }
        grep '^echo_bench: ' <<<"$out" || {
                echo "$prog: no result line from echo_bench $*; it printed: $out" >&2
                exit 1
        }
}


declare -A msgs mbs idle
names=(raw vkd)
declare -A path=([raw]=$raw_echo [vkd]=$vkd_echo)

echo "$prog: $reps repetitions; throughput: $conns conns x $size B ping-pong for $seconds s;" \
        "idle: $idle_conns conns; $pinning" >&2
for ((rep = 1; rep <= reps; rep++)); do
        for name in "${names[@]}"; do
                line=$(bench "${path[$name]}" --mode throughput --conns "$conns" \
                        --size "$size" --seconds "$seconds")
                m=$(field msg_per_s "$line")
                b=$(field mb_per_s "$line")
                line=$(bench "${path[$name]}" --mode idle --conns "$idle_conns" --pid @PID@ \
                        --seconds 60)
                i=$(field rss_per_conn_bytes "$line")
                msgs[$name]+="$m "
                mbs[$name]+="$b "
                idle[$name]+="$i "
                printf '%s: rep %d/%d %s: %s msg/s, %s MB/s, idle %s B/conn\n' \
                        "$prog" "$rep" "$reps" "$name" "$m" "$b" "$i" >&2
        done
done

declare -A med_m med_b med_i
for name in "${names[@]}"; do
        # shellcheck disable=SC2086 # the lists are space-separated numbers
        med_m[$name]=$(median ${msgs[$name]})
        # shellcheck disable=SC2086
        med_b[$name]=$(median ${mbs[$name]})
        # shellcheck disable=SC2086
        med_i[$name]=$(median ${idle[$name]})
done

printf '\necho benchmark, medians of %d runs (%d conns x %d B, %d s; idle %d conns)\n' \
        "$reps" "$conns" "$size" "$seconds" "$idle_conns"
printf '%-8s %14s %10s %16s\n' server msg/s MB/s idle_B/conn
printf '%-8s %14.0f %10.2f %16.0f\n' raw "${med_m[raw]}" "${med_b[raw]}" "${med_i[raw]}"
printf '%-8s %14.0f %10.2f %16.0f\n' vkd "${med_m[vkd]}" "${med_b[vkd]}" "${med_i[vkd]}"
awk -v m="${med_m[vkd]}" -v rm="${med_m[raw]}" -v b="${med_b[vkd]}" -v rb="${med_b[raw]}" \
        -v i="${med_i[vkd]}" -v ri="${med_i[raw]}" 'BEGIN {
                idle = "n/a"
                if (ri > 0)
                        idle = sprintf("%.2f", i / ri)
                printf "%-8s %14.2f %10.2f %16s\n", "vkd/raw", rm ? m / rm : 0, rb ? b / rb : 0,
                        idle
        }'
