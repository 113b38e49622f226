# Encoded sets: sp-train's --crop-scale reaches the reader's train view (two
# scales train two different models, where the view kept torchvision's
# default whatever was asked), and a set converted with sp-decode --max-pixels
# above the readers' 100 million records its limit: the readers decode its
# large image, and a reader given a lower limit refuses the set at the start,
# before any record, naming both limits.
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/python"
$PY - <<'X'
import os
import numpy as np
from PIL import Image
rng = np.random.default_rng(2)
for k in range(24):
    d = f"tree/train/c{k % 2}"
    os.makedirs(d, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (90 + k, 120, 3), dtype=np.uint8)).save(f"{d}/{k}.jpg", quality=90)
# one image of 10001 x 10001 pixels, over 100 million, as a small PNG
Image.new("L", (10001, 10001), 77).save("tree/train/c0/big.png", optimize=False)
X
expect_stages "0 0 0" "sp-unpack tree | sp-decode -q --labels-from dirs --encoded --max-pixels 200000000 | sp-shard -q -o E"
for scale in 0.08 0.9; do
    sp-train -q E --model mlp --view-size 16 -e 1 -b 8 --augment crop-flip --crop-scale $scale -o s$scale.ckpt \
        || fail "sp-train --crop-scale $scale"
done
cmp -s s0.08.ckpt s0.9.ckpt && fail "--crop-scale 0.08 and 0.9 trained the same weights on an encoded set"
$PY - <<'X'
import glob, json
import h5py
import numpy as np
import shardpipe
with h5py.File(sorted(glob.glob("E/*.h5"))[0]) as h:
    assert json.loads(h.attrs["meta"])["max_pixels"] == 200000000
# the set's own limit: every record decodes, the large one included
n = sum(len(y) for _, y in shardpipe.Loader("E", batch_size=5, view="eval", size=16, threads=1))
assert n == 25, n
# scale= and ratio= change the train views; the default equals torchvision's range given
def views(**kw):
    return np.concatenate([x for x, _ in shardpipe.Loader("E", batch_size=5, view="train", size=16, shuffle=False,
                                                          threads=0, seed=3, **kw)])
default = views()
assert np.array_equal(default, views(scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)))
assert not np.array_equal(default, views(scale=(0.9, 1.0)))
# a lower limit: refused at the first batch, naming both limits
try:
    next(iter(shardpipe.Loader("E", batch_size=5, view="eval", size=16, max_pixels=100000000)))
    raise SystemExit("a set over the reader's limit was read")
except shardpipe.ReaderArgumentError as e:
    assert "200000000" in str(e) and "100000000" in str(e), e
for bad in ((0.5, 0.2), (0, 1), (0.5, 1.5)):
    try:
        shardpipe.Loader("E", scale=bad)
        raise SystemExit(f"scale={bad} accepted")
    except ValueError:
        pass
X
echo ok
