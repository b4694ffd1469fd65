"""The processes a test starts (servers, daemons) never outlive it.

spawn(argv, **popen_args) is subprocess.Popen, plus three ways the process is ended with the
test, whichever way the test ends:
  - atexit: the test exits (a failed check's sys.exit, an uncaught exception, the end of the
    script): every spawned process still running is killed, with its children;
  - SIGTERM and SIGHUP (ctest's timeout, a closed terminal) become SystemExit, so finally
    blocks and atexit run instead of Python dying on the spot;
  - SIGKILL, which nothing can catch: each process is started with PR_SET_PDEATHSIG=SIGKILL, so
    the kernel kills it when the test process dies. The signal follows the thread that spawned
    it: spawn from the main thread (or from one that lives as long as the process).
"""

import atexit
import ctypes
import os
import signal
import subprocess
import sys
import threading

PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl
_started = []


def _children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == ppid:
                out.append(int(d))
    return out


def kill_tree(p):
    """SIGKILLs p's children, then p, and reaps p; nothing if p has ended already."""
    if p.poll() is not None:
        return
    for pid in _children(p.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.kill()
    p.wait()


def spawn(argv, preexec_fn=None, **kw):
    """subprocess.Popen(argv, **kw) that dies with the test (see above); preexec_fn, if any,
    runs after the parent-death signal is set."""
    parent = os.getpid()

    def die_with_parent():
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the test died before the line above
            os._exit(1)
        if preexec_fn:
            preexec_fn()

    p = subprocess.Popen(argv, preexec_fn=die_with_parent, **kw)
    _started.append(p)
    return p


def _kill_all():
    for p in _started:
        try:
            kill_tree(p)
        except OSError:
            pass


def _exit_on(sig, frame):
    sys.exit(128 + sig)


atexit.register(_kill_all)
if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(_sig) == signal.SIG_DFL:
            signal.signal(_sig, _exit_on)
