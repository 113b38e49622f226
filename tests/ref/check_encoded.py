#!/usr/bin/python3
"""Checks an encoded shard set made from the ILSVRC-shaped fixture (make_ilsvrc.py) by
sp-decode --encoded | sp-shard, reading the shards with h5raw (no HDF5 filter plugin):

  every image the fixture expects to decode is there once, with its label, and nothing else;
  its bytes equal the stream's record (ENCODED), their XXH3 is the stored checksum, offsets,
  shapes and codecs agree;
  MODE shipped: a JPEG that decodes to RGB (baseline 4:4:4/4:2:2/4:2:0, progressive, gray) is
  the source file byte for byte (sha256); CMYK and PNG sources are re-encoded JPEGs of the
  source's size, as close to the source's pixels as PIL's own JPEG of them at quality 90
  (within 10% + 0.5 levels, mean absolute difference);
  MODE shorter:SIZE: an image whose shorter side is over SIZE is a JPEG of shorter side SIZE
  and longer side int(SIZE * long / short), close to PIL's resize of the source; the others as
  in shipped;
  and the stored bytes' decode by PIL equals sp-decode's decode of them (DECODED, a pixel stream
  of the encoded records), 0 difference.

usage: check_encoded.py FIXTURE_DIR SHARD_DIR ENCODED_STREAM DECODED_STREAM MODE
Prints one summary line per kind of image; exits 1 on any difference.
"""
import collections
import hashlib
import io
import json
import os
import sys

import numpy as np
import xxhash
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h5raw  # noqa: E402  (first: it removes the plugin path before h5py opens a file)
from check_images import members, reference  # noqa: E402
from recstream import read_stream  # noqa: E402

import h5py  # noqa: E402

KEPT = {"444", "422", "420", "progressive", "gray"}  # decode straight to RGB: stored as shipped
QUALITY = 90  # sp-decode's default --jpeg-quality, which the test uses


def pil_jpeg_loss(px):
    """The mean absolute difference PIL's own JPEG of px (quality 90, 4:2:0) has from px: the
    yardstick of a re-encoded image's distance from its source."""
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "JPEG", quality=QUALITY, subsampling=2)
    return float(np.abs(pil(buf.getvalue()).astype(float) - px.astype(float)).mean())


def shard_records(shard_dir):
    manifest = json.load(open(os.path.join(shard_dir, "manifest.json")))
    out = {}
    for entry in manifest["shards"]:
        assert entry.get("kind") == "encoded", entry
        with h5py.File(os.path.join(shard_dir, entry["file"]), "r") as f:
            assert f.attrs["kind"] == "encoded" and "images" not in f
            enc = h5raw.read(f["encoded"])
            off = h5raw.read(f["offsets"])
            shapes = h5raw.read(f["shapes"])
            codecs = h5raw.read(f["codecs"])
            labels = h5raw.read(f["labels"])
            sums = h5raw.read(f["checksums"])
            keys = [k.decode() if isinstance(k, bytes) else k for k in f["keys"][()]]
            n = len(keys)
            assert off.dtype == np.uint64 and len(off) == n + 1 and off[0] == 0 and off[-1] == len(enc)
            assert list(f.attrs["shape"]) == [int(shapes[:, 0].max()), int(shapes[:, 1].max()), 3]
            assert entry["records"] == n
            for i, key in enumerate(keys):
                data = enc[off[i]:off[i + 1]].tobytes()
                assert xxhash.xxh3_64_intdigest(data) == int(sums[i]), f"{key}: checksum"
                out[key] = {"data": data, "shape": tuple(int(v) for v in shapes[i]), "codec": int(codecs[i]),
                            "label": int(labels[i])}
    return out


def pil(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def main():
    fixture, shard_dir, enc_stream, dec_stream, mode = sys.argv[1:6]
    size = int(mode.split(":")[1]) if mode.startswith("shorter:") else 0
    expected = json.load(open(os.path.join(fixture, "expected.json")))
    files = {}
    for name in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
        files.update(members(os.path.join(fixture, name), name))
    got = shard_records(shard_dir)
    _, enc = read_stream(open(enc_stream, "rb").read())
    _, dec = read_stream(open(dec_stream, "rb").read())
    enc = {r["key"]: r for r in enc}
    dec = {r["key"]: r for r in dec}
    bad = []
    want = {k for k, e in expected.items() if not e["reject"]}
    if set(got) != want:
        bad.append(f"keys: missing {sorted(want - set(got))[:3]}, extra {sorted(set(got) - want)[:3]}")
    summary = collections.defaultdict(lambda: collections.Counter())
    for key in sorted(set(got) & want):
        r, e, src = got[key], expected[key], files[key]
        kind = e["kind"]
        ref, _ = reference(src)
        h, w = ref.shape[:2]
        s, l = min(h, w), max(h, w)
        resized = size and s > size
        if resized:
            ns, nl = size, int(size * l / s)
            shape = (ns, nl, 3) if h <= w else (nl, ns, 3)
        else:
            shape = (h, w, 3)
        if r["label"] != e["label"] or r["codec"] != 1 or r["shape"] != shape:
            bad.append(f"{key}: label {r['label']} codec {r['codec']} shape {r['shape']}, want {e['label']} 1 {shape}")
            continue
        s_rec, d_rec = enc.get(key), dec.get(key)
        if not s_rec or s_rec["kind"] != "encoded" or s_rec["payload"] != r["data"] or s_rec["codec"] != 1:
            bad.append(f"{key}: the shard's bytes are not the stream's encoded record")
            continue
        if r["data"][:3] != b"\xff\xd8\xff":
            bad.append(f"{key}: not a JPEG")
            continue
        shipped = kind in KEPT and not resized
        same = hashlib.sha256(r["data"]).digest() == hashlib.sha256(src).digest()
        if shipped != same:
            bad.append(f"{key} ({kind}): {'re-encoded' if not same else 'kept'}, expected the other")
            continue
        mine = pil(r["data"])
        if mine.shape != shape:
            bad.append(f"{key}: PIL decodes {mine.shape}, the shard says {shape}")
            continue
        if not d_rec or d_rec["kind"] != "pixels" or tuple(d_rec["shape"]) != shape:
            bad.append(f"{key}: sp-decode's decode is missing or of another shape")
            continue
        theirs = np.frombuffer(d_rec["payload"], np.uint8).reshape(shape)
        diff = int(np.abs(theirs.astype(int) - mine.astype(int)).max())
        if diff:
            bad.append(f"{key}: sp-decode's decode differs from PIL's by up to {diff}")
            continue
        if not shipped:  # lossy: close to the source (resized as PIL resizes it)
            want_px = ref if not resized else np.asarray(
                Image.fromarray(ref).resize((shape[1], shape[0]), Image.BILINEAR))
            mad = float(np.abs(mine.astype(float) - want_px.astype(float)).mean())
            yard = pil_jpeg_loss(want_px)
            if mad > yard * 1.1 + 0.5:
                bad.append(f"{key}: re-encoded image {mad:.2f} levels from the source, PIL's JPEG {yard:.2f}")
                continue
        summary[kind]["shipped (sha256 equal)" if shipped else "re-encoded"] += 1
    for kind in sorted(summary):
        print(f"{kind:16s} " + ", ".join(f"{v} {k}" for k, v in sorted(summary[kind].items())))
    print(f"{len(got)} records; decode equals PIL's, 0 difference")
    for b in bad:
        print("BAD", b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
