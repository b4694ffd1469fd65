#!/bin/sh
# Checks that `systemd-analyze security --offline=yes UNIT` rates the unit's exposure at most
# MAX (0.0 best, 10.0 worst). Exits 77 (skipped), saying why, without a systemd-analyze that
# has --offline (systemd 250 or later); under CI=true a failure (tests/lib/vkdskip.sh).
# usage: unit-security.sh UNIT MAX
set -u
. "$(dirname "$0")/../tests/lib/vkdskip.sh"
unit=${1:?unit} max=${2:?max}
command -v systemd-analyze >/dev/null ||
        vkd_skip unit_security/no-systemd-analyze "systemd-analyze is not installed (Debian: systemd)"
out=$(cd "$(dirname "$unit")" && systemd-analyze security --offline=yes --no-pager "$(basename "$unit")" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E '✗|Overall'
case $out in
*"unrecognized option"*)
        vkd_skip unit_security/no-offline "systemd-analyze has no --offline (systemd < 250)" ;;
esac
[ $rc -eq 0 ] || { printf '%s\n' "$out"; echo "FAIL: systemd-analyze exited $rc"; exit 1; }
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "FAIL: no exposure level in the output"; exit 1; }
if awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
        echo "PASS: exposure $score <= $max"
else
        echo "FAIL: exposure $score > $max"
        exit 1
fi
