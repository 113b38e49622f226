# bench/reproduce.py --short: each recipe of make reproduce (ResNet-20 with
# pad-crop-flip, multistep and weight decay; the seed's cnn and mlp against
# PyTorch's runs) a few dozen steps on a CIFAR-10-shaped fixture and on
# Fashion-MNIST: the options parse and run, ResNet-20's rate drops at the
# milestones' steps, the table lands between the docs' markers.
. "$SP_ROOT/tests/tools/lib.sh"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
$PY "$FIX/make_cifar.py" fx --per-batch 40
mkdir data
sp-unpack fx/cifar-10-binary.tar.gz | sp-decode -q 2>/dev/null | sp-normalize -q | sp-shard -q -o data/cifar10
sp-unpack -q "$FMNIST"/*.gz | sp-decode -q | sp-shard -q -o data/mnist
cp "$SP_ROOT/docs/reproducing.md" doc.md
BUILD="$SP_BIN/.." $PY "$SP_ROOT/bench/reproduce.py" --short data res doc.md > table 2> err || { cat err table; fail "reproduce.py --short"; }
$PY - <<'X'
import json
r = json.load(open("res/resnet20.json"))
lrs = [e["lr"] for e in r["per_epoch"]]
assert len(lrs) == 4 and all(abs(a - b) <= 1e-6 * b for a, b in zip(lrs, [0.1, 0.1, 0.01, 0.001])), lrs
rec = r["recipe"]
assert rec["augment"] == "pad-crop-flip" and rec["pad"] == 4 and rec["milestones"] == [20, 30], rec
assert rec["milestones_unit"] == "steps" and rec["wd_skip"] == "none", rec
for name in ("cnn", "mlp"):
    assert 0 <= json.load(open(f"res/{name}.json"))["test_accuracy"] <= 1
text = open("doc.md").read()
table = text.split("<!-- reproduce:begin -->\n")[1].split("<!-- reproduce:end -->")[0]
rows = table.splitlines()[2:]
assert len(rows) == 3 and all("(short)" in r and "not run" not in r for r in rows), table
assert "PyTorch: test accuracy" in rows[1] and "PyTorch: test accuracy" in rows[2], table
assert table == open("res/table.md").read()
X
for f in resnet20 cnn mlp; do [ -s res/$f.png ] || fail "no curves for $f"; done
# the other docs are kept as they were around the table
[ "$(sed '/reproduce:begin/,$d' doc.md)" = "$(sed '/reproduce:begin/,$d' "$SP_ROOT/docs/reproducing.md")" ] \
    || fail "the text before the table changed"
expect_status 2 sp-train data/mnist --wd-skip bn,weights -e 1
expect_err_has "sp-train: --wd-skip: not none or a list of bn and bias split by commas: bn,weights"
echo ok
