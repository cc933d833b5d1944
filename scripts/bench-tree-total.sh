#!/usr/bin/env bash
# Which total should a process tree be judged on? The cost per tick and the accuracy of each
# way memwatch can count a tree's memory, all on the same tree at the same time:
#
#   rss      the sum of RSS (status only; the baseline cost: every process read each tick)
#   pss-1t   the sum of PSS, every process's smaps_rollup read every tick (--pss-interval =
#            --interval): fresh, and what a page-table walk per process per tick costs
#   pss      the sum of PSS as memwatch reads it by default: each process in turn, every 10 s
#   cgroup   the tree's memory cgroup, one memory.stat read a tick (--cgroup --metric cgroup)
#
# The tree: a Python parent that touches SIZE MiB and forks CHILDREN children; each child
# writes to DIRTY MiB of it (copy-on-write gives it its own copy of those pages) and sleeps.
# It runs in a memory cgroup of its own (v1 or v2, made by this script; root only). The truth
# is the number of distinct physical pages the tree's processes map, read from
# /proc/PID/pagemap (root sees page frame numbers) while memwatch runs.
#
#   scripts/bench-tree-total.sh [SIZE_MIB] [CHILDREN] [DIRTY_MIB] [INTERVAL]
#
# Everything it writes goes to a temporary folder that is removed at the end.
set -euo pipefail

size=${1:-256}
children=${2:-7}
dirty=${3:-16}
interval=${4:-100ms}
duration=20s
root=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "needs root (a cgroup, and page frame numbers in pagemap)" >&2; exit 2; }
cargo build --quiet --release --manifest-path "$root/Cargo.toml" --bin memwatch
bin="$root/target/release/memwatch"
work=$(mktemp -d)

# A memory cgroup for the tree, under this shell's own (v1 memory controller, else v2).
mine=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
mount=$(awk '$9 == "cgroup" && $NF ~ /memory/ {print $5; exit}' /proc/self/mountinfo)
if [ -z "$mine" ]; then
    mine=$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)
    mount=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
fi
cg="$mount$mine/memwatch-bench-$$"
mkdir "$cg"
tree=""
cleanup() {
    [ -n "$tree" ] && kill -- "$tree" 2>/dev/null || true
    pkill -P "$tree" 2>/dev/null || true
    sleep 0.3
    rmdir "$cg" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/tree.py" <<EOF
import os, sys, time
with open("$cg/cgroup.procs", "w") as f:
    f.write("0")
b = bytearray($size * 1024 * 1024)
for i in range(0, len(b), 4096):
    b[i] = 1
for k in range($children):
    if os.fork() == 0:
        start = k * $dirty * 1024 * 1024 % len(b)
        for i in range(start, start + $dirty * 1024 * 1024, 4096):
            b[i % len(b)] = 2
        time.sleep(3600)
        os._exit(0)
time.sleep(3600)
EOF
python3 "$work/tree.py" &
tree=$!
sleep 3 # touched and forked

cat >"$work/truth.py" <<'EOF'
# Distinct physical pages mapped by a process and its descendants (pagemap, root only).
import os, struct, sys
root = int(sys.argv[1])
procs = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            stat = open(f"/proc/{d}/stat").read()
            procs[int(d)] = int(stat[stat.rindex(")") + 2:].split()[1])
        except OSError:
            pass
tree, frontier = {root}, [root]
while frontier:
    frontier = [p for p, pp in procs.items() if pp in frontier and p not in tree]
    tree.update(frontier)
frames = set()
for pid in tree:
    with open(f"/proc/{pid}/pagemap", "rb") as pm:
        for line in open(f"/proc/{pid}/maps"):
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo >= 0xffffffffff600000:
                continue  # vsyscall
            pm.seek(lo // 4096 * 8)
            data = pm.read((hi - lo) // 4096 * 8)
            for (e,) in struct.iter_unpack("<Q", data):
                if e >> 63 & 1:
                    frames.add(e & ((1 << 55) - 1))
print(len(frames) * 4096, len(tree))
EOF

# Each mode's CPU time (the nanoseconds on CPU of its threads, /proc/PID/task/*/schedstat) is
# read 5 s and 15 s into the run (start-up and the end's chart and summary left out), and
# divided by its ticks between the two.
declare -A pid
run() { # name, memwatch options...
    local name=$1
    shift
    "$bin" --pid "$tree" --tree --quiet --interval "$interval" --duration "$duration" \
        --out "$work/$name" "$@" &
    pid[$name]=$!
}
cpu_ticks() { # pid: nanoseconds on CPU, all threads
    cat /proc/"$1"/task/*/schedstat | awk '{ns += $1} END {printf "%d\n", ns}'
}
modes=(rss pss-1t pss cgroup)
run rss --tree-total rss
run pss-1t --tree-total pss --pss-interval "$interval"
run pss --tree-total pss
run cgroup --tree-total rss --cgroup "$cg" --metric cgroup
sleep 5
declare -A cpu0
for m in "${modes[@]}"; do cpu0[$m]=$(cpu_ticks "${pid[$m]}"); done
sleep 7
read -r truth procs < <(python3 "$work/truth.py" "$tree")
sleep 3
declare -A cpu1
for m in "${modes[@]}"; do cpu1[$m]=$(cpu_ticks "${pid[$m]}"); done
for m in "${modes[@]}"; do wait "${pid[$m]}" || true; done

mib() { echo "$1 / 1048576" | bc -l; }
printf 'tree: %d processes, %d MiB touched by the parent, %d MiB dirtied by each child; ' \
    "$procs" "$size" "$dirty"
printf 'truth (distinct pages mapped): %.1f MiB\n' "$(mib "$truth")"
printf '%-8s %8s %8s %12s %12s %10s\n' mode ticks "CPU s" "µs a tick" "total MiB" "vs truth"
echo "(CPU and ticks from 5 s to 15 s into the run)"
for name in "${modes[@]}"; do
    csv="$work/$name/samples.csv"
    case $name in
        rss) value=$(awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i} $c["pid"]=="total"{v=$c["rss_bytes"]} END{print v}' "$csv") ;;
        pss*) value=$(awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i} $c["pid"]=="total"&&$c["pss_bytes"]!=""{v=$c["pss_bytes"]} END{print v}' "$csv") ;;
        cgroup) value=$(awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i} $c["pid"]=="cgroup"{v=$c["rss_bytes"]} END{print v}' "$csv") ;;
    esac
    ticks=$(awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i} $c["pid"]=="total" && $1>=5 && $1<15' "$csv" | wc -l)
    cpu=$(echo "(${cpu1[$name]:-0} - ${cpu0[$name]:-0}) / 1000000000" | bc -l)
    printf '%-8s %8d %8.3f %12.0f %12.1f %9.1f%%\n' "$name" "$ticks" "$cpu" \
        "$(echo "$cpu * 1000000 / $ticks" | bc -l)" "$(mib "$value")" \
        "$(echo "($value - $truth) * 100 / $truth" | bc -l)"
done
