#!/bin/bash
# Exec-heavy workloads with no agent, with Quell restricting (Enforce) and with Debian's
# fapolicyd enforcing a comparable policy (trusted = package binaries by SHA-256; everything
# else denied), in one run. Writes bench/results/restriction.md.
#
# SAFETY: everything runs inside ONE private mount namespace (unshare --mount --propagation
# private) so neither agent's fanotify mount marks can reach this machine's own mounts; the
# agent also gets its own empty network namespace (it never reaches a server). fapolicyd is
# started by this script inside that namespace, with a config bind-mounted over
# /etc/fapolicyd there only, and is always killed by a trap.
#
# Usage (root): bench/exec/run.sh <build-dir> [runs=3] [execs=10000]
set -euo pipefail
BUILD=$(realpath "${1:?usage: run.sh <build-dir> [runs] [execs]}")
RUNS=${2:-3}
EXECS=${3:-10000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
AGENT=$BUILD/src/agent/app/quell-agent
[ -x "$AGENT" ] || AGENT=$BUILD/quell-agent
[ -x "$AGENT" ] || { echo "quell-agent not found under $BUILD" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

if [ "${QUELL_BENCH_INNER:-}" != 1 ]; then
  OUT=$ROOT/bench/results/restriction.md
  export QUELL_BENCH_INNER=1
  TMPD=$(mktemp -d /var/tmp/quell-exec-bench.XXXXXX)
  trap 'rm -rf "$TMPD"' EXIT
  LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
  unshare --mount --propagation private -- "$0" "$BUILD" "$RUNS" "$EXECS" "$TMPD" | tee "$TMPD/table"
  LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
  {
    echo "# Execution restriction benchmark"
    echo
    echo "- command: \`bench/exec/run.sh $1 $RUNS $EXECS\`"
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- machine: $(nproc) CPUs, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "- load average before / after: $LOAD_BEFORE / $LOAD_AFTER (the machine is shared; other people's builds run concurrently)"
    echo "- workloads: (1) $EXECS sequential execs of /usr/bin/true from a dash loop; (2) a clean"
    echo "  \`make -j2\` of a generated C project (40 files, gcc), each the median of $RUNS runs"
    echo "- Quell: quell-agent with restriction Enforce (restored from its state file at start),"
    echo "  no server; fapolicyd 1.1.7: trust = file backend with the SHA-256 of every executable"
    echo "  under /usr (Debian's fapolicyd has no dpkg backend), integrity = sha256, rules"
    echo "  \`allow perm=execute all : trust=1\` + \`deny_audit perm=execute all : all\`"
    echo
    cat "$TMPD/table"
  } > "$OUT"
  echo "wrote $OUT"
  exit 0
fi

# ---- inside the private mount namespace -------------------------------------------------
TMPD=$4
mount -t tmpfs tmpfs /tmp   # the workloads' scratch space, private to this namespace
AGENT_PID=""; FAPD_PID=""
cleanup() {
  [ -n "$AGENT_PID" ] && kill -9 "$AGENT_PID" 2>/dev/null || true
  [ -n "$FAPD_PID" ] && kill -9 "$FAPD_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# The C project.
PROJ=/tmp/cproj
mkdir -p $PROJ
for i in $(seq 1 40); do
  cat > $PROJ/f$i.c <<C
#include <stdio.h>
#include <string.h>
int f$i(int x) { char b[64]; snprintf(b, sizeof b, "%d", x * $i); return (int)strlen(b) + x; }
C
done
{ echo "int main(void){int s=0;"; for i in $(seq 1 40); do echo "extern int f$i(int); s+=f$i($i);"; done; echo "return s==0;}"; } > $PROJ/main.c
printf 'OBJS=$(patsubst %%.c,%%.o,$(wildcard *.c))\nprog: $(OBJS)\n\tgcc -o $@ $^\n%%.o: %%.c\n\tgcc -O1 -c $< -o $@\nclean:\n\trm -f *.o prog\n' > $PROJ/Makefile

now() { date +%s.%N; }
execs() {
  local t0 t1; t0=$(now)
  i=0; while [ $i -lt "$EXECS" ]; do /usr/bin/true; i=$((i+1)); done
  t1=$(now); echo "$t1 - $t0" | bc
}
build() {
  make -s -C $PROJ clean >/dev/null; local t0 t1; t0=$(now)
  make -s -C $PROJ -j2 >/dev/null; t1=$(now); echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() {  # prints "<execs median> <build median>"
  local e b
  e=$(for r in $(seq "$RUNS"); do execs; done | median)
  b=$(for r in $(seq "$RUNS"); do build; done | median)
  echo "$e $b"
}
check_denied() {  # proves the gate is enforcing: a copy of true in /tmp must fail
  cp /usr/bin/true /tmp/true-copy
  if /tmp/true-copy 2>/dev/null; then echo "NOT ENFORCING" >&2; exit 1; fi
}

# 1. no agent
read -r BASE_E BASE_B < <(measure)

# 2. Quell restricting
mkdir -p $TMPD/state $TMPD/ca
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $TMPD/ca/key.pem \
  -out $TMPD/ca/ca.pem -subj /CN=bench -days 1 2>/dev/null
echo '{"version":1,"mode":"Enforce","restrictedAt":0}' > $TMPD/state/restriction.json
cat > $TMPD/agent.yaml <<Y
server: "127.0.0.1:1"
ca_cert: "$TMPD/ca/ca.pem"
enrollment_token: "bench-no-server"
state_dir: "$TMPD/state"
reconnect_initial_ms: 60000
reconnect_max_ms: 600000
log_level: info
Y
unshare --net -- "$AGENT" --config $TMPD/agent.yaml > $TMPD/agent.log 2>&1 &
AGENT_PID=$!
for i in $(seq 100); do grep -q "execution restriction: Enforce" $TMPD/agent.log && break; sleep 0.1; done
grep -q "execution restriction: Enforce" $TMPD/agent.log || { cat $TMPD/agent.log >&2; exit 1; }
check_denied
/usr/bin/true; make -s -C $PROJ clean >/dev/null  # warm the verdict cache like steady state
read -r Q_E Q_B < <(measure)
kill -9 $AGENT_PID; wait $AGENT_PID 2>/dev/null || true; AGENT_PID=""

# 3. fapolicyd, config bind-mounted over /etc/fapolicyd in this namespace only
F=$TMPD/fapolicyd; mkdir -p $F/etc/rules.d $F/etc/trust.d $F/lib $F/run
sed -e 's/^integrity = .*/integrity = sha256/' -e 's/^trust = .*/trust = file/' \
    -e 's/^allow_filesystem_mark = .*/allow_filesystem_mark = 0/' /etc/fapolicyd/fapolicyd.conf > $F/etc/fapolicyd.conf
printf 'allow perm=execute all : trust=1\ndeny_audit perm=execute all : all\n' > $F/etc/rules.d/10-bench.rules
: > $F/etc/fapolicyd.trust
find /usr -xdev -type f -perm /111 -print0 2>/dev/null |
  xargs -0 sha256sum | awk '{print $1}' > $F/sums &
find /usr -xdev -type f -perm /111 -print0 2>/dev/null | xargs -0 stat -c '%n %s' > $F/sizes
wait
paste -d' ' $F/sizes $F/sums > $F/etc/trust.d/bench
# ld.so and shared objects are opened, not exec'd, except the interpreter itself:
chown -R fapolicyd:fapolicyd $F/lib $F/run
mount --bind $F/etc /etc/fapolicyd
mount --bind $F/lib /var/lib/fapolicyd
mkdir -p /run/fapolicyd 2>/dev/null || true
mount --bind $F/run /run/fapolicyd
fapolicyd --debug-deny --no-details > $TMPD/fapolicyd.log 2>&1 &
FAPD_PID=$!
for i in $(seq 300); do grep -q "Starting to listen for events" $TMPD/fapolicyd.log && break; sleep 0.1; done
grep -q "Starting to listen for events" $TMPD/fapolicyd.log || { tail -20 $TMPD/fapolicyd.log >&2; exit 1; }
check_denied
/usr/bin/true; make -s -C $PROJ clean >/dev/null
read -r F_E F_B < <(measure)
kill -9 $FAPD_PID; wait $FAPD_PID 2>/dev/null || true; FAPD_PID=""

ratio() { echo "scale=3; $1 / $2" | bc; }
per() { echo "scale=1; $1 * 1000000 / $EXECS" | bc; }
echo "| workload | no agent | Quell (Enforce) | fapolicyd | Quell / none | fapolicyd / none |"
echo "|---|---|---|---|---|---|"
echo "| $EXECS execs of /usr/bin/true | ${BASE_E}s ($(per $BASE_E) µs/exec) | ${Q_E}s ($(per $Q_E) µs/exec) | ${F_E}s ($(per $F_E) µs/exec) | $(ratio $Q_E $BASE_E)× | $(ratio $F_E $BASE_E)× |"
echo "| make -j2, 40-file C project | ${BASE_B}s | ${Q_B}s | ${F_B}s | $(ratio $Q_B $BASE_B)× | $(ratio $F_B $BASE_B)× |"
