# sp-eval --predict: every record's top classes by name with probabilities,
# labelled or not; a checkpoint names its classes (extra "class_names"), and
# sp-eval, sp-train --resume and --init (classifier kept) refuse a set whose
# classes differ in names or order; a checkpoint without names still loads.
. "$SP_ROOT/tests/tools/lib.sh"
$PY - <<'X'
import os
from PIL import Image
for c, cls in enumerate(("cat", "dog", "fox")):
    for k in range(8):
        for top in ("pets", "pets2"):
            os.makedirs(f"{top}/{cls}", exist_ok=True)
            Image.new("RGB", (8, 8), (c * 100, k * 20, 200 - c * 80)).save(f"{top}/{cls}/{cls}{k}.png")
os.makedirs("new")
for k in range(5):
    Image.new("RGB", (8, 8), (k * 50, 100, 60)).save(f"new/img{k}.png")
X
sp-unpack pets | sp-decode -q --labels-from dirs | sp-shard -q -o S
sp-train -q S --model mlp -e 2 -b 8 -o m.ckpt
# the checkpoint names its classes
ckpt_header() { $PY -c "
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<I', b[12:16])[0]
print(json.dumps(json.loads(b[16:16 + n])['extra'].get('class_names')))" "$1"; }
[ "$(ckpt_header m.ckpt)" = '["cat", "dog", "fox"]' ] || fail "class names in the checkpoint: $(ckpt_header m.ckpt)"

# a labelled set: a line per record in manifest order, the softmax of --logits
sp-eval S -c m.ckpt --split train --predict p.jsonl --logits l.f32 > report.txt
grep -q "^accuracy" report.txt || fail "no figures beside --predict FILE"
sp-eval S -c m.ckpt --split train --predict - --top 2 > p2.jsonl
$PY - <<'X'
import glob, json, h5py, numpy as np
m = json.load(open("S/manifest.json"))
keys, labels = [], []
for e in m["shards"]:
    if e["split"] == "train":
        with h5py.File("S/" + e["file"], "r") as h:
            keys += [k.decode() for k in h["keys"][:]]
            labels += h["labels"][:].tolist()
names = m["classes"]
z = np.fromfile("l.f32", "<f4").reshape(len(keys), 3).astype(np.float64)
p = np.exp(z - z.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
for path, k in (("p.jsonl", 3), ("p2.jsonl", 2)):
    lines = [json.loads(l) for l in open(path)]
    assert [l["key"] for l in lines] == keys, path
    for i, l in enumerate(lines):
        assert l["label"] == names[labels[i]], (l, labels[i])
        assert len(l["top"]) == k, l
        order = sorted(range(3), key=lambda c: (-p[i, c], c))[:k]
        assert [t[0] for t in l["top"]] == [names[c] for c in order], (l, p[i])
        assert all(abs(t[1] - p[i, c]) < 1e-6 for t, c in zip(l["top"], order)), (l, p[i])
print("predictions: the softmax of the logits, by name, in manifest order")
X

# new images without labels: predicted, not scored; the split is train
sp-unpack new | sp-decode -q --unlabeled | sp-shard -q -o N
expect_status 0 sp-eval N -c m.ckpt --predict -
[ "$(wc -l < out)" = 5 ] || fail "$(cat out)"
grep -q '^{"key":"img0.png","label":null,"top":\[\["[a-z]*",[0-9.e-]*\],\["' out || fail "$(head -1 out)"
expect_status 0 sp-eval N -c m.ckpt --predict unl.jsonl
[ ! -s out ] && [ "$(wc -l < unl.jsonl)" = 5 ] || fail "figures of an unlabelled set, or missing lines"
# without --predict such a set is still refused, saying why
expect_status 1 sp-eval N -c m.ckpt --split train
expect_err_has "sp-eval: m.ckpt: a mlp for 8x8x3 inputs and 3 classes; the train split holds"

# the same classes in another order: refused, naming those that differ
printf 'dog\ncat\nfox\n' > order.txt
sp-unpack pets2 | sp-decode -q --labels-from dirs --classes order.txt | sp-shard -q -o R
expect_status 1 sp-eval R -c m.ckpt --split train
expect_err "sp-eval: m.ckpt: its classes differ from those of R (2 of 3): class 0 is \"cat\" in the checkpoint, \"dog\" in the shards; class 1 is \"dog\" in the checkpoint, \"cat\" in the shards"
expect_status 1 sp-eval R -c m.ckpt --split train --predict -
expect_err_has "its classes differ from those of R (2 of 3)"
expect_status 1 sp-train R --resume m.ckpt -e 3 -o r.ckpt
expect_err_has "sp-train: m.ckpt: its classes differ from those of R (2 of 3)"
expect_status 1 sp-train R --model mlp --init m.ckpt -e 1 -o i.ckpt
expect_err_has "sp-train: m.ckpt: its classes differ from those of R (2 of 3)"
# the same names in the same order from another tree: taken
sp-unpack pets2 | sp-decode -q --labels-from dirs | sp-shard -q -o S2
sp-eval -q S2 -c m.ckpt --split train > /dev/null
sp-train -q S2 --resume m.ckpt -e 3 -o r.ckpt
sp-train -q S2 --model mlp --init m.ckpt -e 1 -o i.ckpt

# a checkpoint from before the names were kept: loads, and is held to the class count only
$PY - <<'X'
import json, struct, xxhash
b = open("m.ckpt", "rb").read()
n = struct.unpack("<I", b[12:16])[0]
h = json.loads(b[16:16 + n])
del h["extra"]["class_names"]
hs = json.dumps(h, separators=(",", ":"), sort_keys=True).encode()
body = b[:12] + struct.pack("<I", len(hs)) + hs + b[16 + n:-8]
open("old.ckpt", "wb").write(body + struct.pack("<Q", xxhash.xxh3_64_intdigest(body)))
X
sp-eval -q R -c old.ckpt --split train > /dev/null || fail "a checkpoint without names is refused"
sp-eval R -c old.ckpt --split train --predict - --top 1 | head -1 | grep -q '"top":\[\["\(dog\|cat\|fox\)",' ||
    fail "predictions of a checkpoint without names are not named by the set's classes"
echo ok
