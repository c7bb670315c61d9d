"""DomainName and Url indicators enforced by a real agent's DNS filter in the lab: the host's
own DNS queries are steered (nftables, table inet quell_dns) to the agent; a blocked domain and
its subdomains get NXDOMAIN, the host of a blocked Url too; other names are resolved by the
host's nameserver; a hit becomes an alert; deleting the indicators restores resolution and
removes the steering table, and so does stopping the agent.

Scope: the host's nameserver is a small fake DNS server this test runs in the lab's hub
namespace (10.77.n.1:53), and the host's /etc/resolv.conf is rewritten only inside the lab
host (its /etc is a private overlay; checked first). Indicators carry rbacGroupNames=[GROUP]
and only `victim` is in that group.
"""

import signal
import socket
import struct
import threading
import urllib.parse

import pytest

from lab import wait_until
from lab.netns import call_in_netns

GROUP = "e2e-dns53"
ZONE = "quell-lab.test"
UPSTREAM_ADDR = "198.51.100.7"
RESOLV_CONF = "/etc/resolv.conf"


def _q(s):
    return urllib.parse.quote(str(s), safe="")


class FakeNameserver:
    """Answers A queries for names under ZONE with UPSTREAM_ADDR (NXDOMAIN otherwise), over UDP
    on (address, 53) inside netns `ns`. Records every name it is asked."""

    def __init__(self, ns, address):
        self.names = []
        self.sock = call_in_netns(ns, socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="fake-dns")
        self._thread.start()

    @staticmethod
    def _name(msg):
        labels, i = [], 12
        while i < len(msg) and msg[i] != 0:
            n = msg[i]
            labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        return ".".join(labels).lower(), i + 1

    def _loop(self):
        while not self._stop:
            try:
                msg, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(msg) < 12:
                continue
            name, end = self._name(msg)
            self.names.append(name)
            qtype = struct.unpack(">H", msg[end:end + 2])[0] if end + 2 <= len(msg) else 0
            header = bytearray(msg[:12])
            header[2] = 0x80 | (msg[2] & 0x01)  # QR, RD echoed
            question = msg[12:end + 4]
            known = name == ZONE or name.endswith("." + ZONE)
            header[3] = 0x80 | (0 if known else 3)
            header[4:12] = struct.pack(">HHHH", 1, 1 if known and qtype == 1 else 0, 0, 0)
            answer = b""
            if known and qtype == 1:
                answer = (b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) +
                          socket.inet_aton(UPSTREAM_ADDR))
            self.sock.sendto(bytes(header) + question + answer, peer)

    def close(self):
        self._stop = True
        self._thread.join(timeout=5)
        self.sock.close()


# Runs inside the lab host: one UDP query for sys.argv[1] to the nameserver of resolv.conf
# (port 53, as any program would), printing the rcode and the first A address.
ASK = r"""
import socket, struct, sys
ns = [l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0]
q = struct.pack('>HHHHHH', 0x5153, 0x0100, 1, 0, 0, 0)
q += b''.join(bytes([len(p)]) + p.encode() for p in sys.argv[1].split('.')) + b'\0\0\1\0\1'
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.connect((ns, 53))
s.send(q)
r = s.recv(4096)
addr = socket.inet_ntoa(r[-4:]) if struct.unpack('>H', r[6:8])[0] else '-'
print(r[3] & 15, addr, 'id-ok' if r[:2] == q[:2] else 'id-bad')
"""


def ask(host, name):
    """(rcode, address) of a direct DNS query from host, or None when nothing answered."""
    r = host.run_in_host("python3", "-c", ASK, name, timeout=20)
    if r.returncode != 0:
        return None
    rcode, addr, idok = r.stdout.split()
    assert idok == "id-ok", r.stdout
    return int(rcode), addr


def resolves(host, name):
    """The address glibc's resolver (getent, as any program) gives, or None."""
    r = host.run_in_host("getent", "ahostsv4", name, timeout=20)
    return r.stdout.split()[0] if r.returncode == 0 and r.stdout.strip() else None


def alerts_of(env, host, detector):
    q = urllib.parse.quote(f"machineId eq '{env.machine_id(host)}'")
    return [a for a in env.api.call("GET", f"/api/alerts?$filter={q}")["value"]
            if a.get("detectorId") == detector]


@pytest.fixture(scope="module")
def dns_lab(env):
    victim = env.victim
    fstype = victim.run_in_host("findmnt", "-n", "-o", "FSTYPE", "--target", "/etc").stdout.strip()
    if fstype != "overlay":
        pytest.fail(f"victim's /etc is {fstype!r}, not its private overlay: refusing to touch "
                    f"{RESOLV_CONF}")
    saved = victim.run_in_host("cat", RESOLV_CONF)
    upstream = FakeNameserver(env.lab.hub, env.lab.gateway4)
    mid = env.machine_id(victim)
    before = env.api.machine(mid).get("rbacGroupName")
    env.api.call("PATCH", f"/api/machines/{_q(mid)}", {"rbacGroupName": GROUP})
    created = []
    try:
        # rm first: a symlinked resolv.conf must not be written through.
        r = victim.run_in_host("sh", "-c", f"rm -f {RESOLV_CONF} && printf 'nameserver "
                               f"{env.lab.gateway4}\\noptions timeout:2 attempts:1\\n' > "
                               f"{RESOLV_CONF}")
        assert r.returncode == 0, r.stderr
        yield env, upstream, created
    finally:
        for ind in created:
            env.api.request("DELETE", f"/api/indicators/{_q(ind)}")
        env.api.call("PATCH", f"/api/machines/{_q(mid)}", {"rbacGroupName": before or ""})
        if not victim.agent_running():
            victim.start_agent()
        if saved.returncode == 0:
            victim.run_in_host("sh", "-c", f"rm -f {RESOLV_CONF} && cat > {RESOLV_CONF}",
                               input=saved.stdout)
        wait_until(lambda: "inet quell_dns" not in victim.nft_tables(), timeout=30,
                   what="the DNS steering table removed after the test")
        upstream.close()


