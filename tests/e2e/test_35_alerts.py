# Runs before test_40, which offboards the spare host these tests use.
"""Alerts: a detection on an agent becomes an alert in the Defender shape on the server;
repeated detections update one alert; a detection made while the agent cannot reach the
server is spooled, survives an agent crash, and arrives exactly once.

The detections come from DiagnosticNoop with EmitTestDetection, so no scanner is involved.
"""

import glob
import os
import signal
import time
import urllib.parse

from conftest import cli_json, parse_time, run_cli
from lab import wait_until

DETECTOR = "quell.diagnostic"


def _q(s):
    return urllib.parse.quote(str(s), safe="")


def emit(env, mid, comment="e2e: test detection"):
    return env.api.call("POST", f"/api/machines/{_q(mid)}/diagnosticNoop",
                        {"Comment": comment, "EmitTestDetection": True}, 201)


def diagnostic_alerts(env, mid):
    f = urllib.parse.quote(f"machineId eq '{mid}'")
    alerts = env.api.call("GET", f"/api/alerts?$filter={f}")["value"]
    return [a for a in alerts if a["detectorId"] == DETECTOR]


def one_alert(env, mid):
    alerts = diagnostic_alerts(env, mid)
    assert len(alerts) <= 1, f"expected one diagnostic alert for {mid}, got {alerts}"
    return alerts[0] if alerts else None


def wait_event_count(env, mid, n, timeout=30):
    return wait_until(lambda: (a if (a := one_alert(env, mid)) and a["eventCount"] == n
                               else None),
                      timeout=timeout, what=f"the diagnostic alert of {mid} at eventCount {n}")


def spooled(host):
    return sorted(glob.glob(os.path.join(host.state_dir, "spool", "*.msg")))


def log_text(host):
    with open(host.log_path, errors="replace") as f:
        return f.read()


def test_test_detection_becomes_an_alert_with_the_device_fields(env):
    host = env.spare
    mid = env.machine_id(host)
    env.wait_connected(host)
    assert diagnostic_alerts(env, mid) == []

    action = env.wait_action(emit(env, mid)["id"])
    assert action["status"] == "Succeeded", action
    alert = wait_event_count(env, mid, 1)

    assert alert["machineId"] == mid
    assert alert["computerDnsName"] == host.hostname
    assert alert["severity"] == "Informational"
    assert alert["status"] == "New"
    assert alert["classification"] is None and alert["determination"] is None
    assert alert["detectionSource"] == "Diagnostic"
    assert alert["title"]
    assert parse_time(alert["firstActivity"]) == parse_time(alert["lastActivity"])
    assert parse_time(alert["createdDateTime"]) is not None
    devices = [e for e in alert["evidence"]
               if e.get("@odata.type") == "#microsoft.graph.security.deviceEvidence"]
    assert len(devices) == 1, alert["evidence"]
    assert devices[0]["mdeDeviceId"] == mid
    assert devices[0]["deviceDnsName"] == host.hostname

    # The same resource by id, for viewers too; nothing for the other hosts.
    assert env.viewer.call("GET", f"/api/alerts/{_q(alert['id'])}") == alert
    assert diagnostic_alerts(env, env.machine_id(env.peer)) == []
    created = [e for e in env.api.audit(alert["id"])["value"] if e["operation"] == "alert.created"]
    assert len(created) == 1 and created[0]["actor"] == f"agent:{mid}", created


def test_repeated_detection_updates_the_same_alert(env):
    host = env.spare
    mid = env.machine_id(host)
    first = one_alert(env, mid)
    assert first is not None, "needs the alert of the previous test"
    n = first["eventCount"]

    action = env.wait_action(emit(env, mid, "e2e: again")["id"])
    assert action["status"] == "Succeeded", action
    alert = wait_event_count(env, mid, n + 1)
    assert alert["id"] == first["id"]
    assert parse_time(alert["lastActivity"]) >= parse_time(first["lastActivity"])
    assert parse_time(alert["firstActivity"]) == parse_time(first["firstActivity"])


