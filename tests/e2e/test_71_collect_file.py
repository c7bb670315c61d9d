"""Collect file: a file on a lab device reaches the server as a sample, described by
GET /api/files/{sha256}, and leaves it only as a zip encrypted with the analyst's password,
which 7-Zip opens to the same bytes and refuses with another password.

Also what must not be collected (a device, a fifo, /proc, a symlink loop), a file that is
written to while it is sent (reported as a hash mismatch, not stored), and a 1 GiB file that
travels with the agent's and the server's memory staying flat.
"""

import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile

import pytest

from conftest import run_cli

PASSWORD = "s3cret-zip-pw"


def _read_status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _download_zip(env, sha256, password, dest):
    """POST /api/files/{sha256}/download, streamed to `dest`. Returns the HTTP status."""
    ctx = ssl.create_default_context(cafile=env.server.ca_path)
    conn = http.client.HTTPSConnection("127.0.0.1", env.server.api_port, context=ctx,
                                       timeout=300)
    try:
        body = json.dumps({"Password": password, "Comment": "e2e"})
        conn.request("POST", f"/api/files/{sha256}/download", body=body,
                     headers={"Authorization": f"Bearer {env.admin_token}",
                              "Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            return r.status, r.read().decode(errors="replace")
        with open(dest, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        return 200, r.getheader("Content-Type")
    finally:
        conn.close()


def _extract(zip_path, password, out_dir):
    return subprocess.run(["7z", "x", "-y", f"-p{password}", f"-o{out_dir}", zip_path],
                          capture_output=True, text=True, timeout=300)


def _sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _collect(env, mid, path, timeout=60):
    a = env.api.call("POST", f"/api/machines/{mid}/collectFile",
                     {"Comment": "e2e: collect file", "Path": path})
    return env.wait_action(a["id"], timeout=timeout)


@pytest.fixture(scope="module")
def victim(env):
    return env.victim, env.machine_id(env.victim)


def test_a_collected_file_opens_from_its_zip_with_the_password_only(env, victim, tmp_path):
    host, mid = victim
    r = host.run_in_host("sh", "-c", "head -c 300000 /dev/urandom > /tmp/evil.bin && "
                                     "printf 'tail' >> /tmp/evil.bin && sha256sum /tmp/evil.bin "
                                     "&& sha1sum /tmp/evil.bin && md5sum /tmp/evil.bin")
    assert r.returncode == 0, r.stderr
    sha256, sha1, md5 = (line.split()[0] for line in r.stdout.splitlines())

    done = _collect(env, mid, "/tmp/evil.bin")
    assert done["status"] == "Succeeded", done

    f = env.api.call("GET", f"/api/files/{sha256}")
    assert f["collected"] is True
    assert (f["size"], f["sha1"], f["md5"], f["fileName"]) == (300004, sha1, md5, "evil.bin")
    assert f["collections"][0]["machineId"] == mid
    assert f["collections"][0]["path"] == "/tmp/evil.bin"
    assert f["collections"][0]["actionId"] == done["id"]

    zip_path = str(tmp_path / "evil.zip")
    status, kind = _download_zip(env, sha256, PASSWORD, zip_path)
    assert (status, kind) == (200, "application/zip")
    listing = subprocess.run(["7z", "l", "-slt", zip_path], capture_output=True, text=True)
    assert "Encrypted = +" in listing.stdout and "AES-256" in listing.stdout, listing.stdout

    out = tmp_path / "right"
    ok = _extract(zip_path, PASSWORD, str(out))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert _sha256_of(out / "evil.bin") == sha256

    wrong = _extract(zip_path, "not-the-password", str(tmp_path / "wrong"))
    assert wrong.returncode != 0
    assert "Wrong password" in wrong.stdout + wrong.stderr
    assert not (tmp_path / "wrong" / "evil.bin").exists() or \
        _sha256_of(tmp_path / "wrong" / "evil.bin") != sha256

    # Nothing is left of the zip on the server once it was sent.
    assert os.listdir(os.path.join(env.server.data_dir, "blobs", "zips")) == []
    # The download is audited, without the password.
    audit = env.api.call("GET", f"/api/audit?target={sha256}")["value"]
    downloads = [e for e in audit if e["operation"] == "file.downloaded"]
    assert downloads and PASSWORD not in json.dumps(downloads)


def test_download_needs_a_password_of_the_analysts_choosing(env, victim):
    host, mid = victim
    host.run_in_host("sh", "-c", "echo pw-test > /tmp/pw.txt")
    assert _collect(env, mid, "/tmp/pw.txt")["status"] == "Succeeded"
    sha = hashlib.sha256(b"pw-test\n").hexdigest()
    r = env.api.call("POST", f"/api/files/{sha}/download", {"Comment": "no password"},
                     expect=(400,))
    assert "'Password' is required" in json.dumps(r)
    r = env.api.call("POST", f"/api/files/{sha}/download", {"Password": "short"},
                     expect=(400,))
    assert "8 to 128" in json.dumps(r)


@pytest.mark.parametrize("path,reason", [
    ("/dev/zero", "/proc, /sys and /dev are not collected"),
    ("/proc/self/environ", "/proc, /sys and /dev are not collected"),
    ("/tmp/collect-pipe", "is a fifo"),
    ("/tmp/collect-loop-a", "symbolic link loop"),
    ("/tmp/no-such-file", "no such file"),
])
def test_what_is_not_a_plain_file_is_refused_with_its_reason(env, victim, path, reason):
    host, mid = victim
    host.run_in_host("python3", "-c",
                     "import os\n"
                     "for f in ('/tmp/collect-pipe', '/tmp/collect-loop-a', '/tmp/collect-loop-b'):\n"
                     "    try: os.unlink(f)\n"
                     "    except FileNotFoundError: pass\n"
                     "os.mkfifo('/tmp/collect-pipe')\n"
                     "os.symlink('/tmp/collect-loop-b', '/tmp/collect-loop-a')\n"
                     "os.symlink('/tmp/collect-loop-a', '/tmp/collect-loop-b')\n")
    done = _collect(env, mid, path)
    assert done["status"] == "Failed", done
    assert reason in done["statusMessage"], done["statusMessage"]


def test_a_file_written_to_while_it_is_sent_is_reported_not_stored(env, victim):
    host, mid = victim
    r = host.run_in_host("sh", "-c", "head -c 150000000 /dev/urandom > /tmp/growing.log && "
                                     "sha256sum /tmp/growing.log", timeout=60)
    first_sha = r.stdout.split()[0]
    # A writer that keeps appending for the whole collection.
    writer = subprocess.Popen([*host.nsenter(), "sh", "-c",
                               "while true; do echo line >> /tmp/growing.log; sleep 0.05; done"])
    try:
        done = _collect(env, mid, "/tmp/growing.log", timeout=120)
    finally:
        writer.kill()
        writer.wait()
    assert done["status"] == "Failed", done
    assert "changed while it was being collected (hash mismatch" in done["statusMessage"], done
    env.api.call("GET", f"/api/files/{first_sha}", expect=(404,))


def test_a_1_gib_file_collects_and_downloads_in_bounded_memory(env, tmp_path):
    host = env.lab.add_host("bigfile")
    token = env.server.create_enrollment_token(uses=1)
    host.start_agent(env.agent_config(host, token))
    mid = env.machine_id(host)
    env.wait_connected(host)
    size = 1 << 30
    r = host.run_in_host("sh", "-c", f"head -c {size} /dev/urandom > /home/disk.img && "
                                     "sha256sum /home/disk.img", timeout=120)
    assert r.returncode == 0, r.stderr
    want = r.stdout.split()[0]
    agent_before = _read_status_kib(host.agent.pid, "VmRSS")

    done = _collect(env, mid, "/home/disk.img", timeout=300)
    assert done["status"] == "Succeeded", done

    agent_peak = _read_status_kib(host.agent.pid, "VmHWM")
    server_peak = _read_status_kib(env.server.proc.pid, "VmHWM")
    print(f"1 GiB collect: agent RSS {agent_before} KiB before, peak {agent_peak} KiB; "
          f"server peak {server_peak} KiB")
    # The file is 1,048,576 KiB; neither side may hold any sizeable part of it.
    assert agent_peak - agent_before < 64 * 1024, (agent_before, agent_peak)
    assert server_peak < 256 * 1024, server_peak

    zip_path = str(tmp_path / "disk.zip")
    assert _download_zip(env, want, PASSWORD, zip_path)[0] == 200
    server_peak = _read_status_kib(env.server.proc.pid, "VmHWM")
    assert server_peak < 256 * 1024, f"server peak {server_peak} KiB after the 1 GiB zip"
    out = tmp_path / "out"
    ok = _extract(zip_path, PASSWORD, str(out))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert _sha256_of(out / "disk.img") == want
    os.unlink(zip_path)
    shutil.rmtree(out)
    host.run_in_host("rm", "-f", "/home/disk.img")


def test_the_cli_collects_and_downloads(env, victim, tmp_path):
    host, mid = victim
    host.run_in_host("sh", "-c", "printf 'cli collected\\n' > /tmp/cli-sample.txt")
    want = hashlib.sha256(b"cli collected\n").hexdigest()
    r = run_cli(env, "file", "collect", mid, "/tmp/cli-sample.txt", "--comment", "e2e cli")
    assert want in r.stdout, r.stdout

    zip_path = str(tmp_path / "cli.zip")
    run_cli(env, "file", "download", want, "-o", zip_path, "--password", PASSWORD)
    out = tmp_path / "cli-out"
    ok = _extract(zip_path, PASSWORD, str(out))
    assert ok.returncode == 0, ok.stdout
    assert (out / "cli-sample.txt").read_bytes() == b"cli collected\n"

    again = run_cli(env, "file", "download", want, "-o", zip_path, "--password", PASSWORD,
                    check=False)
    assert again.returncode != 0 and "exists" in again.stderr, again.stderr
    shown = run_cli(env, "file", "show", want)
    assert "cli-sample.txt" in shown.stdout
