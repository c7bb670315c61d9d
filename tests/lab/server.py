"""Running quell-server and finding the Quell binaries."""

import json
import os
import signal
import socket
import subprocess
import time

from .api import ApiClient
from .netns import in_main_thread, pdeathsig_preexec, run
from .util import tail, wait_until

_LAYOUT = {
    "quell-server": "src/server/app/quell-server",
    "quell-agent": "src/agent/app/quell-agent",
    "quell": "src/cli/quell",
}


class Binaries:
    """Locates quell-server, quell-agent and quell in a build dir or an install dir.

    QUELL_BIN_DIR may point at either: a directory holding the three binaries, or a CMake
    build directory (src/server/app/quell-server, ...).
    """

    def __init__(self, bin_dir=None):
        self.bin_dir = os.path.abspath(bin_dir or os.environ.get("QUELL_BIN_DIR", "build"))

    def path(self, name):
        for candidate in (os.path.join(self.bin_dir, name),
                          os.path.join(self.bin_dir, _LAYOUT[name])):
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        return None

    def require(self, name):
        p = self.path(name)
        if p is None:
            raise FileNotFoundError(f"{name} not found under {self.bin_dir} "
                                    f"(set QUELL_BIN_DIR to the build directory)")
        return p

    def missing(self):
        return [n for n in _LAYOUT if self.path(n) is None]

    @property
    def server(self):
        return self.require("quell-server")

    @property
    def agent(self):
        return self.require("quell-agent")

    @property
    def cli(self):
        return self.require("quell")


class Server:
    """One quell-server process on loopback, restartable on the same ports and data dir."""

    def __init__(self, binary, data_dir, api_listen="127.0.0.1:0", agent_listen="127.0.0.1:0",
                 tls_sans=(), heartbeat_interval_seconds=None, action_timeout_seconds=None,
                 extra_args=(), log_path=None):
        self.binary = binary
        self.data_dir = os.path.abspath(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        self.api_listen = api_listen
        self.agent_listen = agent_listen
        self.tls_sans = list(tls_sans)
        self.heartbeat_interval_seconds = heartbeat_interval_seconds
        self.action_timeout_seconds = action_timeout_seconds
        self.extra_args = list(extra_args)
        self.log_path = log_path or os.path.join(self.data_dir, "server.log")
        self.proc = None
        self.info = None

    @property
    def ca_path(self):
        return os.path.join(self.data_dir, "pki", "ca.pem")

    @property
    def api_port(self):
        return int(self.info["api"].rsplit(":", 1)[1])

    @property
    def agent_port(self):
        return int(self.info["agent"].rsplit(":", 1)[1])

    @property
    def api_url(self):
        return f"https://{self.info['api']}"

    def command(self):
        cmd = [self.binary, "serve", "--data-dir", self.data_dir, "--api-listen", self.api_listen,
               "--agent-listen", self.agent_listen]
        for san in self.tls_sans:
            cmd += ["--tls-san", san]
        if self.heartbeat_interval_seconds is not None:
            cmd += ["--heartbeat-interval-seconds", str(self.heartbeat_interval_seconds)]
        if self.action_timeout_seconds is not None:
            cmd += ["--action-timeout-seconds", str(self.action_timeout_seconds)]
        return cmd + self.extra_args

    def start(self, timeout=30):
        if self.running():
            raise RuntimeError("server already running")
        info_path = os.path.join(self.data_dir, "server.json")
        try:
            os.unlink(info_path)
        except FileNotFoundError:
            pass
        out = open(self.log_path, "ab")
        out.write(f"==== lab: starting server at {time.strftime('%H:%M:%S')} ====\n".encode())
        out.flush()
        preexec = pdeathsig_preexec(signal.SIGKILL) if in_main_thread() else None
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=preexec)
        out.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"quell-server exited with {self.proc.returncode}:\n"
                                   f"{tail(self.log_path)}")
            try:
                with open(info_path) as f:
                    info = json.load(f)
            except (OSError, ValueError):
                return None
            if int(info.get("pid", -1)) != self.proc.pid:
                return None
            return info

        try:
            self.info = wait_until(ready, timeout=timeout, interval=0.05,
                                   what="quell-server to write server.json")
        except RuntimeError:
            raise
        # Once bound, pin the ports so a restart comes back where agents and portals expect.
        self.api_listen = self.info["api"]
        self.agent_listen = self.info["agent"]
        for addr in (self.info["api"], self.info["agent"]):
            host, port = addr.rsplit(":", 1)
            wait_until(lambda: _tcp_open(host, int(port)), timeout=timeout,
                       what=f"quell-server listening on {addr}")
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL, timeout=15):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def stop(self):
        return self.kill(signal.SIGTERM)

    def restart(self, sig=signal.SIGTERM):
        self.kill(sig)
        # The old process may leave its ports in TIME_WAIT; gRPC and Beast set SO_REUSEADDR,
        # so binding again works, but retry briefly in case the kernel is slow to release.
        deadline = time.monotonic() + 20
        while True:
            try:
                return self.start()
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    # ---- admin commands (run against the data dir) ---------------------------------------

    def _admin(self, *args):
        return run([self.binary, *args, "--data-dir", self.data_dir]).stdout.strip()

    def create_token(self, name, role):
        """An API token secret for a new principal `name` with `role`."""
        return _last_line(self._admin("token", "create", "--name", name, "--role", role))

    def create_enrollment_token(self, uses=None, ttl_seconds=None):
        args = ["enrollment-token", "create"]
        if uses is not None:
            args += ["--uses", str(uses)]
        if ttl_seconds is not None:
            args += ["--ttl-seconds", str(ttl_seconds)]
        return _last_line(self._admin(*args))

    def api(self, token):
        return ApiClient(self.api_url, token, self.ca_path)


def _last_line(text):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if not lines:
        raise RuntimeError("command printed nothing")
    return lines[-1]


def _tcp_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
