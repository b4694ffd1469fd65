#!/usr/bin/env bash
# Prices vkd's process isolation in one run. For each of R repetitions it
# starts vkd-echo fresh under each isolation mode (privileged, isolated,
# unprivileged, and unprivileged with the kernel arena on 4 KiB pages) and drives it with isolation_bench's pipelined load (C
# connections, each keeping D requests of S bytes in flight, every byte
# checked, T seconds after a 1 s warm-up); it prints the median requests/s per
# mode and its ratio to privileged, with what the server's own counters say per
# request (dispatches, protection changes). Then the cost of one process
# switch: isolation_bench --switch (ns and protection system calls per
# dispatch, medians of R) and bench_kernel's thread-switch and process
# figures, under each mode. Then the floor: isolation_bench --primitive, the
# two mprotect calls of an isolated switch with nothing of vkd around them
# (1, 3 and 10 resident pages a heap; and a connection's layout, two front
# pages and two 16 KiB rings at the top, closed in one call or split as the
# kernel does), and per mode the best ratio the
# pipelined run could reach if a dispatch cost only its process switch:
# ns/req privileged against that plus the switch's extra ns over privileged
# divided by the requests per dispatch. Last, system calls per request, counted by perf on
# the server during one short extra run per mode (when perf may count
# tracepoints here). Servers bind 127.0.0.1 only; with two or more CPUs the
# server and the client are pinned to different ones. Every step is bounded
# in time (see run_with_server.sh).
#
# usage: isolation.sh [-r REPS] [-t SECONDS] [-c CONNS] [-d DEPTH] [-s SIZE]
#                     [-n SWITCHES]
# Paths come from the environment: VKD_ECHO, ISOLATION_BENCH, BENCH_KERNEL, or
# BUILD_DIR for all three (default: the repository's build/).
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
depth=16
size=64
switches=20000

usage() {
        echo "usage: $prog [-r REPS] [-t SECONDS] [-c CONNS] [-d DEPTH] [-s SIZE] [-n SWITCHES]" >&2
        exit 2
}

while getopts "r:t:c:d:s:n:h" opt; do
        case $opt in
        r) reps=$OPTARG ;;
        t) seconds=$OPTARG ;;
        c) conns=$OPTARG ;;
        d) depth=$OPTARG ;;
        s) size=$OPTARG ;;
        n) switches=$OPTARG ;;
        *) usage ;;
        esac
