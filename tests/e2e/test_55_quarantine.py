"""Stop and quarantine file, and its undo, on lab hosts through the REST API.

A "malware" test program (compiled here; it forks a child that runs /bin/sleep) runs from the
host's /tmp and is started by a cron line, a systemd unit (with its enable link), a line in
root's .bashrc and an authorized_keys command. Everything is planted inside the lab host: its
/tmp is its own tmpfs and /etc and /root are its copy-on-write overlays (tests/lab), and the
agent is told never to call systemctl (which would reach the machine's own systemd).
"""

import hashlib
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import FINAL_STATES
from lab import wait_until

MALWARE_C = r"""
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
static volatile const char mark[] = MARK;
int main(int argc, char** argv) {
  (void)argc; (void)argv; (void)mark[0];
  if (fork() == 0) { execl("/bin/sleep", "sleep", "600", (char*)0); _exit(1); }
  for (;;) pause();
}
"""

# Files the plant writes or changes; the host must end exactly as it was after undo.
WATCHED = ["/etc/cron.d", "/etc/systemd/system", "/root/.bashrc", "/root/.ssh", "/tmp/malware"]

SNAPSHOT_PY = r"""
import hashlib, json, os, sys
out = {}
def add(p):
    st = os.lstat(p)
    h = None
    if os.path.isfile(p) and not os.path.islink(p):
        h = hashlib.sha256(open(p, 'rb').read()).hexdigest()
    link = os.readlink(p) if os.path.islink(p) else None
    out[p] = [st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns if not os.path.isdir(p) else 0,
              h, link]
for root in sys.argv[1:]:
    if not os.path.lexists(root):
        continue
    add(root)
    if os.path.isdir(root) and not os.path.islink(root):
        for d, dirs, files in os.walk(root):
            for n in dirs + files:
                add(os.path.join(d, n))
print(json.dumps(out, sort_keys=True))
"""


def sh(host, script, timeout=30):
    return host.run_in_host("sh", "-c", script, timeout=timeout)


def snapshot(host, paths=WATCHED):
    r = host.run_in_host("python3", "-c", SNAPSHOT_PY, *paths)
    assert r.returncode == 0, r.stderr
    return r.stdout


def build_malware(env, name):
    """A unique test program (its own hash), compiled on the machine; returns (path, sha256)."""
    src = os.path.join(env.base_dir, f"{name}.c")
    out = os.path.join(env.base_dir, name)
    with open(src, "w") as f:
        f.write(MALWARE_C)
    subprocess.run(["cc", "-O1", f'-DMARK="{uuid.uuid4()}"', "-o", out, src], check=True)
    return out, hashlib.sha256(open(out, "rb").read()).hexdigest()


def install(host, binary, path):
    # Through the host's own dir, the part of the machine's /tmp its mount namespace sees.
    staged = os.path.join(host.dir, os.path.basename(binary))
    shutil.copyfile(binary, staged)
    r = host.run_in_host("install", "-D", "-m", "0755", staged, path)
    os.unlink(staged)  # else the quarantine rightly finds this second copy in /tmp too
    assert r.returncode == 0, r.stderr


def start(host, path):
    """Runs path inside the host (its namespaces); returns the Popen (pid = the program)."""
    p = host.popen(["nsenter", "--target", str(host.mnt_holder.pid), "--mount", "--uts", "--",
                    path])

    def running():
        try:
            return os.readlink(f"/proc/{p.pid}/exe").startswith(path)
        except OSError:
            return False
    wait_until(running, timeout=10, what=f"{path} running")
    return p


def descendants(pid):
    kids = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for c in f.read().split():
                kids.append(int(c))
                kids += descendants(int(c))
    except OSError:
        pass
    return kids


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def plant_persistence(host, path):
    unit = f"[Unit]\nDescription=e2e\n[Service]\nExecStart={path} --serve\n" \
           "[Install]\nWantedBy=multi-user.target\n"
    r = host.run_in_host("python3", "-c", r"""
import os, sys
path, unit = sys.argv[1], sys.argv[2]
os.makedirs('/etc/cron.d', exist_ok=True)
open('/etc/cron.d/e2e-updater', 'w').write('SHELL=/bin/sh\n*/5 * * * * root %s\n' % path)
os.makedirs('/etc/systemd/system/multi-user.target.wants', exist_ok=True)
open('/etc/systemd/system/e2e-updater.service', 'w').write(unit)
os.symlink('/etc/systemd/system/e2e-updater.service',
           '/etc/systemd/system/multi-user.target.wants/e2e-updater.service')
with open('/root/.bashrc', 'a') as f:
    f.write('%s >/dev/null 2>&1 &\n' % path)
os.makedirs('/root/.ssh', mode=0o700, exist_ok=True)
with open('/root/.ssh/authorized_keys', 'a') as f:
    f.write('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeepThisCleanKey0000000000000000000000 admin\n')
    f.write('command="%s",no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBadKey000000000000000000000000000000000 e2e\n' % path)
""", path, unit)
    assert r.returncode == 0, r.stderr


