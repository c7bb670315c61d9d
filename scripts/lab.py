#!/usr/bin/python3
"""`make run`: a quell-server on loopback, an admin token, and (as root) a lab of two hosts in
network namespaces each running an enrolled quell-agent. Stays in the foreground until
Ctrl-C (or SIGTERM), then tears everything down.

    scripts/lab.py [--bin-dir build] [--var var] [--hosts 2] [--no-lab]
"""

import argparse
import json
import os
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from lab import Binaries, Lab, Server, tail, wait_until  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=os.environ.get("QUELL_BIN_DIR", "build"))
    ap.add_argument("--var", default="var", help="state and logs (default ./var)")
    ap.add_argument("--api-listen", default="127.0.0.1:8443")
    ap.add_argument("--agent-listen", default="127.0.0.1:8444")
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--no-lab", action="store_true", help="run the server alone")
    args = ap.parse_args()

    bins = Binaries(args.bin_dir)
    missing = bins.missing()
    if missing:
        sys.exit(f"run: {', '.join(missing)} not built under {bins.bin_dir}")
    var = os.path.abspath(args.var)
    logs = os.path.join(var, "log")
    os.makedirs(logs, exist_ok=True)
    # SIGTERM unwinds like Ctrl-C, through the cleanup in `finally` below.
    signal.signal(signal.SIGTERM, _sigterm)
    # Ctrl-C must work even when started from a shell that ignores SIGINT in the background.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    server = Server(bins.server, os.path.join(var, "server"), api_listen=args.api_listen,
                    agent_listen=args.agent_listen,
                    log_path=os.path.join(logs, "server.log"))
    lab = None
    try:
        try:
            server.start()
        except Exception as e:
            sys.exit(f"run: quell-server did not start: {e}\n{tail(server.log_path)}")
        token = server.create_token(f"make-run-admin-{time.strftime('%Y%m%d-%H%M%S')}", "admin")
        ca = _shown(server.ca_path)
        api_url = server.api_url
        cli_json = os.path.join(var, "cli.json")
        with open(cli_json, "w") as f:
            json.dump({"server": api_url, "token": token, "ca": ca}, f, indent=2)
            f.write("\n")
        os.chmod(cli_json, 0o600)

        lab_note = None
        if args.no_lab:
            lab_note = "lab not started (--no-lab)"
        elif os.geteuid() != 0:
            lab_note = ("lab not started: it needs root to create network namespaces "
                        "(run `sudo make run` for the two lab hosts); the server runs alone")
        else:
            lab = start_lab(bins, server, os.path.join(var, "lab"), args.hosts)

        print_banner(bins, server, token, ca, api_url, cli_json, logs, lab, lab_note)
        while True:
            if not server.running():
                print(f"\nrun: quell-server exited ({server.proc.returncode}); see "
                      f"{server.log_path}\n{tail(server.log_path, 20)}", file=sys.stderr)
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nrun: stopping")
        return 0
    finally:
        if lab is not None:
            lab.close()
        server.stop()
        print("run: lab and server stopped; state kept in", var)


def _shown(path):
    """path relative to the current directory when it is inside it, else absolute."""
    rel = os.path.relpath(path, os.getcwd())
    return path if rel.startswith("..") else rel


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


def start_lab(bins, server, lab_dir, n_hosts):
    lab = Lab(lab_dir, agent_bin=bins.agent, n=1)
    try:
        lab.open_portal(server.agent_port)
        enrollment = server.create_enrollment_token(uses=n_hosts, ttl_seconds=3600)
        for i in range(1, n_hosts + 1):
            h = lab.add_host(f"h{i}", hostname=f"quell-lab-{i}")
            h.start_agent(lab.agent_config(h, enrollment, server.ca_path, server.agent_port))
        admin = server.api(server.create_token(f"make-run-lab-{int(time.time())}", "viewer"))

        def all_active():
            names = {m["computerDnsName"]: m for m in admin.machines()
                     if m.get("healthStatus") == "Active"}
            return all(h.hostname in names for h in lab.hosts.values())
        try:
            wait_until(all_active, timeout=30, what="lab agents to connect")
        except AssertionError as e:
            print(f"run: warning: {e}; see the agent logs below", file=sys.stderr)
        return lab
    except BaseException:
        lab.close()
        raise


def print_banner(bins, server, token, ca, api_url, cli_json, logs, lab, lab_note):
    cli = _shown(bins.cli)
    print(f"""
================================================================================
 quell-server is running
   REST API   {api_url}        (agents: {server.info['agent']})
   CA         {ca}
   admin token {token}
   CLI config {_shown(cli_json)} (read by quell when run from this directory)

 Try it (copy-paste):
   export QUELL_SERVER={api_url} QUELL_TOKEN={token} QUELL_CA={ca}
   {cli} machines list
   {cli} machine isolate <machine-id> --comment "containment test"
   {cli} machine release <machine-id> --comment "all clear"
   {cli} actions list

   curl --cacert {ca} -H "Authorization: Bearer $QUELL_TOKEN" {api_url}/api/machines
   curl --cacert {ca} -H "Authorization: Bearer $QUELL_TOKEN" -H 'Content-Type: application/json' \\
        -d '{{"Comment":"containment test","IsolationType":"Full"}}' \\
        {api_url}/api/machines/<machine-id>/isolate
""")
    if lab is not None:
        try:
            admin = server.api(token)
            print(" Machines:")
            for m in admin.machines():
                print(f"   {m['id']}  {m['computerDnsName']:<14} {m['healthStatus']:<8} "
                      f"{m['isolationState']}")
            print()
        except Exception as e:  # the banner must not kill the run
            print(f" (could not list machines: {e})")
        print(" Lab hosts (network namespaces; agents connect through the portal "
              f"{lab.gateway4}:{server.agent_port}):")
        for h in lab.hosts.values():
            print(f"   {h.hostname:<14} ns {h.ns:<10} {h.ip4:<14} {h.ip6:<16} log {h.log_path}")
        hs = list(lab.hosts.values())
        if len(hs) >= 2:
            print(f"\n   check traffic:  ip netns exec {hs[0].ns} ping -c1 {hs[1].ip4}")
            print(f"   see the table:  ip netns exec {hs[0].ns} nft list ruleset")
    else:
        print(f" {lab_note}")
    print(f"""
 Logs: server {server.log_path}
       all    {logs}/ and {os.path.dirname(logs)}/lab/*/agent.log
 Ctrl-C stops everything (namespaces, portal, agents, server).
================================================================================""",
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
