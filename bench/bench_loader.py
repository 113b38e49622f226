#!/usr/bin/python3
"""Python loaders side by side, images/s, shuffled, on Fashion-MNIST and on
224x224 photos (benchlib.py's JPEG set, decoded and resized by shardpipe):

  C reader alone: bench/reader_bench, epochs through spr_iter_next with 2
    reader threads, in one process on one open set as a training loop runs
    them (the floor the Loader is held to: goal >= 0.8x);
  shardpipe.Loader, threads=1 and threads=2 (reader threads decompressing
    windows ahead of the caller), batches of 256 uint8 HWC as stored; and
    threads=2 with normalize=True (CHW float32);
  ShardIterableDataset through torch's DataLoader(num_workers=2, batch 256);
  what users run today on the JPEG files: torchvision's ImageFolder +
    RandomResizedCrop(224) + RandomHorizontalFlip + PILToTensor (uint8, as
    the Loader gives) through DataLoader(num_workers=2, shuffle=True, batch
    256), python3-torchvision from Debian; photo set only (goal: Loader >=
    20x of it);
  plain h5py with random indices: ShardDataset(normalize=False)[i], one process.

Every figure is after a warm-up pass, the best of 3 whole epochs (the
machine may be shared: others' load only slows a run); torchvision one
epoch after a warm-up one, h5py one pass over a bounded number of images. The C reader is
timed by its own clock inside its process (opening excluded), the Python
ones around their loop (a Loader's open included).

usage: bench_loader.py BUILD_DIR [PHOTOS]
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(os.path.dirname(here), "python"))
from benchlib import make_photo_archive  # noqa: E402
import shardpipe  # noqa: E402

BATCH = 256
TV = "torchvision ImageFolder+RandomResizedCrop+flip, 2 workers"


def sh(cmd):
    return subprocess.run(cmd, shell=True, check=True, stdout=subprocess.PIPE).stdout


def per_second(run, reps=3):
    """run() -> images; the best images/s of reps calls after a warm-up call
    (the best: the machine is shared, and others' load only slows a run)."""
    run()
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        n = run()
        best = max(best, n / (time.perf_counter() - t))
    return best


def c_reader_rate(build, d):
    """reader_bench's own clock (inside its process, after opening the set)."""
    recs, _, secs = sh(f"{build}/bench/reader_bench {d} train {BATCH} shuffle 2 4").split()
    return int(recs) / float(secs)


def loader_rate(d, **kw):
    loader = shardpipe.Loader(d, batch_size=BATCH, seed=1, rank=0, world_size=1, **kw)
    return per_second(lambda: sum(len(y) for _, y in loader))


def iterable_rate(d):
    import torch
    ds = shardpipe.ShardIterableDataset(d, seed=1, rank=0, world_size=1, chunk_records=BATCH)
    dl = torch.utils.data.DataLoader(ds, batch_size=BATCH, num_workers=2)
    return per_second(lambda: sum(len(y) for _, y in dl))


def h5py_rate(d, n):
    ds = shardpipe.ShardDataset(d, normalize=False)
    rng = random.Random(1)
    idx = [rng.randrange(len(ds)) for _ in range(n)]
    def run():
        for i in idx:
            ds[i]
        return n
    return per_second(run, reps=1)


def jpeg_rate(files, tmp):
    """torchvision's ImageFolder over the JPEGs (hard links into class
    folders), RandomResizedCrop(224) + flip, uint8 tensors, 2 workers."""
    import torch
    from torchvision import datasets, transforms
    root = os.path.join(tmp, "imagefolder")
    for f in files:
        cls = os.path.join(root, os.path.basename(f).split("_")[0])
        os.makedirs(cls, exist_ok=True)
        os.link(f, os.path.join(cls, os.path.basename(f)))
    tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                             transforms.PILToTensor()])
    dl = torch.utils.data.DataLoader(datasets.ImageFolder(root, tf), batch_size=BATCH, shuffle=True, num_workers=2)
    return per_second(lambda: sum(len(y) for _, y in dl), reps=1)


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    n_photos = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    b = build + "/bin"
    tmp = tempfile.mkdtemp(prefix="sp-bench-loader-")
    os.environ["HDF5_PLUGIN_PATH"] = os.environ.get("HDF5_PLUGIN_PATH", build + "/hdf5-plugin")
    sets = []
    sh(f"{b}/sp-unpack -q /usr/share/datasets/fashion-mnist/*.gz | {b}/sp-decode -q | {b}/sp-shard -q -o {tmp}/fm")
    sets.append(("fashion-mnist 28x28x1", f"{tmp}/fm", None))
    tar, classes, files = make_photo_archive(tmp, n_photos)
    sh(f"{b}/sp-unpack -q {tar} | {b}/sp-decode -q --classes {classes} --resize 224 "
       f"| {b}/sp-shard -q -o {tmp}/photos224")
    sets.append((f"photos 224x224x3 ({n_photos})", f"{tmp}/photos224", files))

    rows = []
    for name, d, jpegs in sets:
        c = c_reader_rate(build, d)
        r = {"C reader alone, 2 threads": c,
             "Loader, 1 thread": loader_rate(d, threads=1),
             "Loader, 2 threads": loader_rate(d, threads=2),
             "Loader, 2 threads, normalize=True": loader_rate(d, threads=2, normalize=True),
             "ShardIterableDataset + DataLoader(num_workers=2)": iterable_rate(d),
             "torchvision ImageFolder+RandomResizedCrop+flip, 2 workers": jpeg_rate(jpegs, tmp) if jpegs else None,
             "h5py ShardDataset, random indices": h5py_rate(d, 2000 if jpegs is None else 300)}
        rows.append((name, r))
    names = list(rows[0][1])
    print(f"{'images/s, shuffled, batch 256':52}" + "".join(f"{n:>30}" for n, _ in rows))
    for k in names:
        cells = []
        for _, r in rows:
            v = r[k]
            cells.append(f"{'-':>30}" if v is None else f"{v:>20,.0f} ({v / r['C reader alone, 2 threads']:5.2f}x C)")
        print(f"{k:52}" + "".join(cells))
    ok = True
    for name, r in rows:
        loader = r["Loader, 2 threads"]
        ok &= loader >= 0.8 * r["C reader alone, 2 threads"]
        print(f"{name}: Loader 2 threads = {loader / r['C reader alone, 2 threads']:.2f}x the C reader (goal >= 0.8x)"
              + (f"; {loader / r[TV]:.0f}x torchvision's JPEG pipeline (goal >= 20x)" if r[TV] else ""))
        if r[TV]:
            ok &= loader >= 20 * r[TV]
    print(f"(cores: {os.cpu_count()}; best of 3 epochs after a warm-up; torchvision one epoch, h5py one pass over a bounded sample)")
    shutil.rmtree(tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
