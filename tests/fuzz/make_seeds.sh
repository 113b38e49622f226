#!/bin/sh
# Writes seed inputs for the fuzz targets with the project's own tools and
# fixture generators: OUTDIR/recstream, OUTDIR/idx, OUTDIR/unpack, OUTDIR/image (and views),
# OUTDIR/mat, OUTDIR/checkpoint, OUTDIR/pickle.
# usage: make_seeds.sh BUILD_DIR OUTDIR
set -eu
build=$(cd "$1" && pwd)
out=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out/recstream" "$out/idx" "$out/unpack" "$out/image" "$out/mat" "$out/checkpoint" "$out/manifest" "$out/cifar" "$out/labels" "$out/pickle" "$out/wds"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$root/tests/fixtures/make_idx.py" "$tmp/idx" --train 4 --test 2 --size 3 4
/usr/bin/python3 "$root/tests/fixtures/make_archives.py" "$tmp/arc"
"$build/bin/sp-unpack" -q --dataset mnist "$tmp"/idx/* > "$out/recstream/blobs.sprs"
"$build/bin/sp-decode" -q "$out/recstream/blobs.sprs" > "$out/recstream/pixels.sprs"
zstd -q -c "$out/recstream/pixels.sprs" > "$out/recstream/pixels.sprs.zst"
cp "$tmp"/idx/train-images-idx3-ubyte "$tmp"/idx/train-labels-idx1-ubyte "$out/idx/"
"$build/bin/sp-unpack" -q --no-recurse "$tmp/arc/outer.tar" > "$out/unpack/outer.sprs"
cp "$tmp"/arc/outer.tar "$tmp"/arc/outer.tar.gz "$tmp"/arc/files.zip "$tmp"/arc/note.txt.gz "$out/unpack/"
/usr/bin/python3 - "$out/image" <<'X'
import io, sys
import numpy as np
from PIL import Image
out = sys.argv[1]
img = Image.fromarray((np.arange(24 * 16 * 3) % 251).astype(np.uint8).reshape(16, 24, 3), "RGB")
img.save(f"{out}/baseline.jpg", quality=90)
img.save(f"{out}/progressive.jpg", quality=90, progressive=True)
img.convert("CMYK").save(f"{out}/cmyk.jpg")
img.convert("L").save(f"{out}/gray.jpg")
img.save(f"{out}/rgb.png")
img.convert("P").save(f"{out}/palette.png")
img.convert("RGBA").save(f"{out}/rgba.png")
# formats rejected as unsupported by their first bytes (formats/image.c)
for fmt, ext in (("BMP", "bmp"), ("TIFF", "tif"), ("WEBP", "webp"), ("GIF", "gif")):
    img.save(f"{out}/other.{ext}", fmt)
X
mkdir -p "$out/views" && cp "$out"/image/* "$out/views/"  # the load-time views read the same files
/usr/bin/python3 "$root/tests/fixtures/make_ilsvrc.py" "$tmp/ilsvrc"
cp "$tmp/ilsvrc/meta_plain.mat" "$out/mat/"
tar -xzf "$tmp/ilsvrc/ILSVRC2012_devkit_t12.tar.gz" -O ILSVRC2012_devkit_t12/data/meta.mat > "$out/mat/meta_compressed.mat"
# checkpoints of the mlp on the 3x4 images, one per optimizer
"$build/bin/sp-shard" -q -o "$tmp/shards" < "$out/recstream/pixels.sprs"
"$build/bin/sp-train" -q "$tmp/shards" -e 1 -b 2 -o "$out/checkpoint/adam.ckpt"
"$build/bin/sp-train" -q "$tmp/shards" -e 1 -b 2 --optimizer sgd --lr 0.01 -o "$out/checkpoint/sgd.ckpt"
# the manifest of the fuzz target's own small shard set, and variants of it
SP_FUZZ_MANIFEST_SEED="$out/manifest/valid.json" "$build/tests/fuzz_manifest" /dev/null > /dev/null
/usr/bin/python3 - "$out/manifest" <<'X'
import json, sys
d = sys.argv[1]
m = json.load(open(f"{d}/valid.json"))
m2 = dict(m, classes=[]); json.dump(m2, open(f"{d}/no-classes.json", "w"))
m3 = dict(m, shards=m["shards"] * 2); json.dump(m3, open(f"{d}/twice.json", "w"))
m4 = json.loads(json.dumps(m)); m4["shards"][0]["shape"] = [3, 2, 1]; json.dump(m4, open(f"{d}/shape.json", "w"))
X
# CIFAR batches: a leading byte picks the variant (0: CIFAR-10, 1: CIFAR-100)
/usr/bin/python3 - "$out/cifar" <<'X'
import sys
d = sys.argv[1]
px = bytes(i % 251 for i in range(3072))
open(f"{d}/cifar10.bin", "wb").write(b"\0" + b"".join(bytes([i % 10]) + px for i in range(3)))
open(f"{d}/cifar100.bin", "wb").write(b"\1" + b"".join(bytes([i % 20, i % 100]) + px for i in range(3)))
X
# label files: a leading byte picks the parser (0: classes, 1: val labels, 2: ID table)
for f in classes.txt; do printf '\000' | cat - "$tmp/ilsvrc/$f" > "$out/labels/$f"; done
for f in LOC_val_solution.csv val_wnids.txt ground_truth.txt; do printf '\001' | cat - "$tmp/ilsvrc/$f" > "$out/labels/$f"; done
printf '\002' | cat - "$tmp/ilsvrc/synset_ids.txt" > "$out/labels/synset_ids.txt"
# CIFAR python version pickles: a leading byte picks a batch (0) or a meta file (1)
/usr/bin/python3 "$root/tests/fixtures/make_cifar.py" "$tmp/cifar" --per-batch 2
for w in cpickle2 pickle0 pickle2 pickle3 pickle4; do
    /usr/bin/python3 "$root/tests/fixtures/make_cifar_py.py" "$tmp/cifar" "$tmp/$w" --writer $w
    tar -xzf "$tmp/$w/cifar-10-python.tar.gz" -O cifar-10-batches-py/test_batch | { printf '\000'; cat; } > "$out/pickle/c10-$w"
    tar -xzf "$tmp/$w/cifar-100-python.tar.gz" -O cifar-100-python/test | { printf '\000'; cat; } > "$out/pickle/c100-$w"
    tar -xzf "$tmp/$w/cifar-100-python.tar.gz" -O cifar-100-python/meta | { printf '\001'; cat; } > "$out/pickle/meta100-$w"
done
tar -xzf "$tmp/cpickle2/cifar-10-python.tar.gz" -O cifar-10-batches-py/batches.meta | { printf '\001'; cat; } > "$out/pickle/meta10"
# .npy files: a leading byte 2, images and labels of several dtypes
/usr/bin/python3 - "$out/pickle" <<'X'
import io, sys
import numpy as np
d = sys.argv[1]
for name, a in [("x", np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)),
                ("xc", np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)),
                ("y8", np.array([1, 2], np.uint8)), ("y64", np.array([3, 4], np.int64)),
                ("ybig", np.array([[5], [6]], ">i4"))]:
    b = io.BytesIO()
    np.save(b, a)
    open(f"{d}/npy-{name}", "wb").write(b"\2" + b.getvalue())
X
# CIFAR-10's MATLAB version, for the MAT v5 reader
/usr/bin/python3 "$root/tests/fixtures/make_cifar_mat.py" "$tmp/cifar" "$tmp/mat" --compress
/usr/bin/python3 "$root/tests/fixtures/make_cifar_mat.py" "$tmp/cifar" "$tmp/matplain"
tar -xzf "$tmp/mat/cifar-10-matlab.tar.gz" -O cifar-10-batches-mat/test_batch.mat > "$out/mat/cifar_test_batch.mat"
tar -xzf "$tmp/matplain/cifar-10-matlab.tar.gz" -O cifar-10-batches-mat/test_batch.mat > "$out/mat/cifar_plain.mat"
tar -xzf "$tmp/matplain/cifar-10-matlab.tar.gz" -O cifar-10-batches-mat/batches.meta.mat > "$out/mat/cifar_meta.mat"
# WebDataset members for fuzz_wds: a leading byte of options (1: json:label, 2: --encoded),
# then members as (name length, name, payload length LE16, payload)
/usr/bin/python3 - "$out/image/baseline.jpg" "$out/wds" <<'X'
import struct, sys
jpg = open(sys.argv[1], "rb").read()
def seed(name, opts, members):
    body = b"".join(bytes([len(n)]) + n + struct.pack("<H", len(p)) + p for n, p in members)
    open(f"{sys.argv[2]}/{name}", "wb").write(bytes([opts]) + body)
seed("cls", 0, [(b"a.jpg", jpg), (b"a.cls", b"3\n"), (b"a.txt", b"x"), (b"d/b.jpg", jpg), (b"d/b.cls", b"1")])
seed("json", 3, [(b"k%2Ey.jpg", jpg), (b"k%2Ey.json", b'{"label": "cat", "split": "val"}'), (b"n.jpg", jpg),
                 (b"n.json", b'{"label": 2}')])
seed("bad", 0, [(b"a.cls", b"1"), (b"b.jpg", jpg), (b"c.ppm", b"P6 1 1 255 abc"), (b"c.cls", b"99999999999"),
                (b".jpg", jpg), (b"b.cls", b"0")])
X
