#!/usr/bin/python3
"""resnet18 trained by sp-train on a 10-class photo set, from raw 224 shards and from encoded
shards decoded at load, the same epochs, seed and recipe: validation accuracy of each.

The set: 10 real photographs (Debian's mate-backgrounds), one a class; every image a seeded
crop of its class's photograph (a tenth to two thirds of it, anywhere), resized to one of
ImageNet's usual sizes and saved as JPEG quality 90 to 96, in ILSVRC2012's shape (a train tar
of class tars, a val tar and Kaggle's label file). Two conversions of the same archives:
  raw 224:  sp-decode | sp-resize 224 (shorter side 224, centre crop) | sp-shard
  encoded:  sp-decode --encoded --resize 256 --resize-mode shorter --jpeg-quality 90 | sp-shard
Both train resnet18 with --augment crop-flip: on the raw set that is the trainer's
RandomResizedCrop of the stored 224x224 centre; on the encoded set the reader's train view,
RandomResizedCrop(224) of the whole (256-sided) image, and its eval view Resize(256) +
CenterCrop(224) for validation. Goal: encoded >= raw, both printed.

usage: bench_encoded_train.py BUILD_DIR [TRAIN_PER_CLASS] [VAL_PER_CLASS] [EPOCHS]
"""
import glob
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile

from PIL import Image

SIZES = [(500, 375), (375, 500), (500, 333), (500, 500), (500, 400)]


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0
    tar.addfile(info, io.BytesIO(data))


def photo(rng, src):
    w, h = SIZES[rng.randrange(len(SIZES))]
    frac = rng.uniform(0.1, 0.66)
    cw, ch = int(src.width * frac ** 0.5), int(src.height * frac ** 0.5)
    x, y = rng.randrange(src.width - cw + 1), rng.randrange(src.height - ch + 1)
    img = src.crop((x, y, x + cw, y + ch)).resize((w, h), Image.LANCZOS)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=rng.randint(90, 96))
    return out.getvalue()


def make_set(out, train, val):
    photos = sorted(glob.glob("/usr/share/backgrounds/mate/nature/*.jpg"))[:10]
    if len(photos) < 10:
        sys.exit("bench: fewer than 10 photographs in /usr/share/backgrounds/mate/nature (apt-get install "
                 "mate-backgrounds)")
    rng = random.Random(16)
    wnids = [f"n{7000000 + 1013 * k:08d}" for k in range(10)]
    with open(os.path.join(out, "classes.txt"), "w") as f:
        f.writelines(f"{w} {os.path.basename(p)}\n" for w, p in zip(wnids, photos))
    sources = [Image.open(p).convert("RGB") for p in photos]
    with tarfile.open(os.path.join(out, "ILSVRC2012_img_train.tar"), "w") as outer:
        for k, w in enumerate(wnids):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as t:
                for i in range(train):
                    add(t, f"{w}_{i}.JPEG", photo(rng, sources[k]))
            add(outer, f"{w}.tar", inner.getvalue())
    rows, n = [], 0
    with tarfile.open(os.path.join(out, "ILSVRC2012_img_val.tar"), "w") as t:
        for i in range(val):
            for k, w in enumerate(wnids):
                n += 1
                add(t, f"ILSVRC2012_val_{n:08d}.JPEG", photo(rng, sources[k]))
                rows.append(f"ILSVRC2012_val_{n:08d},{w} 0 0 10 10\n")
    with open(os.path.join(out, "LOC_val_solution.csv"), "w") as f:
        f.write("ImageId,PredictionString\n")
        f.writelines(rows)


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    train = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    val = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 6
    b = build + "/bin"
    tmp = tempfile.mkdtemp(prefix="sp-bench-enctrain-")
    try:
        make_set(tmp, train, val)
        src = f"{b}/sp-unpack -q {tmp}/ILSVRC2012_img_train.tar {tmp}/ILSVRC2012_img_val.tar | {b}/sp-decode -q " \
              f"--classes {tmp}/classes.txt --labels {tmp}/LOC_val_solution.csv"
        sets = {"raw 224": f"{src} | {b}/sp-resize 224 | {b}/sp-shard -q -o {tmp}/raw",
                "encoded, shorter 256, q90": f"{src} --encoded --resize 256 --resize-mode shorter "
                                             f"--jpeg-quality 90 | {b}/sp-shard -q -o {tmp}/enc"}
        results = {}
        for (name, cmd), d in zip(sets.items(), ("raw", "enc")):
            subprocess.run(f"set -o pipefail; {cmd}", shell=True, check=True, executable="/bin/bash")
            subprocess.run([f"{b}/sp-train", f"{tmp}/{d}", "--model", "resnet18", "--epochs", str(epochs),
                            "--batch", "16", "--optimizer", "sgd", "--lr", "0.02", "--momentum", "0.9",
                            "--warmup", "1", "--schedule", "cosine", "--label-smoothing", "0.1",
                            "--augment", "crop-flip", "--seed", "7", "-q", "--json", f"{tmp}/{d}.json"],
                           check=True)
            r = json.load(open(f"{tmp}/{d}.json"))
            results[name] = (r["test_accuracy"], r["train_seconds"])
        print(f"resnet18, 10 photo classes, {train * 10} train and {val * 10} val images, {epochs} epochs, seed 7, "
              "SGD 0.02 cosine with warm-up, label smoothing 0.1, crop-flip")
        for name, (acc, secs) in results.items():
            print(f"  {name:28s} val accuracy {acc:.3f}   training {secs:.0f} s")
        enc, raw = results["encoded, shorter 256, q90"][0], results["raw 224"][0]
        print(f"goal: encoded >= raw: {enc:.3f} vs {raw:.3f}, {'met' if enc >= raw else 'MISSED'}")
        sys.exit(0 if enc >= raw else 1)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
