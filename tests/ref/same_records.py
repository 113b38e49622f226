#!/usr/bin/python3
"""Two shard directories hold the same records: per split, the multisets of
(pixels, label, second label) are equal (keys are ignored: two versions of
one dataset name their files differently), and so are the manifests'
dataset, classes and classes2. Read with h5py and no filter plugin
(tests/ref/h5raw.py).

usage: same_records.py SHARD_DIR_A SHARD_DIR_B
Prints "SPLIT: N records, same" per split; exits 1 on any difference.
"""
import collections
import hashlib
import json
import os
import sys

import h5py
import numpy as np

import h5raw


def records(d):
    with open(os.path.join(d, "manifest.json")) as f:
        m = json.load(f)
    out = collections.defaultdict(collections.Counter)
    for s in m["shards"]:
        with h5py.File(os.path.join(d, s["file"])) as h:
            imgs, labels = h5raw.read(h["images"]), h5raw.read(h["labels"])
            l2 = h5raw.read(h["labels2"]) if "labels2" in h else np.full(len(labels), -1)
            for img, l, c in zip(imgs, labels, l2):
                out[s["split"]][(hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest(), img.shape,
                                 int(l), int(c))] += 1
    return m, out


def main():
    ma, a = records(sys.argv[1])
    mb, b = records(sys.argv[2])
    problems = 0
    for key in ("dataset", "classes", "classes2"):
        if ma.get(key) != mb.get(key):
            print(f"{key} differ: {ma.get(key)!r:.80} against {mb.get(key)!r:.80}")
            problems += 1
    for split in sorted(set(a) | set(b)):
        same = a[split] == b[split]
        print(f"{split}: {sum(a[split].values())} records, {'same' if same else 'DIFFERENT'}")
        problems += not same or not a[split]
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