def submit(env, created, **fields):
    body = {"title": "e2e dns filter", "rbacGroupNames": [GROUP], "generateAlert": True,
            "severity": "High", **fields}
    ind = env.api.call("POST", "/api/indicators", body)
    created.append(ind["id"])
    return ind


def delete(env, created, ind):
    env.api.call("DELETE", f"/api/indicators/{_q(ind['id'])}", None, 204)
    created.remove(ind["id"])


def test_blocked_domains_get_nxdomain_others_resolve_and_hits_alert(dns_lab):
    env, upstream, created = dns_lab
    victim, peer = env.victim, env.peer
    blocked, sub = f"blocked.{ZONE}", f"www.deep.blocked.{ZONE}"
    url_host = f"urlhost.{ZONE}"
    # Before: no steering, everything resolves through the fake nameserver.
    assert "inet quell_dns" not in victim.nft_tables()
    assert resolves(victim, blocked) == UPSTREAM_ADDR
    assert ask(victim, sub) == (0, UPSTREAM_ADDR)

    inds = [submit(env, created, indicatorValue=blocked, indicatorType="DomainName",
                   action="Block"),
            submit(env, created, indicatorValue=f"https://{url_host}/some/path?x=1",
                   indicatorType="Url", action="Block")]
    wait_until(lambda: "inet quell_dns" in victim.nft_tables(), timeout=30,
               what="the DNS steering table on victim")
    assert "inet quell_dns" not in peer.nft_tables(), "peer is not in the device group"

    wait_until(lambda: ask(victim, blocked) == (3, "-"), timeout=15,
               what="NXDOMAIN for the blocked domain")
    asked_before = list(upstream.names)
    assert ask(victim, sub) == (3, "-"), "subdomains are blocked too"
    assert ask(victim, url_host) == (3, "-"), "a Url indicator blocks its host"
    assert resolves(victim, blocked) is None
    assert resolves(victim, f"api.{url_host}") is None
    assert not [n for n in upstream.names[len(asked_before):] if "blocked" in n or "urlhost" in n], \
        "blocked names never reach the nameserver"
    # Everything else still resolves through the host's nameserver (forwarded by the filter).
    assert ask(victim, f"fine.{ZONE}") == (0, UPSTREAM_ADDR)
    assert resolves(victim, f"notblocked.{ZONE}") == UPSTREAM_ADDR
    assert ask(victim, f"blocked.{ZONE}.example") == (3, "-")  # upstream's own NXDOMAIN
    assert f"blocked.{ZONE}.example" in upstream.names

    wait_until(lambda: next((a for a in alerts_of(env, victim, "quell.indicators.dns")
                                     if blocked in str(a.get("evidence"))), None),
                       timeout=30, what="a DNS-blocked alert for the domain")

    for ind in inds:
        delete(env, created, ind)
    wait_until(lambda: "inet quell_dns" not in victim.nft_tables(), timeout=30,
               what="the steering table removed once no domain indicator remains")
    assert ask(victim, blocked) == (0, UPSTREAM_ADDR)
    assert resolves(victim, sub) == UPSTREAM_ADDR


def test_audit_forwards_and_stopping_the_agent_removes_the_steering(dns_lab):
    env, upstream, created = dns_lab
    victim = env.victim
    watched = f"watched.{ZONE}"
    ind = submit(env, created, indicatorValue=watched, indicatorType="DomainName", action="Audit")
    wait_until(lambda: "inet quell_dns" in victim.nft_tables(), timeout=30,
               what="the DNS steering table for an Audit indicator")
    n = len(upstream.names)
    assert ask(victim, f"cdn.{watched}") == (0, UPSTREAM_ADDR), "Audit resolves"
    assert f"cdn.{watched}" in upstream.names[n:], "through the host's nameserver"
    wait_until(lambda: any(watched in str(a.get("evidence"))
                           for a in alerts_of(env, victim, "quell.indicators.dns")),
               timeout=30, what="an alert for the audited lookup")

    victim.stop_agent()
    try:
        assert "inet quell_dns" not in victim.nft_tables(), \
            "a stopped agent leaves no steering to a filter that is gone"
        assert ask(victim, f"cdn.{watched}") == (0, UPSTREAM_ADDR)
    finally:
        victim.start_agent()
    env.wait_connected(victim)
    wait_until(lambda: "inet quell_dns" in victim.nft_tables(), timeout=30,
               what="the steering restored after the agent restarted")

    # A crash fails open: the kernel drops the agent-owned table with the process.
    victim.kill_agent(signal.SIGKILL)
    try:
        wait_until(lambda: "inet quell_dns" not in victim.nft_tables(), timeout=10,
                   what="the steering table gone with the killed agent")
        assert ask(victim, f"cdn.{watched}") == (0, UPSTREAM_ADDR), "DNS still works"
    finally:
        victim.start_agent()
    env.wait_connected(victim)
    wait_until(lambda: "inet quell_dns" in victim.nft_tables(), timeout=30,
               what="the steering restored after the killed agent restarted")
    delete(env, created, ind)
    wait_until(lambda: "inet quell_dns" not in victim.nft_tables(), timeout=30,
               what="the steering table removed")
