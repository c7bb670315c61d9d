"""Low-level helpers: running commands, entering network namespaces from a thread.

Everything here acts only on namespaces the lab created. Nothing is ever configured in the
root network namespace: interfaces are created directly inside lab namespaces with
`ip -n NS ...`, and code that needs a socket inside a namespace enters it from a short-lived
helper thread (a network namespace is a per-thread attribute on Linux), so the calling
thread never leaves the namespace it started in.
"""

import ctypes
import os
import subprocess
import threading

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)


class CommandError(RuntimeError):
    def __init__(self, cmd, result):
        self.cmd = cmd
        self.result = result
        super().__init__(
            f"command failed (rc={result.returncode}): {' '.join(map(str, cmd))}\n"
            f"stdout: {result.stdout.strip()}\nstderr: {result.stderr.strip()}")


def run(cmd, check=True, timeout=30, input=None, env=None):
    """Runs cmd (a list), returns CompletedProcess with text stdout/stderr."""
    cmd = [str(c) for c in cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                            env=env)
    if check and result.returncode != 0:
        raise CommandError(cmd, result)
    return result


def ns_path(name):
    return os.path.join(NETNS_DIR, name)


def ns_exists(name):
    return os.path.exists(ns_path(name))


def list_netns():
    """Names of all named network namespaces (ip netns list)."""
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def setns(fd, nstype=CLONE_NEWNET):
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def call_in_netns(name, fn, *args, **kwargs):
    """Calls fn(*args, **kwargs) in a fresh thread that first enters netns `name`.

    Sockets created by fn belong to that namespace for their whole life, whatever thread
    uses them later. The helper thread exits afterwards, so no thread is left behind in a
    foreign namespace.
    """
    box = {}

    def target():
        try:
            fd = os.open(ns_path(name), os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd)
            finally:
                os.close(fd)
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed back to the caller below
            box["error"] = e

    t = threading.Thread(target=target, name=f"netns:{name}", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def netns_pids(name):
    out = run(["ip", "netns", "pids", name], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


_PR_SET_PDEATHSIG = 1


def pdeathsig_preexec(sig):
    """A Popen preexec_fn: the child gets `sig` when the thread that forked it exits.

    Use only from the main thread (pdeathsig fires on the *thread* exit), which is where
    tests and scripts start processes.
    """
    def fn():
        _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    return fn


def in_main_thread():
    return threading.current_thread() is threading.main_thread()
