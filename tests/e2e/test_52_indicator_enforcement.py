"""Indicators enforced by real agents in the lab: a blocked file hash cannot execute (without
any execution restriction), a blocked IP address is unreachable both ways, hits become
alerts, an expired indicator stops applying by itself, and deleting an indicator lifts it.
BlockAndRemediate also acts where no exec happens: a file written with that hash, and a file
a scan finds with it, are stopped and quarantined.

Scope: every indicator here carries rbacGroupNames=[GROUP] and only `victim` is put in that
group (and, for the scan test, a host of its own), so `peer` shows that indicators apply only
where they are meant to. Only files planted
in the lab hosts' private /tmp are blocked, and only lab addresses (spare's) are blocked.
"""

import datetime
import hashlib
import os
import secrets
import urllib.parse
import uuid

import pytest

from conftest import ECHO_PORT, assert_blocked, assert_open, observe
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


# ---- BlockAndRemediate wherever the file is seen: written, or found by a scan ----------------
#
# The sample files are data (mode 644, never executed) with a random tail: each test has a hash
# of its own that exists nowhere else. They are written by a process inside the lab host (its
# private /tmp), which is what the agent's mount marks see.

def sample(name):
    """(content, sha256) of a unique non-executable test file."""
    content = f"quell e2e {name} sample {uuid.uuid4()} {secrets.token_hex(16)}\n"
    return content, hashlib.sha256(content.encode()).hexdigest()


def write_in_host(host, path, content):
    r = host.run_in_host("sh", "-c", 'cat > "$1"', "sh", path, input=content)
    assert r.returncode == 0, r.stderr


def exists(host, path):
    return host.run_in_host("test", "-e", path).returncode == 0


def log_since(host, offset):
    with open(host.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def log_size(host):
    return os.path.getsize(host.log_path)


def remediation_notices(env, host):
    return [e.get("comment", "") for e in env.api.audit(env.machine_id(host))["value"]
            if e.get("operation") == "device.notice"
            and "BlockAndRemediate indicator" in e.get("comment", "")]


def test_block_and_remediate_quarantines_a_written_file_without_exec(grouped):
    env, created = grouped
    victim = env.victim
    content, sha = sample("written")
    path = f"/tmp/ind52-dropped-{secrets.token_hex(4)}"
    mark = log_size(victim)
    ind = submit(env, created, indicatorValue=sha, indicatorType="FileSha256",
                 action="BlockAndRemediate", title="e2e written sample")
    wait_until(lambda: "written-file watch on" in log_since(victim, mark), timeout=30,
               what="the written-file watch turned on by the BlockAndRemediate indicator")

    # Another file written meanwhile is left alone.
    write_in_host(victim, "/tmp/ind52-innocent", content + "but changed\n")
    write_in_host(victim, path, content)  # written and closed; nobody runs it
    wait_until(lambda: not exists(victim, path), timeout=30,
               what="the written file quarantined (gone from disk) without any exec")
    assert exists(victim, "/tmp/ind52-innocent")

    notice = wait_until(lambda: next((n for n in remediation_notices(env, victim)
                                      if path in n and ind["id"] in n), None),
                        timeout=30, what="an IndicatorRemediation notice for the written file")
    assert "(seen: written)" in notice and "stopped and quarantined" in notice, notice
    assert '"filesQuarantined"' in notice and sha in notice, notice
    alert = wait_until(lambda: next((a for a in alerts_of(env, victim, "quell.indicators.file")
                                     if sha in str(a.get("evidence"))), None),
                       timeout=30, what="an alert for the written file")
    assert "written" in alert["title"].lower(), alert
    sh(victim, "rm -f /tmp/ind52-innocent")

    # Once the indicator is gone the watch stops, and the same content may be written again.
    mark = log_size(victim)
    delete(env, created, ind)
    wait_until(lambda: "written-file watch off" in log_since(victim, mark), timeout=30,
               what="the written-file watch turned off")
    write_in_host(victim, path, content)
    observe(lambda: exists(victim, path), 3)  # no longer removed
    sh(victim, f"rm -f {path}")


@pytest.fixture(scope="module")
def scan_host(env, grouped):
    """A host with a scan configuration (one YARA rule that matches nothing here: a scan needs
    at least one rule or signature), in the indicators' device group."""
    host = env.lab.add_host("ind52scan")
    rules = os.path.join(host.dir, "rules")
    os.makedirs(rules, exist_ok=True)
    with open(os.path.join(rules, "none.yar"), "w") as f:
        f.write("rule quell_e2e_never { strings: $a = { 51 75 65 6c 6c 4e 65 76 65 72 } "
                "condition: $a and false }\n")
    token = env.server.create_enrollment_token(uses=1)
    host.start_agent(env.agent_config(host, token, scan={"yara_rule_dirs": [rules],
                                                         "full_scan_roots": ["/tmp/ind52-scan"],
                                                         "cpu_limit_percent": 100}))
    mid = env.machine_id(host)
    env.wait_connected(host)
    env.api.call("PATCH", f"/api/machines/{_q(mid)}", {"rbacGroupName": GROUP})
    yield host, mid
    host.stop_agent()


def test_scan_hit_on_block_and_remediate_indicator_is_detected_and_quarantined(grouped,
                                                                                scan_host):
    env, created = grouped
    host, mid = scan_host
    content, sha = sample("scanned")
    path = "/tmp/ind52-scan/cache/update.bin"
    sh(host, "mkdir -p /tmp/ind52-scan/cache")
    # On disk BEFORE the indicator exists: only the scan can find it.
    write_in_host(host, path, content)
    write_in_host(host, "/tmp/ind52-scan/clean.txt", "nothing here " + secrets.token_hex(8))
    mark = log_size(host)
    ind = submit(env, created, indicatorValue=sha, indicatorType="FileSha256",
                 action="BlockAndRemediate", title="e2e scanned sample")
    wait_until(lambda: "written-file watch on" in log_since(host, mark), timeout=30,
               what="the indicator on the scan host")
    assert exists(host, path), "the file was written before the indicator: still there"

    a = env.api.call("POST", f"/api/machines/{mid}/runAntiVirusScan",
                     {"Comment": "e2e ind52 scan", "ScanType": "Full"}, (200, 201))
    done = env.wait_action(a["id"], timeout=120)
    assert done["status"] == "Succeeded", done
    hits = [d for d in done["result"]["detections"] if d["detectorId"] == "quell.indicators.file"]
    assert [(d["filePath"], d["sha256"], d.get("indicatorId"), d.get("indicatorAction"))
            for d in hits] == [(path, sha, ind["id"], "BlockAndRemediate")], done["result"]

    wait_until(lambda: not exists(host, path), timeout=30, what="the scanned file quarantined")
    assert exists(host, "/tmp/ind52-scan/clean.txt")
    notice = wait_until(lambda: next((n for n in remediation_notices(env, host)
                                      if path in n and ind["id"] in n), None),
                        timeout=30, what="an IndicatorRemediation notice for the scanned file")
    assert "(seen: scan)" in notice and "stopped and quarantined" in notice, notice
    alert = wait_until(lambda: next((a for a in alerts_of(env, host, "quell.indicators.file")
                                     if sha in str(a.get("evidence"))), None),
                       timeout=30, what="an alert naming the indicator for the scanned file")
    assert "e2e scanned sample" in str(alert), alert
    delete(env, created, ind)
