#!/usr/bin/env bash
# The cost of `memwatch --all`: CPU per process-sample and memwatch's own memory when it
# watches N processes at 1 Hz, N = 1, 100, 1000, 5000 (sleepers this script starts, under a
# name of their own so that --name picks exactly them), beside the references measured in the
# same run on the same sleepers: psrecord --include-children on their parent (if psrecord is
# installed: pip install psrecord) and a `ps --ppid` loop once a second.
#
#   scripts/bench-machine.sh [SECONDS] [N ...]      (default: 30 s; 1 100 1000 5000)
#
# memwatch's CPU time is read from /proc/PID/task/*/schedstat (nanoseconds) after its first
# 5 seconds (the first full scan of /proc and start-up left out) and near the end, and divided
# by the rows of samples.csv written in between (one per process per tick): the steady cost at
# 1 Hz. "with start" divides all its CPU time so far by all its rows so far. Its memory is VmHWM, the peak RSS. Everything is written
# to a temporary folder that is removed at the end; the sleepers are killed.
set -euo pipefail

secs=${1:-30}
shift || true
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 100 1000 5000)
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time)" >&2; exit 2; }
cargo build --quiet --release --manifest-path "$root/Cargo.toml" --bin memwatch
bin="$root/target/release/memwatch"
work=$(mktemp -d)
sleepers_pgid=
cleanup() {
    [ -n "$sleepers_pgid" ] && kill -- "-$sleepers_pgid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cp /bin/sleep "$work/mwb-sleep"
have_psrecord=$(command -v psrecord >/dev/null && echo yes || echo no)

cpu_ns() { # CPU time of every thread of PID, nanoseconds
    cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { print s }'
}

printf '%6s | %12s %12s %9s %10s %6s | %12s | %12s\n' N "µs/proc-smp" "with start" "max RSS" \
    "CPU/s" "scans" "psrecord" "ps loop"
printf '%6s | %12s %12s %9s %10s %6s | %12s | %12s\n' "" "memwatch" "memwatch" "MiB" "% core" \
    "full" "µs/proc-smp" "µs/proc-smp"
for n in "${counts[@]}"; do
    # N sleepers under one parent, in a process group of their own
    setsid bash -c "for i in \$(seq $n); do '$work/mwb-sleep' 3600 & done; wait" &
    parent=$!
    sleepers_pgid=$parent
    for _ in $(seq 600); do
        [ "$(pgrep -c -x mwb-sleep || true)" -ge "$n" ] && break
        sleep 0.2
    done

    out="$work/mw-$n"
    "$bin" --all --name '^mwb-sleep$' --interval 1s --duration "${secs}s" --quiet --out "$out" &
    mw=$!
    sleep 5
    c0=$(cpu_ns $mw)
    t0=$(date +%s.%N)
    sleep $((secs - 7))
    c1=$(cpu_ns $mw)
    t1=$(date +%s.%N)
    hwm_kb=$(awk '/VmHWM/ {print $2}' "/proc/$mw/status")
    wait $mw || true # a flat sleeper is judged stable (0) or, for short runs, inconclusive (3)
    # rows (process-samples) written between the two CPU readings, and in all
    start_unix=$(awk -F, 'NR == 2 {print $2; exit}' "$out/samples.csv")
    lo=$(echo "$t0 * 1000 - $start_unix" | bc -l)
    hi=$(echo "$t1 * 1000 - $start_unix" | bc -l)
    rows=$(awk -F, -v lo="$lo" -v hi="$hi" 'NR > 1 && $3 != "total" && $1 * 1000 >= lo && $1 * 1000 <= hi' \
        "$out/samples.csv" | wc -l)
    rows_all=$(awk -F, -v hi="$hi" 'NR > 1 && $3 != "total" && $1 * 1000 <= hi' \
        "$out/samples.csv" | wc -l)
    us=$(echo "($c1 - $c0) / 1000 / $rows" | bc -l)
    us_all=$(echo "$c1 / 1000 / $rows_all" | bc -l)
    core=$(echo "($c1 - $c0) / 1000000000 / ($t1 - $t0) * 100" | bc -l)

    ps_us="n/a"
    if [ "$have_psrecord" = yes ]; then
        /usr/bin/time -f '%U %S' -o "$work/psr.time" psrecord "$parent" --include-children \
            --interval 1 --duration "$secs" --log "$work/psr.log" >/dev/null 2>&1 || true
        read -r u s <"$work/psr.time"
        ticks=$(grep -vc '^#' "$work/psr.log" || true)
        [ "$ticks" -gt 0 ] && ps_us=$(printf '%.1f' "$(echo "($u + $s) * 1000000 / ($ticks * ($n + 1))" | bc -l)")
    fi

    /usr/bin/time -f '%U %S' -o "$work/ps.time" bash -c \
        "for i in \$(seq $secs); do ps -o pid=,rss=,vsz= --ppid $parent >/dev/null; sleep 1; done"
    read -r u s <"$work/ps.time"
    loop_us=$(echo "($u + $s) * 1000000 / ($secs * $n)" | bc -l)

    scans=$(grep -o '"full_scans": [0-9]*' "$out/summary.json" | grep -o '[0-9]*$')
    printf '%6d | %12.2f %12.2f %9.1f %9.3f%% %6s | %12s | %12.1f\n' "$n" "$us" "$us_all" \
        "$(echo "$hwm_kb / 1024" | bc -l)" "$core" "$scans" "$ps_us" "$loop_us"
    kill -- "-$sleepers_pgid" 2>/dev/null || true
    wait "$parent" 2>/dev/null || true
    sleepers_pgid=
    for _ in $(seq 100); do
        [ "$(pgrep -c -x mwb-sleep || true)" -eq 0 ] && break
        sleep 0.2
    done
done
echo "µs/proc-smp: CPU time per process sampled once (memwatch: after its first 5 s; with"
echo "start: all of it, the first full scan included). full scans: of /proc, the first one and one"
echo "per PID wrap-around. psrecord and ps loop: the same sleepers, same run."
