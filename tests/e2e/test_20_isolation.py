"""Isolation of a lab host: Full and Selective, surviving kill -9, tampering and a reboot,
and release. The victim is isolated; the peer is another lab host it tries to reach."""

import signal

from conftest import (ECHO_PORT, SELECTIVE_PORT, assert_blocked, assert_open, parse_time,
                      utcnow)
from lab import EchoServer, icmp_ok, tcp_connects, tcp_ok, udp_ok, wait_until


def test_baseline_victim_reaches_peer(env):
    env.ensure_released()
    _victim_echo(env)
    assert_open(env.victim, env.peer)
    assert_open(env.peer, env.victim)
    assert env.victim.nft_tables() == []


def _victim_echo(env):
    # The victim's own listener (for inbound checks); recreated after a reboot.
    if not any(isinstance(r, EchoServer) for r in env.victim._resources):
        EchoServer(env.victim, ECHO_PORT)
    return True


def test_isolate_full_blocks_everything_but_the_server(env):
    env.ensure_released()
    _victim_echo(env)
    mid = env.machine_id(env.victim)
    a = env.api.isolate(mid, "e2e: contain victim", "Full")
    assert a["type"] == "Isolate" and a["scope"] == "Full", a
    assert a["status"] in ("Pending", "InProgress"), a
    assert a["machineId"] == mid and a["requestorComment"] == "e2e: contain victim"
    assert a["computerDnsName"] == env.victim.hostname
    a = env.wait_action(a["id"])
    assert a["status"] == "Succeeded", a
    assert parse_time(a["lastUpdateDateTimeUtc"]) >= parse_time(a["creationDateTimeUtc"])

    m = env.api.machine(mid)
    assert m["isolationState"] == "Full", m
    assert env.victim.nft_tables(), "no nftables table in the victim"
    assert env.peer.nft_tables() == [], "isolation leaked into another host"

    # Out: TCP, UDP and ICMP over IPv4 and IPv6 all fail; in: the peer cannot reach it.
    assert_blocked(env.victim, env.peer)
    assert_blocked(env.peer, env.victim)
    # The peer itself is unaffected.
    assert all(env.peer.ping(x) for x in (env.spare.ip4, env.spare.ip6))

    # The agent stays connected: heartbeats keep lastSeen moving, the machine stays Active.
    done = parse_time(a["lastUpdateDateTimeUtc"])
    wait_until(lambda: parse_time(env.api.machine(mid)["lastSeen"]) > done, timeout=15,
               what="a heartbeat after isolation")
    assert env.api.machine(mid)["healthStatus"] == "Active"


def test_second_isolate_while_in_progress_is_refused(env):
    env.ensure_isolated("Full")
    mid = env.machine_id(env.victim)
    env.victim.kill_agent(signal.SIGSTOP)
    try:
        a = env.api.unisolate(mid, "e2e: queued release")
        r = env.api.request("POST", f"/api/machines/{mid}/unisolate", {"Comment": "again"})
        assert r.status == 400, r
        assert "in progress" in r.json["error"]["message"].lower(), r
    finally:
        env.victim.kill_agent(signal.SIGCONT)
    a = env.wait_action(a["id"])
    assert a["status"] == "Succeeded", a
    env.ensure_isolated("Full")


def test_kill9_agent_keeps_host_isolated(env):
    env.ensure_isolated("Full")
    mid = env.machine_id(env.victim)
    tables = env.victim.nft_tables()
    env.victim.kill_agent(signal.SIGKILL)
    assert not env.victim.agent_running()
    # Dead agent: the kernel keeps enforcing.
    assert env.victim.nft_tables() == tables
    assert_blocked(env.victim, env.peer)

    restarted = utcnow()
    env.victim.start_agent()
    env.wait_connected(env.victim, since=restarted)
    assert env.victim.nft_tables() == tables
    assert env.api.machine(mid)["isolationState"] == "Full"
    assert_blocked(env.victim, env.peer)


def test_removed_table_is_put_back_and_reported(env):
    env.ensure_isolated("Full")
    mid = env.machine_id(env.victim)
    tables = env.victim.nft_tables()
    assert tables
    for t in tables:
        env.victim.exec("nft", "delete", "table", *t.split(), check=True)
    assert env.victim.nft_tables() == []
    wait_until(lambda: env.victim.nft_tables() == tables, timeout=10,
               what="the agent to restore its table")
    assert_blocked(env.victim, env.peer)

    def tamper_audited():
        text = env.api.request("GET", f"/api/audit?target={mid}").body
        return "tamper" in text.lower()
    wait_until(tamper_audited, timeout=20, what="a tamper notice in the audit log")
    assert env.api.machine(mid)["isolationState"] == "Full"


def test_reboot_comes_back_isolated_before_reaching_the_server(env):
    env.ensure_isolated("Full")
    mid = env.machine_id(env.victim)
    tables = env.victim.nft_tables()
    # With the server unreachable, isolation must come from the agent's own persisted state.
    env.portal.pause()
    try:
        env.victim.reboot()
        wait_until(lambda: env.victim.nft_tables() == tables, timeout=15,
                   what="isolation re-applied after reboot without the server")
        assert_blocked(env.victim, env.peer)
    finally:
        env.portal.resume()
    env.wait_connected(env.victim, since=utcnow())
    assert env.api.machine(mid)["isolationState"] == "Full"
    assert env.victim.nft_tables() == tables
    assert_blocked(env.victim, env.peer)


def test_release_restores_connectivity(env):
    env.ensure_isolated("Full")
    mid = env.machine_id(env.victim)
    a = env.api.unisolate(mid, "e2e: all clear")
    assert a["type"] == "Unisolate", a
    a = env.wait_action(a["id"])
    assert a["status"] == "Succeeded", a
    assert env.api.machine(mid)["isolationState"] == "NotIsolated"
    wait_until(lambda: env.victim.nft_tables() == [], timeout=10, what="table removed")
    assert_open(env.victim, env.peer)
    _victim_echo(env)
    assert_open(env.peer, env.victim)


def test_selective_allows_only_the_configured_destination(env):
    env.ensure_released()
    # Before: both the allowed and another port are reachable.
    assert tcp_ok(env.victim, env.peer.ip4, SELECTIVE_PORT)
    assert tcp_ok(env.victim, env.peer.ip4, ECHO_PORT)
    env.ensure_isolated("Selective")
    mid = env.machine_id(env.victim)
    assert env.api.machine(mid)["isolationState"] == "Selective"
    assert tcp_ok(env.victim, env.peer.ip4, SELECTIVE_PORT), "allowed destination blocked"
    assert not tcp_connects(env.victim, env.peer.ip4, ECHO_PORT)
    assert not tcp_connects(env.victim, env.spare.ip4, SELECTIVE_PORT)
    assert not udp_ok(env.victim, env.peer.ip4, ECHO_PORT)
    assert not icmp_ok(env.victim, env.peer.ip4)
    assert not tcp_connects(env.victim, env.peer.ip6, SELECTIVE_PORT)
    env.ensure_released()
