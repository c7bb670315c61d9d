"""Indicators on the server: the Defender-shaped REST API (submit-or-update, list, get,
delete, import of up to 500, BatchDelete) with its validation, the CLI (add, list, rm,
import of CSV and JSON), device groups, and agents acknowledging the indicator version.

Only values that cannot disturb the lab are used: random hashes, TEST-NET addresses
(192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32) and names under .invalid. Every indicator
created here is deleted at the end, so later tests start without indicators.
"""

import hashlib
import json
import os
import urllib.parse

import pytest

from conftest import cli_json, run_cli
from lab import wait_until


def _q(s):
    return urllib.parse.quote(str(s), safe="")


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def body(value, type_="FileSha256", action="Block", title="e2e indicator", **extra):
    b = {"indicatorValue": value, "indicatorType": type_, "action": action, "title": title}
    b.update(extra)
    return b


def submit(env, b, expect=200):
    return env.api.call("POST", "/api/indicators", b, expect)


def all_indicators(env):
    return env.api.call("GET", "/api/indicators?$top=10000")["value"]


@pytest.fixture(scope="module", autouse=True)
def clean_indicators(env):
    yield
    ids = [i["id"] for i in all_indicators(env)]
    for start in range(0, len(ids), 500):
        env.api.call("POST", "/api/indicators/BatchDelete",
                     {"IndicatorIds": ids[start:start + 500]}, 204)
    assert all_indicators(env) == []


@pytest.mark.parametrize("b, message", [
    (body("ab" * 32, title=""), "title is required"),
    ({"indicatorType": "FileSha256", "action": "Block", "title": "t"}, "indicatorValue is required"),
    (body("abc"), "indicatorValue: 'abc' is not a SHA-256 hash (64 hexadecimal digits)"),
    (body("ab" * 32, action="Audit"), "generateAlert must be true when action is Audit"),
    (body("ab" * 32, action="Alert"), "action: 'Alert' was retired"),
    (body("ab" * 32, type_="Sha256"), "indicatorType: 'Sha256' is not one of"),
    (body("192.0.2.1/16", type_="IpAddress"), "has host bits set; the network is 192.0.0.0/16"),
    (body("192.0.2.0/24", type_="IpAddress", action="BlockAndRemediate"),
     "action: BlockAndRemediate cannot be used with IpAddress indicators"),
    (body("*.bad.invalid", type_="DomainName"), "wildcards are not supported"),
    (body("ftp://bad.invalid/x", type_="Url"), "only http and https URLs are supported"),
    (body("ab" * 32, severity="Critical"), "severity: 'Critical' is not one of"),
    (body("ab" * 32, expirationTime="2001-01-01T00:00:00Z"), "expirationTime is in the past"),
    (body("ab" * 32, colour="red"), "unknown field 'colour'"),
])
def test_invalid_indicators_are_refused_with_a_message_naming_the_field(env, b, message):
    r = env.api.request("POST", "/api/indicators", body=b)
    assert r.status == 400, r
    assert message in r.json["error"]["message"], r
    assert all(i["title"] != b.get("title") or i["indicatorValue"] != b.get("indicatorValue")
               for i in all_indicators(env))


def test_submit_normalizes_and_a_second_submit_updates_the_same_indicator(env):
    value = sha256("submit-or-update")
    first = submit(env, body(value.upper(), severity="High", description="first",
                             rbacGroupNames=["e2e-group"], generateAlert=True))
    assert first["indicatorValue"] == value            # stored lowercase
    assert first["action"] == "Block" and first["severity"] == "High"
    assert first["rbacGroupNames"] == ["e2e-group"]
    assert first["createdBy"] == "e2e-admin"

    second = submit(env, body(value, action="Allowed", description="second"))
    assert second["id"] == first["id"]                  # same (type, value): updated
    assert second["action"] == "Allowed" and second["description"] == "second"
    assert second["creationTimeDateTimeUtc"] == first["creationTimeDateTimeUtc"]
    assert second["version"] > first["version"]
    assert env.api.call("GET", f"/api/indicators/{_q(first['id'])}")["action"] == "Allowed"

    f = _q(f"indicatorValue eq '{value}' and indicatorType eq 'FileSha256'")
    listed = env.api.call("GET", f"/api/indicators?$filter={f}")["value"]
    assert [i["id"] for i in listed] == [first["id"]]

    # Warn is accepted (it acts as Audit on agents); CIDR ranges are a Quell extension.
    warn = submit(env, body("Bad.Invalid.", type_="DomainName", action="Warn"))
    assert warn["indicatorValue"] == "bad.invalid" and warn["action"] == "Warn"
    net = submit(env, body("2001:DB8:0::/48", type_="IpAddress", action="Audit",
                           generateAlert=True))
    assert net["indicatorValue"] == "2001:db8::/48"
    audit = env.api.call("GET", f"/api/audit?target={_q(first['id'])}")["value"]
    assert [(e["operation"], e["actor"]) for e in audit] == \
        [("indicator.submitted", "e2e-admin")] * 2


