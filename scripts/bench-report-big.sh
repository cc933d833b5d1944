#!/usr/bin/env bash
# `memwatch report` on a large recording: wall time and peak memory (max RSS) beside the file's
# size, for the code at a base commit and for the working tree, in the same run.
#
#   scripts/bench-report-big.sh [SIZE_MB] [BASE_COMMIT]
#
# SIZE_MB (default 2150, the 2.15 GB / 24.4 M-row recording of issue 9) sets the CSV's size.
# BASE_COMMIT (default 3ff716b, before the streaming reader) is built from `git archive` into
# /tmp, never into this tree; pass `none` to measure the working tree alone. Everything
# generated goes to $BENCH_DIR (default /tmp/memwatch-bench-big) and is never committed.
set -euo pipefail

size_mb=${1:-2150}
base=${2:-3ff716b}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/memwatch-bench-big}
mkdir -p "$work"
csv="$work/samples-${size_mb}MB.csv"

command -v gcc >/dev/null || { echo "needs gcc (for the CSV generator)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time, for max RSS)" >&2; exit 2; }

# The generator: memwatch's own columns, one row per 100 ms; RSS ~200 MB with a slow leak
# under a 20 s GC sawtooth and noise, page-aligned; a SIGUSR2 event every minute. C, because
# it writes 2 GB in seconds.
if [ ! -s "$csv" ]; then
    cat >"$work/gen.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
int main(int argc, char **argv) {
    unsigned long long limit = strtoull(argv[1], 0, 10) * 1000000ULL, written = 0;
    FILE *out = fopen(argv[2], "w");
    if (!out) return 1;
    static char buf[1 << 20];
    setvbuf(out, buf, _IOFBF, sizeof buf);
    written += fprintf(out, "elapsed_s,unix_ms,pid,rss_bytes,vsz_bytes,anon_bytes,file_bytes,"
                            "shmem_bytes,swap_bytes,hwm_bytes,pss_bytes,uss_bytes,threads,event\n");
    uint64_t x = 0x2545f4914f6cdd1dULL, hwm = 0;
    for (uint64_t i = 0; written < limit; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        double t = i / 10.0;
        uint64_t saw = (uint64_t)((i % 200) * 30000);
        uint64_t rss = (200000000ULL + (uint64_t)(2.0 * t) + saw + x % 200000) / 4096 * 4096;
        if (rss > hwm) hwm = rss;
        written += fprintf(out, "%llu.%03llu,%llu,4242,%llu,%llu,%llu,20000000,0,0,%llu,,,8,%s\n",
            (unsigned long long)(i / 10), (unsigned long long)(i % 10 * 100),
            (unsigned long long)(1700000000000ULL + i * 100), (unsigned long long)rss,
            (unsigned long long)(rss * 3), (unsigned long long)(rss - 20000000),
            (unsigned long long)hwm, i % 600 == 300 ? "signal:SIGUSR2" : "");
    }
    return fclose(out) != 0;
}
C
    gcc -O2 -o "$work/gen" "$work/gen.c"
    echo "generating $csv (${size_mb} MB)..." >&2
    "$work/gen" "$size_mb" "$csv.tmp"
    mv "$csv.tmp" "$csv"
fi
file_bytes=$(stat -c %s "$csv")
rows=$(($(wc -l <"$csv") - 1))

# The binaries: the base commit's, built apart, and this tree's.
bins=()
if [ "$base" != none ]; then
    src="$work/base-$base"
    if [ ! -d "$src" ]; then
        mkdir -p "$src"
        git -C "$root" archive "$base" | tar -x -C "$src"
    fi
    echo "building $base (release)..." >&2
    CARGO_TARGET_DIR="$work/target-base" cargo build --quiet --release --manifest-path "$src/Cargo.toml" --bin memwatch
    bins+=("base $base=$work/target-base/release/memwatch")
fi
echo "building the working tree (release)..." >&2
cargo build --quiet --release --manifest-path "$root/Cargo.toml" --bin memwatch
bins+=("working tree=$root/target/release/memwatch")

cat "$csv" >/dev/null # into the page cache, so no build pays for the first read from disk

printf '\nmemwatch report on %s: %d rows, %.2f GB (%.2f GiB)\n' "$csv" "$rows" \
    "$(echo "$file_bytes / 1000000000" | bc -l)" "$(echo "$file_bytes / 1073741824" | bc -l)"
printf '%-22s %10s %14s %12s  %s\n' build "wall s" "max RSS MiB" "RSS / file" "exit, verdict"
for entry in "${bins[@]}"; do
    name=${entry%%=*}
    bin=${entry#*=}
    rm -f "$work/x.json" "$work/x.png"
    set +e
    /usr/bin/time -v -o "$work/time.txt" "$bin" report --quiet "$csv" \
        --json "$work/x.json" --png "$work/x.png"
    code=$?
    set -e
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" |
        awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    verdict=$(grep -o '"verdict": *"[a-z]*"' "$work/x.json" 2>/dev/null | grep -o '[a-z]*"$' | tr -d '"' || true)
    printf '%-22s %10.2f %14.0f %11.1f%%  %s, %s\n' "$name" "$wall" "$(echo "$rss_kb / 1024" | bc -l)" \
        "$(echo "$rss_kb * 1024 * 100 / $file_bytes" | bc -l)" "$code" "${verdict:-none}"
done
echo "target: max RSS at most 25% of the file; wall time within 2x of the base"

# Where this tree's peak comes from: reading (the columns kept), analysing, drawing.
echo
cargo bench --quiet --manifest-path "$root/Cargo.toml" --bench report -- --stages "$csv" 2>/dev/null
