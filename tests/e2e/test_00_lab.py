"""The lab itself: its probes can fail, its portal survives the server going away, a reboot
empties a host, and nothing is left behind. Needs no Quell binary; if these fail, every
other e2e result is meaningless."""

import os
import signal
import socket
import subprocess
import sys
import threading

from conftest import ECHO_PORT
from lab import EchoServer, Lab, list_netns, reachability, run, tcp_ok, wait_until


def _loopback_echo(port=0):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen()

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                data = c.recv(100)
                c.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return srv


def _stop(srv):
    srv.shutdown(socket.SHUT_RDWR)  # wakes the accept() in the serving thread
    srv.close()


def test_lab_probes_portal_reboot_and_cleanup():
    root_links_before = run(["ip", "-o", "link", "show"]).stdout.count("\n")
    with Lab() as lab:
        a, b = lab.add_host("a"), lab.add_host("b")
        assert (a.ip4, a.ip6) == (f"10.77.{lab.n}.11", f"fd77:{lab.n}::11")
        assert {lab.hub, a.ns, b.ns} <= set(list_netns())
        # Nothing was added to the root network namespace.
        assert run(["ip", "-o", "link", "show"]).stdout.count("\n") == root_links_before
        EchoServer(b, ECHO_PORT)

        r = reachability(a, b, ECHO_PORT)
        assert all(r.values()), r

        # A drop-all table (what isolation looks like) must make every probe fail.
        a.exec("nft", "add table inet probe_check; add chain inet probe_check out "
               "{ type filter hook output priority 0; policy drop; }", check=True)
        r = reachability(a, b, ECHO_PORT)
        assert not any(r.values()), r

        # Portal: hub gateway -> loopback of this namespace, surviving an upstream restart.
        upstream = _loopback_echo()
        port = upstream.getsockname()[1]
        portal = lab.open_portal(port)
        assert tcp_ok(b, lab.gateway4, port)
        _stop(upstream)
        assert not tcp_ok(b, lab.gateway4, port)
        upstream = _loopback_echo(port)
        wait_until(lambda: tcp_ok(b, lab.gateway4, port), timeout=5, what="portal after restart")
        portal.pause()
        assert not tcp_ok(b, lab.gateway4, port)
        portal.resume()
        assert tcp_ok(b, lab.gateway4, port)
        _stop(upstream)

        # A reboot leaves the host's namespace empty (no table) with the same addresses.
        sleeper = a.popen(["sleep", "600"])
        a.reboot()
        assert sleeper.poll() is not None
        assert a.nft_tables() == []
        assert all(reachability(a, b, ECHO_PORT).values())
        namespaces = lab.namespaces()
    assert not set(namespaces) & set(list_netns())


def test_lab_cleans_up_on_sigterm(tmp_path):
    """A lab process killed with SIGTERM still removes its namespaces and processes."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = f"""
import sys, time
sys.path.insert(0, {os.path.join(here, '..')!r})
from lab import Lab
lab = Lab()
h = lab.add_host("x")
p = h.popen(["sleep", "600"])
print(lab.hub, h.ns, p.pid, flush=True)
time.sleep(600)
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        hub, ns, sleeper = p.stdout.readline().split()
        assert {hub, ns} <= set(list_netns())
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not {hub, ns} & set(list_netns())
    assert not os.path.exists(f"/proc/{sleeper}") or \
        open(f"/proc/{sleeper}/stat").read().split(") ")[1][0] == "Z"
