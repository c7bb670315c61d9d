"""Collect investigation package (CollectInvestigationPackage) of a lab host, end to end.

Traces of an intrusion are planted inside the lab host, where its agent sees them (the host's
/etc, /root, /home, /opt, /usr/local, /var/spool and /var/log are copy-on-write overlays; /tmp
is its own tmpfs): a cron job, a systemd unit, a process listening on a port, a login record
in wtmp, a process whose executable was deleted, and SSH private keys. The package is
collected and downloaded with the CLI, checked with 7z, unpacked, and searched for each trace
— and for secrets, which must not be there (the keys planted, and the password hashes of this
machine's own /etc/shadow, which the host sees through its overlay). The download link is
fetched again through the API and watched until it expires.
"""

import hashlib
import json
import os
import struct
import subprocess
import time

import pytest

from conftest import DOWNLOAD_LINK_LIFETIME
from lab import wait_until

CRON_LINE = "*/5 * * * * root /usr/local/bin/quell-e2e-beacon --c2 203.0.113.50"
UNIT = "quell-e2e-backdoor.service"
LISTEN_PORT = 47123
LOGIN_USER = "quell-e2e-intruder"
LOGIN_HOST = "203.0.113.77"
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABQUVMRTJFU0VDUkVU"
PRIVATE_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n" + KEY_BODY + "\n"
               "-----END OPENSSH PRIVATE KEY-----\n")


def _plant(host, path, data, mode="644", append=False):
    data = data.encode() if isinstance(data, str) else data
    r = host.run_in_host(
        "python3", "-c",
        "import os,sys; p=sys.argv[1]; os.makedirs(os.path.dirname(p), exist_ok=True); "
        "open(p, sys.argv[3]).write(bytes.fromhex(sys.stdin.read())); os.chmod(p, int(sys.argv[2], 8))",
        path, mode, "ab" if append else "wb", input=data.hex())
    assert r.returncode == 0, r.stderr


def _utmp_record(user, line, host, pid, when):
    """One struct utmp (x86_64 glibc layout, 384 bytes) of type USER_PROCESS."""
    rec = struct.pack("<hxxi32s4s32s256shhiii4i20s", 7, pid, line.encode(), b"e2e",
                      user.encode(), host.encode(), 0, 0, 0, int(when), 0, 0, 0, 0, 0, b"")
    assert len(rec) == 384
    return rec


def _shadow_hashes():
    """The password hashes of this machine's accounts, which the lab host sees too."""
    hashes = []
    with open("/etc/shadow") as f:
        for line in f:
            fields = line.split(":")
            if len(fields) > 1 and fields[1].startswith("$"):
                hashes.append(fields[1])
    return hashes


def _files_holding(root, needle):
    needle = needle.encode()
    hits = []
    for d, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(d, name), "rb") as f:
                if needle in f.read():
                    hits.append(os.path.relpath(os.path.join(d, name), root))
    return hits


