#!/usr/bin/python3
"""unpack | decode | resize against PIL and bare libjpeg-turbo, one core.

The JPEG set is the decode benchmark's (benchlib.py: photographs cut to
ImageNet's sizes). All commands run on one core (taskset -c 0), median of
alternating runs after one warm-up run of each. The clocks differ, against
shardpipe: its pipelines and tjDecompress2 are timed as whole processes
(process starts and reading the tar included), while PIL is timed inside its
process around the loop over the files only, after the interpreter started,
PIL was imported and one untimed pass over every file was made in that same
process (pil.py prints its own seconds):
  224: sp-unpack | sp-decode | sp-resize 224 (bilinear, shorter side then the
       centre crop), and the same with decode and resize in one stage
       (sp-decode --resize 224), against PIL's Image.open + convert("RGB") +
       resize + crop, and against tjDecompress2 of every file at full size;
  32:  the same with sp-decode --draft 32 | sp-resize 32, against PIL with
       draft mode (Image.draft) before the resize.

usage: bench_resize.py BUILD_DIR [IMAGES] [RUNS]
"""
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import make_set, timed as run  # noqa: E402

PIL_SCRIPT = r'''
import sys, glob, time
from PIL import Image
size, draft = int(sys.argv[1]), sys.argv[2] == "draft"
files = sorted(glob.glob(sys.argv[3] + "/*.JPEG"))
def one_pass():
    for f in files:
        img = Image.open(f)
        if draft:
            img.draft("RGB", (size, size))
        img = img.convert("RGB")
        w, h = img.size
        ow, oh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
        img = img.resize((ow, oh), Image.BILINEAR)
        l, t = int(round((ow - size) / 2.0)), int(round((oh - size) / 2.0))
        img.crop((l, t, l + size, t + size)).tobytes()
one_pass()  # warm-up: code paths, allocator, page cache
t = time.perf_counter()
one_pass()
print(time.perf_counter() - t)
'''


def in_process(cmd):
    """Seconds the command prints as its last stdout line (its own clock)."""
    out = subprocess.run(cmd, shell=True, check=True, stdout=subprocess.PIPE, text=True).stdout
    return float(out.split()[-1])


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    tmp = tempfile.mkdtemp(prefix="sp-bench-resize-")
    make_set(tmp, n)
    with tarfile.open(os.path.join(tmp, "train.tar"), "w") as t:
        for f in sorted(os.listdir(tmp)):
            if f.endswith(".JPEG"):
                t.add(os.path.join(tmp, f), arcname=f)
    with open(os.path.join(tmp, "classes.txt"), "w") as f:
        f.writelines(f"n{i:08d} class {i}\n" for i in range(10))
    with open(os.path.join(tmp, "pil.py"), "w") as f:
        f.write(PIL_SCRIPT)
    b = build + "/bin"
    one = "taskset -c 0 sh -c"
    cmds = {
        "ours224": f"{one} '{b}/sp-unpack -q {tmp}/train.tar | {b}/sp-decode -q --classes {tmp}/classes.txt "
                   f"| {b}/sp-resize 224 > /dev/null'",
        "fused224": f"{one} '{b}/sp-unpack -q {tmp}/train.tar | {b}/sp-decode -q --resize 224 "
                    f"--classes {tmp}/classes.txt > /dev/null'",
        "pil224": f"taskset -c 0 /usr/bin/python3 {tmp}/pil.py 224 full {tmp}",
        "tj": f"taskset -c 0 {build}/bench/tj_decode 1 {tmp}/*.JPEG",
        "tj8": f"taskset -c 0 {build}/bench/tj_decode 1 -8 {tmp}/*.JPEG",
        "ours32": f"{one} '{b}/sp-unpack -q {tmp}/train.tar | {b}/sp-decode -q --draft 32 "
                  f"--classes {tmp}/classes.txt | {b}/sp-resize 32 > /dev/null'",
        "pil32": f"taskset -c 0 /usr/bin/python3 {tmp}/pil.py 32 draft {tmp}",
    }
    clock = {k: in_process if k.startswith("pil") else run for k in cmds}
    for k, c in cmds.items():
        clock[k](c)  # warm up
    times = {k: [] for k in cmds}
    for _ in range(runs):
        for k, c in cmds.items():
            times[k].append(clock[k](c))
    shutil.rmtree(tmp)
    t = {k: statistics.median(v) for k, v in times.items()}
    rows = [
        ("unpack|decode|resize 224 vs PIL open+resize+crop", t["ours224"], t["pil224"], 0.35),
        ("unpack|decode|resize 224 vs bare tjDecompress2", t["ours224"], t["tj"], 1.15),
        ("unpack|decode --resize 224 vs PIL", t["fused224"], t["pil224"], 0.35),
        ("unpack|decode --resize 224 vs bare tjDecompress2", t["fused224"], t["tj"], 1.15),
        ("unpack|decode --draft|resize 32 vs PIL with draft", t["ours32"], t["pil32"], 0.6),
    ]
    floors = [  # for information: what a bare decode alone costs against the same PIL figures
        ("  floor: bare tjDecompress2, full size, vs PIL 224", t["tj"], t["pil224"]),
        ("  floor: bare tjDecompress2 at 1/8, vs PIL draft 32", t["tj8"], t["pil32"]),
    ]
    print(f"{'benchmark (ms per image, one core)':52} {'shardpipe':>9} {'peer':>9} {'ratio':>7} {'target':>8}")
    ok = True
    for name, ours, peer, target in rows:
        r = ours / peer
        ok &= r <= target
        print(f"{name:52} {ours / n * 1e3:9.3f} {peer / n * 1e3:9.3f} {r:6.2f}x {'<=' + format(target, '.2f') + 'x':>8}"
              f"  {'ok' if r <= target else 'MISSED'}")
    for name, ours, peer in floors:
        print(f"{name:52} {ours / n * 1e3:9.3f} {peer / n * 1e3:9.3f} {ours / peer:6.2f}x  (for information)")
    print(f"({n} JPEGs of 333 to 500 px a side from photographs; median of {runs} runs; shardpipe and tj: whole\n"
          f" processes; PIL: its loop alone, timed in its process after the import and a warm-up pass)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