def test_import_takes_500_refuses_501_and_reports_each_item(env):
    batch = [body(sha256(f"import-{n}"), title=f"import {n}") for n in range(500)]
    r = env.api.call("POST", "/api/indicators/import", {"Indicators": batch})
    assert len(r["value"]) == 500
    assert not any(item["isFailed"] for item in r["value"]), r["value"][:3]
    assert all(item["id"] for item in r["value"])
    assert len(all_indicators(env)) >= 500

    too_many = batch + [body(sha256("import-500"))]
    r = env.api.request("POST", "/api/indicators/import", body={"Indicators": too_many})
    assert r.status == 400, r
    assert "at most 500 per call" in r.json["error"]["message"]
    f = _q(f"indicatorValue eq '{sha256('import-500')}'")
    assert env.api.call("GET", f"/api/indicators?$filter={f}")["value"] == []

    mixed = [body(sha256("mixed-ok")), body("nothex", title="bad one"), body(sha256("mixed-ok"))]
    r = env.api.call("POST", "/api/indicators/import", {"Indicators": mixed})["value"]
    assert [item["isFailed"] for item in r] == [False, True, True]
    assert "not a SHA-256 hash" in r[1]["failureReason"]
    assert "item 1 of this import" in r[2]["failureReason"]
    assert r[0]["indicator"] == sha256("mixed-ok") and r[1]["id"] is None


def test_cli_adds_lists_imports_csv_and_removes(env, tmp_path):
    added = cli_json(env, "indicators", "add", "--type", "IpAddress", "--value", "198.51.100.0/24",
                     "--action", "Audit", "--generate-alert", "--title", "cli net",
                     "--severity", "Low", "--group", "e2e-group")
    assert added["indicatorValue"] == "198.51.100.0/24" and added["generateAlert"] is True

    csv = tmp_path / "indicators.csv"
    csv.write_text(
        "IndicatorType,IndicatorValue,ExpirationTime,Action,Severity,Title,Description,"
        "RecommendedActions,RbacGroups,GenerateAlert\n"
        f"FileSha256,{sha256('csv-1')},2099-01-01T00:00:00Z,Block,High,csv one,\"a, quoted\","
        "reimage,e2e-group;other,TRUE\n"
        "DomainName,csv.bad.invalid,,Block,,csv two,,,,\n")
    r = run_cli(env, "indicators", "import", str(csv))
    assert "imported 2 indicator(s)" in r.stdout, r
    listed = cli_json(env, "indicators", "list", "--type", "FileSha256", "--value", sha256("csv-1"))
    assert len(listed["value"]) == 1
    one = listed["value"][0]
    assert one["description"] == "a, quoted" and one["rbacGroupNames"] == ["e2e-group", "other"]
    assert one["expirationTime"].startswith("2099-01-01T00:00:00")
    table = run_cli(env, "indicators", "list", "--type", "DomainName").stdout
    assert "csv.bad.invalid" in table

    bad = tmp_path / "bad.csv"
    bad.write_text("IndicatorType,IndicatorValue,Action,Title\n"
                   f"FileSha256,{sha256('csv-3')},Block,fine\n"
                   "FileSha256,zzz,Block,broken\n"
                   "FileMd5,abc,Block,\n")
    r = run_cli(env, "indicators", "import", str(bad), check=False)
    assert r.returncode == 1, r
    assert "line 3: indicatorValue: 'zzz' is not a SHA-256 hash" in r.stderr, r.stderr
    assert "line 4: " in r.stderr, r.stderr
    assert "imported 1 indicator(s), 2 failed" in r.stdout

    js = tmp_path / "indicators.json"
    js.write_text(json.dumps({"Indicators": [body(sha256("json-1"))]}))
    assert "imported 1 indicator(s)" in run_cli(env, "indicators", "import", str(js)).stdout

    r = run_cli(env, "indicators", "rm", added["id"])
    assert env.api.request("GET", f"/api/indicators/{_q(added['id'])}").status == 404


