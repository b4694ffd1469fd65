#!/bin/sh
# Every C file of the tree as .clang-format says (style.md, "Format"): clang-format --dry-run
# lists each line that differs, and any difference fails. Fix with
#   clang-format -i $(git ls-files '*.c' '*.h')
# usage: check_format.sh SOURCE_DIR
. "$(dirname "$0")/vkdskip.sh"
cd "$1" || exit 1
command -v clang-format >/dev/null 2>&1 || vkd_skip clang_format/no-clang-format "clang-format is not installed"
files=$(find vkd services tests -name '*.[ch]' | sort)
out=$(clang-format --dry-run --Werror $files 2>&1)
if [ -n "$out" ]; then
        printf '%s\n' "$out" | grep -E '^[^ ].*: (warning|error):' | head -40
        echo "FAIL: $(printf '%s\n' "$out" | grep -cE ': (warning|error):') lines differ from .clang-format"
        exit 1
fi
echo "ok: $(echo $files | wc -w) files formatted as .clang-format says"
