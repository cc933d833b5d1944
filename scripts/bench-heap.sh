#!/usr/bin/env bash
# Benchmark of `memwatch heap diff` (issues 10 and 16): wall time, CPU time and peak memory on
# pairs of Node snapshots written by fixtures/node/heap-leak.js (100,000 `Client` objects
# added and 20,000 `Session` objects replaced between them, `Filler` objects to reach the
# size), in the same run as:
#   - memwatch as it was before the leak roots (BASE_REV, built from git into BENCH_DIR);
#   - dinfuehr/heap-snapshot (`heap-snapshot diff`), built from a checkout given in
#     HEAP_SNAPSHOT_SRC (https://github.com/dinfuehr/heap-snapshot; skipped without it).
# Runs alternate between the tools; each figure is the best of RUNS (the machine is shared:
# the best run is the one least disturbed), the peak memory the largest.
#
#   scripts/bench-heap.sh            # the ~150 MB pair
#   scripts/bench-heap.sh --big      # also the ~550 MB pair (Node needs ~8 GB to write it)
#
# Snapshots and builds go to $BENCH_DIR (default /tmp/memwatch-bench-heap), never into the
# repository.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-/tmp/memwatch-bench-heap}
runs=${RUNS:-5}
base_rev=${BASE_REV:-7b4583f}
mkdir -p "$dir"

gen() { # gen SUBDIR FILLER: two snapshots of heap-leak.js
  local out="$dir/$1"
  if [[ ! -s "$out/heap-1.heapsnapshot" ]]; then
    mkdir -p "$out"
    echo "generating $out (filler $2) ..." >&2
    node --max-old-space-size=16384 fixtures/node/heap-leak.js --dir "$out" --snapshots 2 \
      --leak 100000 --churn 20000 --filler "$2" >/dev/null
  fi
}

echo "building memwatch (this tree) and memwatch $base_rev ..." >&2
cargo build --release --quiet
now=$PWD/target/release/memwatch
if [[ ! -x "$dir/base-target/release/memwatch" || "$(cat "$dir/base-rev" 2>/dev/null)" != "$base_rev" ]]; then
  rm -rf "$dir/base-src" && mkdir -p "$dir/base-src"
  git archive "$base_rev" | tar -x -C "$dir/base-src"
  cargo build --release --quiet --manifest-path "$dir/base-src/Cargo.toml" \
    --target-dir "$dir/base-target"
  echo "$base_rev" >"$dir/base-rev"
fi
base=$dir/base-target/release/memwatch
hs=""
if [[ -n "${HEAP_SNAPSHOT_SRC:-}" ]]; then
  echo "building heap-snapshot from $HEAP_SNAPSHOT_SRC ..." >&2
  cargo build --release --quiet --manifest-path "$HEAP_SNAPSHOT_SRC/Cargo.toml" \
    --bin heap-snapshot --target-dir "$dir/hs-target"
  hs=$dir/hs-target/release/heap-snapshot
  echo "heap-snapshot: $(git -C "$HEAP_SNAPSHOT_SRC" log -1 --format='%h %cs' 2>/dev/null || echo 'not a git checkout')"
else
  echo "heap-snapshot: HEAP_SNAPSHOT_SRC not set (skipped)"
fi

# bench LABEL A B: every tool on the pair, alternating, best of $runs
bench() {
  local label=$1 a=$2 b=$3
  local -a names=("memwatch now" "memwatch $base_rev")
  local -a cmds=("$now heap diff $a $b" "$base heap diff $a $b")
  if [[ -n "$hs" ]]; then
    names+=("heap-snapshot diff")
    cmds+=("$hs diff $b $a")
  fi
  for f in "$a" "$b"; do
    printf '  %s: %d MB, %s\n' "$f" "$(($(stat -c %s "$f") / 1000000))" \
      "$(head -c 2000 "$f" | tr -d '\n' | grep -o '"node_count":[0-9]*,"edge_count":[0-9]*')"
  done
  declare -A wall cpu rss
  for _ in $(seq "$runs"); do
    for k in "${!cmds[@]}"; do
      /usr/bin/time -f "%e %U %S %M" -o "$dir/time.txt" ${cmds[$k]} >"$dir/out-$k.txt" 2>"$dir/err-$k.txt" || {
        echo "${names[$k]}: failed: $(tail -1 "$dir/err-$k.txt")"
        continue
      }
      read -r w u s m <"$dir/time.txt"
      local c
      c=$(echo "$u + $s" | bc)
      if [[ -z "${wall[$k]:-}" ]] || (($(echo "$w < ${wall[$k]}" | bc))); then wall[$k]=$w; fi
      if [[ -z "${cpu[$k]:-}" ]] || (($(echo "$c < ${cpu[$k]}" | bc))); then cpu[$k]=$c; fi
      if [[ -z "${rss[$k]:-}" ]] || ((m > rss[$k])); then rss[$k]=$m; fi
    done
  done
  echo "$label (best of $runs; load $(cut -d' ' -f1-3 /proc/loadavg)):"
  printf '  %-26s %8s %8s %10s %12s %12s\n' tool wall cpu "peak MiB" "wall vs now" "mem vs now"
  for k in "${!cmds[@]}"; do
    printf '  %-26s %7.2fs %7.2fs %10d %11.2fx %11.2fx\n' "${names[$k]}" "${wall[$k]}" "${cpu[$k]}" \
      $((rss[$k] / 1024)) "$(echo "${wall[$k]} / ${wall[0]}" | bc -l)" \
      "$(echo "${rss[$k]} / ${rss[0]}" | bc -l)"
  done
  echo "  first line of memwatch's diff: $(head -1 "$dir/out-0.txt")"
}

echo "machine: $(nproc) cores"
gen pair 620000
bench "~150 MB pair" "$dir/pair/heap-0.heapsnapshot" "$dir/pair/heap-1.heapsnapshot"
if [[ "${1:-}" == "--big" ]]; then
  gen big 2200000
  bench "~550 MB pair" "$dir/big/heap-0.heapsnapshot" "$dir/big/heap-1.heapsnapshot"
fi
