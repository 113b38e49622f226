# sp-normalize: exact per-channel statistics (checked with numpy over the
# same pixels), float32/float16 output equal to numpy's (x/255 - mean)/std,
# and the parameters in the shards' attributes, read back by h5py.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_cifar.py" cf --per-batch 20
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q > px.sprs
sp-normalize px.sprs > n8.sprs
sp-normalize --preset imagenet --dtype float32 px.sprs > n32.sprs
sp-normalize --mean 0.5,0.4,0.3 --std 0.2,0.25,0.3 --dtype float16 px.sprs > n16.sprs
sp-shard -q -o S16 n16.sprs && sp-verify -q S16
sp-shard -q -o S8 n8.sprs && sp-verify -q S8
$PY - <<'X'
import glob, json, os, sys
import h5py, numpy as np
sys.path.insert(0, os.path.join(os.environ["SP_ROOT"], "tests/ref"))
from recstream import read_stream
meta, recs = read_stream(open("px.sprs", "rb").read())
px = {s: np.stack([np.frombuffer(r["payload"], np.uint8).reshape(32, 32, 3) for r in recs if r["split"] == s])
      for s in ("train", "test")}
allpx = np.concatenate([px["train"], px["test"]])
m8, _ = read_stream(open("n8.sprs", "rb").read())
for split, arr in (("train", px["train"]), ("test", px["test"]), ("all", allpx)):
    v = arr.reshape(-1, 3).astype(np.float64) / 255
    st = m8["stats"][split]
    assert st["count"] == len(v), split
    assert np.allclose(st["mean"], v.mean(0), rtol=0, atol=1e-12), (split, st["mean"], v.mean(0))
    assert np.allclose(st["std"], v.std(0), rtol=0, atol=1e-12), (split, st["std"], v.std(0))
assert m8["normalize"]["mean"] == m8["stats"]["train"]["mean"] and m8["normalize"]["applied"] is False
# float32 with the ImageNet preset
mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
_, r32 = read_stream(open("n32.sprs", "rb").read())
got = np.stack([np.frombuffer(r["payload"], np.float32).reshape(32, 32, 3) for r in r32])
want = np.concatenate([np.stack([np.frombuffer(r["payload"], np.uint8).reshape(32, 32, 3) for r in recs])])
want = ((want / 255.0 - mean) / std).astype(np.float32)
assert r32[0]["dtype"] == 3 and np.array_equal(got, want), "float32"
# float16 shards: h5py sees float16, equal to numpy's rounding of the float32 values
mean, std = np.array([0.5, 0.4, 0.3]), np.array([0.2, 0.25, 0.3])
with h5py.File(glob.glob("S16/train-*.h5")[0]) as h:
    # shuffled: back to stream order by key
    keys = [k.decode() for k in h["keys"][...]]
    stream_keys = [r["key"] for r in recs if r["split"] == "train"]
    img = h["images"][...][[keys.index(k) for k in stream_keys]]
    assert img.dtype == np.float16, img.dtype
    want = ((px["train"] / 255.0 - mean) / std).astype(np.float32).astype(np.float16)
    assert np.array_equal(img, want), "float16"
    assert list(h.attrs["norm_mean"]) == [0.5, 0.4, 0.3] and h.attrs["norm_applied"] == 1
with h5py.File(glob.glob("S8/train-*.h5")[0]) as h:
    assert np.allclose(h.attrs["norm_mean"], m8["stats"]["train"]["mean"]) and h.attrs["norm_applied"] == 0
man = json.load(open("S8/manifest.json"))
assert man["normalize"]["source"] == "stats of the train split" and "train" in man["stats"]
print("normalize ok")
X
expect_status 2 sp-normalize --dtype float32 px.sprs
expect_err_has "--dtype float32 needs --mean and --std, or --preset"
expect_status 1 sp-normalize n32.sprs
expect_err_has "sp-normalize takes uint8 pixel records"
echo ok
