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
m = json.load(open("S/manifest.json"))
# a column of labels "N name" (6 pixels a character at tile 32), then 3 tiles of 34
label_w = 6 * max(len(f"{k} {n[:24]}") for k, n in enumerate(m["classes"])) + 12
assert sheet.shape == (10 * 34, label_w + 3 * 34, 3), sheet.shape
# the labels are drawn: light text on the dark column, in every row
for k in range(10):
    assert (sheet[k * 34:(k + 1) * 34, :label_w] > 200).any(), f"row {k} has no label"
# the first tile of class 0: the first class-0 image of the first shard (32x32 fits the tile as it is)
with h5py.File("S/" + m["shards"][0]["file"]) as h:
    first = h["images"][int(np.argmax(h["labels"][...] == 0))]
assert np.array_equal(sheet[1:33, label_w + 1:label_w + 33], first), "tile"
print("sheet ok")
X
# a 4-class subset of ImageNet's 1000 classes (its damaged images rejected):
# the listing and the sheet show the 4 classes present (--all-classes lists
# the 1000); --max-classes limits the rows
$PY "$FIX/make_ilsvrc.py" il
expect_stages "0 1 0" 'sp-unpack il/ILSVRC2012_img_train.tar | sp-decode -q --resize 16 | sp-shard -q -o I'
sp-inspect I > listing
[ "$(sed -n '/^class /,$p' listing | grep -c '^n[0-9]')" = 4 ] || { cat listing >&2; fail "not the 4 classes present"; }
grep -qx '(996 of the 1000 classes have no records here; --all-classes lists them)' listing || fail "no note of the others"
[ "$(sp-inspect --all-classes I | sed -n '/^class /,$p' | grep -c '^n[0-9]')" = 1000 ] || fail "--all-classes"
sp-inspect -q --grid il.png --per-class 2 --tile 16 I > /dev/null
expect_status 0 sp-inspect --grid il2.png --per-class 2 --tile 16 --max-classes 2 I
expect_err "sp-inspect: il2.png: the contact sheet shows 2 of the 4 classes present (--max-classes)"
$PY - <<'X'
from PIL import Image
a, b = Image.open("il.png"), Image.open("il2.png")
assert a.size[1] == 4 * 18 and b.size[1] == 2 * 18 and a.size[0] < 400, (a.size, b.size)
print("subset sheet", a.size)
X
expect_status 3 sp-inspect --grid /nonexistent/g.png I
expect_err_has "/nonexistent/g.png"
expect_err_has ": No such file or directory"
expect_status 1 sp-inspect NOPE
expect_status 2 sp-inspect
echo ok
