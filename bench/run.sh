#!/usr/bin/env bash
# The whole-system benchmark (`make bench`): for each N in N_LIST, a fresh quell-server
# (temporary data dir, loopback ports picked by the kernel) and quell-loadgen with N
# simulated agents: server RSS/CPU while they idle with heartbeats, then ACTIONS
# DiagnosticNoop actions timed from the REST call to the agent's acked Succeeded.
# Traffic stays on 127.0.0.1. Results: one JSON line per N in $RESULTS; see
# docs/benchmarks.md for what the figures mean.
#
# Environment: BUILD_DIR (build), N_LIST ("1000 10000"), HEARTBEAT (30, seconds),
# ACTIONS (1000), RATE (50 actions/s), IDLE_SECONDS (60), RESULTS
# ($BUILD_DIR/bench-results.jsonl), QUELL_SERVER / QUELL_LOADGEN (other binaries, e.g. a
# patched server), BENCH_TMP (/var/tmp: a real disk, since the server's SQLite commits
# fsync; /tmp is tmpfs on many machines).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
SERVER=${QUELL_SERVER:-$BUILD_DIR/src/server/app/quell-server}
LOADGEN=${QUELL_LOADGEN:-$BUILD_DIR/bench/loadgen/quell-loadgen}
N_LIST=${N_LIST:-"1000 10000"}
HEARTBEAT=${HEARTBEAT:-30}
ACTIONS=${ACTIONS:-1000}
RATE=${RATE:-50}
IDLE_SECONDS=${IDLE_SECONDS:-60}
RESULTS=${RESULTS:-$BUILD_DIR/bench-results.jsonl}
BENCH_TMP=${BENCH_TMP:-/var/tmp}

for binary in "$SERVER" "$LOADGEN"; do
  [[ -x $binary ]] || { echo "run.sh: $binary not built (make build, or set BUILD_DIR)" >&2; exit 2; }
done

WORK=$(mktemp -d "$BENCH_TMP/quell-bench-XXXXXX")
SERVER_PID=
stop_server() {
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One socket per agent on each side, plus the server's own files. Inherited by both
# processes; root may raise the hard limit (never above fs.nr_open).
want=$(( $(echo "$N_LIST" | tr ' ' '\n' | sort -n | tail -1) * 2 + 4096 ))
if (( $(ulimit -Hn) < want )); then ulimit -Hn "$want" 2>/dev/null || true; fi
ulimit -n "$(ulimit -Hn)"
echo "bench: fd limit $(ulimit -n), heartbeat ${HEARTBEAT}s, idle ${IDLE_SECONDS}s," \
     "$ACTIONS actions at ${RATE}/s; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$(dirname "$RESULTS")"

status=0
for n in $N_LIST; do
  data=$WORK/server-$n
  log=$WORK/server-$n.log
  admin_token=$("$SERVER" --log-level warn token create --data-dir "$data" --name bench --role admin)
  enroll_token=$("$SERVER" --log-level warn enrollment-token create --data-dir "$data" \
                   --uses "$n" --ttl-seconds 86400)
  "$SERVER" serve --data-dir "$data" --api-listen 127.0.0.1:0 \
    --agent-listen 127.0.0.1:0 --heartbeat-interval-seconds "$HEARTBEAT" >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 150); do
    [[ -s $data/server.json ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; echo "run.sh: quell-server exited" >&2; exit 1; }
    sleep 0.2
  done
  [[ -s $data/server.json ]] || { echo "run.sh: quell-server did not start" >&2; exit 1; }

  echo "=== N=$n (quell-server pid $SERVER_PID) ==="
  if ! "$LOADGEN" --server-json "$data/server.json" --api-token "$admin_token" \
         --enrollment-token "$enroll_token" --agents "$n" --heartbeat-seconds "$HEARTBEAT" \
         --idle-seconds "$IDLE_SECONDS" --actions "$ACTIONS" --rate "$RATE" \
         --json-out "$RESULTS"; then
    echo "run.sh: N=$n did not complete cleanly (see above); server log tail:" >&2
    tail -n 20 "$log" >&2
    status=1
  fi
  stop_server
  rm -rf "$data"
done
echo "bench: results appended to $RESULTS"
exit $status
