# run.sh: long
# Fine-tuning from a torchvision state_dict: a seeded, random torchvision
# resnet18 exported with torch.save, converted by scripts/torch2ckpt.py;
# sp-eval's first forward pass (its logits) equals PyTorch's own in eval mode;
# sp-train --init --freeze base leaves every base weight and batchnorm
# statistic bit for bit as in the file after an epoch, while the classifier
# trains; a file of another class count (1000) gets a new head; --head N puts
# the seed's head (global average pool, dense N, relu, dense classes) on the
# pretrained base; a frozen run resumed equals an uninterrupted one; a file
# of another model is refused.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_cifar.py" cf --per-batch 40
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -o c10
$PY - <<'X'
import torch, torchvision
torch.manual_seed(11)
for classes, path in ((10, "r18.pth"), (1000, "r18_1000.pth")):
    m = torchvision.models.resnet18(num_classes=classes)
    with torch.no_grad():  # batchnorm away from its defaults, so evaluation mode shows
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.copy_(torch.rand_like(mod.weight) + 0.5)
                mod.bias.copy_(torch.randn_like(mod.bias) * 0.1)
                mod.running_mean.copy_(torch.randn_like(mod.running_mean) * 0.1)
                mod.running_var.copy_(torch.rand_like(mod.running_var) + 0.5)
    torch.save(m.state_dict(), path)
X
$PY "$SP_ROOT/scripts/torch2ckpt.py" r18.pth r18.ckpt --model resnet18 --input 3x32x32
$PY "$SP_ROOT/scripts/torch2ckpt.py" r18_1000.pth r18_1000.ckpt --model resnet18 --input 3x32x32

# the first forward pass: sp-eval's logits against torchvision's on the same images
sp-eval c10 -c r18.ckpt --logits ours.f32 --json eval.json > /dev/null
$PY - <<'X'
import json, h5py, numpy as np, torch, torchvision
m = torchvision.models.resnet18(num_classes=10)
m.load_state_dict(torch.load("r18.pth"))
m.eval()
sh = [s["file"] for s in json.load(open("c10/manifest.json"))["shards"] if s["split"] == "test"]
x = np.concatenate([h5py.File("c10/" + f, "r")["images"][:] for f in sh]).transpose(0, 3, 1, 2).astype(np.float32) / 255
with torch.no_grad():
    want = m(torch.tensor(x)).numpy()
got = np.fromfile("ours.f32", dtype="<f4").reshape(want.shape)
d = np.abs(got - want)
print(f"resnet18 from a torchvision state_dict: {want.size} logits, max |difference| {d.max():.2e} "
      f"(largest |logit| {np.abs(want).max():.2f})")
assert (d <= 1e-4 + 1e-4 * np.abs(want)).all(), d.max()
assert json.load(open("eval.json"))["records"] == len(x)
X

# --freeze base: after an epoch every base tensor and statistic is the file's, bit for bit
sp-train c10 --model resnet18 --init r18.ckpt --freeze base -e 1 -b 16 --lr 0.01 -q -o ft.ckpt --json ft.json
sp-train c10 --model resnet18 --init r18_1000.ckpt --freeze base -e 1 -b 16 -q -o ft1000.ckpt --json ft1000.json
sp-train c10 --model resnet18 --head 64 --init r18.ckpt --freeze base -e 1 -b 16 -q -o head.ckpt --json head.json
sp-train c10 --model resnet18 --init r18.ckpt -e 1 -b 16 --lr 0.01 -q -o free.ckpt
cat > ckpt.py <<'X'
import json, struct, numpy as np
def tensors(path):
    """The checkpoint's parameter values (per tensor, without the optimizer
    moments) and its running statistics, in file order."""
    d = open(path, "rb").read()
    (hl,) = struct.unpack_from("<I", d, 12)
    h = json.loads(d[16:16 + hl])
    return h, np.frombuffer(d[16 + hl:-8], dtype="<f4")
def split(path, sizes, nstats):
    """sizes: the parameter tensors' lengths; nstats: the running-statistic floats."""
    h, f = tensors(path)
    params, at = [], 0
    for n in sizes:
        params.append(f[at:at + n]); at += 3 * n
    assert len(f) == at + nstats, (path, len(f), at, nstats)
    return h, params, f[at:]
