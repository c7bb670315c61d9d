"""Live response through the API (runliveresponse) on a lab host, end to end: a script and a
tool go into the library, a session puts the tool on the device, runs the script (which reads
the tool and prints its arguments) and fetches a file; each command's result is downloaded
through its own link. Then what must be refused: code-running commands for a responder, forbidden
characters in script arguments, library names that could escape, a second session on the same
device, and — on the device — a fifo, a symlink loop and /proc reached through "..".
"""

import hashlib
import json
import time
import urllib.parse

import pytest

from lab import wait_until

SCRIPT = b"""#!/bin/sh
echo "args:$#"
for a in "$@"; do echo "arg=[$a]"; done
echo "tool says: $(cat tool.txt)"
echo "to stderr" >&2
"""
TOOL = b"quell-e2e tool payload\n"
NOTES = b"meeting notes of the compromised user\n" * 100
SLOW_SCRIPT = b"#!/bin/sh\nsleep 5\necho done\n"


def _upload(env, name, data, expect=200):
    q = urllib.parse.urlencode({"FileName": name, "Description": "e2e", "OverrideIfExists": "true"})
    r = env.api.request("POST", f"/api/libraryfiles?{q}", raw=data,
                        headers={"Content-Type": "application/octet-stream"})
    assert r.status == expect, r.body
    return r


def _cmd(type_, **params):
    return {"type": type_, "params": [{"key": k, "value": v} for k, v in params.items()]}


def _run(env, mid, commands, api=None, expect=201):
    r = (api or env.api).request("POST", f"/api/machines/{mid}/runliveresponse",
                                 {"Comment": "e2e live response", "Commands": commands})
    assert r.status == expect, r.body
    return r.json if r.status == 201 else r


def _download(env, action_id, index):
    r = env.api.request("GET", f"/api/machineactions/{action_id}/"
                               f"GetLiveResponseResultDownloadLink(index={index})")
    assert r.status == 200, r.body
    link = r.json["value"]
    got = env.api.request("GET", link[link.index("/api/downloads/"):], token=False)
    assert got.status == 200
    return got, r.json


@pytest.fixture(scope="module")
def responder(env):
    return env.server.api(env.server.create_token("e2e-live-responder", "responder"))


@pytest.fixture(scope="module")
def live(env):
    host = env.lab.add_host("liveresp")
    token = env.server.create_enrollment_token(uses=1)
    host.start_agent(env.agent_config(host, token))
    mid = env.machine_id(host)
    env.wait_connected(host)
    r = host.run_in_host("python3", "-c",
                         "import os,sys; os.makedirs('/home/alice', exist_ok=True); "
                         "open('/home/alice/notes.txt','wb').write(bytes.fromhex(sys.argv[1])); "
                         "os.mkfifo('/tmp/pipe'); os.symlink('/tmp/loop-b', '/tmp/loop-a'); "
                         "os.symlink('/tmp/loop-a', '/tmp/loop-b')", NOTES.hex())
    assert r.returncode == 0, r.stderr
    _upload(env, "triage.sh", SCRIPT)
    _upload(env, "tool.txt", TOOL)
    _upload(env, "slow.sh", SLOW_SCRIPT)
    return {"host": host, "mid": mid}


def test_put_run_and_get_in_one_session(env, live):
    action = _run(env, live["mid"], [
        _cmd("PutFile", FileName="tool.txt"),
        _cmd("RunScript", ScriptName="triage.sh", Args="alpha 'two words' \"3rd\""),
        _cmd("GetFile", Path="/home/alice/notes.txt"),
    ])
    done = env.wait_action(action["id"], timeout=60)
    assert done["status"] == "Succeeded", done
    assert [c["commandStatus"] for c in done["commands"]] == ["Completed"] * 3
    assert all(c["startTime"] and c["endTime"] for c in done["commands"])

    output, _ = _download(env, action["id"], 1)
    result = json.loads(output.body)
    assert result["script_name"] == "triage.sh"
    assert result["exit_code"] == 0
    assert "args:3" in result["script_output"]
    assert "arg=[two words]" in result["script_output"]
    assert "tool says: quell-e2e tool payload" in result["script_output"]
    assert "to stderr" in result["script_errors"]

    got, link = _download(env, action["id"], 2)
    assert link["sha256"] == hashlib.sha256(NOTES).hexdigest()
    assert got.body.encode() == NOTES
    assert 'filename="notes.txt"' in got.headers.get("Content-Disposition", "")

    # PutFile has no result to download.
    r = env.api.request("GET", f"/api/machineactions/{action['id']}/"
                               "GetLiveResponseResultDownloadLink(index=0)")
    assert r.status == 404


