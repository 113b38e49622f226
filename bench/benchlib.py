"""Helpers the benchmarks share: the photo-made JPEG set and a wall-clock
timer of whole commands."""
import glob
import os
import random
import subprocess
import sys
import tarfile
import time

from PIL import Image

SIZES = [(500, 375), (375, 500), (500, 333), (500, 500), (500, 400)]


def timed(cmd):
    """Seconds a shell command takes, start to exit (its stdout discarded)."""
    t = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def make_set(out, n, sizes=None):
    """n ImageNet-like JPEGs in out, made from real photographs (Debian's
    mate-backgrounds): seeded crops resized to ImageNet's usual sizes (or to
    sizes, a list of (w, h), for small sets that tests make quickly: the
    photographs are first reduced to about 4 times the largest), quality 90 to
    96, 4:4:4 for most and 4:2:0 for a fifth. Returns their paths."""
    photos = sorted(glob.glob("/usr/share/backgrounds/mate/nature/*.jpg")
                    + glob.glob("/usr/share/backgrounds/mate/abstract/Elephants*.jpg"))
    if not photos:
        sys.exit("bench: no photographs in /usr/share/backgrounds/mate (apt-get install mate-backgrounds)")
    rng = random.Random(11)
    sources = [Image.open(p).convert("RGB") for p in photos]
    if sizes:
        side = 4 * max(max(s) for s in sizes)
        sources = [s.reduce(max(1, min(s.size) // side)) for s in sources]
    sizes = sizes or SIZES
    files = []
    for i in range(n):
        src = sources[i % len(sources)]
        w, h = sizes[rng.randrange(len(sizes))]
        scale = rng.uniform(1.2, min(src.width / w, src.height / h))
        cw, ch = int(w * scale), int(h * scale)
        x, y = rng.randrange(src.width - cw + 1), rng.randrange(src.height - ch + 1)
        img = src.crop((x, y, x + cw, y + ch)).resize((w, h), Image.LANCZOS)
        path = os.path.join(out, f"n{i % 10:08d}_{i}.JPEG")
        img.save(path, "JPEG", quality=rng.randint(90, 96), subsampling=2 if rng.random() < 0.2 else 0)
        files.append(path)
    return files


def make_photo_archive(tmp, n):
    """The photo set of make_set as an ILSVRC-shaped train tar in tmp, with a
    classes.txt of its 10 WNIDs (n00000000 .. n00000009): for
    sp-unpack | sp-decode --classes. Returns (tar, classes, jpeg paths)."""
    photos = os.path.join(tmp, "photos")
    os.makedirs(photos)
    files = make_set(photos, n)
    tar = os.path.join(tmp, "train.tar")
    with tarfile.open(tar, "w") as t:
        for f in sorted(os.listdir(photos)):
            t.add(os.path.join(photos, f), arcname=f)
    classes = os.path.join(tmp, "classes.txt")
    with open(classes, "w") as f:
        f.writelines(f"n{i:08d} class {i}\n" for i in range(10))
    return tar, classes, files
