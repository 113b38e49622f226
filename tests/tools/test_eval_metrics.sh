# sp-eval's figures against numpy on 100 classes (CIFAR-100-shaped shards),
# ties included: an mlp with random weights (so that the predictions spread
# over the classes) whose last layer gives classes 2i and 2i+1 (i < 20) identical weights and biases
# (their logits tie exactly on every record: 2i+1 is never the argmax) and
# classes 90..99 a bias of -50 (never predicted: precision 0).
# Its logits (--logits) equal a numpy forward pass of the checkpoint's
# weights; from them numpy's per-class precision, recall and F1, macro and
# weighted averages (scikit-learn's conventions: over the classes in the
# labels or the predictions), accuracy (argmax: the first
# of equal maxima) and top-5 (ties counted against) equal sp-eval's JSON.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_cifar.py" cf --per-batch 300
sp-unpack cf/cifar-100-binary.tar.gz | sp-decode -q | sp-shard -q -o c100
sp-train c100 --model mlp -e 1 -b 32 -q -o mlp.ckpt
$PY - <<'X'
import json, struct, numpy as np, xxhash
d = bytearray(open("mlp.ckpt", "rb").read())
(hl,) = struct.unpack_from("<I", d, 12)
h = json.loads(d[16:16 + hl])
f = np.frombuffer(bytes(d[16 + hl:-8]), dtype="<f4").copy()
sizes = [3072 * 128, 128, 128 * 100, 100]  # dense 128 (w, b), dense 100 (w, b); each with Adam's m and v after it
at = [0]
for n in sizes:
    at.append(at[-1] + 3 * n)
rng = np.random.default_rng(1)  # random layers that spread the predictions over the classes
w1 = rng.normal(0, 3072 ** -0.5, (128, 3072)).astype(np.float32)
w1 -= w1.mean(1, keepdims=True)  # the images' common mean (about 0.5 a pixel) cancels
f[at[0]:at[0] + 3072 * 128] = w1.ravel()
w2 = rng.normal(0, 0.5, (100, 128)).astype(np.float32)
b2 = rng.normal(0, 0.5, 100).astype(np.float32)
for a in range(0, 40, 2):  # classes 2i and 2i + 1 (i < 20) tie on every record
    w2[a + 1] = w2[a]
    b2[a + 1] = b2[a]
b2[90:] = -50
f[at[2]:at[2] + 12800] = w2.ravel()
f[at[3]:at[3] + 100] = b2
body = bytes(d[:16 + hl]) + f.astype("<f4").tobytes()
open("tied.ckpt", "wb").write(body + struct.pack("<Q", xxhash.xxh3_64_intdigest(body)))
X
sp-eval c100 -c tied.ckpt --logits logits.f32 --json eval.json > report.txt
$PY - <<'X'
import json, struct, h5py, numpy as np
e = json.load(open("eval.json"))
k = 100
z = np.fromfile("logits.f32", dtype="<f4").reshape(-1, k)
sh = [s["file"] for s in json.load(open("c100/manifest.json"))["shards"] if s["split"] == "test"]
fs = [h5py.File("c100/" + f, "r") for f in sh]
x = np.concatenate([f["images"][:] for f in fs]).transpose(0, 3, 1, 2).reshape(len(z), -1).astype(np.float32) / 255
y = np.concatenate([f["labels"][:] for f in fs]).astype(int)
# the logits: a numpy forward pass of the checkpoint's weights
d = open("tied.ckpt", "rb").read()
(hl,) = struct.unpack_from("<I", d, 12)
f = np.frombuffer(d[16 + hl:-8], dtype="<f4")
w1, b1 = f[:3072 * 128].reshape(128, 3072), f[3 * 3072 * 128:3 * 3072 * 128 + 128]
o = 3 * (3072 * 128 + 128)
w2, b2 = f[o:o + 12800].reshape(100, 128), f[o + 3 * 12800:o + 3 * 12800 + 100]
want = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
assert np.abs(z - want).max() <= 1e-4 * max(1, np.abs(want).max()), np.abs(z - want).max()
assert all((z[:, a] == z[:, a + 1]).all() for a in range(0, 40, 2))
# the metrics from those logits
pred = z.argmax(1)  # numpy: the first of equal maxima
ties = int(sum(((z == z.max(1, keepdims=True)).sum(1) > 1)))
conf = np.zeros((k, k), int)
np.add.at(conf, (y, pred), 1)
tp, support, predicted = np.diag(conf), conf.sum(1), conf.sum(0)
with np.errstate(divide="ignore", invalid="ignore"):
    prec = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
    rec = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.where(prec + rec > 0, prec + rec, 1), 0.0)
higher = (z >= z[np.arange(len(z)), y][:, None]).sum(1) - 1  # others at least the label's logit
top5 = float((higher < 5).mean())
assert e["records"] == len(z) and e["accuracy"] == float((pred == y).mean()), (e["accuracy"], (pred == y).mean())
assert abs(e["top5_accuracy"] - top5) < 1e-12, (e["top5_accuracy"], top5)
# the classes shown and averaged: those in the labels or the predictions
present = np.flatnonzero((support > 0) | (predicted > 0))
assert e["confusion_classes"] == present.tolist(), e["confusion_classes"]
assert np.array_equal(np.array(e["confusion"]), conf[np.ix_(present, present)])
assert [row["class"] for row in e["per_class"]] == present.tolist()
for row in e["per_class"]:
    c = row["class"]
    assert row["records"] == support[c]
    for key, v in (("precision", prec[c]), ("recall", rec[c]), ("f1", f1[c])):
        assert abs(row[key] - v) < 1e-12, (c, key, row[key], v)
macro = dict(precision=prec[present].mean(), recall=rec[present].mean(), f1=f1[present].mean())
weighted = dict(precision=(prec * support).sum() / support.sum(), recall=(rec * support).sum() / support.sum(),
                f1=(f1 * support).sum() / support.sum())
for key in ("precision", "recall", "f1"):
    assert abs(e["macro_avg"][key] - macro[key]) < 1e-12, (key, e["macro_avg"], macro)
    assert abs(e["weighted_avg"][key] - weighted[key]) < 1e-12, (key, e["weighted_avg"], weighted)
assert predicted[1:40:2].sum() == 0 and predicted[0:40:2].sum() > 0 and predicted[90:].sum() == 0
assert ties > len(z) // 10 and (predicted > 0).sum() > 20, (ties, (predicted > 0).sum())
print(f"100 classes, {len(z)} records, {ties} with tied maxima: accuracy {e['accuracy']:.4f}, top-5 {top5:.4f}, "
      f"macro F1 {macro['f1']:.4f}, weighted F1 {weighted['f1']:.4f}, all equal to numpy's")
X
grep -q "^top-5 accuracy " report.txt || fail "no top-5 line for 100 classes"
grep -q "macro avg" report.txt && grep -q "weighted avg" report.txt || fail "no averages in the text report"
echo ok
