# How a shell test says it cannot run here: the twin of vkdskip.py (which explains the rules).
# Source it (POSIX sh), then: vkd_skip TEST/REASON why...
# Exits 77 (ctest: skipped) saying why; under CI=true exits 1 instead, unless TEST/REASON is
# one of the ids in VKD_CI_ALLOWED_SKIPS (set and justified in .ci/run).
vkd_skip() {
        vkd_skip_what=$1
        shift
        if [ "${CI:-}" = true ]; then
                vkd_skip_ok=
                for vkd_skip_a in ${VKD_CI_ALLOWED_SKIPS:-}; do
                        if [ "$vkd_skip_a" = "$vkd_skip_what" ]; then
                                vkd_skip_ok=1
                        fi
                done
                if [ -z "$vkd_skip_ok" ]; then
                        echo "FAIL: $vkd_skip_what: $* (under CI=true a skip is a failure;" \
                                "VKD_CI_ALLOWED_SKIPS in .ci/run lists the accepted ones)"
                        exit 1
                fi
        fi
        echo "SKIP: $vkd_skip_what: $*"
        exit 77
}
