"""CertificateThumbprint indicators on Authenticode-signed PE files, end to end: a real server,
a real agent in a lab host, a RunAntiVirusScan through the REST API.

The test makes its own PKI with the openssl CLI (CA A with a code-signing leaf, and an
unrelated CA B with its own leaf), writes minimal PE32+ files by hand (struct) and signs them
with osslsigncode, like src/agent/indicators/authenticode_test.cc. osslsigncode's own
`verify` is the oracle that a "tampered" copy (one code byte flipped after signing) really
carries an invalid signature and the untouched ones a valid one.

- BlockAndRemediate on CA A: a scan reports both the validly signed and the tampered file
  signed under A as hits naming the indicator, quarantines them (gone from the host, a
  "seen: scan" remediation notice) and raises alerts; the file signed under B is neither a hit
  nor touched.
- Allowed on CA B: the YARA alert about a file validly signed under B is suppressed, while a
  tampered copy of that file (same marker, invalid signature) is still alerted.

Scope: the indicators carry rbacGroupNames=[GROUP] and only this module's own host is put in
that group, so no other lab host is affected. The files live in the host's private /tmp.
"""

import hashlib
import os
import secrets
import shutil
import struct
import subprocess
import tempfile
import urllib.parse

import pytest

from conftest import observe
from lab import wait_until

GROUP = "e2e-cert54"
SCAN_ROOT = "/tmp/cert54"
FILE_DETECTOR = "quell.indicators.file"
YARA_DETECTOR = "quell.av.yara"
# Only inside the PE signed by B (test 3); the rule holds it as hex, so the rule file does not
# match itself.
YARA_MARKER = b"QUELL_E2E_CERT54_SIGNED_MARKER_5d3a"
OSSLSIGNCODE = "/usr/bin/osslsigncode"


# ---- signed PE files -------------------------------------------------------------------------

LFANEW = 0x40
OPTIONAL_HEADER_BYTES = 240  # PE32+: 112 + 16 data directories
CODE_OFFSET = 0x200          # FileAlignment; the one section's raw data
CODE = b"\x31\xc0\xc3"       # xor eax, eax; ret


def minimal_pe32plus(payload=b""):
    """A minimal valid PE32+ (x86-64 console program whose entry point returns) of 1 KiB: DOS
    header, PE/COFF header, optional header, one .text section holding CODE then `payload`."""
    assert len(CODE) + len(payload) <= 0x200
    b = bytearray(0x400)
    b[0:2] = b"MZ"
    struct.pack_into("<I", b, 0x3C, LFANEW)
    b[LFANEW:LFANEW + 4] = b"PE\0\0"
    coff = LFANEW + 4
    struct.pack_into("<HH", b, coff, 0x8664, 1)        # Machine AMD64, NumberOfSections
    struct.pack_into("<HH", b, coff + 16, OPTIONAL_HEADER_BYTES, 0x0022)
    opt = coff + 20
    struct.pack_into("<HB", b, opt, 0x20B, 14)         # PE32+, linker version
    struct.pack_into("<I", b, opt + 4, 0x200)          # SizeOfCode
    struct.pack_into("<II", b, opt + 16, 0x1000, 0x1000)  # AddressOfEntryPoint, BaseOfCode
    struct.pack_into("<Q", b, opt + 24, 0x140000000)   # ImageBase
    struct.pack_into("<II", b, opt + 32, 0x1000, 0x200)  # SectionAlignment, FileAlignment
    struct.pack_into("<H", b, opt + 40, 6)             # OS version
    struct.pack_into("<H", b, opt + 48, 6)             # subsystem version
    struct.pack_into("<II", b, opt + 56, 0x2000, 0x200)  # SizeOfImage, SizeOfHeaders
    struct.pack_into("<HH", b, opt + 68, 3, 0x8160)    # Subsystem console; DllCharacteristics
    struct.pack_into("<QQQQ", b, opt + 72, 0x100000, 0x1000, 0x100000, 0x1000)
    struct.pack_into("<I", b, opt + 108, 16)           # NumberOfRvaAndSizes
    sec = opt + OPTIONAL_HEADER_BYTES
    b[sec:sec + 8] = b".text\0\0\0"
    struct.pack_into("<IIII", b, sec + 8, 0x200, 0x1000, 0x200, CODE_OFFSET)
    struct.pack_into("<I", b, sec + 36, 0x60000020)    # CODE | EXECUTE | READ
    b[CODE_OFFSET:CODE_OFFSET + len(CODE)] = CODE
    b[CODE_OFFSET + 0x10:CODE_OFFSET + 0x10 + len(payload)] = payload
    return bytes(b)


