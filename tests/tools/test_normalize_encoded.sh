# Encoded sets normalized: sp-normalize passes encoded records through and
# records the statistics of the decoded images (or a preset) for the readers
# to apply at load; the Loader applies them to each view (3 channels, even
# where the shards' shape says 1), or mean=/std= given to it.
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/python"
$PY - <<'X'
import os
import numpy as np
from PIL import Image
rng = np.random.default_rng(5)
for split, n in (("train", 12), ("val", 4)):
    for k in range(n):
        d = f"tree/{split}/c{k % 2}"
        os.makedirs(d, exist_ok=True)
        a = rng.integers(0, 256, (40 + 3 * k, 50 + k, 3), dtype=np.uint8)
        Image.fromarray(a).save(f"{d}/{k}.jpg", quality=90)
        g = rng.integers(0, 256, (30, 36), dtype=np.uint8)
        os.makedirs(f"gray/train/c{k % 2}", exist_ok=True)
        Image.fromarray(g, "L").save(f"gray/train/c{k % 2}/{split}{k}.jpg", quality=90)
X
expect_stages "0 0 0 0" "sp-unpack tree | sp-decode --labels-from dirs --encoded | sp-normalize | sp-shard -q -o E"
expect_stages "0 0 0 0" "sp-unpack tree | sp-decode --labels-from dirs --encoded | sp-normalize --preset imagenet | sp-shard -q -o P"
expect_stages "0 0 0 0" "sp-unpack gray | sp-decode --labels-from dirs --encoded | sp-normalize | sp-shard -q -o G"
# an encoded set whose shape says 1 channel (shard and manifest alike): a view still gives 3
cp -r G F
$PY - <<'X'
import glob, json
import h5py
for f in glob.glob("F/*.h5"):
    with h5py.File(f, "r+") as h:
        h.attrs["shape"] = [int(h.attrs["shape"][0]), int(h.attrs["shape"][1]), 1]
        shapes = h["shapes"][:]
        shapes[:, 2] = 1
        h["shapes"][:] = shapes
m = json.load(open("F/manifest.json"))
for e in m["shards"]:
    e["shape"][2] = 1
json.dump(m, open("F/manifest.json", "w"))
X
expect_stages "0 0 1" "sp-unpack tree | sp-decode --labels-from dirs --encoded | sp-normalize --preset imagenet --dtype float32"
expect_err_has "an encoded record: --dtype float32 converts pixel records"
$PY - <<'X'
import glob, json
import h5py
import numpy as np
from PIL import Image
import shardpipe

def meta(d):
    f = sorted(glob.glob(d + "/train-*.h5"))[0]
    with h5py.File(f) as h:
        return json.loads(h.attrs["meta"])

# the statistics are those of the train split's decoded images (PIL), exactly
px = np.concatenate([np.asarray(Image.open(p).convert("RGB"), np.float64).reshape(-1, 3) / 255
                     for p in glob.glob("tree/train/*/*.jpg")])
norm = meta("E")["normalize"]
assert np.allclose(norm["mean"], px.mean(0), atol=1e-12), (norm, px.mean(0))
assert np.allclose(norm["std"], px.std(0), atol=1e-12), (norm, px.std(0))
assert meta("P")["normalize"]["mean"] == [0.485, 0.456, 0.406], meta("P")["normalize"]

def batches(d, **kw):
    return [x for x, _ in shardpipe.Loader(d, batch_size=5, shuffle=False, view="eval", size=24, threads=0, **kw)]

for d in ("E", "P", "G"):
    raw = batches(d)
    mean, std = (np.asarray(meta(d)["normalize"][k], np.float64) for k in ("mean", "std"))
    for x, y in zip(raw, batches(d, normalize=True)):
        want = ((x.astype(np.float64) / 255 - mean) / std).astype(np.float32).transpose(0, 3, 1, 2)
        assert y.shape == want.shape and np.isfinite(y).all(), (d, y.shape)
        assert np.abs(y - want).max() < 1e-5, ("set", d, np.abs(y - want).max())
    m, s = [0.5, 0.25, 0.75], [0.2, 0.3, 0.4]
    for x, y in zip(raw, batches(d, mean=m, std=s)):
        want = ((x.astype(np.float64) / 255 - np.array(m)) / np.array(s)).astype(np.float32).transpose(0, 3, 1, 2)
        assert np.abs(y - want).max() < 1e-5, (d, np.abs(y - want).max())
assert json.load(open("F/manifest.json"))["shards"][0]["shape"][2] == 1
f = shardpipe.Loader("F", batch_size=3, shuffle=False, view="eval", size=20, threads=0)
fn = shardpipe.Loader("F", batch_size=3, shuffle=False, view="eval", size=20, threads=0, normalize=True)
for k, ((x, _), (y, _)) in enumerate(zip(f, fn)):
    assert x.shape[-1] == 3 and y.shape[1] == 3, (x.shape, y.shape)
    mean, std = (np.asarray(meta("G")["normalize"][k], np.float64) for k in ("mean", "std"))
    want = ((x.astype(np.float64) / 255 - mean) / std).astype(np.float32).transpose(0, 3, 1, 2)
    assert np.isfinite(y).all() and np.abs(y - want).max() < 1e-5, ("F", np.abs(y - want).max())
    if k == 3:
        break
try:
    shardpipe.Loader("E", mean=[0.5], std=[0.2])
    raise SystemExit("one channel of mean= accepted for RGB views")
except ValueError as e:
    assert "3 values" in str(e), e
X
echo ok