def persistence_mentions(host, path):
    r = sh(host, f"grep -rlF '{path}' /etc/cron.d /etc/systemd/system /root/.bashrc "
                 f"/root/.ssh 2>/dev/null; ls /etc/systemd/system/multi-user.target.wants/ "
                 f"2>/dev/null | grep e2e-updater")
    return r.stdout.split()


def quarantine(env, mid, sha256, comment="e2e: malware", **extra):
    body = {"Comment": comment, "Sha256": sha256, **extra}
    return env.api.call("POST", f"/api/machines/{mid}/StopAndQuarantineFile", body, (201,))


def undo(env, action_id):
    return env.api.call("POST", f"/api/machineactions/{action_id}/undo",
                        {"Comment": "e2e: restore"}, (201,))


@pytest.fixture(scope="module")
def qhosts(env):
    hosts = []
    for name in ("qa", "qb"):
        host = env.lab.add_host(name)
        token = env.server.create_enrollment_token(uses=1)
        host.start_agent(env.agent_config(host, token, file_sightings_interval_seconds=2))
        hosts.append(host)
    for host in hosts:
        env.wait_connected(host)
    yield {h.name: (h, env.machine_id(h)) for h in hosts}
    for h in hosts:
        h.stop_agent()


def test_quarantine_removes_process_persistence_and_file_and_undo_restores_all(env, qhosts):
    host, mid = qhosts["qa"]
    binary, sha = build_malware(env, "malware-a")
    path = "/tmp/malware"
    install(host, binary, path)
    plant_persistence(host, path)
    proc = start(host, path)
    wait_until(lambda: descendants(proc.pid), timeout=10, what="malware child started")
    tree = [proc.pid] + descendants(proc.pid)
    infected = snapshot(host)
    assert set(persistence_mentions(host, path)) >= {"/etc/cron.d/e2e-updater",
                                                     "/etc/systemd/system/e2e-updater.service",
                                                     "/root/.bashrc", "/root/.ssh/authorized_keys",
                                                     "e2e-updater.service"}

    a = quarantine(env, mid, sha)
    done = env.wait_action(a["id"], timeout=60)
    assert done["status"] == "Succeeded", done
    assert done["relatedFileInfo"] == {"fileIdentifier": sha, "fileIdentifierType": "Sha256"}
    # No process (the program and its /bin/sleep child), no persistence, no file.
    wait_until(lambda: not any(alive(p) for p in tree), timeout=10, what="malware tree killed")
    assert persistence_mentions(host, path) == []
    assert host.run_in_host("test", "-e", path).returncode != 0
    # The clean authorized key and the rest of .bashrc stayed.
    assert "KeepThisCleanKey" in sh(host, "cat /root/.ssh/authorized_keys").stdout
    result = done["result"]
    assert [f["path"] for f in result["filesQuarantined"]] == [path], result
    assert {p["pid"] for p in result["processesKilled"]} >= set(tree), result
    kinds = {p["kind"] for p in result["persistenceRemoved"]}
    assert {"cron", "systemd", "profile", "authorized_keys"} <= kinds, result
    # The hash cannot run again, from anywhere.
    install(host, binary, "/var/tmp/copy-of-malware")
    denied = host.run_in_host("/var/tmp/copy-of-malware")
    assert denied.returncode != 0 and "not permitted" in denied.stderr, denied  # EPERM

    # Undo: everything back as it was when infected (byte for byte, owner, mode, mtime).
    sh(host, "rm -f /var/tmp/copy-of-malware")
    u = env.wait_action(undo(env, a["id"])["id"], timeout=60)
    assert u["status"] == "Succeeded", u
    assert u["type"] == "RestoreQuarantinedFile"
    assert snapshot(host) == infected
    # ... and the program may run again.
    again = start(host, path)
    again.kill()
    # Clean the host for the next tests: the plant is removed by hand and the host is as before.
    sh(host, f"rm -f {path} /etc/cron.d/e2e-updater /etc/systemd/system/e2e-updater.service "
             "/etc/systemd/system/multi-user.target.wants/e2e-updater.service")
    assert env.api.request("POST", f"/api/machineactions/{a['id']}/undo",
                           {"Comment": "twice"}).status == 400


