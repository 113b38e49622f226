# Encoded shards (JPEGs as shipped, decoded at load) through libshardpipe-reader
# and shardpipe.Loader: the eval view equals torchvision's Resize(256) +
# CenterCrop(224) on PIL, 0 difference, for every record; the train view's
# batches do not depend on the thread count, repeat for a seed, change with
# the epoch and resume exactly after batch k; a flipped byte of an encoded
# image fails naming the shard and the record; the C reader refuses an
# encoded set without a view; sp-train and sp-eval run on one.
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/python:$SP_ROOT/bench"
$PY -c "import torchvision" || fail "python3-torchvision is missing (scripts/install-deps.sh installs it)"
$PY -c "from benchlib import make_photo_archive; make_photo_archive('.', 40)"
expect_stages "0 0 0" 'sp-unpack -q train.tar | sp-decode -q --classes classes.txt --encoded | sp-shard -q -n 16 -o enc'
[ "$(ls enc/*.h5 | wc -l)" -ge 2 ] || fail "expected the 40 images in 3 shards"

$PY - <<'X'
import glob, os
import numpy as np
from PIL import Image
from torchvision import transforms
import shardpipe

# eval view: torchvision's on PIL, pixel for pixel, every record, keys in hand
tv = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
L = shardpipe.Loader("enc", batch_size=7, shuffle=False, view="eval", size=224, return_keys=True, threads=2)
seen = 0
for x, y, keys in L:
    assert x.shape[1:] == (224, 224, 3) and x.dtype == np.uint8
    for img, key in zip(x, keys):
        want = np.asarray(tv(Image.open(os.path.join("photos", key.split("/")[-1])).convert("RGB")))
        d = np.abs(img.astype(int) - want.astype(int)).max()
        assert d == 0, f"{key}: eval view differs from torchvision by {d}"
        seen += 1
assert seen == 40, seen
print("eval view: 40 of 40 records equal torchvision Resize(256)+CenterCrop(224) on PIL, 0 difference")

# train view: the same batches on 0, 1 and 3 threads; a seed repeats, an epoch changes them
def epoch(threads, seed=5, ep=0, **kw):
    L = shardpipe.Loader("enc", batch_size=6, seed=seed, view="train", size=96, threads=threads, **kw)
    L.set_epoch(ep)
    return [(x.copy(), y.copy()) for x, y in L]
a, b, c = epoch(0), epoch(1), epoch(3)
same = lambda p, q: len(p) == len(q) and all(np.array_equal(x1, x2) and np.array_equal(y1, y2)
                                            for (x1, y1), (x2, y2) in zip(p, q))
assert same(a, b) and same(a, c), "the train view's batches depend on the thread count"
assert same(a, epoch(2)), "a seed does not repeat its batches"
assert not same(a, epoch(2, ep=1)), "epoch 1 gave epoch 0's batches"
assert a[0][0].shape == (6, 96, 96, 3)
# resume after batch k: the same batches k+1... as the uninterrupted epoch
for k in (1, 4):
    L = shardpipe.Loader("enc", batch_size=6, seed=5, view="train", size=96, threads=2)
    it = iter(L)
    for _ in range(k):
        next(it)
    R = shardpipe.Loader("enc", batch_size=6, seed=5, view="train", size=96, threads=2)
    R.load_state_dict(L.state_dict())
    assert same([(x.copy(), y.copy()) for x, y in R], a[k:]), f"resume after batch {k} differs"
print("train view: equal on 0, 1 and 3 threads; a seed repeats; epochs differ; resume after 1 and 4 exact")

# ShardIterableDataset through a DataLoader: every record once, through the view; ShardDataset refuses
import torch
ds = shardpipe.ShardIterableDataset("enc", size=48, return_keys=True)
dl = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=2)
batches = list(dl)
keys = [k for _, _, ks in batches for k in ks]
assert len(keys) == len(set(keys)) == 40 and all(b[0].shape[1:] == (48, 48, 3) for b in batches), len(keys)
try:
    shardpipe.ShardDataset("enc")
    raise SystemExit("ShardDataset read an encoded set")
except ValueError as e:
    assert "encoded images" in str(e), e
try:
    shardpipe.load_data("enc")
    raise SystemExit("load_data read an encoded set")
except ValueError as e:
    assert "encoded images" in str(e), e
print("ShardIterableDataset: 40 keys once through 2 workers; ShardDataset and load_data refuse encoded shards")
X

# a flipped byte inside an encoded image: named by shard and record
first=$(ls enc/*.h5 | head -n 1)
cp "$first" keep.h5
$PY - "$first" <<'X'
import sys
import h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    ds, offsets = f["encoded"], f["offsets"][:]
    spot = int(offsets[2]) + 300  # inside record 2's bytes: the chunks are stored raw
    assert ds.compression is None and ds.chunks and spot < int(offsets[3]), "the fixture's layout changed"
    c = ds.chunks[0]
    info = ds.id.get_chunk_info_by_coord((spot // c * c,))
    at = info.byte_offset + spot % c
    spot = 0
with open(path, "r+b") as g:
    g.seek(at + spot)
    b = g.read(1)
    g.seek(at + spot)
    g.write(bytes([b[0] ^ 0x40]))
X
$PY - "$first" > corrupt.out 2>&1 <<'X' && fail "a flipped byte was read without an error"
import sys
import shardpipe
for view in ("train", "eval"):
    try:
        for _ in shardpipe.Loader("enc", batch_size=8, shuffle=False, view=view, threads=2):
            pass
    except shardpipe.CorruptShardError as e:
        print(view, e)
        continue
    sys.exit(0)
sys.exit(1)
X
grep -q "train .*$first: record 2: .*checksum" corrupt.out || fail "train: $(cat corrupt.out)"
grep -q "eval .*$first: record 2: .*checksum" corrupt.out || fail "eval: $(cat corrupt.out)"
cp keep.h5 "$first"

# the C reader: an encoded set needs a view
cc -std=c11 -Wall -Werror ${SP_SAN:-} "$SP_ROOT/bench/reader_bench.c" -I"$SP_ROOT/include" \
    -L"$(dirname "$SP_BIN")/lib" -lshardpipe-reader -Wl,-rpath,"$(dirname "$SP_BIN")/lib" -o reader_bench
expect_status 1 ./reader_bench enc train 8 shuffle 2
expect_err "reader_bench: the set holds encoded images: choose a view (SPR_VIEW_TRAIN or SPR_VIEW_EVAL) and a size"
./reader_bench enc train 8 shuffle 2 1 train 64 > rb.out || fail "reader_bench with the train view"
[ "$(cut -d' ' -f1 rb.out)" = 40 ] || fail "reader_bench: $(cat rb.out)"

# sp-train and sp-eval: the load-time views at --view-size
sp-train -q enc --model resnet20 --view-size 32 -e 1 -b 8 -o r20.ckpt --json r20.json
$PY -c "import json, math; r = json.load(open('r20.json')); assert math.isfinite(r['loss']), r"
sp-eval enc --split train --checkpoint r20.ckpt --json eval.json
$PY -c "import json; r = json.load(open('eval.json')); assert 0 <= r['accuracy'] <= 1 and r['records'] == 40, r"
echo "encoded shards: C reader, Loader, sp-train and sp-eval ok"
