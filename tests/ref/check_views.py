#!/usr/bin/python3
"""The load-time views (pipeline/views.h, through tests/unit/view_dump.c)
against torchvision 0.14 on PIL (Debian python3-torchvision, python3-pil).

  boxes  the train view's crop boxes against RandomResizedCrop.get_params,
         20000 draws per image size: the same distribution of area fraction,
         log aspect ratio and box centre (two-sample Kolmogorov-Smirnov
         distance under the 0.1% critical value), the same rate of fallbacks
         and flips, every box inside the image and in the ranges, and for
         extreme aspect ratios the very centre crop torchvision falls back to.
  pixels the photo set of bench/benchlib.py make_set (real photographs) plus
         grayscale, CMYK, PNG, progressive, 4:2:2 with restart markers, tiny,
         very wide and large images: the eval view equals
         Resize(256) + CenterCrop(224) on PIL, and the full-scale train view
         equals crop + Resize((224, 224)) + hflip on PIL with the same box and
         flip, 0 difference; the scaled train view's mean difference from it is
         printed and held under a bound; one (seed, epoch, record) gives the
         same bytes twice, another epoch other bytes.

usage: check_views.py VIEW_DUMP boxes|pixels WORKDIR
"""
import math
import os
import subprocess
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as F

N_DRAWS = 20000
SIZE = 224


def ks_distance(a, b):
    """Two-sample Kolmogorov-Smirnov statistic of 1-D samples a and b."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / len(a)
    fb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def our_boxes(tool, w, h, seed, epoch, n):
    out = subprocess.run([tool, "boxes", str(w), str(h), str(seed), str(epoch), str(n)], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    rows = np.array([[int(v) for v in line.split()] for line in out.splitlines()])
    # record x y w h flip fallback
    return rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5], rows[:, 6]


def torch_boxes(w, h, n):
    img = Image.new("L", (w, h))
    torch.manual_seed(0)
    boxes = np.array([T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(n)])
    flips = (torch.rand(n) < 0.5).numpy()
    i, j, bh, bw = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return j, i, bw, bh, flips


def fallback_box(w, h):
    """torchvision's centre crop after 10 failed attempts."""
    r = w / h
    if r < 3 / 4:
        bw, bh = w, int(round(w / (3 / 4)))
    elif r > 4 / 3:
        bh, bw = h, int(round(h * (4 / 3)))
    else:
        bw, bh = w, h
    return (w - bw) // 2, (h - bh) // 2, bw, bh


def check_boxes(tool):
    ok = True
    crit = 1.95 * math.sqrt(2 / N_DRAWS)  # KS critical distance, alpha = 0.001, equal sample sizes
    for w, h in [(500, 375), (375, 500), (500, 500), (500, 333), (64, 48), (640, 200), (2000, 100), (100, 2000)]:
        x, y, bw, bh, flip, fb = our_boxes(tool, w, h, 11, 2, N_DRAWS)
        tx, ty, tw, th, tflip = torch_boxes(w, h, N_DRAWS)
        fx, fy, fw, fh = fallback_box(w, h)
        # torchvision's draws that equal the fallback box: its fallback rate and the
        # (rare) drawn boxes that happen to coincide, counted alike on both sides
        ours_fb = np.mean((x == fx) & (y == fy) & (bw == fw) & (bh == fh))
        theirs_fb = np.mean((tx == fx) & (ty == fy) & (tw == fw) & (th == fh))
        inside = np.all((x >= 0) & (y >= 0) & (bw >= 1) & (bh >= 1) & (x + bw <= w) & (y + bh <= h))
        drawn = fb == 0
        frac = (bw * bh / (w * h))[drawn]
        ratio = (bw / bh)[drawn]
        in_range = np.all(((bw + 0.5) * (bh + 0.5) / (w * h) >= 0.08)[drawn]) and np.all(frac <= 1) and \
            np.all(((bw + 0.5) / (bh - 0.5) >= 0.75)[drawn]) and np.all(((bw - 0.5) / (bh + 0.5) <= 4 / 3)[drawn])
        stats = {
            "area": ks_distance(bw * bh / (w * h), tw * th / (w * h)),
            "logratio": ks_distance(np.log(bw / bh), np.log(tw / th)),
            "cx": ks_distance((x + bw / 2) / w, (tx + tw / 2) / w),
            "cy": ks_distance((y + bh / 2) / h, (ty + th / 2) / h),
        }
        sd = math.sqrt(max(theirs_fb * (1 - theirs_fb), 1 / N_DRAWS) / N_DRAWS)
        line_ok = inside and in_range and all(v < crit for v in stats.values()) and \
            abs(ours_fb - theirs_fb) < 5 * sd + 1e-9 and abs(flip.mean() - tflip.mean()) < 0.03
        if min(w, h) * 4 < max(w, h):  # no attempt can fit: always the fallback, the very box
            line_ok = line_ok and np.all(fb == 1) and ours_fb == 1.0 and theirs_fb == 1.0
        print(f"{w}x{h}: KS area {stats['area']:.4f} logratio {stats['logratio']:.4f} cx {stats['cx']:.4f} "
              f"cy {stats['cy']:.4f} (critical {crit:.4f}); fallback {ours_fb:.4f} vs {theirs_fb:.4f}; "
              f"mean area {np.mean(bw * bh) / (w * h):.4f} vs {np.mean(tw * th) / (w * h):.4f}; "
              f"flips {flip.mean():.3f} vs {tflip.mean():.3f}; inside {inside}, in range {in_range}"
              f"{'' if line_ok else '  FAILED'}")
        ok &= bool(line_ok)
    return ok


