# A new user's first hour, following the README: (1) a folder of 3 classes
# with no split directory, holding JPEG, PNG, BMP and WebP files, a broken
# file and a README; (2) convert it; (3) inspect it; (4) train it; (5)
# predict on a folder of unlabelled images by class name; (6) export to
# PyTorch and check that PyTorch's prediction equals ours.
. "$SP_ROOT/tests/tools/lib.sh"
$PY -c "import torch, torchvision" 2>/dev/null || fail "python3-torch and python3-torchvision are not installed"
# (1)
$PY - <<'X'
import os
import numpy as np
from PIL import Image
rng = np.random.default_rng(1)
for c, cls in enumerate(("forest", "desert", "ocean")):
    os.makedirs(f"photos/{cls}")
    for k in range(10):
        px = rng.integers(0, 256, (20 + k, 24, 3), dtype=np.uint8)
        px[..., c] = 255
        im = Image.fromarray(px)
        fmt = ("JPEG", "PNG", "BMP", "WEBP")[k % 4] if k < 8 else "PNG"
        im.save(f"photos/{cls}/{cls}{k}.{fmt.lower().replace('jpeg', 'jpg')}", fmt)
    os.makedirs("new", exist_ok=True)
    px = rng.integers(0, 256, (18, 26, 3), dtype=np.uint8); px[..., c] = 255
    Image.fromarray(px).save(f"new/photo{c}.png")
open("photos/desert/broken.jpg", "wb").write(b"\xff\xd8\xff\xe0 cut short")
open("photos/README", "w").write("my photos\n")
X
# (2) convert: the BMP and WebP files and the broken JPEG are rejected (status 1), the rest goes on
expect_stages "0 1 0" 'sp-unpack photos | sp-decode --labels-from dirs --resize 16 --rejects rej.jsonl | sp-shard -o S'
[ "$(grep -c '"reason":"unsupported"' rej.jsonl)" = 12 ] || fail "$(cat rej.jsonl)"
grep -q '"key":"desert/broken.jpg","reason":"\(truncated\|corrupt\)"' rej.jsonl || fail "the broken file: $(cat rej.jsonl)"
grep -q '"key":"README","reason":"skipped"' rej.jsonl || fail "the README"
# (3) inspect
sp-verify -q S
sp-inspect S > inspect.txt || fail "sp-inspect"
grep -q "desert" inspect.txt && grep -q "train" inspect.txt || fail "$(cat inspect.txt)"
# (4) train
sp-train -q S --model cnn-same -e 3 -b 6 --lr 0.003 -o photos.ckpt
# (5) predict new images by class name
sp-unpack new | sp-decode -q --unlabeled --resize 16 | sp-shard -q -o N
sp-eval N -c photos.ckpt --predict pred.jsonl --logits ours.f32
[ "$(wc -l < pred.jsonl)" = 3 ] || fail "$(cat pred.jsonl)"
grep -q '"top":\[\["\(desert\|forest\|ocean\)",' pred.jsonl || fail "$(cat pred.jsonl)"
# (6) export to PyTorch; its prediction equals ours
$PY "$SP_ROOT/scripts/ckpt2torch.py" photos.ckpt photos.pth 2> conv.err || { cat conv.err >&2; fail "ckpt2torch.py"; }
$PY - <<'X'
import json, os, sys
import h5py, numpy as np, torch
sys.path.insert(0, os.environ["SP_ROOT"] + "/tests/fixtures")
from torch_models import cnn
model = cnn(3, padding=1, hw=(16, 16))
model.load_state_dict(torch.load("photos.pth"))
model.eval()
m = json.load(open("N/manifest.json"))
names = json.load(open("S/manifest.json"))["classes"]
x = np.concatenate([h5py.File("N/" + e["file"], "r")["images"][:] for e in m["shards"] if e["split"] == "train"])
with torch.no_grad():
    p = torch.softmax(model(torch.from_numpy(x.astype(np.float32) / 255).permute(0, 3, 1, 2)), 1).numpy()
ours = [json.loads(l) for l in open("pred.jsonl")]
for i, line in enumerate(ours):
    theirs = names[int(p[i].argmax())]
    assert line["top"][0][0] == theirs, (line, theirs, p[i])
    assert abs(line["top"][0][1] - p[i].max()) < 1e-5, (line, p[i])
    print(line["key"], "->", theirs, "in PyTorch and here")
X
echo ok