def test_unknown_hash_fails_with_a_clear_reason(env, qhosts):
    host, mid = qhosts["qa"]
    a = quarantine(env, mid, "0" * 64)
    done = env.wait_action(a["id"], timeout=60)
    assert done["status"] == "Failed", done
    assert f"no file with SHA-256 {'0' * 64} was found" in done["statusMessage"], done


def test_file_in_use_and_path_with_spaces_and_newline(env, qhosts):
    host, mid = qhosts["qa"]
    binary, sha = build_malware(env, "malware-odd")
    path = "/tmp/odd dir/mal\nware"
    install(host, binary, path)
    proc = start(host, path)
    # Another process holds the file open (reading it), without running it.
    holder = host.popen(["nsenter", "--target", str(host.mnt_holder.pid), "--mount", "--",
                         "sh", "-c", 'exec 3<"$1"; exec sleep 600', "sh", path])
    time.sleep(0.3)
    done = env.wait_action(quarantine(env, mid, sha, Path=path)["id"], timeout=60)
    assert done["status"] == "Succeeded", done
    wait_until(lambda: not alive(proc.pid), timeout=10, what="odd malware killed")
    assert alive(holder.pid), "a process that only reads the file is not killed"
    assert host.run_in_host("test", "-e", path).returncode != 0
    u = env.wait_action(undo(env, done["id"])["id"], timeout=60)
    assert u["status"] == "Succeeded", u
    r = host.run_in_host("sh", "-c", 'sha256sum < "$1"', "sh", path)
    assert r.returncode == 0 and r.stdout.startswith(sha), r
    holder.kill()
    sh(host, "rm -rf '/tmp/odd dir'")


def test_fleet_wide_quarantine_on_every_host_that_ran_the_file(env, qhosts):
    binary, sha = build_malware(env, "malware-fleet")
    procs = {}
    for name, (host, _) in qhosts.items():
        install(host, binary, "/tmp/fleet-malware")
        procs[name] = start(host, "/tmp/fleet-malware")
    mids = {mid for _, mid in qhosts.values()}

    def sighted():
        seen = env.api.call("GET", f"/api/files/{sha}/sightings")["value"]
        return seen if {s["machineId"] for s in seen} >= mids else None
    seen = wait_until(sighted, timeout=30, what="both hosts report the file")
    assert all(s["filePath"] == "/tmp/fleet-malware" and s["source"] == "exec"
               for s in seen if s["machineId"] in mids), seen

    r = env.api.call("POST", f"/api/files/{sha}/stopAndQuarantine",
                     {"Comment": "e2e: outbreak"}, (201,))
    actions = [a for a in r["value"] if a["machineId"] in mids]
    assert len(actions) == 2, r
    for a in actions:
        done = env.wait_action(a["id"], timeout=60)
        assert done["status"] == "Succeeded", done
    for name, (host, _) in qhosts.items():
        wait_until(lambda: not alive(procs[name].pid), timeout=10, what=f"killed on {name}")
        assert host.run_in_host("test", "-e", "/tmp/fleet-malware").returncode != 0


def test_agent_killed_mid_quarantine_never_loses_the_file(env, qhosts):
    host, mid = qhosts["qb"]
    binary, sha = build_malware(env, "malware-crash")
    path = "/tmp/crash-malware"
    install(host, binary, path)
    plant_persistence(host, path)
    infected = snapshot(host)
    a = quarantine(env, mid, sha, Path=path)
    wait_until(lambda: env.api.action(a["id"])["status"] != "Pending", timeout=30, interval=0.01,
               what="quarantine started")
    host.kill_agent(signal.SIGKILL)
    host.start_agent()
    done = env.wait_action(a["id"], timeout=90)
    if done["status"] == "Succeeded":
        # Completed after the restart: the file is in the vault, and the undo brings it back.
        assert host.run_in_host("test", "-e", path).returncode != 0
        u = env.wait_action(undo(env, a["id"])["id"], timeout=60)
        assert u["status"] == "Succeeded", u
    else:
        assert done["status"] in FINAL_STATES, done
    assert snapshot(host) == infected
    sh(host, f"rm -f {path} /etc/cron.d/e2e-updater /etc/systemd/system/e2e-updater.service "
             "/etc/systemd/system/multi-user.target.wants/e2e-updater.service")