@pytest.fixture(scope="module")
def forensic(env):
    host = env.lab.add_host("forensic")
    token = env.server.create_enrollment_token(uses=1)
    host.start_agent(env.agent_config(host, token, collect={"command_timeout_seconds": 20}))
    mid = env.machine_id(host)
    env.wait_connected(host)

    _plant(host, "/etc/cron.d/quell-e2e-beacon", CRON_LINE + "\n")
    _plant(host, f"/etc/systemd/system/{UNIT}",
           "[Unit]\nDescription=Totally legit\n[Service]\n"
           "ExecStart=/opt/quell-e2e/backdoor --listen 47123\n[Install]\nWantedBy=multi-user.target\n")
    _plant(host, "/var/log/wtmp", _utmp_record(LOGIN_USER, "pts/7", LOGIN_HOST, 4242, time.time()),
           append=True)
    _plant(host, "/root/.ssh/id_ed25519", PRIVATE_KEY, mode="600")
    _plant(host, "/home/alice/.ssh/id_rsa", PRIVATE_KEY, mode="600")
    _plant(host, "/home/alice/.ssh/authorized_keys",
           "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2EquellE2E attacker@c2\n")

    listener = host.popen(["python3", "-c",
                           "import socket,time; s=socket.socket(); "
                           f"s.bind(('0.0.0.0', {LISTEN_PORT})); s.listen(); time.sleep(900)"])
    # A program that deletes itself after starting: only /proc still has it.
    r = host.run_in_host("cp", "/bin/sleep", "/tmp/quell-e2e-implant")
    assert r.returncode == 0, r.stderr
    implant = host.popen([*host.nsenter(), "/tmp/quell-e2e-implant", "900"])
    wait_until(lambda: os.path.exists(f"/proc/{implant.pid}/exe") and
               os.readlink(f"/proc/{implant.pid}/exe").endswith("quell-e2e-implant"),
               timeout=10, what="the implant running")
    assert host.run_in_host("rm", "/tmp/quell-e2e-implant").returncode == 0
    with open("/bin/sleep", "rb") as f:
        implant_sha256 = hashlib.sha256(f.read()).hexdigest()
    yield {"host": host, "mid": mid, "listener": listener, "implant_sha256": implant_sha256}


@pytest.fixture(scope="module")
def package(env, forensic, tmp_path_factory):
    """Collects with the CLI and unpacks the package with 7z."""
    out = tmp_path_factory.mktemp("package")
    zip_path = str(out / "package.zip")
    cmd = [env.bins.cli, "--server", env.server.api_url, "--token", env.admin_token,
           "--ca", env.server.ca_path, "machine", "collect", forensic["host"].hostname,
           "-o", zip_path, "-c", "e2e: collect after the beacon alert"]
    started = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"stdout: {r.stdout}\nstderr: {r.stderr}"
    t = subprocess.run(["7z", "t", zip_path], capture_output=True, text=True)
    assert t.returncode == 0, t.stdout + t.stderr
    x = subprocess.run(["7z", "x", f"-o{out}/x", zip_path], capture_output=True, text=True)
    assert x.returncode == 0, x.stdout + x.stderr
    action = env.api.actions(odata_filter=f"machineId eq '{forensic['mid']}' and "
                                          "type eq 'CollectInvestigationPackage'")[0]
    return {"zip": zip_path, "dir": str(out / "x"), "cli": r, "action": action,
            "seconds": time.monotonic() - started}


def _read(package, rel):
    with open(os.path.join(package["dir"], rel), errors="replace") as f:
        return f.read()


