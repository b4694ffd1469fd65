# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run): CPU pinning, medians,
# key=value fields. Bash.

# bench_pin_cpus: the first two CPUs we may run on (from a list such as
# "0-3,8") give server_pin and client_pin (taskset prefixes, empty when fewer
# than two CPUs or no taskset) and a sentence in $pinning.
# shellcheck disable=SC2034 # the results are for the sourcing script
bench_pin_cpus() {
        local ranges r lo hi c
        local -a cpus=()
        IFS=, read -ra ranges <<<"$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)"
        for r in "${ranges[@]}"; do
                lo=${r%-*}
                hi=${r#*-}
                for ((c = lo; c <= hi && ${#cpus[@]} < 2; c++)); do
                        cpus+=("$c")
                done
        done
        server_pin=()
        client_pin=()
        if ((${#cpus[@]} >= 2)) && command -v taskset >/dev/null; then
                server_pin=(taskset -c "${cpus[0]}")
                client_pin=(taskset -c "${cpus[1]}")
                pinning="server on CPU ${cpus[0]}, client on CPU ${cpus[1]}"
        else
                pinning="not pinned (fewer than 2 CPUs or no taskset)"
        fi
}

# median VALUE...: the median of the numbers given.
median() {
        printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
                END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# median_file FILE: the median of the numbers in FILE, one a line.
median_file() {
        local -a v
        mapfile -t v <"$1"
        median "${v[@]}"
}

# field KEY LINE: the value of KEY=VALUE in a line of key=value fields.
field() {
        local v
        v=$(sed -n "s/.*[ :]$1=\([^ ]*\).*/\1/p" <<<"$2")
        [[ -n $v ]] || {
                echo "${prog:-bench}: no $1 in: $2" >&2
                exit 1
        }
        echo "$v"
}
