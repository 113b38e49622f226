#!/usr/bin/python3
"""The whole Fashion-MNIST pipeline (unpack | decode | shard, four .gz files
to verified-ready shards) against its floor, `zcat` of the same four files,
measured in the same run, alternating, median of N runs each, after one
warm-up run of each.

Both sides are timed the same way: whole processes, wall clock, on the same
one core (taskset -c 0), so the pipeline's three processes cannot borrow a
second core that zcat's one process could not use. The work differs, and
only against shardpipe: zcat only inflates the gzip members to /dev/null; the
pipeline also frames and checksums records, decodes the IDX files, shuffles,
compresses with zstd, writes HDF5 with sha256s and a manifest. For
information, the pipeline on every core (three processes, as a user runs it)
and the CPU seconds (user + system, all processes) of each side.

usage: bench_fmnist.py BUILD_DIR [RUNS]
Prints one table row per measurement; exits 1 if the ratio misses its target.
"""
import glob
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 3.0  # issue: the whole pipeline in at most 3x zcat's time, on the same core


def timed(cmd):
    """(wall seconds, CPU seconds of the command's processes) of a shell command, stdout discarded."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    src = "/usr/share/datasets/fashion-mnist"
    files = " ".join(sorted(glob.glob(src + "/*.gz")))
    if not files:
        sys.exit(f"bench: no .gz files in {src} (apt-get install dataset-fashion-mnist)")
    tmp = tempfile.mkdtemp(prefix="sp-bench-")
    b = build + "/bin"
    pipeline = f"{b}/sp-unpack {files} | {b}/sp-decode -q | {b}/sp-shard -q -o {tmp}/out"
    cmds = {
        "pipe1": f"taskset -c 0 bash -o pipefail -c '{pipeline}'",
        "zcat1": f"taskset -c 0 zcat {files}",
        "pipe_all": f"bash -o pipefail -c '{pipeline}'",
    }
    stages = {
        "sp-unpack (gunzip, frame)": f"taskset -c 0 {b}/sp-unpack {files} > {tmp}/u.sprs",
        "sp-decode (IDX -> pixels)": f"taskset -c 0 {b}/sp-decode -q {tmp}/u.sprs > {tmp}/d.sprs",
        "sp-shard (zstd-1, HDF5, sha256)": f"taskset -c 0 {b}/sp-shard -q -o {tmp}/out2 {tmp}/d.sprs",
    }
    for c in cmds.values():
        timed(c)  # warm the page cache and the code
    wall = {k: [] for k in cmds}
    cpu = {k: [] for k in cmds}
    for _ in range(runs):
        for k, c in cmds.items():
            w, u = timed(c)
            wall[k].append(w), cpu[k].append(u)
    t_stage = {name: statistics.median(timed(cmd)[0] for _ in range(3)) for name, cmd in stages.items()}
    shutil.rmtree(tmp)

    w = {k: statistics.median(v) for k, v in wall.items()}
    u = {k: statistics.median(v) for k, v in cpu.items()}
    z = w["zcat1"]
    ratio = w["pipe1"] / z
    print(f"{'benchmark (wall seconds)':56} {'shardpipe':>10} {'zcat':>10} {'ratio':>7} {'target':>8}")
    print(f"{'fashion-mnist: whole pipeline vs zcat, one core':56} {w['pipe1']:9.3f}s {z:9.3f}s {ratio:6.2f}x "
          f"{'<=' + format(TARGET, '.2f') + 'x':>8}  {'ok' if ratio <= TARGET else 'MISSED'}")
    print(f"{'  pipeline on ' + str(os.cpu_count()) + ' cores vs zcat on one (information)':56} {w['pipe_all']:9.3f}s "
          f"{z:9.3f}s {w['pipe_all'] / z:6.2f}x")
    print(f"{'  CPU seconds, all processes, one core':56} {u['pipe1']:9.3f}s {u['zcat1']:9.3f}s "
          f"{u['pipe1'] / u['zcat1']:6.2f}x")
    for name, t in t_stage.items():
        print(f"{'  stage alone, one core: ' + name:56} {t:9.3f}s {z:9.3f}s {t / z:6.2f}x")
    print(f"(median of {runs} alternating runs after a warm-up; whole processes; 70000 images from "
          f"{len(files.split())} .gz files; zcat only inflates, the pipeline also decodes, compresses and writes)")
    sys.exit(0 if ratio <= TARGET else 1)


if __name__ == "__main__":
    main()
