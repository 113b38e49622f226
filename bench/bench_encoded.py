#!/usr/bin/python3
"""Encoded shards on the photo set, one table: bytes per image of raw 224x224 pixels against
encoded shards, as shipped and re-encoded (with PIL's JPEG of the same resized images as the
encoder's peer), and images/s per core of the C reader producing RandomResizedCrop(224) + flip
batches from each, next to torchvision (PIL open + convert + RandomResizedCrop(224) + flip +
PILToTensor) on the same JPEG bytes.

The photo set is benchlib's (real photographs cropped to ImageNet's sizes, JPEG quality 90 to
96). Each set is made by one pipeline and measured on disk (every shard file and the manifest):
  raw 224        sp-decode --resize 224 | sp-shard         (uint8 pixels, zstd)
  as shipped     sp-decode --encoded | sp-shard            (the source JPEGs, byte for byte)
  re-encoded     sp-decode --encoded --resize 256 --resize-mode shorter --jpeg-quality Q | sp-shard
The peer row: PIL's resize of each source to the same shorter side 256 (bilinear, antialiased)
saved at quality Q, 4:2:0, optimized, summed over files: what the re-encoded shards' JPEGs would
weigh with PIL's encoder. Goal: re-encoded at 256, quality 90, <= 0.2 x raw 224.

Speed, one core (everything pinned to CPU 0), shuffled, batch 64, the best of 3 epochs after a
warm-up: bench/reader_bench with no reader thread (the caller decodes), the train view at 224
for the encoded sets; the raw set's records as stored (no crop: its 224x224 were cut when
written). torchvision in this process, over the same bytes held in memory (the source files;
the re-encoded set's JPEGs as its shards hold them), images per second of one pass after a
warm-up one. Goal: the C reader's decode + crop >= 3x torchvision's images/s per core.

usage: bench_encoded.py BUILD_DIR [IMAGES]
"""
import io
import os
import shutil
import subprocess
import sys
import tempfile

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import make_photo_archive  # noqa: E402

GOAL = 0.2  # re-encoded (256, q90) bytes per image over raw 224's
SPEED_GOAL = 3.0  # the C reader's train view over torchvision's, images/s per core


def reader_rate(build, d, view):
    """bench/reader_bench on CPU 0, no reader thread: images/s of the best epoch of 3 (and a warm-up)."""
    extra = " train 224" if view else ""
    out = subprocess.run(f"taskset -c 0 {build}/bench/reader_bench {d} train 64 shuffle 0 4{extra}", shell=True,
                         check=True, stdout=subprocess.PIPE, text=True).stdout.split()
    return int(out[0]) / float(out[2])


def torchvision_rate(blobs):
    """torchvision's RandomResizedCrop(224) + flip on PIL, over JPEG bytes in memory, this process on CPU 0."""
    import time
    import torch
    from torchvision import transforms
    torch.set_num_threads(1)
    tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                             transforms.PILToTensor()])
    run = lambda: [tf(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs]
    run()
    t = time.perf_counter()
    run()
    return len(blobs) / (time.perf_counter() - t)


def encoded_blobs(d):
    """Every record's JPEG bytes of an encoded shard set's train split."""
    import json
    import h5py
    out = []
    for s in json.load(open(os.path.join(d, "manifest.json")))["shards"]:
        with h5py.File(os.path.join(d, s["file"]), "r") as f:
            enc, off = f["encoded"][:], f["offsets"][:]
            out += [enc[off[i]:off[i + 1]].tobytes() for i in range(len(off) - 1)]
    return out


def set_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if not f.startswith("."))


def pil_peer(files, side, quality):
    total = 0
    for f in files:
        img = Image.open(f).convert("RGB")
        w, h = img.size
        s, l = min(w, h), max(w, h)
        if s > side:
            ns, nl = side, int(side * l / s)
            img = img.resize((nl, ns) if w >= h else (ns, nl), Image.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality, subsampling=2, optimize=True)
        total += len(buf.getvalue())
    return total


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    b = build + "/bin"
    tmp = tempfile.mkdtemp(prefix="sp-bench-encoded-")
    tar, classes, files = make_photo_archive(tmp, n)
    subprocess.run(f"{b}/sp-unpack -q {tar} > {tmp}/blobs.sprs", shell=True, check=True)
    src = sum(os.path.getsize(f) for f in files)
    sets = [
        ("raw 224 (uint8 pixels, zstd)", "--resize 224"),
        ("as shipped (source JPEGs)", "--encoded"),
        ("re-encoded, shorter 256, q90", "--encoded --resize 256 --resize-mode shorter --jpeg-quality 90"),
        ("re-encoded, shorter 256, q75", "--encoded --resize 256 --resize-mode shorter --jpeg-quality 75"),
    ]
    os.environ.setdefault("HDF5_PLUGIN_PATH", build + "/hdf5-plugin")
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rows = []
    for i, (name, opts) in enumerate(sets):
        out = os.path.join(tmp, f"set{i}")
        subprocess.run(f"{b}/sp-decode -q --classes {classes} {opts} {tmp}/blobs.sprs | {b}/sp-shard -q -o {out}",
                       shell=True, check=True)
        ours = reader_rate(build, out, view=i > 0)
        blobs = None if i == 0 else [open(f, "rb").read() for f in files] if i == 1 else encoded_blobs(out)
        peer = torchvision_rate(blobs) if blobs else None
        rows.append((name, set_bytes(out) / n, ours, peer))
    raw = rows[0][1]
    print(f"{n} photographs, {src / n / 1e3:.1f} KB a source file; shard sets on disk; images/s on one core")
    print(f"{'set':34s} {'KB/image':>9s} {'x raw 224':>10s} {'C reader/s':>11s} {'torchvision/s':>14s} {'ratio':>7s}")
    for name, per, ours, peer in rows:
        cells = f"{peer:14,.0f} {ours / peer:6.2f}x" if peer else f"{'-':>14s} {'':>7s}"
        print(f"{name:34s} {per / 1e3:9.1f} {per / raw:10.3f} {ours:11,.0f} {cells}")
    for q in (90, 75):
        per = pil_peer(files, 256, q) / n
        print(f"{'peer: PIL JPEG, shorter 256, q%d' % q:34s} {per / 1e3:9.1f} {per / raw:10.3f}")
    shutil.rmtree(tmp)
    ratio = rows[2][1] / raw
    speed = rows[1][2] / rows[1][3]
    met = ratio <= GOAL
    print(f"goal: re-encoded (256, q90) <= {GOAL} x raw 224: {ratio:.3f}, {'met' if met else 'MISSED'}")
    print(f"goal: the C reader's RandomResizedCrop(224) on the shipped JPEGs >= {SPEED_GOAL}x torchvision "
          f"per core: {speed:.2f}x, {'met' if speed >= SPEED_GOAL else 'MISSED'}")
    sys.exit(0 if met and speed >= SPEED_GOAL else 1)


if __name__ == "__main__":
    main()
