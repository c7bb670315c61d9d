#!/usr/bin/env bash
# Antivirus scan benchmark: one generated corpus, one set of test signatures and rules,
# timed through Quell's scanner (bench driver over src/agent/scan), clamscan,
# clamdscan --multiscan (our own clamd on a unix socket in the temp dir) and yara -p.
# Checks that every tool reports the same detections and writes bench/results/scan.md.
#
#   bench/scan/run.sh [BUILD_DIR]      (env: CORPUS_MB=2048, THREADS=<nproc>, KEEP=1)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="${1:-$REPO/build}"
BENCH_BIN="$BUILD/src/agent/scan/quell-scan-bench"
CORPUS_MB="${CORPUS_MB:-2048}"
THREADS="${THREADS:-$(nproc)}"
OUT="$REPO/bench/results/scan.md"

for tool in clamscan clamd clamdscan yara zip tar; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ -x "$BENCH_BIN" ] || { echo "build quell-scan-bench first: ninja -C $BUILD quell-scan-bench" >&2; exit 1; }

T="$(mktemp -d /tmp/quell-scan-bench.XXXXXX)"
CLAMD_PID=""
cleanup() {
  if [ -n "$CLAMD_PID" ]; then kill "$CLAMD_PID" 2>/dev/null || true; wait "$CLAMD_PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$T"; fi
}
trap cleanup EXIT INT TERM

# --- signatures and rules written here (no shipped malware signatures) --------------------
mkdir -p "$T/db" "$T/rules" "$T/corpus" "$T/tmp"
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
NDB_MARKER="quell-bench-ndb-marker-3b9f0"
YARA_MARKER="QUELL_BENCH_YARA_MARKER_c81d"
printf '%s' "$EICAR" > "$T/eicar.com"
echo "$(md5sum < "$T/eicar.com" | cut -d' ' -f1):$(stat -c %s "$T/eicar.com"):Quell.Bench.Eicar" > "$T/db/bench.hdb"
echo "Quell.Bench.Marker:0:*:$(printf '%s' "$NDB_MARKER" | od -An -tx1 | tr -d ' \n')" > "$T/db/bench.ndb"
cat > "$T/rules/bench.yar" <<YAR
rule quell_bench_marker { strings: \$a = "$YARA_MARKER" condition: \$a }
rule quell_bench_elf_upx { strings: \$u = "UPX!" condition: uint32(0) == 0x464c457f and \$u }
YAR

