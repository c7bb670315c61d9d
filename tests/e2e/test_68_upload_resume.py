"""An upload from a device survives the server dying in the middle of it: the server is killed
while a large GetFile is on its way, comes back, and the agent continues where the server's
partial upload stands — not from zero — and the file arrives whole (same SHA-256).
"""

import glob
import hashlib
import http.client
import os
import signal
import ssl
import time

from lab import wait_until

SIZE = 300 << 20


def _partials(env):
    return glob.glob(os.path.join(env.server.data_dir, "blobs", "partial", "*"))


def _partial_bytes(env):
    total = 0
    for p in _partials(env):
        try:
            total = max(total, os.path.getsize(p))
        except FileNotFoundError:
            pass
    return total


def _download_sha256(env, link):
    """Streams a download link and returns the SHA-256 of what arrived."""
    ctx = ssl.create_default_context(cafile=env.server.ca_path)
    conn = http.client.HTTPSConnection("127.0.0.1", env.server.api_port, context=ctx, timeout=60)
    try:
        conn.request("GET", link[link.index("/api/downloads/"):])
        r = conn.getresponse()
        assert r.status == 200, r.read()[:300]
        digest = hashlib.sha256()
        while chunk := r.read(1 << 20):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        conn.close()


def _host_with_big_file(env, name, path):
    """A fresh lab host with an agent and SIZE random bytes at `path`; (host, id, sha256)."""
    host = env.lab.add_host(name)
    token = env.server.create_enrollment_token(uses=1)
    host.start_agent(env.agent_config(host, token))
    mid = env.machine_id(host)
    env.wait_connected(host)
    # Incompressible content, so every byte really travels.
    r = host.run_in_host("sh", "-c", f"head -c {SIZE} /dev/urandom > {path} && sha256sum {path}",
                         timeout=120)
    assert r.returncode == 0, r.stderr
    return host, mid, r.stdout.split()[0]


def _kill_and_restart_server_mid_upload(env):
    """Kills the server once the upload is under way; returns the bytes it held then."""
    wait_until(lambda: _partial_bytes(env) > (16 << 20), timeout=60, interval=0.02,
               what="the upload to be under way")
    env.server.kill(signal.SIGKILL)
    cut_at = _partial_bytes(env)
    assert 0 < cut_at < SIZE, f"the server was killed with {cut_at} of {SIZE} bytes"
    time.sleep(1)
    env.server.restart()
    return cut_at


def _assert_resumed(host, artifact, cut_at):
    """The agent continued from where the server stood, not from 0."""
    with open(host.log_path, errors="replace") as f:
        resumed = [line for line in f if f"resuming {artifact} at byte" in line]
    assert resumed, "the agent did not resume the upload"
    at = int(resumed[-1].split("at byte ")[1].split()[0])
    assert at >= cut_at - (1 << 20), (at, cut_at)


def test_a_getfile_upload_resumes_after_the_server_restarts(env):
    host, mid, want = _host_with_big_file(env, "resume", "/home/big.bin")
    a = env.api.call("POST", f"/api/machines/{mid}/runliveresponse", {
        "Comment": "e2e: upload across a server restart",
        "Commands": [{"type": "GetFile", "params": [{"key": "Path", "value": "/home/big.bin"}]}]})
    cut_at = _kill_and_restart_server_mid_upload(env)

    done = env.wait_action(a["id"], timeout=120)
    assert done["status"] == "Succeeded", done
    link = env.api.call("GET", f"/api/machineactions/{a['id']}/"
                               "GetLiveResponseResultDownloadLink(index=0)")
    assert link["sha256"] == want and link["size"] == SIZE
    assert _download_sha256(env, link["value"]) == want
    _assert_resumed(host, "command-0", cut_at)
    env.wait_connected(host)
    host.stop_agent()


def test_a_collect_file_upload_resumes_after_the_server_restarts(env):
    host, mid, want = _host_with_big_file(env, "resume-collect", "/home/sample.img")
    a = env.api.call("POST", f"/api/machines/{mid}/collectFile",
                     {"Comment": "e2e: collect across a server restart", "Path": "/home/sample.img"})
    cut_at = _kill_and_restart_server_mid_upload(env)

    done = env.wait_action(a["id"], timeout=120)
    assert done["status"] == "Succeeded", done
    f = env.api.call("GET", f"/api/files/{want}")
    assert f["collected"] is True and f["size"] == SIZE
    _assert_resumed(host, "file", cut_at)
    env.wait_connected(host)
    host.stop_agent()
