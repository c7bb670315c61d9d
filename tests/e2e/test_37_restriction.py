# Runs before test_40, which offboards the spare host it restricts.
"""RestrictCodeExecution on a lab host: fanotify exec gate in the host's own mount namespace.

The restricted host is `spare`; every command "on the host" runs through nsenter into its
network, mount and uts namespaces (its private /tmp, its marks). The machine running the tests
is never restricted: that is checked too.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.parse

import pytest

from conftest import cli_json, run_cli
from lab import wait_until


ALLOWED_SUFFIX = b"\nquell-e2e-allow-listed\n"
EPERM_TEXT = "Operation not permitted"


def _allowed_bytes():
    with open("/usr/bin/true", "rb") as f:
        return f.read() + ALLOWED_SUFFIX


def sh(host, script, timeout=30):
    return host.run_in_host("sh", "-c", script, timeout=timeout)


def runs(host, command):
    r = sh(host, command)
    return r.returncode == 0


def denied(host, command):
    """True when the shell could not exec the program: EPERM, rc 126."""
    r = sh(host, command)
    return r.returncode == 126 and EPERM_TEXT in (r.stderr + r.stdout)


@pytest.fixture(scope="module")
def restricted_env(env):
    host = env.spare
    # Restart spare's agent with an allow-listed hash (the allow-list is agent config).
    allowed_sha = hashlib.sha256(_allowed_bytes()).hexdigest()
    config = dict(host.agent_config)
    config["restriction"] = {**config.get("restriction", {}), "allow_sha256": [allowed_sha]}
    host.stop_agent()
    host.start_agent(config)
    env.wait_connected(host)

    # Files in the host's own /tmp (a private tmpfs), made before the restriction.
    setup = r"""
set -e
cp /bin/ls /tmp/ls-copy
printf '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n' > /tmp/hello.c
gcc -o /tmp/hello /tmp/hello.c
printf '#!/bin/sh\necho script-ran\n' > /tmp/script.sh
chmod +x /tmp/script.sh
cp /usr/bin/tac /tmp/tac-modified
printf 'tampered' >> /tmp/tac-modified
mount --bind /tmp/tac-modified /usr/bin/tac
"""
    r = sh(host, setup, timeout=60)
    assert r.returncode == 0, r.stderr
    with tempfile.NamedTemporaryFile(dir=host.dir, delete=False) as f:
        f.write(_allowed_bytes())
    # Copy through the shared base dir (bound into the host) into the host's /tmp.
    src = f.name
    os.chmod(src, 0o755)
    r = sh(host, f"cp {src} /tmp/allowed && chmod +x /tmp/allowed")
    assert r.returncode == 0, r.stderr
    # Sanity before restricting: everything runs.
    for cmd in ("/tmp/ls-copy /", "/tmp/hello", "cd /tmp && ./script.sh", "/tmp/allowed",
                "/usr/bin/tac /dev/null"):
        assert runs(host, cmd), cmd
    try:
        yield env, host, allowed_sha
    finally:
        mid = env.machine_id(host)
        a = env.api.call("POST", f"/api/machines/{urllib.parse.quote(mid)}/unrestrictCodeExecution",
                         {"Comment": "e2e: cleanup"})
        env.wait_action(a["id"])
        sh(host, "umount /usr/bin/tac")


def test_restriction_blocks_unapproved_programs_only_on_the_lab_host(restricted_env):
    env, host, allowed_sha = restricted_env
    mid = env.machine_id(host)
    out = cli_json(env, "machine", "restrict", mid, "--comment", "e2e: restrict", "--wait")
    action = env.wait_action(out["id"])
    assert action["status"] == "Succeeded", action
    assert action["type"] == "RestrictCodeExecution"

    assert runs(host, "/bin/ls /"), "package binary /bin/ls must still run"
    assert denied(host, "/tmp/ls-copy /"), "a copy of ls in /tmp must be denied"
    assert denied(host, "/usr/bin/tac /dev/null"), "a modified package binary must be denied"
    assert denied(host, "/tmp/hello"), "a freshly compiled program must be denied"
    assert runs(host, "/tmp/allowed"), "an allow-listed hash must run"
    assert denied(host, "cd /tmp && ./script.sh"), "./script.sh must be denied"
    # Documented limit: an approved interpreter can still read and run the script.
    r = sh(host, "sh /tmp/script.sh")
    assert r.returncode == 0 and "script-ran" in r.stdout

    # The machine running the tests is not restricted.
    d = tempfile.mkdtemp(dir=env.base_dir)
    try:
        shutil.copy("/bin/ls", os.path.join(d, "ls-copy"))
        assert subprocess.run([os.path.join(d, "ls-copy"), "/"], capture_output=True).returncode == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)

    # Each denial became an alert with the file's evidence.
    sha_copy = sh(host, "sha256sum /tmp/ls-copy").stdout.split()[0]

    def alert_for_copy():
        q = urllib.parse.quote(f"machineId eq '{mid}'")
        alerts = env.api.call("GET", f"/api/alerts?$filter={q}")["value"]
        for a in alerts:
            if a.get("detectorId") == "quell.exec-restriction" and sha_copy in str(a.get("evidence")):
                return a
        return None
    alert = wait_until(alert_for_copy, timeout=30, what="execution-blocked alert for /tmp/ls-copy")
    assert alert["category"] == "Execution"
    assert "/tmp/ls-copy" in str(alert["evidence"])


def test_agent_kill_leaves_host_usable_and_restart_restores(restricted_env):
    env, host, _ = restricted_env
    mid = env.machine_id(host)
    a = env.api.call("POST", f"/api/machines/{urllib.parse.quote(mid)}/restrictCodeExecution",
                     {"Comment": "e2e: restrict"})
    assert env.wait_action(a["id"])["status"] == "Succeeded"
    assert denied(host, "/tmp/ls-copy /")

    host.kill_agent(signal.SIGKILL)
    # The kernel released the gate with the agent: nothing hangs, everything runs.
    assert runs(host, "/tmp/ls-copy /")
    assert runs(host, "/tmp/hello")

    host.start_agent()
    wait_until(lambda: denied(host, "/tmp/ls-copy /"), timeout=30,
               what="restriction re-applied after the agent restarted")
    assert runs(host, "/bin/ls /")
    env.wait_connected(host)


def test_unrestrict_restores_everything(restricted_env):
    env, host, _ = restricted_env
    mid = env.machine_id(host)
    a = env.api.call("POST", f"/api/machines/{urllib.parse.quote(mid)}/restrictCodeExecution",
                     {"Comment": "e2e: restrict"})
    assert env.wait_action(a["id"])["status"] == "Succeeded"
    assert denied(host, "/tmp/hello")

    r = run_cli(env, "machine", "unrestrict", mid, "--wait")
    # --wait prints the status changes on stderr and exits 0 only when the action Succeeded.
    assert r.returncode == 0 and "Succeeded" in r.stderr, (r.stdout, r.stderr)
    for cmd in ("/tmp/ls-copy /", "/tmp/hello", "cd /tmp && ./script.sh", "/usr/bin/tac /dev/null",
                "/tmp/allowed"):
        assert runs(host, cmd), f"{cmd} still blocked after unrestrict"
