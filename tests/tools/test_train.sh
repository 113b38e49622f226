# run.sh: long
# sp-train and sp-eval: the Fashion-MNIST mlp recipe (5 epochs, batch 64,
# Adam 1e-3) reaches 0.87 test accuracy; the progress line counts batches,
# records and MB of input; a run stopped after epoch 2 and
# resumed ends with the weights of an uninterrupted one; two threads give the
# same weights run after run; normalization comes from the shard attributes;
# sp-eval agrees with sp-train; bad shards and
# checkpoints are refused before any training step.
. "$SP_ROOT/tests/tools/lib.sh"
sp-unpack $FMNIST/*.gz | sp-decode -q | sp-shard -q -o fm
sp-train fm --model mlp --epochs 5 --batch 64 --lr 0.001 --optimizer adam -o mlp.ckpt --json run.json 2> log
cat log
[ "$(grep -c '^sp-train: epoch [1-5]/5: loss' log)" -eq 5 ] || fail "not one line per epoch"
$PY - <<'X'
import json
r = json.load(open("run.json"))
assert len(r["per_epoch"]) == 5 and r["train_seconds"] > 0, r
print(f"test accuracy {r['test_accuracy']:.4f} after 5 epochs (target 0.87)")
assert r["test_accuracy"] >= 0.87, r["test_accuracy"]
# 10 classes: top-5 every epoch, as sp-eval reports it for more than 5 classes
assert all(e["test_accuracy"] <= e["test_top5_accuracy"] <= 1 for e in r["per_epoch"]), r["per_epoch"]
X
[ "$(grep -c '^sp-train: epoch [1-5]/5: .*(top-5 0\.[0-9]*)' log)" -eq 5 ] || fail "no top-5 on the epoch lines"

# the progress line on a terminal (stderr a pty): the batch of the epoch in
# flight, the records before it and the MB of their float32 input (28x28x1)
$PY - <<'X'
import os, pty, re, subprocess
master, slave = pty.openpty()
p = subprocess.Popen(["sp-train", "fm", "-e", "1", "-b", "16"], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
out = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
assert p.wait() == 0, out
lines = [l for l in out.decode().split("\r") if l.startswith("sp-train: batch ")]
assert lines, out
for l in lines:
    m = re.fullmatch(r"sp-train: batch (\d+)/3750(?:, ETA \d+ s)?(?:, loss \d+\.\d{4})?: (\d+) records, ([\d.]+) MB, [\d.]+ MB/s, \d+ s\x1b\[K", l)
    assert m, l
    batch, records = int(m[1]), int(m[2])
    assert records == (batch - 1) * 16 and f"{records * 784 * 4 / 1e6:.1f}" == m[3], l
print(f"progress: {len(lines)} lines, the last {lines[-1][:-3]!r}")
X

# sp-eval on the checkpoint: the accuracy sp-train printed, and the report
sp-eval fm --checkpoint mlp.ckpt --json eval.json > report.txt
$PY - <<'X'
import json
e, r = json.load(open("eval.json")), json.load(open("run.json"))
assert e["split"] == "test" and e["records"] == 10000, e
assert abs(e["accuracy"] - r["test_accuracy"]) < 1e-12, (e["accuracy"], r["test_accuracy"])
conf = e["confusion"]
assert len(conf) == 10 and sum(map(sum, conf)) == 10000 and sum(conf[i][i] for i in range(10)) == round(e["accuracy"] * 10000)
assert 0 <= e["top5_accuracy"] <= 1 and e["top5_accuracy"] >= e["accuracy"]  # more than 5 classes
for c in e["per_class"]:
    assert c["records"] == 1000 and 0 <= c["precision"] <= 1 and 0 <= c["recall"] <= 1, c
X
grep -q "^accuracy $(printf '%.4f' "$($PY -c "import json; print(json.load(open('eval.json'))['accuracy'])")")$" report.txt || fail "text report"
grep -q "^    9  Ankle boot " report.txt || fail "class names in the report"

# resume: 3 epochs straight against 2 + 1 resumed, the weights and optimizer state equal
sp-train -q fm -e 3 -o full.ckpt
sp-train -q fm -e 2 -o part.ckpt
sp-train -q fm -e 3 --resume part.ckpt -o part.ckpt --json resumed.json
$PY - <<'X'
import json, struct
def state(p):  # the float arrays after the header, without the trailing checksum
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12); return d[16 + h:-8], json.loads(d[16:16 + h])
a, ha = state("full.ckpt"); b, hb = state("part.ckpt")
assert a == b, "the resumed run's weights differ from an uninterrupted run's"
assert ha["epoch"] == hb["epoch"] == 3 and ha["optimizer"]["step"] == hb["optimizer"]["step"] == 3 * 938
assert len(json.load(open("resumed.json"))["per_epoch"]) == 3
print(f"resumed after epoch 2: {len(a)} bytes of weights and Adam state equal to an uninterrupted run's")
X

# partial epochs (Keras' steps_per_epoch, validation_steps): 400 batches an
# epoch, so epoch 3 runs on past the end of the first pass (938 batches) into
# the second; stopped after epoch 2 and resumed, the same weights and Adam
# state as an uninterrupted run; evaluation on the first 5 batches only
set -- --steps-per-epoch 400 --eval-steps 5 -b 64 -q
sp-train fm "$@" -e 3 -o sfull.ckpt --json sfull.json
sp-train fm "$@" -e 2 -o spart.ckpt
sp-train fm -e 3 --resume spart.ckpt -o spart.ckpt -q --json spart.json
sp-eval fm -c sfull.ckpt --json seval.json > /dev/null
$PY - <<'X'
import json, struct
def state(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12); return d[16 + h:-8], json.loads(d[16:16 + h])
a, ha = state("sfull.ckpt"); b, hb = state("spart.ckpt")
assert a == b, "the resumed partial-epoch run differs from an uninterrupted one"
assert ha["optimizer"]["step"] == hb["optimizer"]["step"] == 1200, (ha["optimizer"], hb["optimizer"])
assert ha["extra"]["recipe"]["steps_per_epoch"] == hb["extra"]["recipe"]["steps_per_epoch"] == 400
r, e = json.load(open("sfull.json")), json.load(open("seval.json"))
# the last epoch's test accuracy counts 5 batches of 64: a multiple of 1/320, unlike the whole split's
acc = r["per_epoch"][-1]["test_accuracy"]
assert abs(acc * 320 - round(acc * 320)) < 1e-9, acc
assert e["records"] == 10000, e["records"]
print(f"3 epochs of 400 steps (past the first pass) resumed after epoch 2: {len(a)} bytes equal; "
      f"test accuracy on 5 batches {acc:.4f}, on the whole split {e['accuracy']:.4f}")
X

# normalization from the shard attributes: a net trained on uint8 shards that
# record sp-normalize's statistics scores the same on shards where sp-normalize
# applied them (float32), and worse on the same pixels without them
sp-unpack $FMNIST/*.gz | sp-decode -q | sp-normalize -q | sp-shard -q -o u8n
set -- $($PY -c "import json; n = json.load(open('u8n/manifest.json'))['normalize']; print(n['mean'][0], n['std'][0])")
sp-unpack $FMNIST/*.gz | sp-decode -q | sp-normalize -q --mean $1 --std $2 --dtype float32 | sp-shard -q -o f32
sp-train -q u8n -e 1 -o u8n.ckpt
for d in u8n f32 fm; do sp-eval $d --checkpoint u8n.ckpt --json $d.json > /dev/null; done
$PY - <<'X'
import json
a, b, c = (json.load(open(f"{d}.json"))["accuracy"] for d in ("u8n", "f32", "fm"))
assert a == b and c < a - 0.02, (a, b, c)
print(f"trained on uint8 + recorded statistics: {a:.4f}; on float32 normalized shards {b:.4f}; without them {c:.4f}")
X

# two threads sharing out each batch: the same weights on every run
sp-train -q fm -e 1 -j 2 -o j2a.ckpt
sp-train -q fm -e 1 -j 2 -o j2b.ckpt
$PY - <<'X'
import struct
def state(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12); return d[16 + h:-8]
assert state("j2a.ckpt") == state("j2b.ckpt"), "two runs with 2 threads gave different weights"
print("2 threads: two runs give identical weights")
X

# a checkpoint for other shapes, a corrupt one, a cut one, not one at all
$PY "$FIX/make_cifar.py" cf --per-batch 40
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -o c10
sp-train -q c10 --model cnn -e 1 -b 16 --lr 0.01 --optimizer sgd -o cnn.ckpt --json cnn.json
$PY -c "import json, math; r = json.load(open('cnn.json')); assert r['model'] == 'cnn' and math.isfinite(r['loss']), r"
# the learning rate per step: step decay, and linear warm-up (13 steps an epoch)
sp-train -q c10 --model cnn -e 3 -b 16 --optimizer sgd --lr 0.05 --schedule step --step-size 1 --gamma 0.5 \
    --json step.json
sp-train -q c10 --model cnn -e 3 -b 16 --optimizer sgd --lr 0.05 --warmup 2 --json warm.json
$PY - <<'X'
import json
lr = lambda f: [e["lr"] for e in json.load(open(f))["per_epoch"]]
for got, want in ((lr("step.json"), [0.05, 0.025, 0.0125]), (lr("warm.json"), [0.05 * 13 / 26, 0.05, 0.05])):
    assert all(abs(g - w) < 1e-7 for g, w in zip(got, want)) and len(got) == 3, (got, want)
print("learning rate at each epoch's last step: step", lr("step.json"), "warm-up", lr("warm.json"))
X
# a diverging run stops at the epoch whose loss is not finite, and says so
expect_status 1 sp-train c10 --model cnn -e 2 -b 16 --optimizer sgd --lr 10
expect_err "sp-train: epoch 1: the loss is not finite: the training diverged (try a lower --lr)"
expect_status 1 sp-eval fm --checkpoint cnn.ckpt
expect_err "sp-eval: cnn.ckpt: a cnn for 32x32x3 inputs and 10 classes; the test split holds 28x28x1 and 10"
expect_status 1 sp-train fm -e 2 --resume cnn.ckpt
expect_err "sp-train: cnn.ckpt: a cnn for 32x32x3 inputs and 10 classes; the shards hold 28x28x1 and 10"
$PY -c "d = bytearray(open('mlp.ckpt','rb').read()); d[len(d)//2] ^= 1; open('flip.ckpt','wb').write(d)"
expect_status 1 sp-eval fm --checkpoint flip.ckpt
expect_err "sp-eval: flip.ckpt: checksum mismatch (corrupt or cut)"
head -c 5000 mlp.ckpt > cut.ckpt
expect_status 1 sp-train fm --resume cut.ckpt
expect_err "sp-train: cut.ckpt: 5000 bytes, but its header (model mlp, 28x28x1, 10 classes) implies $(stat -c %s mlp.ckpt)"
sp-unpack $FMNIST/train-*.gz | sp-decode -q | sp-shard -q -o trainonly
expect_status 1 sp-eval trainonly --checkpoint mlp.ckpt
expect_err "sp-eval: trainonly: neither a test nor a val split (name one with --split)"
expect_status 1 sp-eval fm --checkpoint run.json
expect_err "sp-eval: run.json: not a shardpipe checkpoint (bad magic)"

# shards that do not verify, with --verify full: refused before the first epoch
cp -r fm bad
f=$(ls bad/test-*.h5)
$PY -c "import sys; p = sys.argv[1]; d = bytearray(open(p,'rb').read()); d[len(d)//2] ^= 0x40; open(p,'wb').write(d)" "$f"
expect_status 1 sp-train bad -e 1 --verify full
expect_err_has "sp-train: bad: the shards do not verify: $(basename "$f"): sha256"
grep -q "epoch" err && fail "trained on shards that do not verify"
expect_status 2 sp-train fm -e 3 --resume full.ckpt
expect_err "sp-train: full.ckpt: already trained 3 epochs; ask for more with --epochs"
expect_status 2 sp-train fm --model resnet9
expect_err "sp-train: --model: not one of mlp, cnn, cnn-same, resnet18, resnet34, resnet50, resnet20, resnet32, resnet44, resnet56, resnet110, inception_v3, vgg11, vgg11_bn, vgg16, vgg16_bn, vgg11-cifar, vgg11_bn-cifar, vgg16-cifar, vgg16_bn-cifar: resnet9
Try 'sp-train --help' for more information."
echo ok
