#!/usr/bin/env bash
# The skip rule itself (vkdskip.py and vkdskip.sh beside this file): a skip exits 77 normally;
# under CI=true it exits 1 with its reason, unless its id is in VKD_CI_ALLOWED_SKIPS; the
# allow-list matches whole ids only. Also checks that .ci/run sets CI=true and that no test
# skips around the helpers (a bare exit 77), which would escape the rule.
# usage: check_skip.sh SOURCE_DIR PYTHON
set -uo pipefail
src=${1:?source dir}
py=${2:-python3}
lib=$src/tests/lib
failed=0

# expect WANT_RC WANT_TEXT ENV... -- CMD...: runs CMD with only ENV (and PATH) set
expect() {
        local want=$1 text=$2
        shift 2
        local envs=()
        while [ "$1" != -- ]; do
                envs+=("$1")
                shift
        done
        shift
        local out rc
        out=$(env -i PATH="$PATH" "${envs[@]}" "$@" 2>&1)
        rc=$?
        if [ "$rc" != "$want" ] || [[ $out != *"$text"* ]]; then
                echo "FAIL: [${envs[*]}] $*: exit $rc, want $want with '$text'; output: $out"
                failed=1
        else
                echo "ok: [${envs[*]}] exit $rc: $out"
        fi
}

pyskip=(
        "$py" -c 'import sys; sys.path.insert(0, sys.argv[1]); from vkdskip import skip
try:
    skip("demo/no-tool", "the tool is not installed")
finally:
    print("cleanup ran")' "$lib")
shskip=(bash -c 'set -euo pipefail; . "$1/vkdskip.sh"
vkd_skip demo/no-tool "the tool is not installed"; echo "went on"' _ "$lib")
shskip_posix=(sh -c '. "$1/vkdskip.sh"; vkd_skip demo/no-tool "the tool is not installed"' _ "$lib")

for cmd in pyskip shskip shskip_posix; do
        declare -n c=$cmd
        expect 77 "SKIP: demo/no-tool: the tool is not installed" -- "${c[@]}"
        expect 77 "SKIP: demo/no-tool" CI=false -- "${c[@]}"
        expect 1 "FAIL: demo/no-tool: the tool is not installed" CI=true -- "${c[@]}"
        expect 77 "SKIP: demo/no-tool" CI=true "VKD_CI_ALLOWED_SKIPS=other/x demo/no-tool" \
                -- "${c[@]}"
        expect 1 "FAIL: demo/no-tool" CI=true "VKD_CI_ALLOWED_SKIPS=demo demo/no-tool-2 demo/no" \
                -- "${c[@]}"
        unset -n c
done
expect 1 "cleanup ran" CI=true -- "${pyskip[@]}"

# A real test through ctest's eyes: http11_clients without wrk is a skip, not a pass (it once
# printed "skip" and exited 0), and under CI=true a failure.
grep -q 'skip("http11_clients/no-wrk"' "$src/tests/integration/http11_test.py" ||
        { echo "FAIL: http11_test.py no longer skips through vkdskip without wrk"; failed=1; }

# .ci/run: CI=true, and every allowed id names a skip that exists.
if ! grep -qx 'export CI=true' "$src/.ci/run"; then
        echo "FAIL: .ci/run does not export CI=true"
        failed=1
fi
allowed=$(sed -n 's/^export VKD_CI_ALLOWED_SKIPS="\(.*\)"$/\1/p' "$src/.ci/run")
for id in $allowed; do
        grep -rqF -- "$id" "$src/tests" "$src/packaging" --include=*.py --include=*.sh ||
                { echo "FAIL: .ci/run allows $id, which no test skips with"; failed=1; }
done

# Nothing skips around the helpers.
bare=$(grep -rnE 'exit 77|exit\(77\)|return 77|return SKIP\b' "$src/tests" "$src/packaging" \
        --include=*.py --include=*.sh | grep -v "^$lib/")
if [ -n "$bare" ]; then
        echo "FAIL: skips that bypass tests/lib/vkdskip (CI would never see them):"
        echo "$bare"
        failed=1
fi

[ $failed = 0 ] && echo PASS
exit $failed
