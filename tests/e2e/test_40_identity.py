"""Device identity: no valid device certificate, no Connect; offboarding revokes one."""

import os
import signal
import uuid

from conftest import observe, utcnow
from lab import run, wait_until


def _forge_identity(state_dir, device_id):
    """A key and a self-signed certificate with CN=device_id: not issued by the server's CA."""
    ident = os.path.join(state_dir, "identity")
    os.makedirs(ident, mode=0o700, exist_ok=True)
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", os.path.join(ident, "device.key"), "-out",
         os.path.join(ident, "device.crt"), "-days", "1", "-subj", f"/CN={device_id}"])
    with open(os.path.join(ident, "device_id"), "w") as f:
        f.write(device_id + "\n")


def test_clients_without_a_valid_certificate_are_refused(env):
    forged_id = str(uuid.uuid4())
    forger = env.lab.add_host("forger")
    stranger = env.lab.add_host("stranger")
    _forge_identity(forger.state_dir, forged_id)
    before = env.portal.accepted
    for h in (forger, stranger):
        h.start_agent(env.agent_config(h, "not-a-valid-enrollment-token"))

    def nobody_new():
        names = {m["computerDnsName"] for m in env.api.machines()}
        ids = {m["id"] for m in env.api.machines()}
        return forger.hostname not in names and stranger.hostname not in names \
            and forged_id not in ids
    observe(nobody_new, seconds=6)
    # They did try: their connections reached the server through the portal.
    assert env.portal.accepted - before >= 2
    with open(forger.log_path) as f:
        assert " connected to " not in f.read(), "the forged identity got a stream"
    for h in (forger, stranger):
        h.stop_agent()


def test_offboarded_device_cannot_connect(env):
    mid = env.machine_id(env.spare)
    env.wait_connected(env.spare)
    env.api.offboard(mid, "e2e: decommissioned")

    def inactive():
        m = env.api.machine(mid)
        return m if m["healthStatus"] == "Inactive" else None
    m = wait_until(inactive, timeout=40, what="offboarded machine to become Inactive")
    last = m["lastSeen"]

    # Restarting the agent with its (now revoked) certificate does not bring it back.
    env.spare.kill_agent(signal.SIGKILL)
    before = env.portal.accepted
    env.spare.start_agent()
    observe(lambda: env.api.machine(mid)["healthStatus"] == "Inactive"
            and env.api.machine(mid)["lastSeen"] == last, seconds=6)
    assert env.portal.accepted > before, "the offboarded agent never tried to connect"
    # The other hosts are unaffected.
    env.wait_connected(env.peer, since=utcnow())
