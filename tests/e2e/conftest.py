"""Fixtures for the end-to-end lab: one real quell-server on loopback and a lab of hosts in
network namespaces, each running a real quell-agent, shared by the whole session.

Run as root:  QUELL_BIN_DIR=build /usr/bin/python3 -m pytest -q -x tests/e2e
"""

import datetime
import json
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lab import (Binaries, EchoServer, Lab, Server, list_netns, reachability,  # noqa: E402
                 tail, wait_until)

ECHO_PORT = 7000        # TCP+UDP echo on every peer-like host
SELECTIVE_PORT = 22     # the destination Selective isolation allows (victim -> peer)
FINAL_STATES = {"Succeeded", "Failed", "TimeOut", "Cancelled"}
DOWNLOAD_LINK_LIFETIME = 20  # seconds; short, so that tests can watch a link expire
LIVE_IDLE_TIMEOUT = 10  # seconds; short, so that a test can watch an idle session close

_active_env = None


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="e2e labs need root (network namespaces)")
        for item in items:
            item.add_marker(skip)


def parse_time(s):
    """Parses the API's ISO-8601 UTC timestamps (any number of fractional digits)."""
    if not s:
        return None
    s = s.replace("Z", "+00:00")
    if "." in s:
        head, rest = s.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits):]
        s = f"{head}.{(digits + '000000')[:6]}{tz}"
    t = datetime.datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class Env:
    """What the tests share: binaries, server, API clients, lab and its hosts."""

    def __init__(self, base_dir):
        self.base_dir = str(base_dir)
        self.bins = Binaries()
        missing = self.bins.missing()
        if missing:
            raise FileNotFoundError(f"missing binaries {missing} under {self.bins.bin_dir}; "
                                    f"build first or set QUELL_BIN_DIR")
        self.server = None
        self.lab = None

    def start(self):
        self.server = Server(self.bins.server, os.path.join(self.base_dir, "server"),
                             heartbeat_interval_seconds=2,
                             extra_args=["--download-link-lifetime-seconds",
                                         str(DOWNLOAD_LINK_LIFETIME),
                                         "--live-response-idle-timeout-seconds",
                                         str(LIVE_IDLE_TIMEOUT)]).start()
        self.live_idle_timeout = LIVE_IDLE_TIMEOUT
        self.admin_token = self.server.create_token("e2e-admin", "admin")
        self.viewer_token = self.server.create_token("e2e-viewer", "viewer")
        self.api = self.server.api(self.admin_token)
        self.viewer = self.server.api(self.viewer_token)

        self.lab = Lab(os.path.join(self.base_dir, "lab"), agent_bin=self.bins.agent)
        self.portal = self.lab.open_portal(self.server.agent_port)
        self.victim = self.lab.add_host("victim")
        self.peer = self.lab.add_host("peer")
        self.spare = self.lab.add_host("spare")
        EchoServer(self.peer, ECHO_PORT)
        EchoServer(self.peer, SELECTIVE_PORT)
        EchoServer(self.spare, ECHO_PORT)
        # One token for the three agents: multi-use enrollment tokens are part of the proof.
        self.enrollment_token = self.server.create_enrollment_token(uses=3)
        for h in (self.victim, self.peer, self.spare):
            extra = {}
            if h is self.victim:
                extra["isolation"] = {"selective_allow": [f"{self.peer.ip4}/32:{SELECTIVE_PORT}"]}
            h.start_agent(self.agent_config(h, self.enrollment_token, **extra))
        return self

    def agent_config(self, host, token, **extra):
        return self.lab.agent_config(host, token, self.server.ca_path, self.server.agent_port,
                                     **extra)

    # ---- machines --------------------------------------------------------------------------

    def machine(self, host):
        """The Machine resource of `host` (by computerDnsName), or None."""
        return self.api.machine_by_name(host.hostname)

    def machine_id(self, host):
        m = wait_until(lambda: self.machine(host), timeout=30,
                       what=f"{host.hostname} in GET /api/machines")
        return m["id"]

    def wait_connected(self, host, since=None, timeout=30):
        """Waits until host's machine is Active with a lastSeen after `since` (default now)."""
        since = since or utcnow()
        mid = self.machine_id(host)

        def ok():
            m = self.api.machine(mid)
            seen = parse_time(m.get("lastSeen"))
            # lastSeen may be stored with whole seconds; allow for the truncation.
            return (m if m.get("healthStatus") == "Active" and seen is not None
                    and seen >= since - datetime.timedelta(seconds=1) else None)

        return wait_until(ok, timeout=timeout, what=f"{host.hostname} connected (Active, "
                          f"lastSeen after {since.isoformat()})")

    def wait_action(self, action_id, states=FINAL_STATES, timeout=30):
        def done():
            a = self.api.action(action_id)
            return a if a["status"] in states else None
        return wait_until(done, timeout=timeout, what=f"action {action_id} in {sorted(states)}")

    def isolation_table(self, host):
        """The nftables tables in host's namespace (the agent owns every table there)."""
        return host.nft_tables()

    def ensure_released(self, host=None):
        host = host or self.victim
        mid = self.machine_id(host)
        if self.api.machine(mid).get("isolationState") != "NotIsolated":
            a = self.api.unisolate(mid, "e2e: back to a clean state")
            a = self.wait_action(a["id"])
            assert a["status"] == "Succeeded", a
        wait_until(lambda: not host.nft_tables(), timeout=15, what=f"{host.name} table removed")
        wait_until(lambda: all(reachability(host, self.peer, ECHO_PORT).values()), timeout=15,
                   what=f"{host.name} -> peer reachable after release")

    def ensure_isolated(self, isolation_type="Full", host=None):
        host = host or self.victim
        mid = self.machine_id(host)
        state = self.api.machine(mid).get("isolationState")
        if state == isolation_type:
            return
        if state != "NotIsolated":
            self.ensure_released(host)
        a = self.api.isolate(mid, f"e2e: isolate {isolation_type}", isolation_type)
        a = self.wait_action(a["id"])
        assert a["status"] == "Succeeded", a

    def diagnostics(self):
        parts = []
        if self.server is not None:
            parts.append(("server log", tail(self.server.log_path, 60)))
        if self.lab is not None:
            for h in self.lab.hosts.values():
                parts.append((f"agent log {h.name}", tail(h.log_path, 40)))
        return parts

    def close(self):
        errors = []
        if self.lab is not None:
            try:
                self.lab.close()
            except Exception as e:
                errors.append(e)
        if self.server is not None:
            self.server.kill(signal.SIGTERM)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    global _active_env
    e = Env(tmp_path_factory.mktemp("e2e"))
    _active_env = e
    try:
        e.start()
        yield e
    finally:
        _active_env = None
        namespaces = e.lab.namespaces() if e.lab is not None else []
        e.close()
        left = [ns for ns in list_netns() if ns in namespaces]
        assert not left, f"lab namespaces left behind: {left}"
        assert e.server is None or not e.server.running(), "quell-server left running"
        for h in (e.lab.hosts.values() if e.lab is not None else []):
            assert not h.agent_running(), f"agent of {h.name} left running"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _active_env is not None:
        for title, text in _active_env.diagnostics():
            rep.sections.append((title, text))


# ---- small helpers for tests ---------------------------------------------------------------

def assert_blocked(src, dst, port=ECHO_PORT):
    r = reachability(src, dst, port)
    assert not any(r.values()), f"{src.name} -> {dst.name} should be blocked, got {r}"


def assert_open(src, dst, port=ECHO_PORT, timeout=15):
    wait_until(lambda: all(reachability(src, dst, port).values()), timeout=timeout,
               what=f"{src.name} -> {dst.name} reachable over TCP/UDP/ICMP, IPv4 and IPv6")


def run_cli(env, *args, token=None, check=True, json_out=False):
    cmd = [env.bins.cli, "--server", env.server.api_url, "--token", token or env.admin_token,
           "--ca", env.server.ca_path, *(["--json"] if json_out else []), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[:1] + list(args))} -> rc {r.returncode}\n"
                             f"stdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def cli_json(env, *args, **kw):
    r = run_cli(env, *args, json_out=True, **kw)
    return json.loads(r.stdout)


def observe(predicate, seconds, interval=0.25):
    """Asserts predicate() stays true for `seconds` (for "must not happen" checks)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), "condition stopped holding"
        time.sleep(interval)
