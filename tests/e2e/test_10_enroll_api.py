"""Enrollment, the machine inventory, API authorization, bad input and the CLI."""

import json
import re

from conftest import cli_json, parse_time, run_cli, utcnow
from lab import raw_exchange, wait_until


def test_agents_enroll_and_machines_appear(env):
    for h in (env.victim, env.peer, env.spare):
        m = env.wait_connected(h)
        assert m["computerDnsName"] == h.hostname
        assert m["osPlatform"] == "Linux"
        assert m["osVersion"], m
        assert m["agentVersion"], m
        assert m["isolationState"] == "NotIsolated"
        assert m["lastIpAddress"] in (h.ip4, h.ip6), m
        assert parse_time(m["firstSeen"]) <= parse_time(m["lastSeen"]) <= utcnow()
        # Enrollment left a device identity on the host's disk.
        id_file = f"{h.state_dir}/identity/device_id"
        wait_until(lambda: open(id_file).read().strip() == m["id"], timeout=10,
                   what=f"{id_file} to hold the device id")
    ids = {env.machine_id(h) for h in (env.victim, env.peer, env.spare)}
    assert len(ids) == 3
    # GET /api/machines/{id} returns the same resource as the list.
    m = env.api.machine(env.machine_id(env.victim))
    assert m["computerDnsName"] == env.victim.hostname


def test_heartbeats_advance_last_seen(env):
    mid = env.machine_id(env.peer)
    first = parse_time(env.api.machine(mid)["lastSeen"])
    wait_until(lambda: parse_time(env.api.machine(mid)["lastSeen"]) > first, timeout=15,
               what="lastSeen to advance with heartbeats")


def test_api_requires_a_valid_token(env):
    r = env.api.request("GET", "/api/machines", token=False)
    assert r.status == 401 and r.error_code(), r
    r = env.api.with_token("not-a-token").request("GET", "/api/machines")
    assert r.status == 401 and r.error_code(), r


def test_viewer_can_read_but_cannot_isolate(env):
    mid = env.machine_id(env.victim)
    assert env.viewer.request("GET", "/api/machines").status == 200
    r = env.viewer.request("POST", f"/api/machines/{mid}/isolate",
                           {"Comment": "viewer tries", "IsolationType": "Full"})
    assert r.status == 403, r
    assert r.error_code() and r.json["error"]["message"], r
    assert env.api.machine(mid)["isolationState"] == "NotIsolated"
    assert env.api.actions(f"machineId eq '{mid}'") == []


def test_bad_input_gets_4xx_json_errors_and_server_keeps_running(env):
    mid = env.machine_id(env.victim)
    path = f"/api/machines/{mid}/isolate"
    cases = [
        ("malformed json", dict(raw='{"Comment": "x", ')),
        ("not an object", dict(raw='["Comment"]')),
        ("unknown field", dict(body={"Comment": "x", "IsolationType": "Full", "Bogus": 1})),
        ("bad enum", dict(body={"Comment": "x", "IsolationType": "Partial"})),
        ("wrong type", dict(body={"Comment": 42, "IsolationType": "Full"})),
        ("missing comment", dict(body={"IsolationType": "Full"})),
    ]
    for name, kw in cases:
        r = env.api.request("POST", path, **kw)
        assert r.status == 400, (name, r)
        err = r.json["error"]
        assert err["code"] and err["message"], (name, r)

    for method, p, body in [
        ("GET", "/api/machines/no-such-machine", None),
        ("POST", "/api/machines/no-such-machine/isolate", {"Comment": "x",
                                                           "IsolationType": "Full"}),
        ("GET", "/api/machineactions/no-such-action", None),
        ("POST", "/api/machineactions/no-such-action/cancel", {"Comment": "x"}),
    ]:
        r = env.api.request(method, p, body=body)
        assert r.status == 404 and r.error_code(), (method, p, r)

    r = env.api.request("GET", "/api/machineactions?$filter=" + "status%20%3D%3D%3D%20x")
    assert r.status == 400 and r.error_code(), r
    r = env.api.request("GET", "/api/no-such-route")
    assert r.status == 404 and r.error_code(), r

    # An oversized body (16 MiB) is refused without being buffered.
    size = 16 * 1024 * 1024
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            f"{env.admin_token}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n"
            f"Connection: close\r\n\r\n")
    prefix = b'{"IsolationType":"Full","Comment":"'
    chunks = [prefix] + [b"a" * 65536] * ((size - len(prefix) - 2) // 65536)
    status, text = raw_exchange("127.0.0.1", env.server.api_port, env.server.ca_path, head,
                                chunks)
    assert status in (400, 413), text[:500]
    assert '"error"' in text

    # Nothing above created an action, and the server still answers.
    assert env.api.actions(f"machineId eq '{mid}'") == []
    assert env.api.machine(mid)["isolationState"] == "NotIsolated"
    assert len(env.api.machines()) >= 3


def test_cli_lists_isolates_and_releases(env):
    """The quell CLI end to end, on the spare host (Selective isolation and release)."""
    mid = env.machine_id(env.spare)

    out = run_cli(env, "machines", "list").stdout
    assert env.spare.hostname in out and mid in out, out
    listed = cli_json(env, "machines", "list")
    listed = listed["value"] if isinstance(listed, dict) else listed
    assert mid in {m["id"] for m in listed}
    shown = cli_json(env, "machine", "show", mid)
    assert shown["computerDnsName"] == env.spare.hostname

    # The viewer token is refused by the CLI too, with a non-zero exit status.
    r = run_cli(env, "machine", "isolate", mid, "--comment", "viewer", token=env.viewer_token,
                check=False)
    assert r.returncode != 0
    assert re.search(r"403|forbidden|permission", r.stdout + r.stderr, re.I), r

    action = cli_json(env, "machine", "isolate", mid, "--comment", "cli e2e", "--selective")
    assert action["type"] == "Isolate" and action["scope"] == "Selective", action
    assert action["requestorComment"] == "cli e2e"
    wait_until(lambda: cli_json(env, "actions", "show", action["id"])["status"] == "Succeeded",
               timeout=30, what="CLI isolate to succeed")
    assert env.api.machine(mid)["isolationState"] == "Selective"
    assert env.spare.nft_tables(), "no isolation table on the spare host"
    acts = cli_json(env, "actions", "list")
    acts = acts["value"] if isinstance(acts, dict) else acts
    assert action["id"] in {a["id"] for a in acts}
    assert action["id"] in run_cli(env, "actions", "list").stdout

    release = cli_json(env, "machine", "release", mid, "--comment", "cli release")
    assert release["type"] == "Unisolate", release
    wait_until(lambda: cli_json(env, "actions", "show", release["id"])["status"] == "Succeeded",
               timeout=30, what="CLI release to succeed")
    assert env.api.machine(mid)["isolationState"] == "NotIsolated"
    wait_until(lambda: not env.spare.nft_tables(), timeout=10, what="spare table removed")


def test_cli_reads_environment(env):
    import os
    import subprocess
    e = dict(os.environ, QUELL_SERVER=env.server.api_url, QUELL_TOKEN=env.viewer_token,
             QUELL_CA=env.server.ca_path)
    r = subprocess.run([env.bins.cli, "--json", "machines", "list"], env=e, capture_output=True,
                       text=True, timeout=30, cwd=env.base_dir)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    data = data["value"] if isinstance(data, dict) else data
    assert env.victim.hostname in {m["computerDnsName"] for m in data}
