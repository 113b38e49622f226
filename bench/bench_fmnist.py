#!/usr/bin/python3
"""The whole Fashion-MNIST pipeline (unpack | decode | shard, four .gz files
to verified-ready shards) against its floor, `zcat` of the same four files,
measured in the same run, alternating, median of N runs each.

usage: bench_fmnist.py BUILD_DIR [RUNS]
Prints one table row per measurement; exits 1 if the ratio misses its target.
"""
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import timed  # noqa: E402

TARGET = 3.0  # issue: the whole pipeline in at most 3x zcat's time


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
    zcat = f"zcat {files}"
    stages = {
        "sp-unpack (gunzip, frame)": f"{b}/sp-unpack {files} > {tmp}/u.sprs",
        "sp-decode (IDX -> pixels)": f"{b}/sp-decode -q {tmp}/u.sprs > {tmp}/d.sprs",
        "sp-shard (zstd-1, HDF5, sha256)": f"{b}/sp-shard -q -o {tmp}/out2 {tmp}/d.sprs",
    }
    timed(pipeline)  # warm the page cache
    t_pipe, t_zcat = [], []
    for _ in range(runs):
        t_zcat.append(timed(zcat))
        t_pipe.append(timed(pipeline))
    t_stage = {name: statistics.median(timed(cmd) for _ in range(3)) for name, cmd in stages.items()}
    shutil.rmtree(tmp)

    p, z = statistics.median(t_pipe), statistics.median(t_zcat)
    ratio = p / z
    print(f"{'benchmark':46} {'shardpipe':>10} {'peer':>10} {'ratio':>7} {'target':>8}")
    print(f"{'fashion-mnist: whole pipeline vs zcat':46} {p:9.3f}s {z:9.3f}s {ratio:6.2f}x {'<=' + format(TARGET, '.2f') + 'x':>8}"
          f"  {'ok' if ratio <= TARGET else 'MISSED'}")
    for name, t in t_stage.items():
        print(f"{'  stage alone: ' + name:46} {t:9.3f}s {z:9.3f}s {t / z:6.2f}x")
    print(f"(median of {runs} alternating runs; 70000 images from {len(files.split())} .gz files; "
          f"{os.cpu_count()} cores)")
    sys.exit(0 if ratio <= TARGET else 1)


if __name__ == "__main__":
    main()