def test_detection_made_offline_survives_a_crash_and_arrives_exactly_once(env):
    host = env.spare
    mid = env.machine_id(host)
    env.wait_connected(host)
    before = one_alert(env, mid)
    assert before is not None, "needs the alert of the previous tests"
    n = before["eventCount"]
    # Everything earlier has been acknowledged: the spool is empty.
    wait_until(lambda: spooled(host) == [], timeout=15, what="an empty agent spool")

    # Half-dead link: the server still reaches the agent (so it receives the action), but
    # nothing the agent sends arrives. The detection is made and "sent" into the void.
    env.portal.black_hole(True)
    try:
        action_id = emit(env, mid, "e2e: offline detection")["id"]
        wait_until(lambda: f"action={action_id} type=DiagnosticNoop finished" in log_text(host),
                   timeout=30, what="the agent to run the action")
        # Detection and final result, both waiting for an acknowledgement that cannot come.
        wait_until(lambda: len(spooled(host)) == 2, timeout=10,
                   what="the detection and the result in the agent's spool")
        time.sleep(1)
        assert one_alert(env, mid)["eventCount"] == n, "the server saw the offline detection"
        assert env.api.action(action_id)["status"] in ("Pending", "InProgress")

        # The agent crashes and comes back while still cut off: the spool is its disk.
        host.kill_agent(signal.SIGKILL)
        assert len(spooled(host)) == 2
        host.start_agent()
        time.sleep(2)  # it resends into the void
        assert one_alert(env, mid)["eventCount"] == n
    finally:
        env.portal.pause()          # the streams that lost bytes are cut
        env.portal.black_hole(False)
        env.portal.resume()

    env.wait_connected(host)
    alert = wait_event_count(env, mid, n + 1)
    assert alert["id"] == before["id"]
    action = env.wait_action(action_id)
    assert action["status"] == "Succeeded", action
    # The action was not run again on redelivery (no second detection), nothing resent twice.
    wait_until(lambda: spooled(host) == [], timeout=15, what="the spool acknowledged")
    time.sleep(3)  # more than a heartbeat: any late duplicate would have arrived
    alert = one_alert(env, mid)
    assert alert["eventCount"] == n + 1, alert
    updates = [e for e in env.api.audit(alert["id"])["value"] if e["operation"] == "alert.updated"]
    detection_ids = [e["details"]["detectionId"] if isinstance(e.get("details"), dict) else None
                     for e in updates]
    assert len(detection_ids) == len(set(detection_ids)), detection_ids


def test_patch_alert_and_filters(env):
    mid = env.machine_id(env.spare)
    alert = one_alert(env, mid)
    path = f"/api/alerts/{_q(alert['id'])}"

    r = env.viewer.request("PATCH", path, body={"status": "InProgress"})
    assert r.status == 403, r
    r = env.api.request("PATCH", path, body={"status": "Closed"})
    assert r.status == 400, r
    r = env.api.request("PATCH", path, body={"severity": "High"})
    assert r.status == 400, r

    updated = env.api.call("PATCH", path, {
        "status": "Resolved", "assignedTo": "e2e@example.com",
        "classification": "InformationalExpectedActivity", "determination": "SecurityTesting",
        "comment": "diagnostic"})
    assert updated["status"] == "Resolved"
    assert updated["assignedTo"] == "e2e@example.com"
    assert updated["determination"] == "SecurityTesting"
    assert updated["comments"][-1]["comment"] == "diagnostic"
    assert updated["comments"][-1]["createdBy"] == "e2e-admin"

    f = urllib.parse.quote(f"status eq 'Resolved' and machineId eq '{mid}'")
    listed = env.api.call("GET", f"/api/alerts?$filter={f}&$orderby=lastActivity%20desc")["value"]
    assert [a["id"] for a in listed] == [alert["id"]]
    assert env.api.request("GET", "/api/alerts?$orderby=title").status == 400

    # A resolved alert is not reopened: the next detection makes a new one.
    action = env.wait_action(emit(env, mid, "e2e: after resolve")["id"])
    assert action["status"] == "Succeeded", action
    wait_until(lambda: len(diagnostic_alerts(env, mid)) == 2, timeout=30,
               what="a new alert after the old one was resolved")


def test_cli_lists_shows_and_updates_alerts(env):
    mid = env.machine_id(env.spare)
    open_alerts = [a for a in diagnostic_alerts(env, mid) if a["status"] != "Resolved"]
    assert len(open_alerts) == 1, open_alerts
    alert = open_alerts[0]

    listed = cli_json(env, "alerts", "list", "--machine", env.spare.hostname, "--status", "New")
    assert [a["id"] for a in listed["value"]] == [alert["id"]]
    table = run_cli(env, "alerts", "list", "--severity", "Informational").stdout
    assert alert["id"] in table and "Informational" in table

    shown = run_cli(env, "alerts", "show", alert["id"]).stdout
    assert f"id: {alert['id']}" in shown and "deviceEvidence" in shown

    run_cli(env, "alerts", "update", alert["id"], "--status", "InProgress", "--assign-to",
            "analyst", "--comment", "looking")
    after = env.api.call("GET", f"/api/alerts/{_q(alert['id'])}")
    assert after["status"] == "InProgress" and after["assignedTo"] == "analyst"
    assert after["comments"][-1]["comment"] == "looking"

    bad = run_cli(env, "alerts", "update", alert["id"], "--determination", "Apt", check=False)
    assert bad.returncode == 1 and "determination" in bad.stderr
    viewer = run_cli(env, "alerts", "update", alert["id"], "--status", "Resolved",
                     token=env.viewer_token, check=False)
    assert viewer.returncode == 1