def tampered(signed):
    """The signed file with one bit of its code flipped: the signature no longer matches."""
    b = bytearray(signed)
    b[CODE_OFFSET + 1] ^= 0x01
    return bytes(b)


class Pki:
    """CA A with a code-signing leaf, and an unrelated CA B with its own leaf, in `dir`."""

    EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]

    def __init__(self, dir):
        self.dir = dir
        with open(self.p("leaf.ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=codeSigning\n")
        for ca, cn in (("a", "Quell e2e54 CA A"), ("b", "Quell e2e54 CA B")):
            self.run("openssl", "req", "-x509", *self.EC, "-keyout", self.p(f"ca-{ca}.key"),
                     "-out", self.p(f"ca-{ca}.pem"), "-days", "2", "-subj", f"/CN={cn}",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")
            self.run("openssl", "req", *self.EC, "-keyout", self.p(f"leaf-{ca}.key"),
                     "-out", self.p(f"leaf-{ca}.csr"), "-subj", f"/CN=Quell e2e54 signer {ca}")
            self.run("openssl", "x509", "-req", "-in", self.p(f"leaf-{ca}.csr"),
                     "-CA", self.p(f"ca-{ca}.pem"), "-CAkey", self.p(f"ca-{ca}.key"),
                     "-set_serial", str(secrets.randbelow(1 << 60) + 1), "-days", "2",
                     "-extfile", self.p("leaf.ext"), "-out", self.p(f"leaf-{ca}.pem"))
            with open(self.p(f"chain-{ca}.pem"), "wb") as out:
                for part in (f"leaf-{ca}.pem", f"ca-{ca}.pem"):
                    with open(self.p(part), "rb") as f:
                        out.write(f.read())

    def p(self, name):
        return os.path.join(self.dir, name)

    def run(self, *cmd):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{' '.join(cmd)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r.stdout

    def thumbprint(self, name):
        """SHA-1 thumbprint of a certificate, as `openssl x509 -fingerprint -sha1` shows it
        (colons removed, lowercase)."""
        out = self.run("openssl", "x509", "-noout", "-fingerprint", "-sha1", "-in", self.p(name))
        value = out.strip().split("=", 1)[1].replace(":", "").lower()
        assert len(value) == 40, out
        return value

    def sign(self, ca, payload):
        """A unique PE (random bytes in its section), signed by the leaf of `ca` with the
        leaf and the CA embedded."""
        name = f"{ca}-{secrets.token_hex(4)}"
        with open(self.p(f"{name}.exe"), "wb") as f:
            f.write(minimal_pe32plus(payload + secrets.token_bytes(32)))
        self.run(OSSLSIGNCODE, "sign", "-certs", self.p(f"chain-{ca}.pem"),
                 "-key", self.p(f"leaf-{ca}.key"), "-h", "sha256", "-n", "Quell e2e54",
                 "-in", self.p(f"{name}.exe"), "-out", self.p(f"{name}-signed.exe"))
        with open(self.p(f"{name}-signed.exe"), "rb") as f:
            return f.read()

    def verifies(self, ca, data):
        """osslsigncode's verdict on `data`'s signature, with CA `ca` as the trust anchor."""
        path = self.p(f"verify-{secrets.token_hex(4)}.exe")
        with open(path, "wb") as f:
            f.write(data)
        r = subprocess.run([OSSLSIGNCODE, "verify", "-CAfile", self.p(f"ca-{ca}.pem"),
                            "-in", path], capture_output=True, text=True, timeout=60)
        return r.returncode == 0


# ---- lab helpers -----------------------------------------------------------------------------

def _q(s):
    return urllib.parse.quote(str(s), safe="")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def plant(host, path, data):
    """Writes `data` to `path` inside the lab host (its private /tmp), mode 644."""
    r = host.run_in_host("python3", "-c",
                         "import os,sys; p=sys.argv[1]; os.makedirs(os.path.dirname(p), "
                         "exist_ok=True); open(p,'wb').write(bytes.fromhex(sys.stdin.read()))",
                         path, input=data.hex())
    assert r.returncode == 0, r.stderr


def host_sha256(host, path):
    """SHA-256 of the file at `path` in the host, or None when there is no such file."""
    r = host.run_in_host("sha256sum", path)
    return r.stdout.split()[0] if r.returncode == 0 else None


def exists(host, path):
    return host.run_in_host("test", "-e", path).returncode == 0


def log_since(host, offset):
    with open(host.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def alerts_of(env, host, detector):
    q = urllib.parse.quote(f"machineId eq '{env.machine_id(host)}'")
    return [a for a in env.api.call("GET", f"/api/alerts?$filter={q}")["value"]
            if a.get("detectorId") == detector]


def alert_for(env, host, detector, sha):
    return next((a for a in alerts_of(env, host, detector) if sha in str(a.get("evidence"))),
                None)


def remediation_notices(env, host):
    return [e.get("comment", "") for e in env.api.audit(env.machine_id(host))["value"]
            if e.get("operation") == "device.notice"
            and "BlockAndRemediate indicator" in e.get("comment", "")]


# ---- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki():
    if not os.access(OSSLSIGNCODE, os.X_OK):
        pytest.fail("osslsigncode is required (scripts/install-deps.sh, Debian package "
                    "osslsigncode)")
    d = tempfile.mkdtemp(prefix="quell-e2e54-")
    try:
        yield Pki(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def lab(env):
    """A host of its own with a scan configuration (one YARA rule for YARA_MARKER; Full scans
    walk SCAN_ROOT only), alone in GROUP. Yields (env, host, machine id, created indicator
    ids); every indicator left in that list is deleted at the end."""
    host = env.lab.add_host("cert54")
    rules = os.path.join(host.dir, "rules")
    os.makedirs(rules, exist_ok=True)
    hex_marker = " ".join(f"{b:02x}" for b in YARA_MARKER)
    with open(os.path.join(rules, "cert54.yar"), "w") as f:
        f.write(f"rule quell_e2e_cert54_marker {{ strings: $a = {{ {hex_marker} }} "
                f"condition: $a }}\n")
    token = env.server.create_enrollment_token(uses=1)
    host.start_agent(env.agent_config(host, token, scan={"yara_rule_dirs": [rules],
                                                         "full_scan_roots": [SCAN_ROOT],
                                                         "cpu_limit_percent": 100}))
    mid = env.machine_id(host)
    env.wait_connected(host)
    env.api.call("PATCH", f"/api/machines/{_q(mid)}", {"rbacGroupName": GROUP})
    created = []
    try:
        yield env, host, mid, created
    finally:
        for ind in created:
            env.api.request("DELETE", f"/api/indicators/{_q(ind)}")
        host.stop_agent()


def submit(env, host, mid, created, **fields):
    """Creates an indicator for GROUP and waits until the host's agent acknowledged it."""
    body = {"title": "e2e certificate", "rbacGroupNames": [GROUP], "generateAlert": True,
            "severity": "High", "indicatorType": "CertificateThumbprint", **fields}
    ind = env.api.call("POST", "/api/indicators", body)
    created.append(ind["id"])
    wait_until(lambda: (env.api.machine(mid).get("indicatorVersion") or 0) >= ind["version"],
               timeout=30, what=f"{host.name} acknowledging indicator version {ind['version']}")
    return ind


def delete(env, created, ind):
    env.api.call("DELETE", f"/api/indicators/{_q(ind['id'])}", None, 204)
    created.remove(ind["id"])


def full_scan(env, mid, comment):
    a = env.api.call("POST", f"/api/machines/{mid}/runAntiVirusScan",
                     {"Comment": comment, "ScanType": "Full"}, (200, 201))
    done = env.wait_action(a["id"], timeout=120)
    assert done["status"] == "Succeeded", done
    return done


# ---- tests -----------------------------------------------------------------------------------

def test_block_and_remediate_certificate_scan_quarantines_files_signed_under_it(pki, lab):
    env, host, mid, created = lab
    ca_a = pki.thumbprint("ca-a.pem")
    assert ca_a != pki.thumbprint("ca-b.pem")
    signed_a = pki.sign("a", b"")
    tampered_a = tampered(signed_a)
    signed_b = pki.sign("b", b"")
    # The oracle: osslsigncode agrees which signatures are valid, and under which CA.
    assert pki.verifies("a", signed_a), "the file signed by leaf A should verify under CA A"
    assert not pki.verifies("a", tampered_a), "the tampered copy should not verify"
    assert pki.verifies("b", signed_b) and not pki.verifies("a", signed_b)

    d = f"{SCAN_ROOT}/block-{secrets.token_hex(3)}"
    files = {f"{d}/tools/setup.exe": signed_a,
             f"{d}/tools/setup-patched.exe": tampered_a,
             f"{d}/vendor/other.exe": signed_b}
    shas = {p: sha256(data) for p, data in files.items()}
    # On disk before the indicator exists: only the scan can find them.
    for path, data in files.items():
        plant(host, path, data)
        assert host_sha256(host, path) == shas[path]
    valid_a, bad_a, by_b = files

    ind = submit(env, host, mid, created, indicatorValue=ca_a, action="BlockAndRemediate",
                 title="e2e54 blocked CA A")
    assert ind["indicatorValue"] == ca_a
    assert all(exists(host, p) for p in files), "nothing is quarantined before the scan"

    done = full_scan(env, mid, "e2e54 certificate block scan")
    hits = sorted((h["filePath"], h["sha256"], h.get("indicatorId"), h.get("indicatorAction"))
                  for h in done["result"]["detections"])
    assert hits == sorted([(valid_a, shas[valid_a], ind["id"], "BlockAndRemediate"),
                           (bad_a, shas[bad_a], ind["id"], "BlockAndRemediate")]), done["result"]
    assert all(h["detectorId"] == FILE_DETECTOR and h["threatName"] == "e2e54 blocked CA A"
               for h in done["result"]["detections"]), done["result"]

    for path in (valid_a, bad_a):
        wait_until(lambda: not exists(host, path), timeout=30,
                   what=f"{path} quarantined (gone from the host)")
        notice = wait_until(lambda: next((n for n in remediation_notices(env, host)
                                          if path in n and ind["id"] in n), None),
                            timeout=30, what=f"a remediation notice for {path}")
        assert "(seen: scan)" in notice and "stopped and quarantined" in notice, notice
        assert shas[path] in notice, notice
        alert = wait_until(lambda: alert_for(env, host, FILE_DETECTOR, shas[path]), timeout=30,
                           what=f"an indicator alert for {path}")
        assert "e2e54 blocked CA A" in str(alert) and ind["id"] in str(alert), alert
        assert "remediated by indicator" in alert["title"], alert

    # Signed under B: no hit, no alert, still there byte for byte.
    assert host_sha256(host, by_b) == shas[by_b]
    assert alert_for(env, host, FILE_DETECTOR, shas[by_b]) is None
    assert not any(by_b in n for n in remediation_notices(env, host))

    delete(env, created, ind)
    host.run_in_host("rm", "-rf", d)


def test_allowed_certificate_suppresses_av_alert_only_for_a_valid_signature(pki, lab):
    env, host, mid, created = lab
    ca_b = pki.thumbprint("ca-b.pem")
    signed_b = pki.sign("b", YARA_MARKER)
    tampered_b = tampered(signed_b)
    assert YARA_MARKER in signed_b and YARA_MARKER in tampered_b
    assert pki.verifies("b", signed_b) and not pki.verifies("b", tampered_b)

    d = f"{SCAN_ROOT}/allow-{secrets.token_hex(3)}"
    valid_b, bad_b = f"{d}/valid/helper.exe", f"{d}/tampered/helper.exe"
    shas = {valid_b: sha256(signed_b), bad_b: sha256(tampered_b)}
    plant(host, valid_b, signed_b)
    plant(host, bad_b, tampered_b)

    ind = submit(env, host, mid, created, indicatorValue=ca_b, action="Allowed",
                 title="e2e54 allowed CA B")
    mark = os.path.getsize(host.log_path)
    done = full_scan(env, mid, "e2e54 certificate allow scan")
    # The scan finds the marker in both files (Allowed is no indicator hit, and it does not
    # stop the scanner): only the alert is suppressed, and only for the valid signature.
    hits = sorted((h["filePath"], h["sha256"], h["detectorId"])
                  for h in done["result"]["detections"])
    assert hits == sorted([(valid_b, shas[valid_b], YARA_DETECTOR),
                           (bad_b, shas[bad_b], YARA_DETECTOR)]), done["result"]

    alert = wait_until(lambda: alert_for(env, host, YARA_DETECTOR, shas[bad_b]), timeout=30,
                       what="the YARA alert for the tampered copy (invalid signature)")
    assert "quell_e2e_cert54_marker" in str(alert), alert
    wait_until(lambda: f"is allowed by indicator {ind['id']}" in log_since(host, mark)
               and valid_b in log_since(host, mark), timeout=15,
               what="the agent logging the suppressed detection of the validly signed file")
    observe(lambda: alert_for(env, host, YARA_DETECTOR, shas[valid_b]) is None, 3)
    # Allowed does not remediate anything either.
    assert host_sha256(host, valid_b) == shas[valid_b]
    assert host_sha256(host, bad_b) == shas[bad_b]

    delete(env, created, ind)
    host.run_in_host("rm", "-rf", d)