X
$PY - <<'X'
import json, numpy as np
from ckpt import tensors, split
src = json.loads(open("r18.ckpt", "rb").read()[16:16 + int.from_bytes(open("r18.ckpt", "rb").read()[12:16], "little")])
names = [(n, int(np.prod(s))) for n, s in src["extra"]["tensors"]]
params = [(n, s) for n, s in names if not n.endswith(("running_mean", "running_var"))]
nstats = sum(s for n, s in names if n.endswith(("running_mean", "running_var")))
sizes = [s for _, s in params]
_, p0, r0 = split("r18.ckpt", sizes, nstats)
h, p1, r1 = split("ft.ckpt", sizes, nstats)
base = len(sizes) - 2  # all but fc.weight, fc.bias
assert all(np.array_equal(a.view("<u4"), b.view("<u4")) for a, b in zip(p0[:base], p1[:base])), "a base weight moved"
assert np.array_equal(r0.view("<u4"), r1.view("<u4")), "a batchnorm statistic moved"
assert not np.array_equal(p0[-2], p1[-2]) and not np.array_equal(p0[-1], p1[-1]), "the classifier did not train"
assert h["extra"]["recipe"]["freeze"] is True
r = json.load(open("ft.json"))
assert r["init"]["head_copied"] is True, r["init"]
print(f"--freeze base: {base} base tensors ({sum(sizes[:base])} values) and {nstats} statistics bit-identical "
      f"after an epoch; the classifier moved by up to {np.abs(p0[-2] - p1[-2]).max():.3g}")
# a file of 1000 classes on 10-class shards: the base copied, the head new
assert json.load(open("ft1000.json"))["init"]["head_copied"] is False
_, q0, s0 = split("r18_1000.ckpt", sizes[:-2] + [512 * 1000, 1000], nstats)
_, q1, s1 = split("ft1000.ckpt", sizes, nstats)
assert all(np.array_equal(a, b) for a, b in zip(q0[:base], q1[:base])) and np.array_equal(s0, s1)
print("a 1000-class file on 10 classes: the base copied and kept, the head initialised anew")
# --head 64: the seed's head on the pretrained base
hh, g1, t1 = split("head.ckpt", sizes[:base] + [512 * 64, 64, 64 * 10, 10], nstats)
assert hh["model"] == "resnet18+head64", hh["model"]
assert all(np.array_equal(a, b) for a, b in zip(p0[:base], g1[:base])) and np.array_equal(r0, t1)
assert json.load(open("head.json"))["init"]["head_copied"] is False
print("--head 64: resnet18+head64, the base the file's, bit for bit")
# without --freeze the base trains (and its statistics move)
_, f1, u1 = split("free.ckpt", sizes, nstats)
assert not np.array_equal(p0[0], f1[0]) and not np.array_equal(r0, u1)
X
sp-eval c10 -c head.ckpt --json - | $PY -c "import json, sys; e = json.load(sys.stdin); assert e['model'] == 'resnet18+head64', e"

# a frozen run resumed ends where an uninterrupted one does
set -- --model resnet18 --init r18.ckpt --freeze base -b 16 --seed 3 -q
sp-train c10 "$@" -e 2 -o full.ckpt
sp-train c10 "$@" -e 1 -o part.ckpt
sp-train c10 -e 2 --resume part.ckpt -o part.ckpt -q
$PY - <<'X'
from ckpt import tensors
ha, a = tensors("full.ckpt"); hb, b = tensors("part.ckpt")
assert ha["model"] == hb["model"] == "resnet18" and hb["extra"]["recipe"]["freeze"] is True
assert (a.view("<u4") == b.view("<u4")).all(), "the resumed frozen run differs from an uninterrupted one"
print(f"a frozen run resumed after epoch 1: {a.size} floats equal to an uninterrupted run's")
X

# refusals: another model's file; a model without a base to freeze
sp-train c10 --model cnn -e 1 -q -o cnn.ckpt
expect_status 1 sp-train c10 --model resnet18 --init cnn.ckpt -e 1 -q
expect_err "sp-train: cnn.ckpt: a cnn, not a resnet18"
expect_status 2 sp-train c10 --model mlp --freeze base -e 1 -q
expect_err "sp-train: model mlp has no base to freeze"
echo ok
