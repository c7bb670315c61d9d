#!/usr/bin/env python3
"""Whole-system live response benchmark: a real quell-server, one real quell-agent in a lab
host, and the real `quell live` client.

1. Session open: `quell live <host>` with one `pwd` on stdin, start to exit, --opens times
   (each session is closed before the next opens; one session per device).
2. Command round trip: one session running --commands `pwd` lines one after the other (the
   client waits for each command's end before it sends the next); per-command time.
3. getfile: a --file-mib MiB file of random bytes in the lab host fetched with `getfile`:
   device -> server upload and server -> client download with its SHA-256 check.
4. Agent memory: VmRSS before any session and after the runs.

Run as root (lab namespaces):
    BUILD_DIR=build /usr/bin/python3 bench/live/session_bench.py
Prints a summary and one JSON line (also appended to --json-out if given).
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from lab import Binaries, Lab, Server, wait_until  # noqa: E402


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def live(bins, server, token, host, lines, cwd):
    cmd = [bins.cli, "--server", server.api_url, "--token", token, "--ca", server.ca_path,
           "live", host.hostname]
    t0 = time.monotonic()
    r = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True,
                       timeout=600, cwd=cwd)
    elapsed = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"quell live exited {r.returncode}: {r.stderr[-2000:]}")
    return elapsed, r


def wait_no_open_session(server_api, mid):
    def closed():
        acts = server_api.actions(odata_filter=f"machineId eq '{mid}' and type eq 'LiveResponse'")
        return all(a["status"] not in ("Pending", "InProgress") for a in acts)
    wait_until(closed, timeout=30, interval=0.05, what="the session to end")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--opens", type=int, default=10)
    p.add_argument("--commands", type=int, default=200)
    p.add_argument("--file-mib", type=int, default=256)
    p.add_argument("--bench-tmp", default=os.environ.get("BENCH_TMP", "/var/tmp"))
    p.add_argument("--json-out")
    args = p.parse_args()

    build = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
    bins = Binaries(build)
    missing = [n for n in ("quell-server", "quell-agent", "quell") if bins.path(n) is None]
    if missing:
        sys.exit(f"session_bench: {missing} not built under {build}")
    work = tempfile.mkdtemp(prefix="quell-live-bench-", dir=args.bench_tmp)
    result = {"bench": "live-session", "cpus": os.cpu_count(),
              "load_before": open("/proc/loadavg").read().split()[:3],
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    server = None
    try:
        server = Server(bins.server, os.path.join(work, "server"),
                        heartbeat_interval_seconds=5).start()
        token = server.create_token("live-bench", "admin")
        api = server.api(token)
        enroll = server.create_enrollment_token(uses=1)
        with Lab(os.path.join(work, "lab"), agent_bin=bins.agent) as lab:
            lab.open_portal(server.agent_port)
            host = lab.add_host("livebench")
            agent = host.start_agent(lab.agent_config(host, enroll, server.ca_path,
                                                      server.agent_port, log_level="info"))
            mid = wait_until(lambda: api.machine_by_name(host.hostname), timeout=30)["id"]
            time.sleep(1)
            result["agent_rss_idle_kib"] = status_kib(agent.pid, "VmRSS")
            out_dir = os.path.join(work, "downloads")
            os.makedirs(out_dir)

            # 1. open + one command + close
            opens = []
            for _ in range(args.opens):
                elapsed, _ = live(bins, server, token, host, ["pwd"], out_dir)
                opens.append(elapsed)
                wait_no_open_session(api, mid)
            opens.sort()
            result["session_open_pwd_close_ms"] = {
                "p50": round(opens[len(opens) // 2] * 1000), "max": round(opens[-1] * 1000)}
            print(f"session_bench: open + pwd + close p50 "
                  f"{result['session_open_pwd_close_ms']['p50']} ms", flush=True)

            # 2. round trips
            elapsed, r = live(bins, server, token, host, ["pwd"] * args.commands, out_dir)
            wait_no_open_session(api, mid)
            assert r.stdout.count("/\n") >= args.commands, r.stdout[-500:]
            per = (elapsed - opens[len(opens) // 2]) / max(1, args.commands - 1)
            result["command_round_trip_ms"] = round(per * 1000, 2)
            print(f"session_bench: {args.commands} commands in {elapsed:.2f} s, "
                  f"{per * 1000:.2f} ms per command after the open", flush=True)

            # 3. getfile
            size = args.file_mib << 20
            made = host.run_in_host("sh", "-c", f"head -c {size} /dev/urandom > /home/big.bin"
                                                f" && sha256sum /home/big.bin", timeout=300)
            want = made.stdout.split()[0]
            elapsed, r = live(bins, server, token, host, ["getfile /home/big.bin"], out_dir)
            wait_no_open_session(api, mid)
            with open(os.path.join(out_dir, "big.bin"), "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            assert digest == want, "the fetched file differs"
            result["getfile"] = {"mib": args.file_mib, "seconds": round(elapsed, 2),
                                 "mib_per_s": round(args.file_mib / elapsed, 1)}
            print(f"session_bench: getfile of {args.file_mib} MiB (upload + download + check)"
                  f" in {elapsed:.2f} s = {args.file_mib / elapsed:.1f} MiB/s", flush=True)
            result["agent_rss_after_kib"] = status_kib(agent.pid, "VmRSS")
            result["agent_peak_rss_kib"] = status_kib(agent.pid, "VmHWM")
            result["server_peak_rss_kib"] = status_kib(server.proc.pid, "VmHWM")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    line = json.dumps(result)
    print(line)
    if args.json_out:
        with open(args.json_out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
