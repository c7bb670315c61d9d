#!/usr/bin/env python3
"""Whole-system indicator sync benchmark: a real quell-server and one real quell-agent.

1. quell-server on loopback with a fresh data dir (under $BENCH_TMP, a real disk: SQLite
   commits fsync).
2. N FileSha256 indicators (default 1,000,000) imported through the REST API in calls of
   500 (POST /api/indicators/import) on one keep-alive HTTPS connection. Only file hashes:
   nothing here touches a firewall. Reports the import time and rate.
3. One quell-agent started in a lab host (tests/lab: own network and mount namespaces,
   talking to the server through the lab portal). Times agent start -> the server recording
   the agent's IndicatorAck of the current version (the Machine resource's indicatorVersion).
4. DELTA more indicators (default 1,000) imported in calls of 500; times the first call ->
   the ack of the new version.
5. Peak RSS (VmHWM) of the server during the sync (reset just before the agent starts) and
   of the agent (its whole life), plus the size of the agent's indicator store on disk.

Run as root (lab namespaces):
    BUILD_DIR=build-sync /usr/bin/python3 bench/indicators/sync_bench.py [--count N]
Prints a summary and one JSON line (also appended to --json-out if given).
"""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import ssl
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from lab import Binaries, Lab, Server, wait_until  # noqa: E402

PER_CALL = 500


def sha256_of(n):
    return hashlib.sha256(f"quell-sync-bench-{n}".encode()).hexdigest()


class KeepAlive:
    """One HTTPS connection reused for every call (reopened if the server closes it)."""

    def __init__(self, api_url, token, ca_path):
        host, port = api_url.removeprefix("https://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.ctx = ssl.create_default_context(cafile=ca_path)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                        "Accept": "application/json"}
        self.conn = None

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                                        timeout=120)
            try:
                self.conn.request(method, path, body=data, headers=self.headers)
                r = self.conn.getresponse()
                payload = r.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            if r.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            if r.status >= 300:
                raise RuntimeError(f"{method} {path} -> {r.status}: {payload[:300]!r}")
            return json.loads(payload) if payload else None
        raise AssertionError("unreachable")


