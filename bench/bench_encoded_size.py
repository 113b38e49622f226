#!/usr/bin/python3
"""Bytes per image of a shard set on the photo set: raw 224x224 pixels against encoded shards,
as shipped and re-encoded, with PIL's JPEG of the same resized images as the encoder's peer.

The photo set is benchlib's (real photographs cropped to ImageNet's sizes, JPEG quality 90 to
96). Each set is made by one pipeline and measured on disk (every shard file and the manifest):
  raw 224        sp-decode --resize 224 | sp-shard         (uint8 pixels, zstd)
  as shipped     sp-decode --encoded | sp-shard            (the source JPEGs, byte for byte)
  re-encoded     sp-decode --encoded --resize 256 --resize-mode shorter --jpeg-quality Q | sp-shard
The peer row: PIL's resize of each source to the same shorter side 256 (bilinear, antialiased)
saved at quality Q, 4:2:0, optimized, summed over files: what the re-encoded shards' JPEGs would
weigh with PIL's encoder. The issue's goal: re-encoded at 256, quality 90, <= 0.2 x raw 224.

usage: bench_encoded_size.py BUILD_DIR [IMAGES]
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
    rows = []
    for name, opts in sets:
        out = os.path.join(tmp, f"set{len(rows)}")
        subprocess.run(f"{b}/sp-decode -q --classes {classes} {opts} {tmp}/blobs.sprs | {b}/sp-shard -q -o {out}",
                       shell=True, check=True)
        rows.append((name, set_bytes(out) / n))
    raw = rows[0][1]
    print(f"{n} photographs, {src / n / 1e3:.1f} KB a source file; bytes per image of each shard set on disk")
    print(f"{'set':34s} {'KB/image':>9s} {'x raw 224':>10s}")
    for name, per in rows:
        print(f"{name:34s} {per / 1e3:9.1f} {per / raw:10.3f}")
    for q in (90, 75):
        per = pil_peer(files, 256, q) / n
        print(f"{'peer: PIL JPEG, shorter 256, q%d' % q:34s} {per / 1e3:9.1f} {per / raw:10.3f}")
    shutil.rmtree(tmp)
    ratio = rows[2][1] / raw
    met = ratio <= GOAL
    print(f"goal: re-encoded (256, q90) <= {GOAL} x raw 224: {ratio:.3f}, {'met' if met else 'MISSED'}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
