#!/usr/bin/env bash
# Runs one client against a freshly started server and checks that both end
# well; integration tests and benchmarks use it to drive any server that
# follows the vkd test-server contract. The server is started as
# "SERVER_CMD... --listen 127.0.0.1:0"; its readiness signal is the first line
# it prints, "listening HOST:PORT", waited for with a timeout (never a sleep).
# In the client's arguments @ADDR@ becomes that HOST:PORT and @PID@ the
# server's pid. When the client is done the server gets SIGTERM and must exit
# 0 within a bound; the script exits 0 only if the client and server both did.
#
# usage: run_with_server.sh [--ready-timeout S] [--client-timeout S]
#                           SERVER_CMD... -- CLIENT_CMD...
#
# SERVER_CMD may start with a wrapper that execs the server (taskset -c 0
# ...), so @PID@ is still the server itself.
set -euo pipefail

prog=${0##*/}
ready_timeout=10
client_timeout=300
stop_timeout=10

usage() {
        echo "usage: $prog [--ready-timeout S] [--client-timeout S]" \
                "SERVER_CMD... -- CLIENT_CMD..." >&2
        exit 2
}

while (($#)); do
        case $1 in
        --ready-timeout) ready_timeout=${2:?}; shift 2 ;;
        --client-timeout) client_timeout=${2:?}; shift 2 ;;
        *) break ;;
        esac
done
server=()
while (($#)) && [[ $1 != -- ]]; do
        server+=("$1")
        shift
done
(($# >= 2 && ${#server[@]} >= 1)) || usage
shift
client=("$@")

tmp=$(mktemp -d)
server_pid=
drain_pid=
cleanup() {
        if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
                kill -KILL "$server_pid" 2>/dev/null || true
                { wait "$server_pid"; } 2>/dev/null || true
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The server writes into a FIFO. Opening it blocks both ends until both exist,
# so there is no race; a server that dies before its line gives EOF, not a hang.
mkfifo "$tmp/stdout"
"${server[@]}" --listen 127.0.0.1:0 >"$tmp/stdout" &
server_pid=$!
exec {server_out}<"$tmp/stdout"

line=
read_rc=0
read -r -t "$ready_timeout" -u "$server_out" line || read_rc=$?
if ((read_rc != 0)) || [[ ! $line =~ ^listening\ ([^[:space:]]+)$ ]]; then
        if ((read_rc > 128)); then
                echo "$prog: no 'listening' line from ${server[*]} within ${ready_timeout} s" >&2
        elif [[ -n $line ]]; then
                echo "$prog: expected 'listening HOST:PORT' from the server, got: $line" >&2
        else
                server_rc=0
                wait "$server_pid" || server_rc=$?
                echo "$prog: ${server[*]} exited ($server_rc) before it was listening" >&2
        fi
        exit 1
fi
addr=${BASH_REMATCH[1]}

# Anything more the server prints goes on to our stdout, so it never blocks.
cat <&"$server_out" &
drain_pid=$!
exec {server_out}<&-

args=()
for a in "${client[@]}"; do
        a=${a//@ADDR@/$addr}
        args+=("${a//@PID@/$server_pid}")
done
client_rc=0
timeout --kill-after=5 "$client_timeout" "${args[@]}" || client_rc=$?
if ((client_rc == 124)); then
        echo "$prog: the client did not finish within ${client_timeout} s" >&2
elif ((client_rc != 0)); then
        echo "$prog: the client exited $client_rc" >&2
fi

server_rc=0
if kill -TERM "$server_pid" 2>/dev/null; then
        # Bounded wait for the exit: poll whether the pid is gone (bash reaps
        # its children as they die and keeps their status for the wait below).
        for ((i = 0; i < stop_timeout * 50; i++)); do
                kill -0 "$server_pid" 2>/dev/null || break
                sleep 0.02
        done
        if kill -0 "$server_pid" 2>/dev/null; then
                echo "$prog: the server ignored SIGTERM for ${stop_timeout} s" >&2
                kill -KILL "$server_pid" 2>/dev/null || true
        fi
        { wait "$server_pid"; } 2>/dev/null || server_rc=$?
        if ((server_rc != 0)); then
                echo "$prog: the server exited $server_rc on SIGTERM (want 0)" >&2
        fi
else
        { wait "$server_pid"; } 2>/dev/null || server_rc=$?
        echo "$prog: the server was gone before the client finished (exit $server_rc)" >&2
        ((server_rc != 0)) || server_rc=1
fi
server_pid=
wait "$drain_pid" || true

((client_rc == 0 && server_rc == 0))
