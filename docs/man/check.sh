#!/bin/sh
# Checks built man pages: groff with every warning on (-ww) and man-db's --warnings must print
# nothing for any page. Both exit 0 on warnings, so any output is a failure. Exits 77 (skipped)
# when a tool is missing, saying which.
# usage: check.sh PAGE...   |   check.sh --missing TOOL
set -u
if [ "${1:-}" = --missing ]; then
        echo "SKIP: $2 is not installed (Debian package: $2): the man pages were not built"
        exit 77
fi
[ $# -gt 0 ] || { echo "no man pages given"; exit 1; }
for tool in groff man; do
        command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (groff-base, man-db)"; exit 77; }
done
export LC_ALL=C.UTF-8 MANWIDTH=80
status=0
for p in "$@"; do
        out=$(groff -ww -z -man -Tutf8 "$p" 2>&1)
        [ -z "$out" ] || { printf '%s: groff:\n%s\n' "$p" "$out"; status=1; }
        out=$(man --warnings -l "$p" 2>&1 >/dev/null)
        [ -z "$out" ] || { printf '%s: man --warnings:\n%s\n' "$p" "$out"; status=1; }
        # the NAME line is what whatis/apropos index
        man -l "$p" 2>/dev/null | grep -q ' - ' || { echo "$p: no NAME line"; status=1; }
        echo "checked $p"
done
exit $status