def test_delete_and_batch_delete(env):
    a = submit(env, body(sha256("delete-a")))
    b = submit(env, body(sha256("delete-b")))
    c = submit(env, body(sha256("delete-c")))
    assert env.api.request("DELETE", f"/api/indicators/{_q(a['id'])}").status == 204
    assert env.api.request("DELETE", f"/api/indicators/{_q(a['id'])}").status == 404
    assert env.api.request("GET", f"/api/indicators/{_q(a['id'])}").status == 404
    env.api.call("POST", "/api/indicators/BatchDelete", {"IndicatorIds": [b["id"], c["id"]]}, 204)
    left = {i["id"] for i in all_indicators(env)}
    assert not left & {a["id"], b["id"], c["id"]}
    r = env.api.request("POST", "/api/indicators/BatchDelete",
                        body={"IndicatorIds": ["x"] * 501})
    assert r.status == 400 and "at most 500" in r.json["error"]["message"], r


def test_viewer_reads_but_cannot_change(env):
    existing = submit(env, body(sha256("viewer")))
    assert env.viewer.call("GET", "/api/indicators")["value"]
    assert env.viewer.call("GET", f"/api/indicators/{_q(existing['id'])}")["id"] == existing["id"]
    for method, path, b in [
            ("POST", "/api/indicators", body(sha256("viewer-2"))),
            ("POST", "/api/indicators/import", {"Indicators": [body(sha256("viewer-3"))]}),
            ("POST", "/api/indicators/BatchDelete", {"IndicatorIds": [existing["id"]]}),
            ("DELETE", f"/api/indicators/{_q(existing['id'])}", None)]:
        r = env.viewer.request(method, path, body=b)
        assert r.status == 403, (method, path, r)
    assert env.api.call("GET", f"/api/indicators/{_q(existing['id'])}")["id"] == existing["id"]
    r = run_cli(env, "indicators", "add", "--type", "FileSha256", "--value", sha256("viewer-4"),
                "--action", "Block", "--title", "t", token=env.viewer_token, check=False)
    assert r.returncode == 1 and "403" in r.stderr, r


def test_device_group_is_settable_and_agents_acknowledge_the_indicator_version(env):
    host = env.peer
    mid = env.machine_id(host)
    before = env.api.machine(mid).get("rbacGroupName")
    r = env.viewer.request("PATCH", f"/api/machines/{_q(mid)}", body={"rbacGroupName": "x"})
    assert r.status == 403, r
    r = env.api.request("PATCH", f"/api/machines/{_q(mid)}", body={"colour": "x"})
    assert r.status == 400 and "unknown field 'colour'" in r.json["error"]["message"], r
    try:
        out = run_cli(env, "machine", "set-group", host.hostname, "e2e-group").stdout
        assert "is now in group 'e2e-group'" in out
        assert env.api.machine(mid)["rbacGroupName"] == "e2e-group"

        latest = submit(env, body(sha256("sync"), rbacGroupNames=["e2e-group"]))
        for h in (env.victim, env.peer):
            hid = env.machine_id(h)
            wait_until(lambda: (env.api.machine(hid).get("indicatorVersion") or 0)
                       >= latest["version"], timeout=30,
                       what=f"{h.name} acknowledging indicator version {latest['version']}")
    finally:
        env.api.call("PATCH", f"/api/machines/{_q(mid)}", {"rbacGroupName": before or ""})
