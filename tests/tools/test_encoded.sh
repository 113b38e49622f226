# Encoded records and shards: sp-decode --encoded keeps a JPEG as shipped (sha256 equal) and
# re-encodes the rest; the shards give the bytes back, and their decode equals PIL's; sp-verify,
# sp-cat and sp-inspect handle them; damage is named; one set holds one kind.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_ilsvrc.py" fx
TARS="fx/ILSVRC2012_img_train.tar fx/ILSVRC2012_img_val.tar"
LABELS="--classes fx/classes.txt --labels fx/LOC_val_solution.csv"

# as shipped: the same images rejected, for the same reasons, as a pixel decode
expect_stages "0 1" "sp-unpack $TARS | sp-decode $LABELS --rejects px.rejects > px.sprs"
expect_stages "0 1" "sp-unpack $TARS | sp-decode $LABELS --encoded --rejects enc.rejects > enc.sprs"
cmp px.rejects enc.rejects || fail "encoded mode rejects other images"
grep -qx "sp-decode: 28 images kept as shipped, 36 re-encoded" err || { cat err; fail "kept/re-encoded counts"; }
expect_status 0 sp-shard -o enc enc.sprs
expect_status 0 sp-decode enc.sprs   # the encoded records decoded: pixels, labels and splits kept
mv out dec.sprs
$PY "$SP_ROOT/tests/ref/check_encoded.py" fx enc enc.sprs dec.sprs shipped > ref.txt || { cat ref.txt; fail "shipped"; }
cat ref.txt
# sp-decode of the encoded records gives what a pixel decode of the sources gives, but for the
# re-encoded (CMYK, PNG) ones: same keys, labels and splits
sp-cat px.sprs | $PY -c "import json,sys; [print(r['key'], r['label'], r['split']) for r in map(json.loads, sys.stdin)]" | sort > a
sp-cat dec.sprs | $PY -c "import json,sys; [print(r['key'], r['label'], r['split']) for r in map(json.loads, sys.stdin)]" | sort > b
diff -u a b || fail "labels or splits differ after the encoded round trip"

# re-encoded: shorter side 40 at quality 90 (the fixture's images are 48 to 64 high)
expect_stages "0 1" "sp-unpack $TARS | sp-decode $LABELS --encoded --resize 40 --resize-mode shorter --jpeg-quality 90 > re.sprs"
grep -qx "sp-decode: 0 images kept as shipped, 64 re-encoded" err || { cat err; fail "re-encoded counts"; }
expect_status 0 sp-shard -o re re.sprs
expect_status 0 sp-decode re.sprs
mv out redec.sprs
$PY "$SP_ROOT/tests/ref/check_encoded.py" fx re re.sprs redec.sprs shorter:40 > ref.txt || { cat ref.txt; fail "shorter"; }
tail -1 ref.txt

# sp-verify, sp-cat and sp-inspect on both kinds
expect_status 0 sp-verify enc
expect_err_has "OK: 64 records in 2 shards"
sp-cat enc | sort > cat_shards
sp-cat enc.sprs | sort > cat_stream
cmp cat_shards cat_stream || fail "sp-cat of the shards differs from sp-cat of the stream"
$PY - enc.sprs cat_stream <<'X'
import json, sys, xxhash
sys.path.insert(0, sys.argv[0] and __import__("os").environ["SP_ROOT"] + "/tests/ref")
from recstream import read_stream
_, recs = read_stream(open(sys.argv[1], "rb").read())
want = {r["key"]: r for r in recs}
for line in open(sys.argv[2]):
    j = json.loads(line)
    r = want[j["key"]]
    assert j["kind"] == "encoded" and j["codec"] == "jpeg" and j["dtype"] == "uint8", j
    assert j["shape"] == list(r["shape"]) and j["size"] == len(r["payload"]), j
    assert int(j["checksum"], 16) == xxhash.xxh3_64_intdigest(r["payload"]), j
print("sp-cat:", len(want), "encoded records with their decoded shape, size and checksum")
X
expect_status 0 sp-inspect --json enc
$PY - <<'X'
import json
s = json.load(open("out"))
for name, sj in s["splits"].items():
    assert sj["kind"] == "encoded" and sj["dtype"] == "uint8" and sj["shape"][2] == 3, sj
    assert sj["encoded_bytes"] > 0 and sj["pixel_bytes"] > sj["encoded_bytes"], sj
    assert abs(sj["bytes_per_record"] - sj["bytes"] / sj["records"]) < 1e-6, sj
