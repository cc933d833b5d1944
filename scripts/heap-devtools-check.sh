#!/usr/bin/env bash
# Checks `memwatch heap summary` and `heap diff` against Chrome DevTools' own HeapSnapshot
# code run headless in Node (scripts/heap-devtools-reference.mjs, DevTools installed by
# scripts/devtools-bundle.sh), on snapshots written by fixtures/node/heap-cases.js: a Map
# cache, a WeakMap, two classes named `Client` from two files, connections holding native
# buffers, churn.
#
#   scripts/heap-devtools-check.sh                 # the fixture's snapshots
#   scripts/heap-devtools-check.sh A [B]           # your own snapshots
#
# Exit 0 when every class agrees, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-/tmp/memwatch-devtools-check}
bundle=$(scripts/devtools-bundle.sh)
cargo build --release --quiet
if [[ $# -ge 1 ]]; then
  files=("$@")
else
  rm -rf "$work" && mkdir -p "$work"
  mapfile -t files < <(node fixtures/node/heap-cases.js --dir "$work" --snapshots 2 \
    --map 3000 --weakmap 500 --conns 20 --churn 1000 --twins 200)
fi
node --max-old-space-size=8192 scripts/heap-devtools-reference.mjs "$bundle" \
  "$PWD/target/release/memwatch" "${files[@]}"
