"""Actions across outages: an agent that is down, a cancelled action, a server killed with
SIGKILL in the middle of an action. Actions are never lost and never run twice."""

import signal
import time

from conftest import FINAL_STATES, assert_blocked, assert_open, observe, utcnow
from lab import wait_until


def test_isolate_while_agent_down_is_pending_then_runs(env):
    env.ensure_released()
    mid = env.machine_id(env.victim)
    env.victim.stop_agent()
    a = env.api.isolate(mid, "e2e: isolate an offline host", "Full")
    assert a["status"] == "Pending", a
    observe(lambda: env.api.action(a["id"])["status"] == "Pending", seconds=3)

    # A second isolate while the first is not final is refused.
    r = env.api.request("POST", f"/api/machines/{mid}/isolate",
                        {"Comment": "again", "IsolationType": "Full"})
    assert r.status == 400 and "in progress" in r.json["error"]["message"].lower(), r

    # The pending action survives a server crash (it was persisted before the 201).
    env.server.kill(signal.SIGKILL)
    env.server.start()
    assert env.api.action(a["id"])["status"] == "Pending"

    env.victim.start_agent()
    a = env.wait_action(a["id"])
    assert a["status"] == "Succeeded", a
    assert env.victim.nft_tables()
    assert_blocked(env.victim, env.peer)
    env.ensure_released()


def test_cancelled_pending_action_never_runs(env):
    env.ensure_released()
    mid = env.machine_id(env.victim)
    env.victim.stop_agent()
    a = env.api.isolate(mid, "e2e: will be cancelled", "Full")
    c = env.api.cancel(a["id"], "e2e: changed my mind")
    assert c["status"] == "Cancelled", c
    assert c.get("cancellationComment") == "e2e: changed my mind", c
    r = env.api.request("POST", f"/api/machineactions/{a['id']}/cancel", {"Comment": "twice"})
    assert 400 <= r.status < 500, r

    restarted = utcnow()
    env.victim.start_agent()
    env.wait_connected(env.victim, since=restarted)
    # Give the server a few heartbeats to (wrongly) deliver it.
    observe(lambda: env.victim.nft_tables() == [], seconds=4)
    assert env.api.action(a["id"])["status"] == "Cancelled"
    assert env.api.machine(mid)["isolationState"] == "NotIsolated"
    assert_open(env.victim, env.peer)


def test_server_killed_mid_action_ends_in_a_final_state(env):
    env.ensure_released()
    mid = env.machine_id(env.victim)
    # Freeze the agent so the action is dispatched but cannot finish before the crash.
    env.victim.kill_agent(signal.SIGSTOP)
    try:
        a = env.api.isolate(mid, "e2e: server dies mid-action", "Full")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and env.api.action(a["id"])["status"] == "Pending":
            time.sleep(0.1)
        env.server.kill(signal.SIGKILL)
    finally:
        env.victim.kill_agent(signal.SIGCONT)
    time.sleep(1)  # the agent works on the action while the server is gone
    env.server.start()

    a = env.wait_action(a["id"], timeout=45)
    assert a["status"] in FINAL_STATES, a
    # The outcome the server records matches what the host enforces.
    m = wait_until(lambda: env.api.machine(mid), timeout=5)
    if a["status"] == "Succeeded":
        assert m["isolationState"] == "Full", m
        assert env.victim.nft_tables()
        assert_blocked(env.victim, env.peer)
    else:
        assert m["isolationState"] == "NotIsolated", (a, m)
        assert env.victim.nft_tables() == []
    # Exactly one action exists for this request: nothing was duplicated on redelivery.
    same = [x for x in env.api.actions(f"machineId eq '{mid}'")
            if x.get("requestorComment") == "e2e: server dies mid-action"]
    assert len(same) == 1, same
    env.wait_connected(env.victim, since=utcnow())
    env.ensure_released()
