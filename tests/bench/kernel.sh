#!/usr/bin/env bash
# Kernel micro-benchmarks (bench_kernel), medians of R runs, per isolation
# mode: coroutine switch (two threads of one process yielding to each other),
# thread spawn+join, process spawn+teardown. Then instructions per switch from
# callgrind, which counts instructions and so repeats exactly on a noisy
# machine: the difference between two run lengths divided by the extra
# switches, so start-up cost cancels out.
#
# usage: kernel.sh [-r REPS] [-n OPS]     (BUILD_DIR: the build, default build/)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
source "$here/lib.sh"
bk=${BUILD_DIR:-$root/build}/tests/bench/bench_kernel
reps=5
ops=2000000
while getopts "r:n:" o; do
        case $o in
        r) reps=$OPTARG ;;
        n) ops=$OPTARG ;;
        *) exit 2 ;;
        esac
done
[[ -x $bk ]] || { echo "kernel.sh: $bk: build first" >&2; exit 1; }


printf "%-8s %-13s %10s\n" what isolation "ns/op"
for mode in privileged isolated unprivileged; do
        for what in switch thread proc; do
                n=$ops
                [[ $what == proc && $mode != privileged ]] && n=$((ops / 10))
                runs=()
                for _ in $(seq "$reps"); do
                        runs+=("$("$bk" "$what" "$n" "$mode" | awk '{print $7}')")
                done
                v=$(median "${runs[@]}")
                printf "%-8s %-13s %10.1f\n" "$what" "$mode" "$v"
        done
done

if command -v valgrind >/dev/null; then
        count() {
                valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bk" switch "$1" privileged \
                        2>&1 | awk '/Collected/ {print $4}'
        }
        a=$(count 100000)
        b=$(count 200000)
        # each run switches 2*N times
        awk -v a="$a" -v b="$b" 'BEGIN { printf "instructions per switch (callgrind): %.1f\n", (b - a) / 200000 }'
else
        echo "valgrind not installed: no instruction count" >&2
fi
