#!/bin/bash
# Exec-heavy workloads with no agent, with Quell restricting (Enforce) and with Debian's
# fapolicyd enforcing a comparable policy (trusted = SHA-256 of every executable under /usr;
# everything else denied), in one run, the variants interleaved. Writes
# bench/results/restriction.md.
#
# Method: the three variants live in three private mount namespaces that exist for the whole
# run: "none" (a placeholder process, no marks), "quell" (quell-agent, Enforce) and
# "fapolicyd" (fapolicyd --debug-deny). Both daemons only mark the mounts of their own
# namespace (FAN_MARK_MOUNT), so a workload is gated exactly when it runs inside that
# namespace (nsenter --mount). Each repetition runs every variant back to back, in a rotating
# order, so load changes on this shared machine hit all variants alike; the table reports the
# median per variant and the median of the per-repetition ratios.
#
# SAFETY: everything runs under ONE outer private mount namespace (unshare --mount
# --propagation private); neither daemon can reach this machine's own mounts (the agent is
# also started with restriction.require_private_mount_namespace and its own empty network
# namespace, so it never talks to anything). fapolicyd is never started through systemd: the
# binary runs in the foreground with config, trust, rules, database, /run and /var/log
# bind-mounted (or tmpfs-mounted) over the real paths in its namespace only. Every process
# this script starts is killed by a trap (also on failure); the namespaces, and with them
# every mount, disappear with their last process; the temp dir is removed.
#
# Usage (root): bench/exec/run.sh <build-dir> [runs=5] [execs=10000]
set -euo pipefail
BUILD=$(realpath "${1:?usage: run.sh <build-dir> [runs] [execs]}")
RUNS=${2:-5}
EXECS=${3:-10000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
AGENT=$BUILD/src/agent/app/quell-agent
[ -x "$AGENT" ] || AGENT=$BUILD/quell-agent
[ -x "$AGENT" ] || { echo "quell-agent not found under $BUILD" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for tool in unshare nsenter fapolicyd gcc make python3 openssl; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

# ---- outer: host mount namespace, only temp dir + report ---------------------------------
if [ "${QUELL_BENCH_INNER:-}" != 1 ]; then
  OUT=$ROOT/bench/results/restriction.md
  TMPD=$(mktemp -d /var/tmp/quell-exec-bench.XXXXXX)
  outer_cleanup() {
    # Belt and braces: if the inner script was killed before its own trap ran, its daemons
    # are still alive (inside private namespaces); kill exactly those pids, then the dir.
    if [ -f "$TMPD/pids" ]; then
      while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$TMPD/pids"
    fi
    rm -rf "$TMPD"
  }
  trap outer_cleanup EXIT
  trap 'echo "exec bench: interrupted (SIGINT)" >&2; exit 130' INT
  trap 'echo "exec bench: terminated (SIGTERM) by someone" >&2; exit 143' TERM
  START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
  rc=0
  QUELL_BENCH_INNER=1 unshare --mount --propagation private -- "$0" "$BUILD" "$RUNS" "$EXECS" "$TMPD" || rc=$?
  if [ $rc != 0 ]; then
    echo "exec bench: the run failed (rc $rc); nothing written. Logs:" >&2
    tail -5 "$TMPD/agent.log" "$TMPD/fapolicyd.log" >&2 2>/dev/null || true
    exit $rc
  fi
  LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
  {
    echo "# Execution restriction benchmark"
    echo
    echo "- command: \`bench/exec/run.sh $1 $RUNS $EXECS\` (as root)"
    echo "- date: $START (start) – $(date -u +%Y-%m-%dT%H:%M:%SZ) (end)"
    echo "- machine: $(nproc) CPUs, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "- load average (1/5/15 min) before / after: $LOAD_BEFORE / $LOAD_AFTER; per repetition in the raw data"
    echo "  below (the machine is shared; other people's builds run concurrently)"
    echo "- workloads: (1) $EXECS sequential execs of /usr/bin/true from a dash loop; (2) a clean"
    echo "  \`make -j2\` of a generated C project (40 files + main, gcc -O1, then link); $RUNS repetitions,"
    echo "  each repetition runs none / Quell / fapolicyd back to back in a rotating order, after one"
    echo "  unmeasured warm-up run of each workload per variant (verdict caches warm = steady state)"
    echo "- Quell: \`$(realpath --relative-to="$ROOT" "$AGENT")\` with restriction Enforce (restored from its state file at"
    echo "  start), no server, own network namespace; policy = file owned by a dpkg package with an"
    echo "  unchanged MD5 (/var/lib/dpkg/info/*.md5sums), allow-list empty"
    echo "- fapolicyd $(dpkg-query -W -f '${Version}' fapolicyd 2>/dev/null): \`trust = file\` with path, size and SHA-256 of every"
    echo "  executable under /usr (Debian's fapolicyd has no dpkg backend), \`integrity = sha256\`,"
    echo "  rules \`allow perm=execute all : trust=1\` + \`deny_audit perm=execute all : all\`"
    echo "- both gates proven active before measuring: a copy of /usr/bin/true in /tmp is denied in the"
    echo "  Quell and fapolicyd namespaces and runs in the no-agent namespace"
    echo "- besides wall time, each run records CPU: the workload's (user+sys of all its processes, via"
    echo "  /usr/bin/time, which includes the kernel's fanotify work in execve) and the gate daemon's"
    echo "  (utime+stime delta from /proc/<pid>/stat)"
    echo
    cat "$TMPD/report"
  } > "$OUT"
  cat "$OUT"
  echo "wrote $OUT"
  exit 0
fi

# ---- inner: private mount namespace -------------------------------------------------------
TMPD=$4
mount -t tmpfs -o size=256m,mode=1777 tmpfs /tmp   # scratch space, private to this namespace
NONE_PID=""; Q_PID=""; F_PID=""
cleanup() {
  for p in $Q_PID $F_PID $NONE_PID; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo "exec bench (inner): SIGINT" >&2; exit 130' INT
trap 'echo "exec bench (inner): SIGTERM from someone" >&2; exit 143' TERM
remember() { echo "$1" >> "$TMPD/pids"; }

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

# The workload, run inside a variant's namespace; prints elapsed microseconds. Timing is
# inside, so entering the namespace is not measured.
cat > /tmp/workload.sh <<'W'
#!/bin/sh
set -e
case "$1" in
  execs)
    n=$2; t0=$(date +%s%N); i=0
    while [ $i -lt "$n" ]; do /usr/bin/true; i=$((i+1)); done
    t1=$(date +%s%N) ;;
  build)
    make -s -C /tmp/cproj clean >/dev/null
    t0=$(date +%s%N)
    make -s -C /tmp/cproj -j2 >/dev/null
    t1=$(date +%s%N)
    [ -x /tmp/cproj/prog ] ;;
esac
echo $(( (t1 - t0) / 1000 ))
W
cp /usr/bin/true /tmp/true-copy   # not from a package, not trusted: both gates must deny it

# 1. "none": a namespace with no marks at all.
unshare --mount --propagation private -- sleep infinity &
NONE_PID=$!; remember $NONE_PID

# 2. Quell.
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
restriction:
  require_private_mount_namespace: true
Y
unshare --mount --propagation private --net -- "$AGENT" --config $TMPD/agent.yaml > $TMPD/agent.log 2>&1 &
Q_PID=$!; remember $Q_PID

# 3. fapolicyd: its own config, trust file, rules, database, /run and /var/log in its namespace.
F=$TMPD/fapolicyd; mkdir -p $F/etc/rules.d $F/etc/trust.d $F/lib $F/log
sed -e 's/^integrity = .*/integrity = sha256/' -e 's/^trust = .*/trust = file/' \
    -e 's/^allow_filesystem_mark = .*/allow_filesystem_mark = 0/' \
    -e 's/^do_stat_report = .*/do_stat_report = 0/' /etc/fapolicyd/fapolicyd.conf > $F/etc/fapolicyd.conf
printf 'allow perm=execute all : trust=1\ndeny_audit perm=execute all : all\n' > $F/etc/compiled.rules
cp $F/etc/compiled.rules $F/etc/rules.d/10-bench.rules
: > $F/etc/fapolicyd.trust
python3 - "$F/etc/trust.d/bench" <<'PY'
import hashlib, os, stat, sys
root_dev = os.stat("/usr").st_dev
n = 0
with open(sys.argv[1], "w") as out:
    for d, dirs, files in os.walk("/usr"):
        dirs[:] = [x for x in dirs if os.lstat(os.path.join(d, x)).st_dev == root_dev]
        for name in files:
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or not (st.st_mode & 0o111) or any(c.isspace() for c in p):
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out.write(f"{p} {st.st_size} {h.hexdigest()}\n"); n += 1
print(f"fapolicyd trust file: {n} executables under /usr", file=sys.stderr)
PY
chown -R fapolicyd:fapolicyd $F/lib $F/log
# See capng_shim.c: this machine's bounding set lacks CAP_SYS_RESOURCE, which fapolicyd asks
# to keep when it drops to its own uid.
FAPD_PRELOAD=""
if ! grep -q '^CapBnd:.*' /proc/self/status || [ $(( 0x$(awk '/^CapBnd/{print $2}' /proc/self/status) >> 24 & 1 )) = 0 ]; then
  gcc -shared -fPIC -O2 -o $F/capng_shim.so "$HERE/capng_shim.c" -ldl
  FAPD_PRELOAD=$F/capng_shim.so
fi
unshare --mount --propagation private -- /bin/sh -c "
  mount --bind $F/etc /etc/fapolicyd &&
  mount --bind $F/lib /var/lib/fapolicyd &&
  mount --bind $F/log /var/log &&
  mounts_under_run=\$(awk '\$2 ~ \"^/run/\" {print \$2}' /proc/self/mounts) &&
  mount -t tmpfs -o mode=755 tmpfs /run &&
  for m in \$mounts_under_run; do mkdir -p \$m; done &&
  mkdir -p /run/fapolicyd && chown fapolicyd:fapolicyd /run/fapolicyd &&
  LD_PRELOAD=$FAPD_PRELOAD exec fapolicyd --debug-deny --no-details" > $TMPD/fapolicyd.log 2>&1 &
F_PID=$!; remember $F_PID

for _ in $(seq 600); do
  grep -q "execution restriction: Enforce" $TMPD/agent.log &&
    grep -q "Starting to listen for events" $TMPD/fapolicyd.log && break
  kill -0 $Q_PID 2>/dev/null || break
  kill -0 $F_PID 2>/dev/null || break
  sleep 0.1
done
grep -q "execution restriction: Enforce" $TMPD/agent.log || { echo "quell-agent did not restrict:" >&2; tail -20 $TMPD/agent.log >&2; exit 1; }
grep -q "Starting to listen for events" $TMPD/fapolicyd.log || { echo "fapolicyd did not start:" >&2; tail -20 $TMPD/fapolicyd.log >&2; exit 1; }
grep -E "package index|guardedMounts|restored" $TMPD/agent.log | sed 's/^/# /' >&2 || true

declare -A TARGET=([none]=$NONE_PID [quell]=$Q_PID [fapolicyd]=$F_PID)
in_ns() { local v=$1; shift; nsenter --mount --target "${TARGET[$v]}" -- "$@"; }

# Gate checks: the copy is denied where a gate runs, runs where none does.
in_ns none /tmp/true-copy || { echo "no-agent namespace is gated?!" >&2; exit 1; }
for v in quell fapolicyd; do
  if in_ns $v /tmp/true-copy 2>/dev/null; then echo "$v is NOT ENFORCING" >&2; exit 1; fi
done
FANOTIFY_MASKS=""
for v in quell fapolicyd; do
  # The fanotify marks each daemon holds (from /proc/<pid>/fdinfo): what events it asked for.
  m=$(grep -h "^fanotify mnt_id" /proc/${TARGET[$v]}/fdinfo/* 2>/dev/null | sed -E 's/.* mask:([0-9a-f]+) .*/\1/' | sort | uniq -c | xargs)
  FANOTIFY_MASKS+="$v: [${m:-none}] "
done

# Warm-up (unmeasured): verdict caches, page cache, gcc's files.
for v in none quell fapolicyd; do
  in_ns $v sh /tmp/workload.sh execs 200 >/dev/null
  in_ns $v sh /tmp/workload.sh build >/dev/null || { echo "build failed under $v" >&2; tail -5 $TMPD/fapolicyd.log >&2; exit 1; }
done

# CPU accounting beside wall time: on a loaded 2-CPU machine wall time mostly measures the
# scheduler, so each run also records the workload's CPU (user+sys of all its processes,
# incl. the kernel's fanotify work in execve) and the gate daemon's CPU (utime+stime delta).
HZ=$(getconf CLK_TCK)
daemon_ticks() { if [ "$1" = none ]; then echo 0; else awk '{print $14 + $15}' /proc/${TARGET[$1]}/stat; fi; }
VARIANTS=(none quell fapolicyd)
: > $TMPD/raw
for r in $(seq 1 "$RUNS"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  for w in execs build; do
    for k in 0 1 2; do
      v=${VARIANTS[$(( (r + k) % 3 ))]}
      rc=0; d0=$(daemon_ticks $v)
      if [ $w = execs ]; then args=(execs "$EXECS"); else args=(build); fi
      us=$(/usr/bin/time -f '%U %S' -o $TMPD/cpu nsenter --mount --target "${TARGET[$v]}" -- \
             sh /tmp/workload.sh "${args[@]}") || rc=$?
      d1=$(daemon_ticks $v)
      if [ $rc != 0 ]; then
        echo "rep $r: $w under $v failed (rc $rc); alive: none=$(kill -0 $NONE_PID 2>&1 && echo y) quell=$(kill -0 $Q_PID 2>&1 && echo y) fapolicyd=$(kill -0 $F_PID 2>&1 && echo y)" >&2
        exit 1
      fi
      read -r cu cs < <(tail -1 $TMPD/cpu)
      wcpu=$(echo "$cu + $cs" | bc); dcpu=$(echo "scale=2; ($d1 - $d0) / $HZ" | bc)
      echo "$r $w $v $us $load $wcpu $dcpu" >> $TMPD/raw
      echo "rep $r $w $v: $us µs, workload CPU $wcpu s, daemon CPU $dcpu s (load $load)" >&2
    done
  done
done
# Nothing was denied during the measured runs (a denial would have failed the workload, but
# say so from the daemons' own logs too).
Q_BLOCKED=$(grep -c "blocked exec of" $TMPD/agent.log || true)
F_DENIED=$(grep -c "dec=deny" $TMPD/fapolicyd.log || true)

python3 - "$TMPD/raw" "$EXECS" "$FANOTIFY_MASKS" "$Q_BLOCKED" "$F_DENIED" > $TMPD/report <<'PY'
import statistics, sys
raw, execs, masks, qb, fd = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rows = [l.split() for l in open(raw)]
t = {}     # (workload, variant) -> [seconds]
rep = {}   # (rep, workload, variant) -> seconds
loads = {}
cpu, crep = {}, {}
for r, w, v, us, load, wc, dc in rows:
    s = int(us) / 1e6
    t.setdefault((w, v), []).append(s); rep[(r, w, v)] = s; loads[r] = load
    c = float(wc) + float(dc)
    cpu.setdefault((w, v), []).append((float(wc), float(dc))); crep[(r, w, v)] = c
med = lambda xs: statistics.median(xs)
def paired(w, v):
    return med([rep[(r, w, v)] / rep[(r, w, "none")] for r in loads])
names = {"execs": f"{execs} execs of /usr/bin/true", "build": "make -j2, 41-file C project"}
print("| workload | no agent | Quell (Enforce) | fapolicyd | Quell / none | fapolicyd / none | Quell / fapolicyd |")
print("|---|---|---|---|---|---|---|")
for w in ("execs", "build"):
    n, q, f = (med(t[(w, v)]) for v in ("none", "quell", "fapolicyd"))
    cell = lambda s: f"{s:.2f} s" + (f" ({s * 1e6 / execs:.0f} µs/exec)" if w == "execs" else "")
    print(f"| {names[w]} | {cell(n)} | {cell(q)} | {cell(f)} | {paired(w, 'quell'):.3f}× | "
          f"{paired(w, 'fapolicyd'):.3f}× | {med([rep[(r, w, 'quell')] / rep[(r, w, 'fapolicyd')] for r in loads]):.3f}× |")
print()
print("CPU consumed (medians; workload = user+sys of every process of the workload, including the kernel's")
print("fanotify work in execve; daemon = the gate daemon's own CPU during the run):")
print()
print("| workload | no agent | Quell: workload + agent | fapolicyd: workload + daemon | Quell / none | fapolicyd / none |")
print("|---|---|---|---|---|---|")
def cpair(w, v):
    wc = med([a for a, b in cpu[(w, v)]]); dc = med([b for a, b in cpu[(w, v)]])
    tot = med([crep[(r, w, v)] for r in loads])
    extra = f" ({tot * 1e6 / execs:.0f} µs/exec)" if w == "execs" else ""
    return f"{wc:.2f} + {dc:.2f} = {tot:.2f} s{extra}"
def cratio(w, v):
    return med([crep[(r, w, v)] / crep[(r, w, "none")] for r in loads])
for w in ("execs", "build"):
    print(f"| {names[w]} | {cpair(w, 'none')} | {cpair(w, 'quell')} | {cpair(w, 'fapolicyd')} | "
          f"{cratio(w, 'quell'):.3f}× | {cratio(w, 'fapolicyd'):.3f}× |")
print()
print("Times are medians over the repetitions; ratios are medians of the per-repetition ratios (each")
print("repetition's variants ran back to back). Goal: Quell / none ≤ 1.05 and Quell faster than fapolicyd.")
print()
for w in ("execs", "build"):
    q, f = paired(w, "quell"), paired(w, "fapolicyd")
    print(f"- {names[w]}: Quell / none = {q:.3f}× → goal ≤ 1.05×: {'met' if q <= 1.05 else 'MISSED'}; "
          f"Quell {'faster' if q < f else 'NOT faster'} than fapolicyd ({f:.3f}×); by CPU consumed: "
          f"Quell {cratio(w, 'quell'):.3f}×, fapolicyd {cratio(w, 'fapolicyd'):.3f}×")
print(f"- fanotify marks held (count × mask, from /proc/<pid>/fdinfo): {masks}"
      "(0x40000 = FAN_OPEN_EXEC_PERM, 0x10000 = FAN_OPEN_PERM)")
print(f"- denials during the measured runs: Quell log 'blocked exec' lines {qb} (the gate check's own denial is 1),"
      f" fapolicyd 'dec=deny' lines {fd} (likewise)")
print()
print("Raw data (repetition, workload, variant, wall s, 1-min load average at the start of the repetition,")
print("workload CPU s, daemon CPU s):")
print()
print("```")
for r, w, v, us, load, wc, dc in rows:
    print(f"{r} {w:5} {v:9} {int(us) / 1e6:8.3f} {load:>6} {float(wc):7.2f} {float(dc):6.2f}")
print("```")
PY