# --- corpus: system binaries and libraries, text, archives, planted detections ------------
echo "building a ${CORPUS_MB} MB corpus in $T/corpus" >&2
limit=$((CORPUS_MB * 1024 * 1024))
size=0
copy_round=0
while [ "$size" -lt "$limit" ]; do
  dest="$T/corpus/round$copy_round"
  mkdir -p "$dest/bin" "$dest/lib" "$dest/text"
  # Binaries and libraries, skipping anything huge.
  find /usr/bin /usr/sbin /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -size -20M -print0 2>/dev/null |
    while IFS= read -r -d '' f; do cp "$f" "$dest/$( [ "${f#/usr/lib}" != "$f" ] && echo lib || echo bin)/" 2>/dev/null || true; done || true
  true
  # Text
  find /usr/share/doc /usr/share/man/man1 -type f -size -2M 2>/dev/null | head -4000 |
    while read -r f; do cp "$f" "$dest/text/$(echo "$f" | tr / _)" 2>/dev/null || true; done || true
  # Archives of part of this round
  tar -czf "$dest/bin.tar.gz" -C "$dest" text 2>/dev/null || true
  (cd "$dest" && zip -q -r lib-sample.zip lib -i '*libc.so*' '*libssl*' '*libcrypto*' '*libz.so*' 2>/dev/null || true)
  size=$(du -sb "$T/corpus" | cut -f1)
  copy_round=$((copy_round + 1))
  [ "$copy_round" -gt 50 ] && break
done
# Planted detections: EICAR (hdb), the ndb marker, the YARA marker, EICAR inside a zip.
cp "$T/eicar.com" "$T/corpus/round0/text/eicar.com"
printf 'junk %s junk' "$NDB_MARKER" > "$T/corpus/round0/bin/dropper.bin"
printf 'x\n%s\n' "$YARA_MARKER" > "$T/corpus/round0/text/staged.sh"
mkdir -p "$T/zipsrc/payload" && cp "$T/eicar.com" "$T/zipsrc/payload/" &&
  (cd "$T/zipsrc" && zip -q -r "$T/corpus/round0/invoice.zip" payload)
FILES=$(find "$T/corpus" -type f | wc -l)
BYTES=$(du -sb "$T/corpus" | cut -f1)
echo "corpus: $FILES files, $BYTES bytes" >&2

# Warm the page cache for everyone alike (dropping caches would disturb the shared host).
find "$T/corpus" -type f -print0 | xargs -0 cat > /dev/null

now() { date +%s.%N; }
elapsed() { python3 -c "print(round($2 - $1, 2))"; }
norm_clam() { grep ' FOUND$' | sed -E 's/: (.*) FOUND$/\t\1/' | sort; }

declare -A SECONDS_OF
run_timed() {  # name, output file, command...
  local name="$1" out="$2"; shift 2
  local t0 t1; t0=$(now)
  "$@" > "$out" 2> "$out.err" || true
  t1=$(now)
  SECONDS_OF[$name]=$(elapsed "$t0" "$t1")
  echo "$name: ${SECONDS_OF[$name]} s" >&2
}

# --- Quell -------------------------------------------------------------------------------
run_timed quell "$T/quell.out" "$BENCH_BIN" --db "$T/db" --rules "$T/rules" --threads "$THREADS" \
  --cpu-limit 100 --no-nice "$T/corpus"
run_timed quell_ceiling "$T/quell50.out" "$BENCH_BIN" --db "$T/db" --rules "$T/rules" \
  --threads "$THREADS" --cpu-limit 50 "$T/corpus"
"$BENCH_BIN" --db "$T/db" --rules "$T/rules" --threads "$THREADS" --cache "$T/cache" "$T/corpus" > /dev/null 2>&1
run_timed quell_cached "$T/quellc.out" "$BENCH_BIN" --db "$T/db" --rules "$T/rules" \
  --threads "$THREADS" --cache "$T/cache" "$T/corpus"

# --- clamscan ------------------------------------------------------------------------------
run_timed clamscan "$T/clamscan.out" clamscan -d "$T/db" --no-summary --infected -r "$T/corpus"

# --- clamd + clamdscan --multiscan ----------------------------------------------------------
cat > "$T/clamd.conf" <<CONF
LocalSocket $T/clamd.sock
DatabaseDirectory $T/db
TemporaryDirectory $T/tmp
LogFile $T/clamd.log
PidFile $T/clamd.pid
Foreground yes
MaxThreads $THREADS
CONF
clamd -c "$T/clamd.conf" &
CLAMD_PID=$!
for _ in $(seq 1 100); do [ -S "$T/clamd.sock" ] && break; sleep 0.2; done
[ -S "$T/clamd.sock" ] || { echo "clamd did not start" >&2; cat "$T/clamd.log" >&2; exit 1; }
run_timed clamdscan "$T/clamdscan.out" clamdscan -c "$T/clamd.conf" --multiscan --no-summary \
  --infected "$T/corpus"

# --- yara -p ------------------------------------------------------------------------------
run_timed yara "$T/yara.out" yara -p "$THREADS" -r "$T/rules/bench.yar" "$T/corpus"

# --- identical detections? ----------------------------------------------------------------
grep -v ': YARA:' "$T/quell.out" | norm_clam > "$T/q.clam"
grep ': YARA:' "$T/quell.out" | sed -E 's/: YARA:(.*) FOUND$/\t\1/' | sort > "$T/q.yara"
norm_clam < "$T/clamscan.out" > "$T/c.clam"
norm_clam < "$T/clamdscan.out" > "$T/d.clam"
awk '{r=$1; $1=""; sub(/^ /,""); print $0 "\t" r}' "$T/yara.out" | sort > "$T/y.yara"
same() { cmp -s "$1" "$2" && echo yes || echo "NO ($(wc -l < "$1") vs $(wc -l < "$2"))"; }
SAME_CLAMSCAN=$(same "$T/q.clam" "$T/c.clam")
SAME_CLAMD=$(same "$T/q.clam" "$T/d.clam")
SAME_YARA=$(same "$T/q.yara" "$T/y.yara")
SAME_50=$(same <(sort "$T/quell.out") <(sort "$T/quell50.out"))
SAME_CACHED=$(same <(sort "$T/quell.out") <(sort "$T/quellc.out"))

ratio() { python3 -c "print(round($1 / $2, 2))"; }
{
  echo "# Antivirus scan benchmark"
  echo
  echo "- command: \`bench/scan/run.sh $BUILD\` (CORPUS_MB=$CORPUS_MB, THREADS=$THREADS)"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- machine: $(nproc) CPUs, $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- corpus: $FILES files, $((BYTES / 1024 / 1024)) MiB (copies of /usr/bin, /usr/sbin, /usr/lib/x86_64-linux-gnu, docs, tar.gz and zip archives) + 4 planted detections"
  echo "- signatures: 1 .hdb (EICAR MD5) + 1 .ndb marker + 2 YARA rules, written by the script; page cache warm for every tool"
  echo "- versions: $(clamscan --version), yara $(yara --version)"
  echo
  echo "| tool | seconds | clamscan / tool | detections identical |"
  echo "|---|---|---|---|"
  echo "| Quell scanner, $THREADS threads, no CPU ceiling | ${SECONDS_OF[quell]} | $(ratio "${SECONDS_OF[clamscan]}" "${SECONDS_OF[quell]}")× | clamscan: $SAME_CLAMSCAN, clamdscan: $SAME_CLAMD, yara: $SAME_YARA |"
  echo "| Quell scanner, default 50% CPU ceiling, nice 19/idle I/O | ${SECONDS_OF[quell_ceiling]} | $(ratio "${SECONDS_OF[clamscan]}" "${SECONDS_OF[quell_ceiling]}")× | same as uncapped: $SAME_50 |"
  echo "| Quell scanner, second run with the scan cache | ${SECONDS_OF[quell_cached]} | $(ratio "${SECONDS_OF[clamscan]}" "${SECONDS_OF[quell_cached]}")× | same: $SAME_CACHED |"
  echo "| clamscan (ClamAV only, 1 thread) | ${SECONDS_OF[clamscan]} | 1.00× | — |"
  echo "| clamdscan --multiscan ($THREADS clamd threads; ClamAV only) | ${SECONDS_OF[clamdscan]} | $(ratio "${SECONDS_OF[clamscan]}" "${SECONDS_OF[clamdscan]}")× | — |"
  echo "| yara -p $THREADS (YARA only) | ${SECONDS_OF[yara]} | $(ratio "${SECONDS_OF[clamscan]}" "${SECONDS_OF[yara]}")× | — |"
  echo
  echo "Quell runs both engines on every file in one pass; clamscan/clamdscan run ClamAV only and yara runs YARA only."
  echo "Quell's detections: $(wc -l < "$T/quell.out") ($(wc -l < "$T/q.clam") ClamAV, $(wc -l < "$T/q.yara") YARA)."
  echo "Quell summary: $(tail -1 "$T/quell.out.err")"
} > "$OUT"
cat "$OUT"
