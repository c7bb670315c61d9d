"""Interactive live response on a lab host, end to end, through `quell live` and the real server:
a session lists processes, finds and fetches a file, puts and runs a library script, remediates
a planted cron job and undoes it, runs a background job, follows a device action. Then what
must be refused or ended: path traversal and symlink tricks, forbidden script arguments, a
responder running code, a second session, an idle session, and an agent that disconnects in
the middle of a command. The audit shows every command. The terminal form (line editing,
history, Ctrl-C) is driven through a pseudo-terminal.
"""

import hashlib
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.parse

import pexpect
import pytest

from lab import wait_until

SCRIPT = b"""#!/bin/sh
echo "args:$#"
for a in "$@"; do echo "arg=[$a]"; done
echo "tool says: $(cat sess-tool.txt)"
"""
TOOL = b"quell-e2e session tool\n"
SLOW_SCRIPT = b"#!/bin/sh\necho started\nsleep 60\necho finished\n"
NOTES = b"the intruder's notes\n" * 200
CRON = b"# planted by the e2e test\n* * * * * root /opt/beacon.sh --quiet\n"


def _upload(env, name, data):
    q = urllib.parse.urlencode({"FileName": name, "Description": "e2e", "OverrideIfExists": "true"})
    r = env.api.request("POST", f"/api/libraryfiles?{q}", raw=data,
                        headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200, r.body


def _live_cmd(env, host, token=None, *extra):
    return [env.bins.cli, "--server", env.server.api_url, "--token", token or env.admin_token,
            "--ca", env.server.ca_path, "live", host.hostname, *extra]


def run_live(env, host, lines, token=None, cwd=None, timeout=120):
    """Runs a whole session from a script on stdin (the CLI's non-terminal form)."""
    r = subprocess.run(_live_cmd(env, host, token), input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return r


class OpenSession:
    """A `quell live` process whose stdin stays open, for sessions that must last."""

    def __init__(self, env, host, token=None, cwd=None):
        self.proc = subprocess.Popen(_live_cmd(env, host, token), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, cwd=cwd)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.seen:
                if text in line:
                    return line
            try:
                self.seen.append(self.lines.get(timeout=0.2))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
        raise AssertionError(f"{text!r} not seen within {timeout}s; got:\n{''.join(self.seen)}")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def responder_token(env):
    return env.server.create_token("e2e-session-responder", "responder")


@pytest.fixture(scope="module")
def live(env):
    host = env.lab.add_host("livesess")
    token = env.server.create_enrollment_token(uses=1)
    host.start_agent(env.agent_config(host, token))
    mid = env.machine_id(host)
    env.wait_connected(host)
    r = host.run_in_host(
        "python3", "-c",
        "import os,sys; os.makedirs('/home/bob/.cache/x', exist_ok=True); "
        "open('/home/bob/.cache/x/loot-notes.txt','wb').write(bytes.fromhex(sys.argv[1])); "
        "open('/etc/cron.d/beacon','wb').write(bytes.fromhex(sys.argv[2])); "
        "os.chmod('/etc/cron.d/beacon', 0o644); "
        "os.makedirs('/opt', exist_ok=True); open('/opt/beacon.sh','w').write('#!/bin/sh\\n'); "
        "os.mkfifo('/tmp/sess-pipe'); os.symlink('/tmp/sess-b', '/tmp/sess-a'); "
        "os.symlink('/tmp/sess-a', '/tmp/sess-b')", NOTES.hex(), CRON.hex())
    assert r.returncode == 0, r.stderr
    marker = host.popen(["sleep", "4242"])
    _upload(env, "sess-triage.sh", SCRIPT)
    _upload(env, "sess-tool.txt", TOOL)
    _upload(env, "sess-slow.sh", SLOW_SCRIPT)
    yield {"host": host, "mid": mid}
    marker.kill()
    marker.wait()


def _wait_running(host, name):
    wait_until(lambda: host.run_in_host("pgrep", "-f", name).returncode == 0, timeout=20,
               what=f"{name} to run on {host.name}")


def _sessions(env, mid):
    return env.api.actions(odata_filter=f"machineId eq '{mid}' and type eq 'LiveResponse'")


def _last_session(env, mid):
    return _sessions(env, mid)[0]


def _wait_session_closed(env, mid):
    wait_until(lambda: all(a["status"] != "InProgress" and a["status"] != "Pending"
                           for a in _sessions(env, mid)),
               timeout=30, what="the live response session's action to end")


def test_a_session_investigates_and_fetches_a_file(env, live, tmp_path):
    r = run_live(env, live["host"], [
        "processes",
        "findfile loot-notes.txt /home",
        "cd /home/bob/.cache/x",
        "pwd",
        "ls",
        "fileinfo loot-notes.txt",
        "getfile loot-notes.txt",
        "fileinfo /bin/sh -output json",
    ], cwd=str(tmp_path))
    assert r.returncode == 0, f"stdout: {r.stdout}\nstderr: {r.stderr}"
    out = r.stdout
    assert "sleep 4242" in out                                   # processes
    assert "/home/bob/.cache/x/loot-notes.txt" in out            # findfile
    assert hashlib.sha256(NOTES).hexdigest() in out              # fileinfo
    assert '"package"' in out and "dash" in out                  # fileinfo json, owning package
    fetched = tmp_path / "loot-notes.txt"
    assert fetched.read_bytes() == NOTES                         # getfile, downloaded by the CLI
    _wait_session_closed(env, live["mid"])
    assert _last_session(env, live["mid"])["status"] == "Succeeded"


def test_a_library_script_is_put_and_run(env, live):
    r = run_live(env, live["host"], [
        "putfile sess-tool.txt",
        "run sess-triage.sh 'two words' second",
    ])
    assert r.returncode == 0, f"stdout: {r.stdout}\nstderr: {r.stderr}"
    assert "args:2" in r.stdout
    assert "arg=[two words]" in r.stdout
    assert "tool says: quell-e2e session tool" in r.stdout


def test_a_planted_cron_job_is_remediated_and_undone(env, live):
    host = live["host"]
    r = run_live(env, host, ["persistence", "remediate cron /opt/beacon.sh"])
    assert r.returncode == 0, f"stdout: {r.stdout}\nstderr: {r.stderr}"
    assert "/etc/cron.d/beacon" in r.stdout
    gone = host.run_in_host("cat", "/etc/cron.d/beacon")
    assert "/opt/beacon.sh" not in gone.stdout
    # A new session: the journal of remediations outlives the one that made it.
    r = run_live(env, host, ["undo"])
    assert r.returncode == 0, f"stdout: {r.stdout}\nstderr: {r.stderr}"
    back = host.run_in_host("python3", "-c",
                            "import sys; sys.stdout.write(open('/etc/cron.d/beacon','rb')"
                            ".read().hex())")
    assert bytes.fromhex(back.stdout.strip()) == CRON


@pytest.mark.parametrize("line, reason", [
    ("getfile /tmp/../proc/self/environ", "/proc"),
    ("getfile /tmp/sess-a", "link loop"),
    ("getfile /tmp/sess-pipe", "fifo"),
    ("putfile ../../etc/passwd", "name"),
    ("run sess-triage.sh 'a;b'", ";"),
    ("run sess-triage.sh $HOME", "$"),
    ("run /bin/sh", "library"),
    ("nosuchcommand", "unknown"),
])
def test_tricks_are_refused_with_their_reason(env, live, line, reason):
    r = run_live(env, live["host"], [line, "pwd"])
    assert r.returncode == 1
    assert "error: Failed" in r.stderr, r.stderr
    assert reason.lower() in r.stderr.lower(), r.stderr
    assert "/\n" in r.stdout  # the session went on after the refusal


def test_a_responder_investigates_but_cannot_run_code(env, live, responder_token):
    r = run_live(env, live["host"], ["pwd", "run sess-triage.sh", "remediate cron /opt/x",
                                     "putfile sess-tool.txt"], token=responder_token)
    assert r.returncode == 1
    assert r.stderr.count("admin role") == 3, r.stderr
    assert "/\n" in r.stdout


def test_background_job_and_a_device_action_from_the_session(env, live):
    r = run_live(env, live["host"], [
        "run sess-slow.sh &",
        "jobs",
        "collect",
        "status",
    ], timeout=180)
    assert "sess-slow.sh" in r.stdout and "Running" in r.stdout, r.stdout
    assert "CollectInvestigationPackage" in r.stdout and "Succeeded" in r.stdout, r.stdout


def test_the_session_isolates_the_device_and_keeps_working_then_releases_it(env, live):
    host = live["host"]
    s = OpenSession(env, host)
    try:
        s.expect("help")
        s.send("isolate")
        s.expect("Isolate", timeout=30)
        wait_until(lambda: env.api.machine(live["mid"]).get("isolationState") == "Full",
                   timeout=30, what="the device to be isolated from the session")
        assert host.nft_tables(), "no isolation table on the lab host"
        s.send("pwd")                      # the session goes on through the isolation
        s.send("release")
        wait_until(lambda: env.api.machine(live["mid"]).get("isolationState") == "NotIsolated",
                   timeout=30, what="the device to be released from the session")
    finally:
        assert s.close() == 0, "".join(s.seen)
    wait_until(lambda: not host.nft_tables(), timeout=15, what="the isolation table removed")
    kinds = [a["type"] for a in env.api.actions(odata_filter=f"machineId eq '{live['mid']}'")]
    assert "Isolate" in kinds and "Unisolate" in kinds


def test_a_second_session_is_refused(env, live):
    first = OpenSession(env, live["host"])
    try:
        first.expect("help")
        r = run_live(env, live["host"], ["pwd"])
        assert r.returncode == 1
        assert "ActiveRequestAlreadyExists" in r.stderr, r.stderr
    finally:
        first.close()
    _wait_session_closed(env, live["mid"])


def test_an_idle_session_is_closed(env, live):
    s = OpenSession(env, live["host"])
    try:
        s.expect("help")
        line = s.expect("session closed", timeout=env.live_idle_timeout + 15)
        assert "idle" in line
        assert s.proc.wait(timeout=10) == 2  # ended by the server
    finally:
        s.close()
    _wait_session_closed(env, live["mid"])


def test_an_agent_that_disconnects_ends_the_command_clearly(env, live):
    host = live["host"]
    s = OpenSession(env, host)
    try:
        s.expect("help")
        s.send("run sess-slow.sh")
        _wait_running(host, "sess-slow.sh")
        host.kill_agent()
        line = s.expect("Disconnected", timeout=30)
        assert "disconnected while the command ran" in line
    finally:
        s.close()
        if not host.agent_running():
            host.start_agent()
        env.wait_connected(host)
    _wait_session_closed(env, live["mid"])


def test_the_audit_shows_every_command(env, live):
    r = run_live(env, live["host"], ["pwd", "ls /etc", "getfile /tmp/sess-pipe"])
    assert r.returncode == 1
    sid = _last_session(env, live["mid"])["id"]
    got = env.api.request("GET", f"/api/liveresponse/sessions/{sid}/commands")
    assert got.status == 200, got.body
    cmds = got.json["value"]
    assert [c["line"] for c in cmds] == ["pwd", "ls /etc", "getfile /tmp/sess-pipe"]
    assert [c["status"] for c in cmds] == ["Completed", "Completed", "Failed"]
    assert all(c["requestedBy"] == "e2e-admin" and c["durationMs"] >= 0 for c in cmds)
    assert "hosts" in cmds[1]["output"]
    ops = [e["operation"] for e in env.api.audit(sid)["value"]]
    assert ops.count("live.command") == 3
    assert "live.session.opened" in ops and "live.session.closed" in ops


def test_the_terminal_edits_recalls_and_cancels(env, live, tmp_path):
    cmd = _live_cmd(env, live["host"], None, "--history-file", str(tmp_path / "history"))
    child = pexpect.spawn(cmd[0], cmd[1:], encoding="utf-8", timeout=30,
                          dimensions=(40, 200))
    try:
        child.expect("help")
        child.expect(r"\$ ")
        child.send("pwdXY\x7f\x7f\r")               # two backspaces
        child.expect(r"\r\n/\r\n")
        child.expect(r"\$ ")
        child.send("\x1b[A\r")                       # up arrow: pwd again
        child.expect(r"\r\n/\r\n")
        child.expect(r"\$ ")
        child.send("run sess-slow.sh\r")
        child.expect("started")                      # a running script's output is live
        child.sendintr()                             # Ctrl-C cancels the command
        child.expect("Cancelled")
        child.expect(r"\$ ")
        child.sendeof()                              # Ctrl-D ends the session
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert (tmp_path / "history").read_text().splitlines()[-2:] == ["pwd", "run sess-slow.sh"]
    _wait_session_closed(env, live["mid"])
