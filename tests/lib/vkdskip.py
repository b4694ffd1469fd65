"""How a test says it cannot run here (the shell twin is vkdskip.sh, beside this file).

skip(what, why) ends the test with 77, which ctest reports as skipped (every test that may skip
sets SKIP_RETURN_CODE 77), saying why. Under CI=true a skip is a failure instead: exit 1 with
the reason, since CI installs every tool and runs as root, and a check that silently did not run
is a check that cannot fail. The only exceptions are the skips named in VKD_CI_ALLOWED_SKIPS
(space-separated ids), which .ci/run sets and justifies one by one.

`what` is the skip's id, "TEST/REASON" (e.g. "http11_clients/no-wrk"): the ctest name and a
word for the missing thing, so an allow-list entry names exactly one skip of one test.
"""

import os
import sys

SKIP = 77  # ctest SKIP_RETURN_CODE


def skip_code(what, why):
    """Prints the verdict on the skip `what` and returns the exit status it calls for: 77, or
    1 under CI=true unless `what` is allowed there."""
    if os.environ.get("CI") == "true" and what not in os.environ.get(
            "VKD_CI_ALLOWED_SKIPS", "").split():
        print(f"FAIL: {what}: {why} (under CI=true a skip is a failure; "
              f"VKD_CI_ALLOWED_SKIPS in .ci/run lists the accepted ones)", flush=True)
        return 1
    print(f"SKIP: {what}: {why}", flush=True)
    return SKIP


def skip(what, why):
    """Ends the test: skip_code(what, why) as the exit status (SystemExit, so finally blocks
    and atexit handlers still run)."""
    sys.exit(skip_code(what, why))
