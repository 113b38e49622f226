# sp-cat --image N: one record as a PNG (grey, RGB) or a PNM for netpbm, from
# a stream, a shard or a shard set, equal to the record's pixels; what is not
# uint8 pixels, or a record that is not there, is refused.
. "$SP_ROOT/tests/tools/lib.sh"
$PY - <<'X'
import os
from PIL import Image
for i in range(5):
    os.makedirs(f"pics/c{i % 2}", exist_ok=True)
    Image.frombytes("RGB", (7, 5), bytes((i * 31 + k) % 256 for k in range(7 * 5 * 3))).save(f"pics/c{i % 2}/{i}.png")
X
sp-unpack pics | sp-decode -q --labels-from dirs > s.sprs
sp-cat s.sprs > recs.jsonl
sp-cat --image 3 s.sprs > three.png
sp-cat --image 3 --format pnm s.sprs > three.ppm
sp-unpack $FMNIST/t10k*.gz | sp-decode -q | sp-shard -q -o F
sp-cat --image 12 F > f12.png
sp-cat --image 12 --format pnm F > f12.pgm
sp-cat --image 12 F/*.h5 > f12b.png
HDF5_PLUGIN_PATH=$HDF5_PLUGIN_PATH $PY - <<'X'
import json
import h5py, numpy as np
from PIL import Image
key = [json.loads(l) for l in open("recs.jsonl")][3]["key"]
want = np.asarray(Image.open("pics/" + key))      # record 3 is this file, decoded
for f in ("three.png", "three.ppm"):
    im = Image.open(f)
    assert im.mode == "RGB" and np.array_equal(np.asarray(im), want), f
m = json.load(open("F/manifest.json"))
with h5py.File("F/" + m["shards"][0]["file"]) as h:
    rec = h["images"][12][..., 0]
for f in ("f12.png", "f12.pgm", "f12b.png"):
    im = Image.open(f)
    assert im.mode == "L" and np.array_equal(np.asarray(im), rec), f
print("record 3 (RGB) and 12 (grey) as PNG and PNM equal their pixels")
X
head -c 2 three.ppm | grep -qx P6 || fail "not a PPM"
expect_status 1 sp-cat --image 99 s.sprs
expect_err "sp-cat: no record 99: the input holds 5"
sp-unpack pics > blobs.sprs
expect_status 1 sp-cat --image 0 blobs.sprs
expect_err "sp-cat: c0/0.png: record 0 is a blob record, not pixels (sp-decode it first)"
expect_status 2 sp-cat --image -1 s.sprs
expect_status 2 sp-cat --image 0 --meta s.sprs
echo ok