@pytest.mark.parametrize("path,reason", [
    ("/tmp/pipe", "is a fifo"),
    ("/tmp/loop-a", "symbolic link loop"),
    ("/home/alice/../../proc/self/environ", "/proc"),
    ("/home/alice/missing.txt", "no such file"),
])
def test_get_file_refuses_what_is_not_a_plain_file(env, live, responder, path, reason):
    action = _run(env, live["mid"], [_cmd("GetFile", Path=path),
                                     _cmd("GetFile", Path="/home/alice/notes.txt")], api=responder)
    done = env.wait_action(action["id"], timeout=60)
    assert done["status"] == "Failed", done
    first, second = done["commands"]
    assert first["commandStatus"] == "Failed"
    assert any(reason in e for e in first["errors"]), first
    assert second["commandStatus"] == "Created"  # the first failure stops the rest
    assert reason in done["statusMessage"]


def test_what_could_run_code_is_refused_before_anything_runs(env, live, responder):
    # Only admins put files on devices or run scripts.
    r = _run(env, live["mid"], [_cmd("RunScript", ScriptName="triage.sh")], api=responder,
             expect=403)
    assert "admin" in r.body
    for args in ["x; id", "$(id)", "`id`", "a | b", "a && b", "> /etc/passwd"]:
        r = _run(env, live["mid"], [_cmd("RunScript", ScriptName="triage.sh", Args=args)],
                 expect=400)
        assert "may not contain" in r.body, args
    for name in ["../etc/passwd", "a/b", ".hidden"]:
        r = _run(env, live["mid"], [_cmd("PutFile", FileName=name)], expect=400)
        q = urllib.parse.urlencode({"FileName": name})
        up = env.api.request("POST", f"/api/libraryfiles?{q}", raw=b"x",
                             headers={"Content-Type": "application/octet-stream"})
        assert up.status == 400, (name, up.body)
    names = [f["fileName"] for f in env.api.call("GET", "/api/libraryfiles")["value"]]
    assert sorted(names) == ["slow.sh", "tool.txt", "triage.sh"]


def test_one_session_per_device(env, live):
    first = _run(env, live["mid"], [_cmd("RunScript", ScriptName="slow.sh")])
    second = _run(env, live["mid"], [_cmd("GetFile", Path="/etc/hostname")], expect=400)
    assert second.error_code() == "ActiveRequestAlreadyExists"
    assert env.wait_action(first["id"], timeout=60)["status"] == "Succeeded"
    again = _run(env, live["mid"], [_cmd("GetFile", Path="/etc/hostname")])
    assert env.wait_action(again["id"], timeout=60)["status"] == "Succeeded"


def test_library_changes_are_audited(env, live):
    uploads = [e for e in env.api.audit("triage.sh")["value"] if e["operation"] == "library.uploaded"]
    assert uploads and uploads[0]["actor"] == "e2e-admin", uploads
    _upload(env, "gone.sh", b"#!/bin/sh\n")
    assert env.api.request("DELETE", "/api/libraryfiles/gone.sh").status == 204
    assert "library.deleted" in [e["operation"] for e in env.api.audit("gone.sh")["value"]]
    assert env.api.request("DELETE", "/api/libraryfiles/gone.sh").status == 404
