#!/usr/bin/env bash
# Benchmark of `memwatch heap diff` (issue 10): wall time and peak memory on a pair of Node
# snapshots like the issue's (about 1.39 M / 1.69 M nodes, 100,000 objects of one class added
# and 20,000 of another replaced between them), beside a plain Node.js diff of the same pair
# (scripts/heap-diff-plain.js) and memlab's find-leaks when it is installed.
#
#   scripts/bench-heap.sh            # the pair, 3 runs each
#   scripts/bench-heap.sh --big      # also a ~500 MB snapshot (needs ~4 GB free for Node)
#
# Snapshots go to $BENCH_DIR (default /tmp/memwatch-bench-heap), never into the repository.
# memlab: PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix "$MEMLAB_DIR" memlab (optional).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-/tmp/memwatch-bench-heap}
memlab_dir=${MEMLAB_DIR:-/tmp/memlab}
runs=${RUNS:-3}
mkdir -p "$dir"

gen() { # gen SUBDIR FILLER: two snapshots of heap-leak.js
  local out="$dir/$1"
  if [[ ! -s "$out/heap-1.heapsnapshot" ]]; then
    mkdir -p "$out"
    echo "generating $out (filler $2) ..." >&2
    node --max-old-space-size=8192 fixtures/node/heap-leak.js --dir "$out" --snapshots 2 \
      --leak 100000 --churn 20000 --filler "$2" >/dev/null
  fi
}

measure() { # measure LABEL CMD...: prints wall, cpu, peak RSS of each run
  local label=$1
  shift
  for i in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S %M" -o "$dir/time.txt" "$@" >"$dir/out.txt" 2>"$dir/err.txt" || {
      echo "$label: failed: $(tail -1 "$dir/err.txt")"
      return
    }
    read -r wall user sys rss <"$dir/time.txt"
    printf '%-34s run %d: %6.2f s wall  %6.2f s cpu  %5d MiB peak RSS\n' \
      "$label" "$i" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))"
  done
}

gen pair 458000
a="$dir/pair/heap-0.heapsnapshot"
b="$dir/pair/heap-1.heapsnapshot"
cargo build --release --quiet
bin=target/release/memwatch
for f in "$a" "$b"; do
  printf '%s: %d MB, %s\n' "$f" "$(($(stat -c %s "$f") / 1000000))" \
    "$(head -c 2000 "$f" | tr -d '\n' | grep -o '"node_count":[0-9]*,"edge_count":[0-9]*')"
done
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
measure "memwatch heap diff (with paths)" "$bin" heap diff "$a" "$b"
cp "$dir/out.txt" "$dir/memwatch-diff.txt"
measure "memwatch heap diff --paths 0" "$bin" heap diff "$a" "$b" --paths 0
measure "memwatch heap summary B" "$bin" heap summary "$b"
measure "plain Node.js diff (JSON.parse)" node --max-old-space-size=8192 scripts/heap-diff-plain.js "$a" "$b"
if [[ -x "$memlab_dir/node_modules/.bin/memlab" ]]; then
  runs=1 measure "memlab find-leaks" "$memlab_dir/node_modules/.bin/memlab" find-leaks \
    --baseline "$a" --target "$b" --final "$b"
else
  echo "memlab: not installed in $memlab_dir (skipped)"
fi
echo "top of memwatch's diff:"
sed -n '1,12p' "$dir/memwatch-diff.txt"
grep -A2 '^Client:' "$dir/memwatch-diff.txt" || true

if [[ "${1:-}" == "--big" ]]; then
  gen big 1900000
  big="$dir/big/heap-1.heapsnapshot"
  printf '%s: %d MB\n' "$big" "$(($(stat -c %s "$big") / 1000000))"
  runs=1 measure "memwatch heap diff (big pair)" "$bin" heap diff "$dir/big/heap-0.heapsnapshot" "$big"
  runs=1 measure "memwatch heap summary (big)" "$bin" heap summary "$big"
fi
