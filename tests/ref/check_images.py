#!/usr/bin/python3
"""Checks sp-decode's output for the ILSVRC-shaped fixture (make_ilsvrc.py):
every image decoded with the expected label, or rejected for the expected
reason, and nothing else; decoded pixels against a reference decode of the
same file: PIL (libjpeg-turbo) for JPEG within JPEG_TOL, pypng for PNG exactly.

usage: check_images.py FIXTURE_DIR STREAM REJECTS.jsonl
Prints one summary line per kind of image; exits 1 on any difference.
"""
import collections
import io
import json
import os
import sys
import tarfile

import numpy as np
import png
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recstream import read_stream  # noqa: E402

JPEG_TOL = 0  # same libjpeg-turbo, same settings, and CMYK rounded as PIL rounds it: exact


def members(path, prefix):
    out = {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            data = t.extractfile(m).read()
            if m.name.endswith(".tar"):
                out.update(members_bytes(data, f"{prefix}/{m.name}"))
            else:
                out[f"{prefix}/{m.name}"] = data
    return out


def members_bytes(data, prefix):
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {f"{prefix}/{m.name}": t.extractfile(m).read() for m in t.getmembers()}


def reference(data):
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        w, h, rows, info = png.Reader(bytes=data).asRGBA8()
        return np.array([list(r) for r in rows], np.uint8).reshape(h, w, 4)[..., :3], 0
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), JPEG_TOL


def main():
    fixture, stream, rejects_path = sys.argv[1:4]
    expected = json.load(open(os.path.join(fixture, "expected.json")))
    files = {}
    for name in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
        files.update(members(os.path.join(fixture, name), name))
    meta, records = read_stream(open(stream, "rb").read())
    got = {r["key"]: r for r in records}
    rejects = {}
    for line in open(rejects_path):
        r = json.loads(line)
        rejects[r["key"]] = r["reason"]
    problems = 0
    per_kind = collections.defaultdict(lambda: [0, 0])  # checked, max difference
    for key, want in sorted(expected.items()):
        kind = want["kind"]
        if want["reject"]:
            if rejects.get(key) != want["reject"] or key in got:
                print(f"{key} ({kind}): expected a {want['reject']} reject, got {rejects.get(key)}")
                problems += 1
            per_kind[kind][0] += 1
            continue
        r = got.get(key)
        if r is None:
            print(f"{key} ({kind}): missing (rejected as {rejects.get(key)})")
            problems += 1
            continue
        if r["label"] != want["label"] or r["split"] != key.split("_")[2].split(".")[0]:
            print(f"{key}: label {r['label']} split {r['split']}, expected {want['label']}")
            problems += 1
        ref, tol = reference(files[key])
        pix = np.frombuffer(r["payload"], np.uint8).reshape(r["shape"])
        if pix.shape != ref.shape:
            print(f"{key} ({kind}): shape {pix.shape}, reference {ref.shape}")
            problems += 1
            continue
        diff = int(np.abs(pix.astype(int) - ref.astype(int)).max())
        per_kind[kind][0] += 1
        per_kind[kind][1] = max(per_kind[kind][1], diff)
        if diff > tol:
            print(f"{key} ({kind}): pixels differ by up to {diff} (tolerance {tol})")
            problems += 1
    if len(records) + len(rejects) != len(expected):
        print(f"{len(records)} out + {len(rejects)} rejected != {len(expected)} in")
        problems += 1
    for kind in sorted(per_kind):
        n, d = per_kind[kind]
        print(f"{kind:15} {n:3} images, max difference {d}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
