# scripts/ckpt2torch.py: a checkpoint to a PyTorch state_dict whose model
# (torchvision's names, or tests/fixtures/torch_models.py's mirrors) gives
# sp-eval's logits within 1e-4 (float32 sums in another order), batchnorm's
# running statistics included (resnet20).
. "$SP_ROOT/tests/tools/lib.sh"
$PY -c "import torch, torchvision" 2>/dev/null || fail "python3-torch and python3-torchvision are not installed"
$PY - <<'X'
import os
import numpy as np
from PIL import Image
rng = np.random.default_rng(3)
for c, cls in enumerate(("ant", "bee", "cow")):
    os.makedirs(f"tree/{cls}")
    for k in range(8):
        px = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        px[..., c] //= 4
        Image.fromarray(px).save(f"tree/{cls}/{k}.png")
X
sp-unpack tree | sp-decode -q --labels-from dirs | sp-shard -q -o S
for m in mlp cnn resnet20; do
    sp-train -q S --model $m -e 1 -b 8 -o $m.ckpt
    sp-eval -q S -c $m.ckpt --split train --logits $m.f32 > /dev/null
    $PY "$SP_ROOT/scripts/ckpt2torch.py" $m.ckpt $m.pth 2> conv.err || { cat conv.err >&2; fail "ckpt2torch.py $m"; }
    grep -q "ant, bee, cow" conv.err || fail "the class names are not printed: $(cat conv.err)"
    $PY - $m <<'X'
import json, os, sys
import h5py, numpy as np, torch
sys.path.insert(0, os.environ["SP_ROOT"] + "/tests/fixtures")
from torch_models import cnn, mlp, resnet
name = sys.argv[1]
model = {"mlp": lambda: mlp(3 * 32 * 32, 3), "cnn": lambda: cnn(3), "resnet20": lambda: resnet("resnet20", 3)}[name]()
model.load_state_dict(torch.load(f"{name}.pth"))
model.eval()
m = json.load(open("S/manifest.json"))
x = np.concatenate([h5py.File("S/" + e["file"], "r")["images"][:] for e in m["shards"] if e["split"] == "train"])
x = torch.from_numpy(x.astype(np.float32) / 255).permute(0, 3, 1, 2)
with torch.no_grad():
    theirs = model(x).numpy()
ours = np.fromfile(f"{name}.f32", "<f4").reshape(theirs.shape)
err = np.abs(theirs - ours).max()
assert err < 1e-4, f"{name}: PyTorch's logits differ from sp-eval's by {err}"
assert (theirs.argmax(1) == ours.argmax(1)).all(), name
print(f"{name}: PyTorch's logits within {err:.2g} of sp-eval's")
X
done
# what it cannot convert: refused
printf 'not a checkpoint' > bad.ckpt
expect_status 1 $PY "$SP_ROOT/scripts/ckpt2torch.py" bad.ckpt bad.pth
expect_err "ckpt2torch.py: bad.ckpt: not a shardpipe checkpoint"
echo ok