def import_range(client, start, stop):
    """Imports indicators start..stop-1; returns the per-call wall times (s) and the newest
    version stored."""
    times = []
    for first in range(start, stop, PER_CALL):
        batch = [{"indicatorValue": sha256_of(n), "indicatorType": "FileSha256",
                  "action": "Block", "title": f"bench indicator {n}",
                  "description": "sync benchmark"}
                 for n in range(first, min(first + PER_CALL, stop))]
        body = {"Indicators": batch}
        t = time.monotonic()
        r = client.call("POST", "/api/indicators/import", body)
        times.append(time.monotonic() - t)
        failed = [i for i in r["value"] if i["isFailed"]]
        if failed:
            raise RuntimeError(f"import refused items: {failed[:3]}")
    return times


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class RssSampler(threading.Thread):
    """Max VmRSS of a pid, sampled every 50 ms (VmHWM is the authoritative peak; this one
    shows the sampled peak of a window)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_flag = pid, 0, threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            v = status_kib(self.pid, "VmRSS")
            if v:
                self.peak = max(self.peak, v)
            time.sleep(0.05)

    def stop(self):
        self.stop_flag.set()
        self.join()
        return self.peak


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                pass
    return total


def machine_version(client, name):
    for m in client.call("GET", "/api/machines")["value"]:
        if m.get("computerDnsName") == name:
            return m, (m.get("indicatorVersion") or 0)
    return None, None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=1_000_000)
    p.add_argument("--delta", type=int, default=1_000)
    p.add_argument("--build-dir", default=os.environ.get("BUILD_DIR", "build"))
    p.add_argument("--bench-tmp", default=os.environ.get("BENCH_TMP", "/var/tmp"))
    p.add_argument("--sync-timeout", type=float, default=600)
    p.add_argument("--json-out")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs) afterwards")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("sync_bench: needs root (lab namespaces)")

    build = args.build_dir if os.path.isabs(args.build_dir) else os.path.join(ROOT, args.build_dir)
    bins = Binaries(build)
    missing = [n for n in ("quell-server", "quell-agent") if bins.path(n) is None]
    if missing:
        sys.exit(f"sync_bench: {missing} not built under {build}")
    work = tempfile.mkdtemp(prefix="quell-sync-bench-", dir=args.bench_tmp)
    load_before = open("/proc/loadavg").read().split()[:3]
    result = {"bench": "indicator-sync", "count": args.count, "delta": args.delta,
              "cpus": os.cpu_count(), "load_before": load_before,
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    server = None
    try:
        server = Server(bins.server, os.path.join(work, "server"),
                        heartbeat_interval_seconds=5).start()
        token = server.create_token("sync-bench", "admin")
        enroll = server.create_enrollment_token(uses=1)
        client = KeepAlive(server.api_url, token, server.ca_path)
        print(f"sync_bench: server pid {server.proc.pid}, data {server.data_dir}, "
              f"load {' '.join(load_before)}", flush=True)

        # ---- import -----------------------------------------------------------------------
        t0 = time.monotonic()
        times = []
        step = 100_000
        for start in range(0, args.count, step):
            times += import_range(client, start, min(start + step, args.count))
            done = min(start + step, args.count)
            el = time.monotonic() - t0
            print(f"  imported {done:>9,} in {el:6.1f} s ({done / el:,.0f}/s; last call "
                  f"{times[-1] * 1000:.0f} ms)", flush=True)
        import_s = time.monotonic() - t0
        times.sort()
        result["import"] = {
            "seconds": round(import_s, 2), "per_second": round(args.count / import_s),
            "calls": len(times), "call_ms_sum": round(sum(times) * 1000),
            "call_ms_p50": round(times[len(times) // 2] * 1000, 1),
            "call_ms_p99": round(times[int(len(times) * 0.99)] * 1000, 1),
            "call_ms_max": round(times[-1] * 1000, 1),
            "server_rss_kib": status_kib(server.proc.pid, "VmRSS"),
            "db_bytes": dir_bytes(server.data_dir)}

        # ---- full sync ----------------------------------------------------------------------
        with Lab(os.path.join(work, "lab"), agent_bin=bins.agent) as lab:
            lab.open_portal(server.agent_port)
            host = lab.add_host("sync")
            cfg = lab.agent_config(host, enroll, server.ca_path, server.agent_port,
                                   log_level="info")
            # The version the agent must reach: a fresh store gives every stored indicator
            # the next version, starting at 1.
            current = args.count
            with open(f"/proc/{server.proc.pid}/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM: the peak below is the sync's
            srv_sampler = RssSampler(server.proc.pid)
            srv_sampler.start()
            t_start = time.monotonic()
            agent = host.start_agent(cfg)
            agent_sampler = RssSampler(agent.pid)
            agent_sampler.start()
            t_enrolled = None
            deadline = t_start + args.sync_timeout
            while True:
                m, version = machine_version(client, host.hostname)
                now = time.monotonic()
                if m is not None and t_enrolled is None:
                    t_enrolled = now
                if version is not None and version >= current:
                    break
                if agent.poll() is not None:
                    raise RuntimeError(f"agent exited with {agent.returncode}")
                if now > deadline:
                    raise RuntimeError(f"no ack of version {current} after {args.sync_timeout} s "
                                       f"(at {version})")
                time.sleep(0.05)
            t_synced = time.monotonic()
            result["full_sync"] = {
                "seconds": round(t_synced - t_start, 2),
                "enrolled_seconds": round(t_enrolled - t_start, 2),
                "version": current,
                "server_peak_rss_kib": status_kib(server.proc.pid, "VmHWM"),
                "server_sampled_peak_rss_kib": srv_sampler.stop(),
                "agent_peak_rss_kib": status_kib(agent.pid, "VmHWM"),
                "agent_rss_after_kib": status_kib(agent.pid, "VmRSS"),
                "agent_store_bytes": dir_bytes(os.path.join(host.state_dir, "indicators"))}
            print(f"sync_bench: full sync of {args.count:,} acked in "
                  f"{result['full_sync']['seconds']} s", flush=True)

            # ---- delta ------------------------------------------------------------------------
            time.sleep(1)
            t0 = time.monotonic()
            dtimes = import_range(client, args.count, args.count + args.delta)
            t_imported = time.monotonic()
            target = args.count + args.delta
            while True:
                _, version = machine_version(client, host.hostname)
                if version is not None and version >= target:
                    break
                if time.monotonic() - t0 > 60:
                    raise RuntimeError(f"no ack of version {target} after 60 s (at {version})")
                time.sleep(0.01)
            t_acked = time.monotonic()
            result["delta_sync"] = {
                "seconds": round(t_acked - t0, 3),
                "import_seconds": round(t_imported - t0, 3),
                "after_import_seconds": round(t_acked - t_imported, 3),
                "call_ms": [round(t * 1000, 1) for t in dtimes],
                "version": target}
            result["agent_peak_rss_kib"] = status_kib(agent.pid, "VmHWM")
            agent_sampler.stop()
            result["load_after"] = open("/proc/loadavg").read().split()[:3]
            host.stop_agent()
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    line = json.dumps(result)
    print(line)
    if args.json_out:
        with open(args.json_out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