def make_images(work):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
    from benchlib import make_set
    photos = os.path.join(work, "photos")
    os.makedirs(photos, exist_ok=True)
    files = make_set(photos, 40)
    src = Image.open(files[0]).convert("RGB")
    extra = {
        "gray.jpg": (src.convert("L"), "JPEG", {"quality": 92}),
        "cmyk.jpg": (src.convert("CMYK"), "JPEG", {"quality": 92}),
        "rgba.png": (src.convert("RGBA"), "PNG", {}),
        "tiny.jpg": (src.resize((61, 47), Image.LANCZOS), "JPEG", {"quality": 90}),
        "wide.jpg": (src.resize((1000, 150), Image.LANCZOS), "JPEG", {"quality": 90, "subsampling": 2}),
        "big.jpg": (src.resize((1400, 1050), Image.BICUBIC), "JPEG", {"quality": 90, "subsampling": 2}),
        "progressive.jpg": (src, "JPEG", {"quality": 90, "subsampling": 2, "progressive": True}),
    }
    for name, (img, fmt, kw) in extra.items():
        path = os.path.join(work, name)
        img.save(path, fmt, **kw)
        files.append(path)
    # restart markers every 2 MCU rows, 4:2:2 (cjpeg, libjpeg-turbo-progs; PIL 9 writes no restarts)
    src.save(os.path.join(work, "src.ppm"))
    path = os.path.join(work, "restarts.jpg")
    with open(path, "wb") as f:
        subprocess.run(["cjpeg", "-quality", "95", "-sample", "2x1", "-restart", "2",
                        os.path.join(work, "src.ppm")], check=True, stdout=f)
    assert open(path, "rb").read().count(b"\xff\xdd") == 1, "cjpeg wrote no restart interval"
    files.append(path)
    return files


def run_dump(tool, args):
    return subprocess.run([tool] + args, check=True, stdout=subprocess.PIPE, text=True).stdout


def load(path):
    return np.fromfile(path, np.uint8).reshape(SIZE, SIZE, 3)


def check_pixels(tool, work):
    files = make_images(work)
    ok = True
    # eval: Resize(256) + CenterCrop(224), 0 difference
    out = os.path.join(work, "eval")
    os.makedirs(out)
    run_dump(tool, ["eval", str(SIZE), out] + files)
    tv_eval = T.Compose([T.Resize(256), T.CenterCrop(SIZE)])
    differing = [os.path.basename(f) for k, f in enumerate(files)
                 if not np.array_equal(load(f"{out}/{k}.rgb"), np.asarray(tv_eval(Image.open(f).convert("RGB"))))]
    print(f"eval view: {len(files) - len(differing)} of {len(files)} images equal to torchvision's, 0 difference"
          + (f"; differing: {differing}" if differing else ""))
    ok &= not differing
    # train, full scale: torchvision's crop + resize + flip at the same box, 0 difference
    diffs = {}
    for flags, name in [(3, "full"), (0, "scaled")]:
        out = os.path.join(work, name)
        os.makedirs(out)
        boxes = run_dump(tool, ["train", str(SIZE), "7", "1", str(flags), out] + files).splitlines()
        assert len(boxes) == len(files), f"{len(boxes)} train views for {len(files)} files"
        d = []
        for k, f in enumerate(files):
            rec, x, y, bw, bh, flip, _ = (int(v) for v in boxes[k].split())
            img = F.resized_crop(Image.open(f).convert("RGB"), y, x, bh, bw, [SIZE, SIZE],
                                 interpolation=T.InterpolationMode.BILINEAR)
            if flip:
                img = F.hflip(img)
            d.append(np.abs(load(f"{out}/{k}.rgb").astype(int) - np.asarray(img).astype(int)).mean())
        diffs[name] = np.array(d)
    exact = int(np.sum(diffs["full"] == 0))
    print(f"train view, full scale: {exact} of {len(files)} images equal to torchvision's at the same box, 0 difference")
    ok &= exact == len(files)
    scaled = diffs["scaled"]
    print(f"train view, scaled decode: mean absolute difference from torchvision's at the same box "
          f"{scaled.mean():.3f}; largest {scaled.max():.3f} ({os.path.basename(files[int(np.argmax(scaled))])}); "
          f"{int(np.sum(scaled == 0))} of {len(files)} images identical (crops under 2 x 224: no scale-down)")
    # a scaled decode's IDCT averages 2x2 (4x4, 8x8) blocks where PIL's bilinear
    # filter weighs a wider triangle, and the box moves by under half a scaled pixel
    ok &= bool(scaled.mean() < 1.5 and scaled.max() < 6.0)
    # reproducible per (seed, epoch, record); another epoch draws again
    again, other = os.path.join(work, "again"), os.path.join(work, "other")
    os.makedirs(again), os.makedirs(other)
    run_dump(tool, ["train", str(SIZE), "7", "1", "0", again] + files)
    run_dump(tool, ["train", str(SIZE), "7", "2", "0", other] + files)
    same = sum(open(f"{again}/{k}.rgb", "rb").read() == open(f"{work}/scaled/{k}.rgb", "rb").read()
               for k in range(len(files)))
    moved = sum(open(f"{other}/{k}.rgb", "rb").read() != open(f"{work}/scaled/{k}.rgb", "rb").read()
                for k in range(len(files)))
    print(f"train view again, same (seed, epoch): {same} of {len(files)} identical; next epoch: {moved} differ")
    ok &= same == len(files) and moved >= len(files) - 1  # wide.jpg: always the fallback box, only the flip draws
    return ok


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in ("boxes", "pixels"):
        sys.exit(__doc__)
    tool, what, work = sys.argv[1:]
    torch.set_num_threads(1)
    ok = check_boxes(tool) if what == "boxes" else check_pixels(tool, work)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
