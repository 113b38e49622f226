#!/usr/bin/python3
"""sp-decode on ImageNet-like JPEGs against bare tjDecompress2, one core.

The image set is made from real photographs (Debian's mate-backgrounds):
seeded crops resized to ImageNet's usual sizes (500x375, 375x500, 500x333,
500x500), JPEG quality 90 to 96, 4:4:4 for most and 4:2:0 for a fifth, as
ImageNet's files are. Both sides decode every image to full-size RGB on one
core (taskset -c 0), each timed as a whole process from start to exit: the
peer reads the files and decodes them from memory; sp-decode reads a record
stream file (sp-unpack's output) and writes its pixel records to /dev/null,
so its figure also includes checksumming and writing the stream.

usage: bench_decode.py BUILD_DIR [IMAGES] [RUNS]
"""
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import make_set  # noqa: E402

TARGET = 0.9  # issue: at least 0.9 of tjDecompress2's images/s


def run(cmd):
    t = time.perf_counter()
    out = subprocess.run(cmd, shell=True, check=True, stdout=subprocess.PIPE).stdout
    return time.perf_counter() - t, out


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    tmp = tempfile.mkdtemp(prefix="sp-bench-decode-")
    files = make_set(tmp, n)
    with tarfile.open(os.path.join(tmp, "train.tar"), "w") as t:
        for f in files:
            t.add(f, arcname=os.path.basename(f))
    b = build + "/bin"
    subprocess.run(f"{b}/sp-unpack -q {tmp}/train.tar > {tmp}/blobs.sprs", shell=True, check=True)
    classes = os.path.join(tmp, "classes.txt")
    with open(classes, "w") as f:
        f.writelines(f"n{i:08d} class {i}\n" for i in range(10))
    ours = f"taskset -c 0 {b}/sp-decode -q --classes {classes} {tmp}/blobs.sprs > /dev/null"
    peer = f"taskset -c 0 {build}/bench/tj_decode 1 {tmp}/*.JPEG"
    run(ours), run(peer)  # warm up
    t_ours, t_peer, t_loop = [], [], []
    for _ in range(runs):
        t_ours.append(run(ours)[0])
        wall, out = run(peer)
        t_peer.append(wall)
        t_loop.append(float(out.split()[1]))
    shutil.rmtree(tmp)
    ips_ours, ips_peer = n / statistics.median(t_ours), n / statistics.median(t_peer)
    ratio = ips_ours / ips_peer
    print(f"{'benchmark':46} {'shardpipe':>11} {'peer':>11} {'ratio':>7} {'target':>8}")
    print(f"{'decode: sp-decode vs tjDecompress2 (img/s)':46} {ips_ours:10.0f}  {ips_peer:10.0f}  {ratio:6.2f}x "
          f"{'>=' + format(TARGET, '.2f') + 'x':>8}  {'ok' if ratio >= TARGET else 'MISSED'}")
    loop = n / statistics.median(t_loop)
    print(f"{'  same, peer timed inside its decode loop only':46} {ips_ours:10.0f}  {loop:10.0f}  "
          f"{ips_ours / loop:6.2f}x  (for information)")
    print(f"({n} JPEGs of 333 to 500 px a side from photographs; whole processes, median of {runs} "
          f"alternating runs, one core; sp-decode also reads, checksums and writes the record stream)")
    sys.exit(0 if ratio >= TARGET else 1)


if __name__ == "__main__":
    main()
