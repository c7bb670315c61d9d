"""Indicators enforced by real agents in the lab: a blocked file hash cannot execute (without
any execution restriction), a blocked IP address is unreachable both ways, hits become
alerts, an expired indicator stops applying by itself, and deleting an indicator lifts it.

Scope: every indicator here carries rbacGroupNames=[GROUP] and only `victim` is put in that
group, so `peer` shows that indicators apply only where they are meant to. Only files planted
in the lab hosts' private /tmp are blocked, and only lab addresses (spare's) are blocked.
"""

import datetime
import urllib.parse

import pytest

from conftest import ECHO_PORT, assert_blocked, assert_open
from lab import wait_until

GROUP = "e2e-ind52"
EPERM_TEXT = "Operation not permitted"


def _q(s):
    return urllib.parse.quote(str(s), safe="")


def sh(host, script, timeout=30):
    return host.run_in_host("sh", "-c", script, timeout=timeout)


def runs(host, command):
    return sh(host, command).returncode == 0


def denied(host, command):
    r = sh(host, command)
    return r.returncode == 126 and EPERM_TEXT in (r.stderr + r.stdout)


def plant(host, name, marker):
    """A unique executable in the host's private /tmp; returns its SHA-256."""
    r = sh(host, f"cp /usr/bin/true /tmp/{name} && printf '{marker}' >> /tmp/{name} && "
                 f"chmod +x /tmp/{name} && sha256sum /tmp/{name}")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()[0]


def alerts_of(env, host, detector):
    q = urllib.parse.quote(f"machineId eq '{env.machine_id(host)}'")
    return [a for a in env.api.call("GET", f"/api/alerts?$filter={q}")["value"]
            if a.get("detectorId") == detector]


@pytest.fixture(scope="module")
def grouped(env):
    mid = env.machine_id(env.victim)
    before = env.api.machine(mid).get("rbacGroupName")
    env.api.call("PATCH", f"/api/machines/{_q(mid)}", {"rbacGroupName": GROUP})
    created = []
    try:
        yield env, created
    finally:
        for ind in created:
            env.api.request("DELETE", f"/api/indicators/{_q(ind)}")
        env.api.call("PATCH", f"/api/machines/{_q(mid)}", {"rbacGroupName": before or ""})


def submit(env, created, **fields):
    body = {"title": "e2e enforcement", "rbacGroupNames": [GROUP], "generateAlert": True,
            "severity": "High", **fields}
    ind = env.api.call("POST", "/api/indicators", body)
    created.append(ind["id"])
    return ind


def delete(env, created, ind):
    env.api.call("DELETE", f"/api/indicators/{_q(ind['id'])}", None, 204)
    created.remove(ind["id"])


def test_blocked_hash_cannot_run_without_restriction_and_alerts(grouped):
    env, created = grouped
    victim, peer = env.victim, env.peer
    sha = plant(victim, "ind52-evil", "ind52-evil")
    assert plant(peer, "ind52-evil", "ind52-evil") == sha
    assert runs(victim, "/tmp/ind52-evil") and runs(victim, "/tmp/ind52-evil")

    ind = submit(env, created, indicatorValue=sha, indicatorType="FileSha256", action="Block")
    wait_until(lambda: denied(victim, "/tmp/ind52-evil"), timeout=30,
               what="victim denying the blocked hash")
    assert runs(victim, "/bin/ls /"), "only the blocked hash is denied"
    assert runs(peer, "/tmp/ind52-evil"), "peer is not in the indicator's device group"

    alert = wait_until(lambda: next((a for a in alerts_of(env, victim, "quell.indicators.file")
                                     if sha in str(a.get("evidence"))), None),
                       timeout=30, what="an execution-blocked alert for the hash")
    assert "/tmp/ind52-evil" in str(alert["evidence"])

    delete(env, created, ind)
    wait_until(lambda: runs(victim, "/tmp/ind52-evil"), timeout=30,
               what="the hash running again once the indicator is deleted")


def test_expired_indicator_stops_applying_by_itself(grouped):
    env, created = grouped
    victim = env.victim
    sha = plant(victim, "ind52-brief", "ind52-brief")
    expires = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=20))
    submit(env, created, indicatorValue=sha, indicatorType="FileSha256", action="Block",
           expirationTime=expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    wait_until(lambda: denied(victim, "/tmp/ind52-brief"), timeout=15,
               what="victim denying the short-lived indicator's hash")
    # Nobody touches the indicator: it expires on the agent.
    wait_until(lambda: runs(victim, "/tmp/ind52-brief"), timeout=40,
               what="the hash running again after the indicator expired")


def test_blocked_address_is_unreachable_both_ways_and_hits_alert(grouped):
    env, created = grouped
    victim, spare = env.victim, env.spare
    assert_open(victim, spare)
    inds = [submit(env, created, indicatorValue=spare.ip4, indicatorType="IpAddress",
                   action="Block"),
            submit(env, created, indicatorValue=spare.ip6, indicatorType="IpAddress",
                   action="Block")]
    wait_until(lambda: "inet quell_indicators" in victim.nft_tables(), timeout=30,
               what="the indicators table on victim")
    wait_until(lambda: not victim.ping(spare.ip4), timeout=15, what="victim -> spare dropped")
    assert_blocked(victim, spare)
    # Inbound too: spare cannot reach victim (its packets are dropped on victim's input).
    assert not spare.ping(victim.ip4) and not spare.ping(victim.ip6)
    assert "inet quell_indicators" not in spare.nft_tables(), "spare is not in the device group"

    wait_until(lambda: any(spare.ip4 in str(a.get("evidence"))
                           for a in alerts_of(env, victim, "quell.indicators.ip")),
               timeout=40, what="a blocked-traffic alert for spare's address")

    for ind in inds:
        delete(env, created, ind)
    assert_open(victim, spare, timeout=30)
    wait_until(lambda: "inet quell_indicators" not in victim.nft_tables(), timeout=15,
               what="the indicators table removed")