done
shift $((OPTIND - 1))
(($# == 0)) || usage
for n in "$reps" "$seconds" "$conns" "$depth" "$size" "$switches"; do
        [[ $n =~ ^[1-9][0-9]*$ ]] || usage
done

build=${BUILD_DIR:-$root/build}
vkd_echo=${VKD_ECHO:-$build/services/echo/vkd-echo}
isolation_bench=${ISOLATION_BENCH:-$build/tests/bench/isolation_bench}
bench_kernel=${BENCH_KERNEL:-$build/tests/bench/bench_kernel}
for f in "$vkd_echo" "$isolation_bench" "$bench_kernel"; do
        if [[ ! -x $f ]]; then
                echo "$prog: $f: not an executable (build first, or set the paths)" >&2
                exit 1
        fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bench_pin_cpus



# A mode is an isolation name, or unprivileged-4k: unprivileged with the
# kernel arena kept on 4 KiB pages (VKD_HUGE_PAGES=0), to show what the huge
# pages save. in_mode MODE CMD... runs CMD in MODE's environment; iso MODE is
# its isolation name.
in_mode() {
        local mode=$1
        shift
        if [[ $mode == *-4k ]]; then
                VKD_HUGE_PAGES=0 "$@"
        else
                "$@"
        fi
}
iso() { echo "${1%-4k}"; }

# serve MODE CLIENT...: one fresh vkd-echo in MODE (with --stats), one client
# run; sets $client_line (the client's isolation_bench line) and $stats_line
# (the server's counters at exit).
serve() {
        local mode=$1 out
        shift
        if ! out=$(in_mode "$mode" "$run_with_server" --client-timeout $((seconds + 120)) \
                "${server_pin[@]}" "$vkd_echo" --isolation "$(iso "$mode")" --stats -- \
                "${client_pin[@]}" "$@" 2>"$tmp/stderr"); then
                cat "$tmp/stderr" >&2
                echo "$prog: the $mode run failed" >&2
                exit 1
        fi
        client_line=$(grep '^isolation_bench: ' <<<"$out")
        stats_line=$(grep '^vkd-echo: stats ' "$tmp/stderr") || {
                echo "$prog: no counters from vkd-echo" >&2
                exit 1
        }
}

modes=(privileged isolated unprivileged unprivileged-4k)
declare -A rps per_disp prot_req ns_switch prot_switch ns_prim
prim_pages=(1 3 10)
protection=

echo "$prog: $reps repetitions; echo, pipelined: $conns conns x depth $depth x $size B" \
        "for $seconds s; $pinning" >&2
for ((rep = 1; rep <= reps; rep++)); do
        for mode in "${modes[@]}"; do
                serve "$mode" "$isolation_bench" --connect @ADDR@ --conns "$conns" \
                        --depth "$depth" --size "$size" --seconds "$seconds" --warmup 1
                rate=$(field req_per_s "$client_line")
                total=$(field requests_total "$client_line")
                dispatches=$(field dispatches "$stats_line")
                protects=$(field protects "$stats_line")
                [[ $mode != unprivileged ]] || protection=$(field protection "$stats_line")
                rps[$mode]+="$rate "
                per_disp[$mode]+="$(awk -v r="$total" -v d="$dispatches" \
                        'BEGIN { printf "%.2f", d ? r / d : 0 }') "
                prot_req[$mode]+="$(awk -v r="$total" -v p="$protects" \
                        'BEGIN { printf "%.4f", r ? p / r : 0 }') "
                printf '%s: rep %d/%d %-12s %s req/s\n' "$prog" "$rep" "$reps" "$mode" \
                        "$rate" >&2
        done
        for mode in "${modes[@]}"; do
                line=$(in_mode "$mode" "$isolation_bench" --switch "$switches" \
                        --isolation "$(iso "$mode")")
                ns_switch[$mode]+="$(field ns_per_dispatch "$line") "
                prot_switch[$mode]+="$(field protects_per_dispatch "$line") "
        done
        for pages in "${prim_pages[@]}"; do
                line=$("${client_pin[@]}" "$isolation_bench" --primitive "$switches" \
                        --pages "$pages")
                ns_prim[$pages]+="$(field ns_per_switch "$line") "
                ns_prim[syscall]+="$(field ns_per_syscall "$line") "
        done
        for split in one split; do
                line=$("${client_pin[@]}" "$isolation_bench" --primitive "$switches" \
                        --pages 2 --rings 16384 $([[ $split == one ]] || echo --split))
                ns_prim[$split]+="$(field ns_per_switch "$line") "
        done
done

declare -A med
for mode in "${modes[@]}"; do
        # shellcheck disable=SC2086 # the lists are space-separated numbers
        med[$mode]=$(median ${rps[$mode]})
done
base=${med[privileged]}

printf '\nisolation benchmark: echo, pipelined (%d conns x %d in flight x %d B), %d s,' \
        "$conns" "$depth" "$size" "$seconds"
printf ' medians of %d runs; kernel write protection by %s\n' "$reps" "$protection"
printf '%-16s %12s %8s %8s %14s %18s\n' isolation req/s ratio ns/req req/dispatch \
        protect_calls/req
for mode in "${modes[@]}"; do
        # shellcheck disable=SC2086
        printf '%-16s %12.0f %8.3f %8.1f %14.2f %18.4f\n' "$mode" "${med[$mode]}" \
                "$(awk -v m="${med[$mode]}" -v b="$base" 'BEGIN { print b ? m / b : 0 }')" \
                "$(awk -v m="${med[$mode]}" 'BEGIN { print m ? 1e9 / m : 0 }')" \
                "$(median ${per_disp[$mode]})" "$(median ${prot_req[$mode]})"
done

printf '\nprocess switch (isolation_bench --switch %d, 64 processes), medians of %d runs\n' \
        "$switches" "$reps"
printf '%-16s %12s %18s %22s\n' isolation ns/switch ns_over_privileged protect_calls/switch
# shellcheck disable=SC2086
sbase=$(median ${ns_switch[privileged]})
for mode in "${modes[@]}"; do
        # shellcheck disable=SC2086
        ns=$(median ${ns_switch[$mode]})
        # shellcheck disable=SC2086
        printf '%-16s %12.1f %18.1f %22.2f\n' "$mode" "$ns" \
                "$(awk -v n="$ns" -v b="$sbase" 'BEGIN { print n - b }')" \
                "$(median ${prot_switch[$mode]})"
done

printf '\nthe floor: an isolated switch'"'"'s two mprotect calls alone (isolation_bench'
printf ' --primitive %d, 64 heaps of 64 KiB), medians of %d runs;' "$switches" "$reps"
# shellcheck disable=SC2086
printf ' a bare system call: %.1f ns\n' "$(median ${ns_prim[syscall]})"
printf '%-16s %12s\n' resident_pages ns/switch
for pages in "${prim_pages[@]}"; do
        # shellcheck disable=SC2086
        printf '%-16s %12.1f\n' "$pages" "$(median ${ns_prim[$pages]})"
done
printf 'a connection (2 front pages, two 16 KiB rings at the top): closed in one call'
# shellcheck disable=SC2086
printf ' %.1f ns/switch, split at the front and the rings (isolate.c) %.1f ns/switch\n' \
        "$(median ${ns_prim[one]})" "$(median ${ns_prim[split]})"
printf '\nbest ratio at this depth if a dispatch cost only its process switch\n'
printf '%-16s %8s %10s\n' isolation ratio bound
# shellcheck disable=SC2086
base_ns=$(awk -v b="$base" 'BEGIN { print b ? 1e9 / b : 0 }')
for mode in "${modes[@]}"; do
        # shellcheck disable=SC2086
        printf '%-16s %8.3f %10.3f\n' "$mode" \
                "$(awk -v m="${med[$mode]}" -v b="$base" 'BEGIN { print b ? m / b : 0 }')" \
                "$(awk -v n="$base_ns" -v s="$(median ${ns_switch[$mode]})" -v p="$sbase" \
                        -v d="$(median ${per_disp[$mode]})" \
                        'BEGIN { print d ? n / (n + (s - p) / d) : 0 }')"
done

printf '\nbench_kernel (switch: two threads of one process yield %d times each;' "$switches"
printf ' proc: %d processes spawned, run, ended)\n' "$switches"
for what in switch proc; do
        for mode in "${modes[@]}"; do
                printf '%-16s ' "$mode"
                in_mode "$mode" "$bench_kernel" "$what" "$switches" "$(iso "$mode")"
        done
done

# System calls per request: perf counts the server's syscall tracepoints
# while the client runs. The counting slows the server, but the batches are
# bounded by the depth of the pipelines, so the counts per request hold.
events=raw_syscalls:sys_enter,syscalls:sys_enter_mprotect,syscalls:sys_enter_epoll_wait
events+=,syscalls:sys_enter_readv,syscalls:sys_enter_writev
printf '\nsystem calls per request (perf stat on the server, one %d s run per mode)\n' 2
if command -v perf >/dev/null && perf stat -e "$events" -o /dev/null -- true 2>/dev/null; then
        printf '%-16s %10s %10s %12s %10s %10s\n' isolation all mprotect epoll_wait readv writev
        for mode in "${modes[@]}"; do
                serve "$mode" perf stat -x, -o "$tmp/perf" -e "$events" -p @PID@ -- \
                        "$isolation_bench" --connect @ADDR@ --conns "$conns" --depth "$depth" \
                        --size "$size" --seconds 2 --warmup 0
                total=$(field requests_total "$client_line")
                # "count,,event,..." lines; their counts in the order of $events.
                mapfile -t counts < <(awk -F, '/^[0-9]/ { print $1 }' "$tmp/perf")
                ((${#counts[@]} == 5)) || {
                        echo "$prog: unexpected perf output:" >&2
                        cat "$tmp/perf" >&2
                        exit 1
                }
                printf '%-16s' "$mode"
                for c in "${counts[@]}"; do
                        awk -v c="$c" -v r="$total" 'BEGIN { printf " %10.4f", c / r }'
                done
                printf '\n'
        done
else
        echo "(perf cannot count syscall tracepoints here; see protect_calls/req above)"
fi
