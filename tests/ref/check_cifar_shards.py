#!/usr/bin/python3
"""Independent reader: CIFAR-10/100 binary archives read with tarfile and
numpy, compared with a shard directory read with h5py and no filter plugin
(zstd chunks decoded by python3-zstandard, tests/ref/h5raw.py), record by
record: pixels (HWC), labels, second labels, keys, class names.

usage: check_cifar_shards.py SHARD_DIR ARCHIVE.tar.gz
"""
import json
import os
import sys
import tarfile

import h5py
import numpy as np

import h5raw


def main():
    shard_dir, archive = sys.argv[1], sys.argv[2]
    base = os.path.basename(archive)
    want = {"train": [], "test": []}
    names = {}
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            if not m.isfile():
                continue
            data = t.extractfile(m).read()
            fn = os.path.basename(m.name)
            if fn.endswith(".txt"):
                names[fn] = [l.strip() for l in data.decode().splitlines() if l.strip()]
                continue
            if not fn.endswith(".bin"):
                continue
            label_bytes = 2 if "cifar-100" in m.name else 1
            recs = np.frombuffer(data, np.uint8).reshape(-1, label_bytes + 3072)
            split = "test" if fn.startswith("test") else "train"
            for i, r in enumerate(recs):
                img = r[label_bytes:].reshape(3, 32, 32).transpose(1, 2, 0)
                fine = int(r[label_bytes - 1])
                coarse = int(r[0]) if label_bytes == 2 else -1
                want[split].append((f"{base}/{m.name}#{i}", img, fine, coarse))
    with open(os.path.join(shard_dir, "manifest.json")) as f:
        manifest = json.load(f)
    problems = 0
    for split in ("train", "test"):
        got = []
        for s in manifest["shards"]:
            if s["split"] != split:
                continue
            with h5py.File(os.path.join(shard_dir, s["file"])) as h:
                l2 = h5raw.read(h["labels2"]) if "labels2" in h else np.full(len(h["labels"]), -1)
                for k, img, l, c in zip(h5raw.read(h["keys"]), h5raw.read(h["images"]), h5raw.read(h["labels"]), l2):
                    got.append((k.decode(), img, int(l), int(c)))
        # the train split is shuffled: compare in key order
        want[split].sort(key=lambda r: r[0])
        got.sort(key=lambda r: r[0])
        bad = sum(1 for (wk, wi, wl, wc), (gk, gi, gl, gc) in zip(want[split], got)
                  if wk != gk or wl != gl or wc != gc or not np.array_equal(wi, gi))
        bad += abs(len(want[split]) - len(got))
        print(f"{split}: {len(got)} records, {bad} differ")
        problems += bad
    if "batches.meta.txt" in names and manifest["classes"] != names["batches.meta.txt"]:
        print("classes differ"); problems += 1
    if "fine_label_names.txt" in names and (manifest["classes"] != names["fine_label_names.txt"]
                                            or manifest["classes2"] != names["coarse_label_names.txt"]):
        print("classes differ"); problems += 1
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
