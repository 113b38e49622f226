#!/usr/bin/python3
"""Golden test of sp-resize against PIL 9's Image.resize (Debian python3-pil).

Makes test images (crops of 4 real photographs from mate-backgrounds, which
must be installed, and a zone plate, where aliasing shows), writes them as PNGs in a
tar, runs sp-unpack | sp-decode --unlabeled | sp-resize for every filter and
target, and compares each record with PIL: resize to the scaled size, then the
centre crop (torchvision's Resize + CenterCrop). Prints one line per filter and
target; fails unless every value equals PIL's (zero tolerance: every filter
is an exact port) and every image came back.

usage: check_resize.py BIN_DIR WORKDIR
"""
import glob
import io
import math
import os
import subprocess
import sys
import tarfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recstream import read_stream  # noqa: E402

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos3": Image.LANCZOS, "area": Image.BOX}


def zone_plate(w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r2 = (x - w / 2) ** 2 + (y - h / 2) ** 2
    v = 127.5 + 127.5 * np.cos(math.pi * r2 / max(w, h) * 0.9)
    return Image.fromarray(np.clip(v + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")


def images():
    out = [("zoneplate-500x375", zone_plate(500, 375)), ("zoneplate-gray-333x500", zone_plate(333, 500).convert("L"))]
    photos = sorted(glob.glob("/usr/share/backgrounds/mate/nature/*.jpg"))[:4]
    if len(photos) < 4:  # no stand-in: the photographs are what the filters are measured on
        sys.exit("check_resize: fewer than 4 photographs in /usr/share/backgrounds/mate/nature "
                 "(apt-get install mate-backgrounds)")
    for i, p in enumerate(photos):
        src = Image.open(p).convert("RGB")
        w, h = [(500, 375), (375, 500), (640, 427), (200, 150)][i]
        out.append((f"photo{i}-{w}x{h}", src.resize((w, h), Image.LANCZOS)))
    return out


def torchvision_like(img, size, filt):
    w, h = img.size
    if w <= h:
        ow, oh = size, int(size * h / w)
    else:
        oh, ow = size, int(size * w / h)
    r = img.resize((ow, oh), filt)
    left, top = int(round((ow - size) / 2.0)), int(round((oh - size) / 2.0))
    return np.asarray(r.crop((left, top, left + size, top + size)))


def main():
    bindir, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    imgs = images()
    tar = os.path.join(work, "images.tar")
    with tarfile.open(tar, "w") as t:
        for name, img in imgs:
            b = io.BytesIO()
            img.save(b, "PNG")
            info = tarfile.TarInfo(name + ".png")
            info.size = len(b.getvalue())
            t.addfile(info, io.BytesIO(b.getvalue()))
    decoded = os.path.join(work, "decoded.sprs")
    subprocess.run(["bash", "-o", "pipefail", "-c",
                    f"{bindir}/sp-unpack -q {tar} | {bindir}/sp-decode -q --unlabeled > {decoded}"], check=True)
    # sp-decode makes RGB; gray images are compared as RGB too
    ok = True
    for fname, filt in FILTERS.items():
        for size in (224, 32):
            out = subprocess.run(f"{bindir}/sp-resize -f {fname} {size} {decoded}", shell=True, check=True,
                                 stdout=subprocess.PIPE).stdout
            _, recs = read_stream(out)
            total = within1 = 0
            worst = 0
            for (name, img), rec in zip(imgs, recs):
                ref = torchvision_like(img.convert("RGB"), size, filt)
                got = np.frombuffer(rec["payload"], np.uint8).reshape(rec["shape"])
                d = np.abs(got.astype(int) - ref.astype(int))
                total += d.size
                within1 += int((d <= 1).sum())
                worst = max(worst, int(d.max()))
            share = within1 / total
            good = worst == 0 and len(recs) == len(imgs)  # every filter matches PIL exactly
            ok &= good
            print(f"{fname:9} {size:4}: {len(recs)} images, {100 * share:.3f}% within +-1, max difference {worst}"
                  f"{'' if good else '  FAILED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
