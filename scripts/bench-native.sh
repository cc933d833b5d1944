#!/usr/bin/env bash
# The cost of --native, beside `perf record -e page-faults --call-graph dwarf`, in the same run.
#
# A C program (tests/fixtures/native/grow.c, built without frame pointers) grows by MIB MiB
# (default 256) in 1 MiB blocks, every page touched, with arithmetic in between calibrated so
# that it grows at ~1 GiB/min when nothing watches it. It is run:
#   - alone;
#   - watched by memwatch without --native (the sampling loop alone);
#   - watched by memwatch --native (every page fault sampled);
#   - recorded by perf record -e page-faults --call-graph dwarf -p PID;
# and once more alone and with --native growing as fast as it can (no arithmetic).
# memwatch and perf attach with --pid/-p to a program that waits 1 s first, so that their own
# CPU time (getrusage of the watcher only) leaves the program's out.
# Reported: the program's wall time (median of REPEAT runs) and the slowdown; the watcher's CPU
# time, and per 1,000 sampled faults; its peak RSS; the top function each tool names.
#
# Usage: scripts/bench-native.sh [MIB] [REPEAT]     (as root: perf events, DESIGN.md §13)
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-256}
REPEAT=${2:-3}

cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -fomit-frame-pointer -o "$work/grow" tests/fixtures/native/grow.c
PERF=$(command -v perf || true)
if [ -n "$PERF" ] && ! "$PERF" --version >/dev/null 2>&1; then PERF=""; fi
if [ -z "$PERF" ]; then
    echo "perf is not installed (Debian: apt-get install linux-perf): its column is left out" >&2
fi

python3 - "$work" "$MIB" "$REPEAT" "$PWD/target/release/memwatch" "$PERF" <<'EOF'
import json, os, re, statistics, subprocess, sys, time

work, mib, repeat, memwatch, perf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
grow = os.path.join(work, "grow")

per_ms = float(subprocess.check_output([grow, "calibrate"]).decode())
touch = subprocess.check_output([grow, "64", "0"]).decode()
touch_ms_per_mib = float(touch.split()[3]) * 1000 / 64
# 1 GiB/min: 1 MiB every 58.6 ms, of which touching the pages takes touch_ms_per_mib.
work_per_mib = int(max(0.0, 60_000 / 1024 - touch_ms_per_mib) * per_ms)

def wall(out):
    m = re.search(r"wall_s ([0-9.]+)", out)
    return float(m.group(1)) if m else float("nan")

def prog_cpu(out):
    m = re.search(r"cpu_s ([0-9.]+)", out)
    return float(m.group(1)) if m else float("nan")

def alone(work_iters):
    out = subprocess.run([grow, str(mib), str(work_iters)], capture_output=True, text=True).stdout
    return {"wall": wall(out), "prog_cpu": prog_cpu(out)}

