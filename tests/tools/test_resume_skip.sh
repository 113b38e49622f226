# sp-train --resume inside a pass (--steps-per-epoch) skips the batches
# before the resume point without reading them: the pixel augmentation's
# draws are replayed without the pixels, and the reader never reads the
# windows before the resume point. The resumed run equals the uninterrupted
# one bit for bit, and still does after a record in those skipped windows is
# damaged (a run that read past them would fail on it).
. "$SP_ROOT/tests/tools/lib.sh"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
sp-unpack -q "$FMNIST"/*.gz | sp-decode -q | sp-shard -q --no-shuffle -o S
[ "$($PY -c 'import json; print(sum(s["split"] == "train" for s in json.load(open("S/manifest.json"))["shards"]))')" = 1 ] \
    || fail "the train split is not one shard"
set -- --steps-per-epoch 40 --eval-steps 1 -b 64 --augment crop-flip --seed 3 -q
sp-train S "$@" -e 2 -o full.ckpt
sp-train S "$@" -e 1 -o part.ckpt
cp part.ckpt part2.ckpt
sp-train S -e 2 --resume part.ckpt -o part.ckpt -q
state() { $PY - "$1" "$2" <<'X'
import struct, sys
def state(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12); return d[16 + h:-8]
sys.exit(0 if state(sys.argv[1]) == state(sys.argv[2]) else 1)
X
}
state full.ckpt part.ckpt || fail "the resumed run (crop-flip, inside a pass) differs from the uninterrupted one"
# epoch 2 is batches 40..79 of the first pass: records 2560.. of the one
# shard, read in windows of 16 batches (1024 records); damage record 0's
# checksum, in window 0, which the resume skips
$PY - S/train-*.h5 <<'X'
import sys
import h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    c = f["checksums"][:]
    c[0] ^= np.uint64(1)
    f["checksums"][:] = c
X
sp-train S -e 2 --resume part2.ckpt -o part2.ckpt -q || fail "the resume read a record before its resume point"
state full.ckpt part2.ckpt || fail "the resumed run past a damaged skipped record differs"
# (a run that reads record 0 fails on it: the damage is real)
expect_status 1 sp-train S "$@" -e 1 -o x.ckpt
expect_err_has "record 0"
echo ok
