# sp-eval on 3 classes of a 1000-class set (ImageNet's list): the per-class
# rows, the confusion matrix and the heat map show the classes present in
# the labels or the predictions only, and the macro averages are over those,
# equal to scikit-learn's classification_report (labels = unique(y_true |
# y_pred)); the text says what was averaged, and --json holds the same rows,
# matrix and figures. --all-classes shows all 1000 and averages over them,
# equal to scikit-learn's with labels = range(1000).
. "$SP_ROOT/tests/tools/lib.sh"
$PY -c 'import sklearn' || fail "python3-sklearn missing: install it (scripts/install-deps.sh)"
$PY - <<'X'
import os, numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for split, n in (("train", 12), ("val", 8)):
    for k, wnid in enumerate(["n01440764", "n01443537", "n01484850"]):
        os.makedirs(f"sub/{split}/{wnid}", exist_ok=True)
        for i in range(n):
            a = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            a[..., k] = 255
            Image.fromarray(a).save(f"sub/{split}/{wnid}/{i}.png")
X
sp-unpack sub | sp-decode -q | sp-shard -q -o S
# three steps: predictions spread over classes that no record has
sp-train S --model mlp -e 1 -b 12 --seed 5 -q -o s.ckpt
sp-eval S -c s.ckpt --json e.json --logits l.f32 --heatmap h.png > report.txt
cat report.txt
sp-eval S -c s.ckpt --all-classes --json all.json > /dev/null
$PY - <<'X'
import glob, json, re
import h5py, numpy as np
from PIL import Image
from sklearn.metrics import classification_report
e, a, text = json.load(open("e.json")), json.load(open("all.json")), open("report.txt").read()
y = np.concatenate([h5py.File(f, "r")["labels"][:] for f in sorted(glob.glob("S/val-*.h5"))]).astype(int)
pred = np.fromfile("l.f32", dtype="<f4").reshape(len(y), 1000).argmax(1)
present = sorted(set(y) | set(pred))
assert 3 < len(present) < 30, present  # some predictions outside the labels
# the JSON: the classes present, their rows, the matrix between them
assert e["confusion_classes"] == present and [r["class"] for r in e["per_class"]] == present, e["confusion_classes"]
conf = np.zeros((1000, 1000), int)
np.add.at(conf, (y, pred), 1)
assert np.array_equal(np.array(e["confusion"]), conf[np.ix_(present, present)])
assert e["model_classes"] == 1000 and e["macro_avg"]["classes"] == len(present), e["macro_avg"]
# scikit-learn: by default, over the labels present in y_true or y_pred
sk = classification_report(y, pred, output_dict=True, zero_division=0)
for key in ("precision", "recall", "f1"):
    sk_key = "f1-score" if key == "f1" else key
    assert abs(e["macro_avg"][key] - sk["macro avg"][sk_key]) < 1e-12, (key, e["macro_avg"], sk["macro avg"])
    assert abs(e["weighted_avg"][key] - sk["weighted avg"][sk_key]) < 1e-12, (key, e["weighted_avg"])
    for r in e["per_class"]:
        assert abs(r[key] - sk[str(r["class"])][sk_key]) < 1e-12, (r, sk[str(r["class"])])
# the text: the same rows, figures and matrix, and what the averages are over
rows = re.findall(r"^ +(\d+)  (\S+) +(\d+) +([\d.]+) +([\d.]+) +([\d.]+)$", text, re.M)
assert [int(r[0]) for r in rows] == present, rows
for r, j in zip(rows, e["per_class"]):
    assert (int(r[2]), r[3], r[4], r[5]) == (j["records"], *(f"{j[k]:.4f}" for k in ("precision", "recall", "f1"))), (r, j)
macro = re.search(r"^ +macro avg +\d+ +([\d.]+) +([\d.]+) +([\d.]+)$", text, re.M).groups()
assert macro == tuple(f"{e['macro_avg'][k]:.4f}" for k in ("precision", "recall", "f1")), macro
want = f"(shown and averaged: the {len(present)} classes present in the labels or the predictions (of 1000; --all-classes: all))"
assert want in text.splitlines() and e["averaged_over"] == want[len("(shown and averaged: "):-1], e["averaged_over"]
m = text.split("confusion (rows: true class, columns: predicted)\n")[1].splitlines()
assert [int(c) for c in m[0].split()] == present and len(m) == len(present) + 1, m
assert [[int(v) for v in l.split()[2:]] for l in m[1:]] == e["confusion"], m
# the heat map: a cell per class present, not 1000x1000
w, h = Image.open("h.png").size
assert w < 1500 and h < 1500, (w, h)  # all 1000: 4168x4084
# --all-classes: every class, averaged as scikit-learn's with labels = range(1000)
assert len(a["per_class"]) == 1000 and len(a["confusion"]) == 1000 and a["macro_avg"]["classes"] == 1000
sk = classification_report(y, pred, labels=range(1000), output_dict=True, zero_division=0)
for key in ("precision", "recall", "f1"):
    assert abs(a["macro_avg"][key] - sk["macro avg"]["f1-score" if key == "f1" else key]) < 1e-12, key
assert a["averaged_over"] == "all 1000 classes (--all-classes)", a["averaged_over"]
print(f"{len(present)} classes present of 1000: macro F1 {e['macro_avg']['f1']:.4f} (all 1000: "
      f"{a['macro_avg']['f1']:.4f}), equal to scikit-learn's; heat map {w}x{h}")
X
echo ok
