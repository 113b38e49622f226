# sp-train --resume against options given on the command line: one that
# shapes what is trained and differs from the checkpoint's is a usage error
# (status 2) naming the option and both values; the rate and its schedule
# change from the resumed epoch on, said on stderr, and the run matches a
# resume without them only where they do not change. --view-size on a pixel
# set and --crop-scale without crop-flip are usage errors in fresh runs too.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_idx.py" idx --train 64 --test 16 --size 8 8 > /dev/null
sp-unpack -q --dataset mnist idx/* | sp-decode -q | sp-shard -q -o d
set -- --model mlp --batch 16 --optimizer sgd --lr 0.05 --momentum 0.9 --seed 7 --threads 1 -q
sp-train d "$@" -e 1 -o e1.ckpt

refused() { # WANT ARGS...: sp-train --resume e1.ckpt ARGS... fails with status 2 and stderr WANT
    msg=$1; shift
    expect_status 2 sp-train d --resume e1.ckpt -e 2 --threads 1 -q "$@" -o bad.ckpt
    expect_err "sp-train: $msg"
    [ ! -e bad.ckpt ] || fail "$*: a refused resume wrote its checkpoint"
}
keeps="which a resumed run keeps"
refused "--model cnn-same: the checkpoint e1.ckpt was trained with --model mlp, $keeps (leave --model out)" --model cnn-same
refused "--model mlp+head8: the checkpoint e1.ckpt was trained with --model mlp, $keeps (leave --model out)" --head 8
refused "--batch 32: the checkpoint e1.ckpt was trained with --batch 16, $keeps (leave --batch out)" -b 32
refused "--optimizer adam: the checkpoint e1.ckpt was trained with --optimizer sgd, $keeps (leave --optimizer out)" --optimizer adam
refused "--momentum 0.5: the checkpoint e1.ckpt was trained with --momentum 0.9, $keeps (leave --momentum out)" --momentum 0.5
refused "--weight-decay 0.01: the checkpoint e1.ckpt was trained with --weight-decay 0, $keeps (leave --weight-decay out)" --weight-decay 0.01
refused "--seed 8: the checkpoint e1.ckpt was trained with --seed 7, $keeps (leave --seed out)" --seed 8
refused "--augment flip: the checkpoint e1.ckpt was trained with --augment none, $keeps (leave --augment out)" --augment flip
refused "--label-smoothing 0.1: the checkpoint e1.ckpt was trained with --label-smoothing 0, $keeps (leave --label-smoothing out)" --label-smoothing 0.1
refused "--freeze base: the checkpoint e1.ckpt was trained with --freeze none, $keeps (leave --freeze out)" --freeze base
refused "--steps-per-epoch 2: the checkpoint e1.ckpt was trained with --steps-per-epoch 0, $keeps (leave --steps-per-epoch out)" --steps-per-epoch 2
refused "--sync-bn on: the checkpoint e1.ckpt was trained with --sync-bn off, $keeps (leave --sync-bn out)" --sync-bn
refused "--init: not with --resume (the weights come from the checkpoint e1.ckpt)" --init e1.ckpt
refused "--crop-scale 0.5: the checkpoint e1.ckpt was trained with --crop-scale 0.08, $keeps (leave --crop-scale out)" --crop-scale 0.5
refused "--view-size: d holds pixels, not encoded images: the model sees them as stored" --view-size 8
# a given value equal to the checkpoint's is no conflict: the same bytes as a plain resume
sp-train d --resume e1.ckpt -e 2 --threads 1 -q -o plain.ckpt
sp-train d --resume e1.ckpt -e 2 "$@" -o same.ckpt
cmp plain.ckpt same.ckpt 2>/dev/null || $PY - <<'X'
import struct
def body(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12); return d[16 + h:-8]
assert body("plain.ckpt") == body("same.ckpt"), "a resume with the checkpoint's own options trained otherwise"
X
# the rate and its schedule may change: said on stderr, and they change the run
expect_status 0 sp-train d --resume e1.ckpt -e 2 --threads 1 -q --lr 0.01 --schedule cosine -o lr.ckpt
expect_err "sp-train: --lr 0.01 from epoch 2 on, in place of the checkpoint's 0.05
sp-train: --schedule cosine from epoch 2 on, in place of the checkpoint's constant"
$PY - <<'X'
import json, struct
d = open("lr.ckpt", "rb").read(); (h,) = struct.unpack_from("<I", d, 12)
r = json.loads(d[16:16 + h])["extra"]["recipe"]
assert abs(r["lr"] - 0.01) < 1e-9 and r["schedule"] == "cosine", r
X
# fresh runs: --crop-scale without crop-flip, --view-size on pixels
expect_status 2 sp-train d "$@" -e 1 --augment flip --crop-scale 0.5
expect_err "sp-train: --crop-scale: only with --augment crop-flip (this run's augment is flip)"
expect_status 2 sp-train d "$@" -e 1 --view-size 8
expect_err "sp-train: --view-size: d holds pixels, not encoded images: the model sees them as stored"
echo ok
