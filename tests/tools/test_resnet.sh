# run.sh: long
# The ImageNet family end to end: an ILSVRC-shaped archive of 10 classes (a
# train tar of class tars, a val tar, Kaggle's label file) through one
# pipeline into 224x224 shards, then resnet18 with SGD, warm-up, a cosine
# schedule, label smoothing and random-resized-crop + flip: validation top-1
# far above chance after 5 epochs. And resnet20 on CIFAR-shaped shards: a run
# stopped after epoch 1 and resumed ends with the weights of an uninterrupted
# one, schedule, smoothing and augmentation included.
. "$SP_ROOT/tests/tools/lib.sh"
skip_under_sanitizers "resnet18 and resnet20 train for many steps here; their layers run under them for a step in test_tv_resnet, and training and resuming in test_train and test_resume"
$PY "$FIX/make_imagenet10.py" in10
sp-unpack in10/ILSVRC2012_img_train.tar in10/ILSVRC2012_img_val.tar \
    | sp-decode -q --classes in10/classes.txt --labels in10/LOC_val_solution.csv | sp-resize 224 | sp-shard -q -o r10
sp-train r10 --model resnet18 --epochs 5 --batch 16 --optimizer sgd --lr 0.02 --momentum 0.9 --warmup 1 \
    --schedule cosine --label-smoothing 0.1 --threads 2 -o r18.ckpt --json r18.json 2> log
cat log
grep -q "^sp-train: epoch 5/5: .*val accuracy" log || fail "no val accuracy per epoch"
$PY - <<'X'
import json
r = json.load(open("r18.json"))
assert r["model"] == "resnet18" and r["test_split"] == "val" and r["recipe"]["augment"] == "crop-flip", r
lrs = [e["lr"] for e in r["per_epoch"]]
assert abs(lrs[0] - 0.02) < 1e-7 and all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 1e-4, lrs  # warm-up, then cosine
print(f"resnet18, 160 images of 10 classes, 5 epochs: val top-1 {r['test_accuracy']:.2f} (chance 0.10)")
assert r["test_accuracy"] >= 0.5, r["test_accuracy"]
X
sp-eval r10 --checkpoint r18.ckpt --json eval.json > report.txt
$PY -c "
import json; e, r = json.load(open('eval.json')), json.load(open('r18.json'))
assert e['split'] == 'val' and e['records'] == 50 and abs(e['accuracy'] - r['test_accuracy']) < 1e-12, (e, r['test_accuracy'])"

# resnet20: resume equals an uninterrupted run
$PY "$FIX/make_cifar.py" cf --per-batch 60
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -o c10
set -- --model resnet20 --batch 32 --optimizer sgd --lr 0.05 --schedule cosine --warmup 1 --label-smoothing 0.1 \
    --crop-scale 0.5 --seed 4 -q
sp-train c10 "$@" --epochs 2 -o full.ckpt
sp-train c10 "$@" --epochs 1 -o part.ckpt
sp-train c10 --epochs 2 --resume part.ckpt -o part.ckpt -q
$PY - <<'X'
import json, struct
def state(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12); return d[16 + h:-8], json.loads(d[16:16 + h])
a, ha = state("full.ckpt"); b, hb = state("part.ckpt")
assert ha["extra"]["recipe"] == hb["extra"]["recipe"] and ha["extra"]["recipe"]["augment"] == "crop-flip"
assert a == b, "the resumed resnet20 differs from an uninterrupted one"
print(f"resnet20 resumed after epoch 1: {len(a)} bytes of weights, momentum and batchnorm statistics equal")
X
echo ok
