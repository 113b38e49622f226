#!/usr/bin/python3
"""Independent reader: checks a shard directory against the IDX files it was
made from, pixel for pixel and label for label, using only h5py, numpy and
python3-zstandard: no filter plugin, the zstd chunks are decoded by
tests/ref/h5raw.py, independently of the project's filter.

usage: check_idx_shards.py SHARD_DIR IDX_DIR [--classes N]
"""
import gzip
import json
import os
import struct
import sys

import h5py
import numpy as np
import xxhash

import h5raw


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and type_code == 0x08, path
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def find(idx_dir, prefix, kind):
    for name in sorted(os.listdir(idx_dir)):
        if name.startswith(prefix + "-" + kind):
            return os.path.join(idx_dir, name)
    raise SystemExit(f"no {prefix} {kind} file in {idx_dir}")


def main():
    shard_dir, idx_dir = sys.argv[1], sys.argv[2]
    with open(os.path.join(shard_dir, "manifest.json")) as f:
        manifest = json.load(f)
    problems = 0
    for split, prefix in (("train", "train"), ("test", "t10k")):
        want_images = read_idx(find(idx_dir, prefix, "images"))
        want_labels = read_idx(find(idx_dir, prefix, "labels"))
        images, labels, keys, sums = [], [], [], []
        for shard in manifest["shards"]:
            if shard["split"] != split:
                continue
            with h5py.File(os.path.join(shard_dir, shard["file"]), "r") as h:
                assert h.attrs["split"] == split
                assert int(h.attrs["record_count"]) == shard["records"]
                assert h["images"].dtype == np.uint8
                images.append(h5raw.read(h["images"]))
                labels.append(h5raw.read(h["labels"]))
                keys.extend(k.decode() for k in h5raw.read(h["keys"]))
                sums.append(h5raw.read(h["checksums"]))
        images = np.concatenate(images)
        labels = np.concatenate(labels)
        sums = np.concatenate(sums)
        # the train split is shuffled: put the records back in IDX order by key
        order = np.argsort([int(k.rsplit("#", 1)[1]) for k in keys], kind="stable")
        images, labels, sums = images[order], labels[order], sums[order]
        keys = [keys[i] for i in order]
        n = len(want_images)
        if images.shape != want_images.shape + (1,):
            print(f"{split}: shape {images.shape}, IDX {want_images.shape}")
            problems += 1
            continue
        bad_px = int(np.count_nonzero(images[..., 0] != want_images))
        bad_lab = int(np.count_nonzero(labels != want_labels.astype(np.int32)))
        want_keys = [f"{os.path.basename(find(idx_dir, prefix, 'images')).removesuffix('.gz')}#{i}"
                     for i in range(n)]
        bad_keys = sum(a != b for a, b in zip(keys, want_keys)) + abs(len(keys) - n)
        bad_sums = sum(int(s) != xxhash.xxh3_64_intdigest(want_images[i].tobytes()) for i, s in enumerate(sums))
        print(f"{split}: {n} records, {bad_px} pixels differ, {bad_lab} labels differ, {bad_keys} keys differ, "
              f"{bad_sums} checksums differ")
        problems += (bad_px > 0) + (bad_lab > 0) + (bad_keys > 0) + (bad_sums > 0)
        if manifest["splits"][split]["records"] != n:
            print(f"{split}: manifest says {manifest['splits'][split]['records']} records")
            problems += 1
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
