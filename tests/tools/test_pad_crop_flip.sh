# sp-train --augment pad-crop-flip is torchvision's RandomCrop(size,
# padding=--pad) (fill 0, before Normalize) then RandomHorizontalFlip: the
# trainer's augmented batch equals, pixel for pixel, torchvision's transforms
# applied with the offsets and flips the trainer's generator drew, on a raw
# and on a normalized set; --pad without it is a usage error; a resume inside
# a pass replays its draws (equal to the uninterrupted run bit for bit).
. "$SP_ROOT/tests/tools/lib.sh"
dump="$SP_BIN/../tests/aug_dump"
$PY "$FIX/make_cifar.py" fx --per-batch 20
sp-unpack fx/cifar-10-binary.tar.gz | sp-decode -q 2>/dev/null | sp-shard -q --no-shuffle -o raw
sp-unpack fx/cifar-10-binary.tar.gz | sp-decode -q 2>/dev/null | sp-normalize -q | sp-shard -q --no-shuffle -o norm
check() { # SET PAD SEED
    mkdir -p d && rm -f d/*
    "$dump" "$1" train pad-crop-flip "$2" "$3" 64 d > shape
    $PY - d "$2" $(cat shape) <<'X'
import sys
import numpy as np
import torch
import torchvision.transforms.functional as F
d, pad, (C, H, W) = sys.argv[1], int(sys.argv[2]), map(int, sys.argv[3:6])
aug = np.fromfile(f"{d}/aug.f32", np.float32).reshape(-1, C, H, W)
plain = np.fromfile(f"{d}/plain.f32", np.float32).reshape(-1, C, H, W)
draws = np.fromfile(f"{d}/draws.i32", np.int32).reshape(-1, 3)
scale, shift = np.fromfile(f"{d}/norm.f32", np.float32).reshape(2, C)
raw = np.rint((plain - shift[:, None, None]) / scale[:, None, None])
assert raw.min() >= 0 and raw.max() <= 255, (raw.min(), raw.max())
raw = torch.from_numpy(raw.astype(np.uint8))
mean, std = -shift / scale / 255, 1 / (scale * 255)
assert len(set(draws[:, 0])) > pad and len(set(draws[:, 1])) > pad and 0 < draws[:, 2].sum() < len(draws), draws
assert draws[:, :2].min() >= 0 and draws[:, :2].max() <= 2 * pad
for i, (top, left, flip) in enumerate(draws):
    # RandomCrop(H, padding=pad): pad with 0, crop at the drawn offset; then the flip
    img = F.crop(F.pad(raw[i], [pad], fill=0), int(top), int(left), H, W)
    if flip:
        img = F.hflip(img)
    ours = np.rint((aug[i] - shift[:, None, None]) / scale[:, None, None]).astype(np.int64)
    if not np.array_equal(ours, img.numpy().astype(np.int64)):
        sys.exit(f"record {i} (top {top}, left {left}, flip {flip}): the pixels differ from torchvision's")
    ref = F.normalize(F.convert_image_dtype(img, torch.float32), list(mean), list(std)).numpy()
    err = np.abs(ref - aug[i]).max()
    if err > 1e-5:
        sys.exit(f"record {i}: {err} from torchvision's normalized image")
print("equal", len(draws))
X
}
check raw 4 7 > got || fail "pad 4 on raw pixels"
check norm 4 11 >> got || fail "pad 4 on a normalized set"
check norm 9 5 >> got || fail "pad 9 on a normalized set"
printf 'equal 64\nequal 64\nequal 64\n' | diff -u - got
# options
expect_status 2 sp-train norm --pad 3 -e 1
expect_err "sp-train: --pad: only with --augment pad-crop-flip (this run's augment is none)"
expect_status 2 sp-train norm --augment pad-crop-flip --pad 65 -e 1
expect_err_has "sp-train: --pad: "
# a resume inside a pass equals the uninterrupted run; the checkpoint records the padding
set -- -m cnn-same --steps-per-epoch 2 --eval-steps 1 -b 32 --augment pad-crop-flip --pad 3 --seed 3 -q
sp-train norm "$@" -e 2 -o full.ckpt
sp-train norm "$@" -e 1 -o part.ckpt
sp-train norm -e 2 --resume part.ckpt -o part.ckpt -q
$PY - full.ckpt part.ckpt <<'X'
import json, struct, sys
def parts(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12)
    return json.loads(d[16:16 + h]), d[16 + h:-8]
(ha, a), (hb, b) = parts(sys.argv[1]), parts(sys.argv[2])
r = ha["extra"]["recipe"]
assert r["augment"] == "pad-crop-flip" and r["pad"] == 3, r
sys.exit(0 if a == b else "the resumed run (pad-crop-flip, inside a pass) differs from the uninterrupted one")
X
expect_status 2 sp-train norm -e 3 --resume part.ckpt --pad 4
expect_err_has "--pad 4: the checkpoint part.ckpt was trained with --pad 3"
echo ok