def test_the_cli_reports_the_package_and_its_digest(package):
    with open(package["zip"], "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert f"sha256 {digest}" in package["cli"].stdout
    assert "files collected" in package["cli"].stdout
    assert "%" in package["cli"].stderr  # progress was shown
    result = package["action"]["result"]
    assert package["action"]["status"] == "Succeeded"
    assert result["sha256"] == digest
    assert result["artifactCount"] > 30


def test_every_topic_is_a_folder_and_the_summary_says_what_happened(package):
    topics = ["Autoruns", "Installed programs", "Network connections", "Processes",
              "Scheduled tasks", "Security logs", "Services", "Users and Groups", "Logins",
              "System Information", "Temp Directories"]
    for t in topics:
        assert os.path.isdir(os.path.join(package["dir"], t)), t
    summary = json.loads(_read(package, "CollectionSummaryReport.json"))
    assert [t["name"] for t in summary["topics"]] == [
        "System Information", "Processes", "Network connections", "Autoruns", "Scheduled tasks",
        "Services", "Users and Groups", "Logins", "Security logs", "Installed programs",
        "Temp Directories"]
    assert summary["complete"] is True
    html = _read(package, "CollectionSummaryReport.html")
    assert "<h1>Investigation package: " in html and "Autoruns" in html
    # What could not be collected is listed with a reason, never silently missing.
    for t in summary["topics"]:
        for f in t["failures"]:
            assert f["reason"], f


def test_the_planted_cron_job_and_unit_are_in_autoruns(package):
    assert CRON_LINE in _read(package, "Autoruns/etc/cron.d/quell-e2e-beacon")
    assert "/opt/quell-e2e/backdoor" in _read(package, f"Autoruns/etc/systemd/system/{UNIT}")
    tasks = _read(package, "Scheduled tasks/scheduled_tasks.txt")
    assert "/usr/local/bin/quell-e2e-beacon" in tasks
    assert "attacker@c2" in _read(package, "Autoruns/home/alice/.ssh/authorized_keys")


def test_the_listening_socket_shows_with_its_process(package, forensic):
    listening = _read(package, "Network connections/listening_ports.txt")
    line = next((l for l in listening.splitlines() if f":{LISTEN_PORT}" in l), None)
    assert line is not None, listening
    assert str(forensic["listener"].pid) in line or "python3" in line, line
    sockets = json.loads(_read(package, "Network connections/sockets.json"))
    assert any(s["local_port"] == LISTEN_PORT and s["owners"] for s in sockets), sockets


def test_the_login_record_is_in_recent_logins(package):
    logins = _read(package, "Logins/recent_logins.txt")
    assert LOGIN_USER in logins and LOGIN_HOST in logins, logins


def test_the_process_with_a_deleted_executable_is_flagged_with_its_hash(package, forensic):
    processes = json.loads(_read(package, "Processes/processes.json"))
    implant = [p for p in processes if "quell-e2e-implant" in (p.get("exe") or "")]
    assert implant, "implant not in processes.json"
    assert implant[0]["exe_deleted"] is True
    assert implant[0]["exe_sha256"] == forensic["implant_sha256"]
    assert "[DELETED EXE: /tmp/quell-e2e-implant]" in _read(package, "Processes/process_tree.txt")


def test_no_private_key_or_password_hash_is_in_the_package(package):
    assert _files_holding(package["dir"], KEY_BODY) == []
    assert _files_holding(package["dir"], "PRIVATE KEY-----") == []
    for h in _shadow_hashes():
        assert _files_holding(package["dir"], h) == [], "a password hash of /etc/shadow"
    ssh = _read(package, "Users and Groups/ssh_dirs.txt")
    assert "id_rsa" in ssh  # listed, never copied


def test_a_second_collection_while_one_runs_is_refused(env, forensic):
    first = env.api.request("POST", f"/api/machines/{forensic['mid']}/collectInvestigationPackage",
                            {"Comment": "e2e: first"})
    assert first.status == 201, first.body
    second = env.api.request("POST", f"/api/machines/{forensic['mid']}/collectInvestigationPackage",
                             {"Comment": "e2e: second"})
    assert second.status == 400, second.body
    assert "in progress" in second.body
    done = env.wait_action(first.json["id"], timeout=240)
    assert done["status"] == "Succeeded", done


def test_the_link_works_then_expires_and_a_new_one_can_be_had(env, package):
    aid = package["action"]["id"]
    uri = env.api.request("GET", f"/api/machineactions/{aid}/getPackageUri")
    assert uri.status == 200, uri.body
    link = uri.json["value"]
    assert link.startswith("https://") and "/api/downloads/" in link
    path = link[link.index("/api/downloads/"):]
    got = env.api.request("GET", path, token=False)
    assert got.status == 200
    assert got.headers.get("Content-Type") == "application/zip"
    time.sleep(DOWNLOAD_LINK_LIFETIME + 1)
    expired = env.api.request("GET", path, token=False)
    assert expired.status == 403 and "expired" in expired.body
    fresh = env.api.request("GET", f"/api/machineactions/{aid}/getPackageUri").json["value"]
    assert env.api.request("GET", fresh[fresh.index("/api/downloads/"):], token=False).status == 200
    operations = [e["operation"] for e in env.api.audit(aid)["value"]]
    assert "package.link_issued" in operations
