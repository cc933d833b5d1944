#!/usr/bin/env bash
# The cost of --tree: memwatch's CPU time and peak memory sampling a shell with CHILDREN
# `sleep` children at 1 kHz for 5 s, with --tree (every process read, plus the total row)
# and without (the shell alone), in the same run.
#
#   scripts/bench-tree.sh [CHILDREN]
#
# Everything it writes goes to a temporary folder that is removed at the end.
set -euo pipefail

children=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time)" >&2; exit 2; }
cargo build --quiet --release --manifest-path "$root/Cargo.toml" --bin memwatch
bin="$root/target/release/memwatch"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-10s %10s %12s %10s %12s\n' mode "CPU s" "max RSS MiB" ticks "µs a tick"
for mode in single tree; do
    flag=()
    [ "$mode" = tree ] && flag=(--tree)
    /usr/bin/time -f '%U %S %M' -o "$work/time" "$bin" run "${flag[@]}" --quiet --interval 1ms \
        --duration 5s --out "$work/$mode" -- sh -c "for i in \$(seq $children); do sleep 60 & done; wait" \
        || true # a 5 s run of a flat shell is judged stable or inconclusive: either is fine here
    read -r user sys rss_kb <"$work/time"
    ticks=$(awk -F, 'NR > 1 && $3 != "total" {print $1}' "$work/$mode/samples.csv" | sort -u | wc -l)
    cpu=$(echo "$user + $sys" | bc -l)
    printf '%-10s %10.2f %12.1f %10d %12.0f\n' "$mode" "$cpu" "$(echo "$rss_kb / 1024" | bc -l)" \
        "$ticks" "$(echo "$cpu * 1000000 / $ticks" | bc -l)"
done
echo "with --tree each tick reads $((children + 1)) processes and writes $((children + 2)) rows"