print("sp-inspect:", {k: round(v["bytes_per_record"]) for k, v in s["splits"].items()}, "bytes per image")
X
expect_status 0 sp-inspect enc
grep -q "^train .* <=64x88x3 *jpeg .* KB$" out || { cat out; fail "sp-inspect's text"; }
expect_status 0 sp-inspect --grid sheet.png --per-class 3 --tile 32 enc
$PY -c "
import json
from PIL import Image; import numpy as np
a = np.asarray(Image.open('sheet.png'))
classes = json.load(open('enc/manifest.json'))['classes']
label_w = 6 * max(len(f'{k} {n[:24]}') for k, n in enumerate(classes)) + 12  # the labels' column (1x font)
assert a.shape == (4 * 34, label_w + 3 * 34, 3), a.shape
assert (a[1:33, label_w + 1:label_w + 33] != 32).any(), 'no decoded sample on the sheet'
"
# pixel shards still verify and inspect as before, with their kind
sp-unpack fx/ILSVRC2012_img_train.tar | sp-decode --classes fx/classes.txt -q --resize 32 > px32.sprs || true
expect_status 0 sp-shard -o px px32.sprs
expect_status 0 sp-verify px
expect_status 0 sp-inspect --json px
$PY -c "import json; s = json.load(open('out')); assert s['splits']['train']['kind'] == 'pixels', s"

# one set holds one kind: pixels after encoded records (or the other way) are refused
sp-cat --meta px32.sprs > /dev/null
expect_status 1 sp-shard -o mixed enc.sprs px32.sprs
expect_err_has "a pixel record among encoded records: a shard set holds one kind"
[ ! -e mixed/manifest.json ] || fail "a mixed set was committed"

# damage: a byte of one record's JPEG flipped on disk is named by sp-verify and sp-cat
shard=$(ls enc/train-*.h5)
$PY - "$shard" > victim <<'X'
import sys, h5py, numpy as np
path = sys.argv[1]
with h5py.File(path, "r") as f:
    enc = f["encoded"][()]
    offsets = f["offsets"][()]
    key = f["keys"][3].decode()
rec = enc[offsets[3]:offsets[4]].tobytes()
data = bytearray(open(path, "rb").read())
at = data.find(rec)
assert at > 0 and data.find(rec, at + 1) < 0
data[at + len(rec) // 2] ^= 0x10
open(path, "wb").write(data)
print(key)
X
key=$(cat victim)
expect_status 1 sp-verify enc   # (a changed file is read without its keys: records named by index)
expect_err_has "$(basename "$shard"): record 3: encoded bytes do not match their checksum"
expect_status 1 sp-cat enc
expect_err_has "record 3 ($key): encoded bytes do not match their checksum (corrupt shard)"

# offsets that do not rise (a rewritten /offsets: the file's sha256 changes too) stop the
# shard at open, named; sp-cat cannot list it
rm -rf enc2 && sp-shard -q -o enc2 enc.sprs
shard=$(ls enc2/val-*.h5)
$PY - "$shard" <<'X'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    off = f["offsets"][()]
    off[5], off[6] = off[6], off[5]
    del f["offsets"]
    f["offsets"] = off
X
expect_status 1 sp-verify enc2
expect_err_has "$shard: record 5: offsets do not rise"
expect_status 1 sp-cat enc2
expect_err_has "record 5: offsets do not rise"

# sp-resize: pixels in, JPEG records out, aspect kept; a WxH size is refused for those modes
expect_status 0 sp-resize --mode longer --jpeg-quality 80 40 px.sprs
mv out longer.sprs
$PY - longer.sprs px.sprs <<'X'
import io, sys, os
sys.path.insert(0, os.environ["SP_ROOT"] + "/tests/ref")
import numpy as np
from PIL import Image
from recstream import read_stream
_, out = read_stream(open(sys.argv[1], "rb").read())
_, src = read_stream(open(sys.argv[2], "rb").read())
assert len(out) == len(src) == 64
for o, s in zip(out, src):
    h, w, c = s["shape"]
    nl = 40 if max(h, w) > 40 else max(h, w)
    ns = int(40 * min(h, w) / max(h, w)) if max(h, w) > 40 else min(h, w)
    want = (ns, nl, 3) if h <= w else (nl, ns, 3)
    img = Image.open(io.BytesIO(o["payload"]))
    assert o["kind"] == "encoded" and o["codec"] == 1 and tuple(o["shape"]) == want, (o["key"], o["shape"], want)
    assert img.format == "JPEG" and (img.height, img.width, 3) == want
    ref = np.asarray(Image.fromarray(np.frombuffer(s["payload"], np.uint8).reshape(h, w, c)).resize((want[1], want[0]), Image.BILINEAR))
    assert np.abs(np.asarray(img.convert("RGB")).astype(float) - ref).mean() < 8, o["key"]
print("sp-resize --mode longer --jpeg-quality: 64 JPEG records, longer side 40")
X
expect_status 2 sp-resize --mode shorter 40x30 px.sprs
expect_err_has "--mode shorter takes one SIZE, not WxH"
expect_status 2 sp-decode --encoded --jpeg-quality 0 px.sprs
echo "encoded records and shards: OK"