def watched(work_iters, watcher, last=True):
    """The program, and a watcher attached to it; the watcher's own rusage."""
    prog = subprocess.Popen([grow, str(mib), str(work_iters), "1000"], stdout=subprocess.PIPE, text=True)
    out_dir = os.path.join(work, f"out-{time.monotonic_ns()}")
    if watcher == "perf":
        data = os.path.join(work, "perf.data")
        # Every fault (-c 1), as --native samples them; perf record -p ends with the process.
        cmd = [perf, "record", "-q", "-e", "page-faults", "-c", "1", "--call-graph", "dwarf", "-p", str(prog.pid), "-o", data]
    else:
        cmd = [memwatch, "--pid", str(prog.pid), "--interval", "1s", "--warmup", "0s", "-q", "--out", out_dir]
        if watcher == "native":
            cmd.append("--native")
    # Through /usr/bin/time: the watcher's peak RSS is its own, not this script's (a process
    # started from Python keeps Python's peak across exec).
    usage = os.path.join(work, "usage")
    with open(os.path.join(work, "watcher.err"), "w") as err:
        subprocess.Popen(["/usr/bin/time", "-o", usage, "-f", "%U %S %M"] + cmd,
                         stdout=subprocess.DEVNULL, stderr=err)
        out = prog.communicate()[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (os.path.exists(usage) and os.path.getsize(usage) > 0):
            time.sleep(0.05)
    user, system, maxrss = open(usage).read().split()[-3:]
    os.remove(usage)
    r = {"wall": wall(out), "prog_cpu": prog_cpu(out), "cpu": float(user) + float(system), "maxrss_kib": int(maxrss)}
    if watcher == "native":
        s = json.load(open(os.path.join(out_dir, "summary.json")))["native"]
        r["samples"] = s["samples"]
        r["lost"] = s["lost"]
        top = [f for f in s["functions"] if "grow_buffers" in f["name"]]
        r["grow_buffers"] = top[0]["inclusive_share"] if top else 0.0
        own = [f["name"] for f in s["functions"] if not re.match(r"^(_start|main|__libc|libc\.so|malloc|ld-linux|\[)", f["name"])]
        r["top"] = own[0] if own else "?"
    if watcher == "perf" and last:
        rep = subprocess.run([perf, "report", "-i", os.path.join(work, "perf.data"), "--children", "--stdio",
                              "--sort", "sym", "-q", "-g", "none"], capture_output=True, text=True).stdout
        rows = [m.groups() for m in re.finditer(r"^\s*([\d.]+)%\s+([\d.]+)%\s+\[.\]\s+(.*)$", rep, re.M)]
        own = [name for _, _, name in rows if not re.match(r"(_start|main|__libc|_dl_|malloc|0x)", name)]
        r["top"] = own[0] if own else "?"
        m = [float(c) for c, _, name in rows if name.startswith("grow_buffers")]
        r["grow_buffers"] = m[0] / 100 if m else 0.0
        scr = subprocess.run([perf, "script", "-i", os.path.join(work, "perf.data"), "-F", "period"],
                             capture_output=True, text=True).stdout
        r["samples"] = len(scr.split())  # samples perf wrote (it drops some when its buffer is full)
    return r

def median(runs, key):
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else float("nan")

# Interleaved (one run of each, REPEAT times): other load on the machine falls on all of them.
modes = [
    ("alone", lambda last: alone(work_per_mib)),
    ("memwatch (no --native)", lambda last: watched(work_per_mib, "plain")),
    ("memwatch --native", lambda last: watched(work_per_mib, "native")),
    ("perf record -c 1 --call-graph dwarf", lambda last: watched(work_per_mib, "perf", last)),
    ("alone, as fast as it can", lambda last: alone(0)),
    ("memwatch --native, as fast as it can", lambda last: watched(0, "native")),
]
rows = {name: [] for name, _ in modes if perf or not name.startswith("perf")}
for i in range(repeat):
    for name, fn in modes:
        if name in rows:
            rows[name].append(fn(i == repeat - 1))

base = median(rows["alone"], "wall")
fast = median(rows["alone, as fast as it can"], "wall")
base_cpu = median(rows["alone"], "prog_cpu")
fast_cpu = median(rows["alone, as fast as it can"], "prog_cpu")
print(f"grow.c: {mib} MiB in 1 MiB blocks, {work_per_mib} iterations of arithmetic per MiB "
      f"(~{mib / base_cpu * 60 / 1024:.2f} GiB per minute of its CPU time, {mib / base * 60 / 1024:.2f} GiB/min of wall time alone); "
      f"median of {repeat} runs")
plain_cpu = median(rows["memwatch (no --native)"], "cpu")
print(f"{'':36} {'wall s':>7} {'slower':>8} {'prog CPU':>9} {'slower':>8} {'watcher CPU':>12} {'samples':>8} {'CPU/1k':>9} {'RSS MiB':>8}  top function (grow_buffers share)")
for name, runs in rows.items():
    w = median(runs, "wall")
    pc = median(runs, "prog_cpu")
    ref = fast if "fast" in name else base
    ref_cpu = fast_cpu if "fast" in name else base_cpu
    cpu = median(runs, "cpu")
    samples = median(runs, "samples")
    # memwatch: less the sampling loop's own CPU (the run without --native).
    extra = cpu - plain_cpu if name.startswith("memwatch --native") else cpu
    per_k = extra / samples * 1000 if samples and samples == samples else float("nan")
    rss = median(runs, "maxrss_kib") / 1024
    top = runs[-1].get("top", "")
    share = runs[-1].get("grow_buffers")
    if name.startswith("perf"):
        samples = runs[-1].get("samples", float("nan"))
        per_k = cpu / samples * 1000 if samples else float("nan")
    top_s = f"{top} ({share:.0%})" if share is not None else ""
    print(f"{name:36} {w:7.2f} {(w / ref - 1) * 100:+7.1f}% {pc:9.2f} {(pc / ref_cpu - 1) * 100:+7.1f}% {cpu:12.3f} {samples:8.0f} {per_k * 1000:7.1f}ms {rss:8.1f}  {top_s}")
lost = [r.get("lost", 0) for r in rows["memwatch --native"]]
print(f"--native lost samples (buffers full): {lost}; as fast as it can: {[r.get('lost', 0) for r in rows['memwatch --native, as fast as it can']]}")
print("CPU/1k: the watcher's CPU per 1,000 samples (memwatch --native: less the CPU of memwatch without it)")
EOF
