# sp-inspect: counts per split and class from the labels themselves, the
# recipe, shuffle and normalization, and a contact sheet of the right size
# whose tiles are the shards' images.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_cifar.py" cf --per-batch 40
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-normalize | sp-shard -q -n 64 -o S
sp-inspect S > out.txt
grep -q "^dataset     cifar10 (10 classes)$" out.txt || { cat out.txt; fail "dataset line"; }
grep -q "^recipe      sp-unpack | sp-decode | sp-normalize | sp-shard -n 64$" out.txt || fail "recipe"
grep -q "^shuffle     train split, seed 0$" out.txt || fail "shuffle"
grep -qE "^train +200 +4 32x32x3 +uint8 " out.txt || fail "train row"
sp-inspect --json S > s.json
$PY - <<'X'
import json, sys, os
sys.path.insert(0, os.path.join(os.environ["SP_ROOT"], "tests/ref"))
from recstream import read_stream
import subprocess
s = json.load(open("s.json"))
meta, recs = read_stream(subprocess.run(["bash", "-o", "pipefail", "-c", "sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q"],
                                        check=True, stdout=subprocess.PIPE).stdout)
for split in ("train", "test"):
    want = [0] * 10
    for r in recs:
        if r["split"] == split:
            want[r["label"]] += 1
    assert s["splits"][split]["class_counts"] == want, (split, s["splits"][split]["class_counts"], want)
assert s["splits"]["train"]["pixel_bytes"] == 200 * 3072 and "normalize" in s and "stats" in s
print("counts ok")
X
sp-inspect --grid sheet.png --per-class 3 --tile 32 S > /dev/null
HDF5_PLUGIN_PATH=$HDF5_PLUGIN_PATH $PY - <<'X'
import glob, json
import h5py, numpy as np
from PIL import Image
sheet = np.asarray(Image.open("sheet.png"))
assert sheet.shape == (10 * 34, 3 * 34, 3), sheet.shape
# the first tile of class 0: the first class-0 image of the first shard (32x32 fits the tile as it is)
m = json.load(open("S/manifest.json"))
with h5py.File("S/" + m["shards"][0]["file"]) as h:
    first = h["images"][int(np.argmax(h["labels"][...] == 0))]
assert np.array_equal(sheet[1:33, 1:33], first), "tile"
print("sheet ok")
X
expect_status 1 sp-inspect NOPE
expect_status 2 sp-inspect
echo ok
