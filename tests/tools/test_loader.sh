# shardpipe.Loader and ShardIterableDataset over libshardpipe-reader: 2 ranks
# x 2 DataLoader workers over an odd record count see every key once per
# epoch; epochs differ, a seed repeats its order; a resume after batch k
# gives exactly batches k+1...; Loader batches equal the C reader's pixels
# and labels (reader_dump, the same part and seed); a flipped shard byte
# fails naming the shard and the record, in C and in Python.
. "$SP_ROOT/tests/tools/lib.sh"
export PKG_CONFIG_PATH="$(dirname "$SP_BIN")/lib/pkgconfig" PYTHONPATH="$SP_ROOT/python"
cc -std=c11 -Wall -Werror ${SP_SAN:-} "$SP_ROOT/tests/reader/reader_dump.c" $(pkg-config --cflags --libs shardpipe-reader) \
    -lxxhash -o reader_dump
$PY "$FIX/make_cifar.py" cf --per-batch 41
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-normalize | sp-shard -q -n 48 -o S
sp-unpack cf/cifar-100-binary.tar.gz | sp-decode -q | sp-shard -q -n 48 -o S100
sp-cat S > all.jsonl
[ "$(grep -c '"split": *"train"' all.jsonl)" = 205 ] || fail "the fixture is not 205 train records"

# ---- 2 ranks (processes, RANK/WORLD_SIZE from the environment) x 2 workers ----
cat > ranks.py <<'X'
import json, os, sys
import torch
import shardpipe
assert shardpipe.default_rank_world() == (int(os.environ["RANK"]), 2)
ds = shardpipe.ShardIterableDataset("S", "train", seed=int(sys.argv[1]), return_keys=True)
dl = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, collate_fn=lambda b: [r[2] for r in b])
out = {}
for epoch in (0, 1):
    ds.set_epoch(epoch)
    out[epoch] = [k for batch in dl for k in batch]
json.dump(out, sys.stdout)
X
for seed in 5 5b; do
    s=${seed%b}
    RANK=0 WORLD_SIZE=2 $PY ranks.py $s > r0.$seed.json
    RANK=1 WORLD_SIZE=2 $PY ranks.py $s > r1.$seed.json
done
$PY - <<'X'
import json
keys = sorted(json.loads(l)["key"] for l in open("all.jsonl") if json.loads(l)["split"] == "train")
r = {(rank, seed): json.load(open(f"r{rank}.{seed}.json")) for rank in (0, 1) for seed in ("5", "5b")}
for e in ("0", "1"):
    a, b = r[0, "5"][e], r[1, "5"][e]
    assert sorted(a + b) == keys, f"epoch {e}: not every key exactly once"
    assert (len(a), len(b)) == (109, 96), (len(a), len(b))  # 64 partitions: 13 of 4 records, 51 of 3
    assert (a, b) == (r[0, "5b"][e], r[1, "5b"][e]), f"epoch {e}: the same seed gave another order"
assert r[0, "5"]["0"] != r[0, "5"]["1"], "two epochs in the same order"
print("2 ranks x 2 workers: 205 keys once per epoch; epochs differ; the seed repeats")
X

# ---- the C reader: a part after k records is the uninterrupted part from k on, for k
# around the shuffle window's ends (batch 7: a window of 112 records; skips of whole
# windows are not read), past the end too ----
for flags in "shuffle prefetch" "shuffle direct"; do
    for part in "0 1" "1 2" "2 3"; do
        ./reader_dump S train iter 7 11 $flags $part 0 > full.txt
        for k in 1 111 112 113 150 224 225 999; do
            ./reader_dump S train iter 7 11 $flags $part $k > part.txt
            tail -n +$((k + 1)) full.txt | cmp -s - part.txt || fail "$flags part $part: resume after $k records differs"
        done
    done
done

# ---- Loader: resume, drop_last, the C reader's records ----
$PY - <<'X'
import subprocess
import numpy as np
import xxhash
import shardpipe
from shardpipe.loader import epoch_seed

def lines(loader):
    return [f"{int(y)} {xxhash.xxh3_64_hexdigest(np.ascontiguousarray(x).tobytes())}"
            for xs, ys, *_ in loader for x, y in zip(xs, ys)]

for threads in (0, 1, 3):  # the caller alone, one reader thread, more threads than windows in flight
    seen = []
    for rank in (0, 1):
        L = shardpipe.Loader("S", batch_size=16, seed=3, rank=rank, world_size=2, threads=threads, return_keys=True)
        L.set_epoch(2)
        batches = list(L)
        # 32 partitions of 7 (13 of them) or 6 records, one of each a step: rank 0's run 7 steps, rank 1's 6
        assert len(batches) == len(L) == (7, 6)[rank]
        seen += [k for b in batches for k in b[2]]
        # the C reader, the same part, seed and epoch: the same labels and pixels, in order
        c = subprocess.run(["./reader_dump", "S", "train", "iter", "16", str(epoch_seed(3, 2)), "shuffle", "prefetch",
                            str(rank), "2", "0"], capture_output=True, text=True, check=True).stdout.split("\n")[:-1]
        assert [" ".join(l.split()[:2]) for l in c] == lines(batches), f"rank {rank}: Loader != C reader"
        # resume after batch k: a fresh Loader with the state gives batches k+1...
        for k in (0, 3, len(L) - 1):
            L2 = shardpipe.Loader("S", batch_size=16, seed=3, rank=rank, world_size=2, threads=threads,
                                  return_keys=True)
            L2.set_epoch(2)
            it = iter(L2)
            for _ in range(k):
                next(it)
            state = L2.state_dict()
            assert state["batches"] == k and state["epoch"] == 2
            L3 = shardpipe.Loader("S", batch_size=16, seed=3, rank=rank, world_size=2, threads=threads,
                                  return_keys=True)
            L3.load_state_dict(state)
            rest = list(L3)
            assert len(rest) == len(batches) - k
            for a, b in zip(rest, batches[k:]):
                assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and list(a[2]) == list(b[2])
        # after a whole epoch the next __iter__ is the next epoch
        assert L.epoch == 3 and lines(L) != lines(batches)
    assert len(seen) == len(set(seen)) == 205, "Loader ranks: not every key once"
    # drop_last: full batches only, the same count on both ranks
    dl = [list(shardpipe.Loader("S", batch_size=16, rank=r, world_size=2, drop_last=True, threads=threads))
          for r in (0, 1)]
    assert len(dl[0]) == len(dl[1]) == 102 // 16 and all(len(b[1]) == 16 for d in dl for b in d)
print("Loader with 0, 1 and 3 threads: equal to the C reader per rank; resume at k = 0, 3, last; drop_last equal counts")

# normalize: CHW float32, (x/255 - mean)/std per channel
L = shardpipe.Loader("S", batch_size=32, seed=1, world_size=1, rank=0)
N = shardpipe.Loader("S", batch_size=32, seed=1, world_size=1, rank=0, normalize=True)
(x, y), (xn, yn) = next(iter(L)), next(iter(N))
r = L.reader
want = ((x / 255.0 - r.mean) / r.std).astype(np.float32).transpose(0, 3, 1, 2)
assert xn.shape == (32, 3, 32, 32) and xn.dtype == np.float32 and np.allclose(xn, want, atol=1e-6)
assert np.array_equal(y, yn)
# load_data as Keras: train and test, manifest order, the C reader's random access
(xt, yt), (xs, ys) = shardpipe.load_data("S")
assert xt.shape == (205, 32, 32, 3) and xs.shape == (41, 32, 32, 3) and yt.dtype == np.uint8
img, label = r.read(7)
assert np.array_equal(xt[7], img) and yt[7] == label
# the map-style ShardDataset, random access with at most 2 files open: the same records
ds = shardpipe.ShardDataset("S", "train", normalize=False, max_open_files=2)
for i in np.random.default_rng(0).permutation(205):
    image, lab = ds[int(i)]
    assert np.array_equal(image, xt[i]) and lab == yt[i] and len(ds._handles) <= 2
print("normalize, load_data, ShardDataset with 2 open files: ok")
# label2: -1 on CIFAR-10 shards; CIFAR-100's coarse labels, as h5py reads them
(_, _, l2), = [next(iter(shardpipe.Loader("S", batch_size=8, world_size=1, rank=0, return_label2=True)))]
assert list(l2) == [-1] * 8
import h5py
L = shardpipe.Loader("S100", batch_size=7, seed=2, world_size=1, rank=0, return_label2=True, return_keys=True)
fine, coarse = {}, {}
for f in sorted(__import__("glob").glob("S100/train-*.h5")):
    with h5py.File(f, "r") as h:
        for k, a, b in zip(h["keys"][:], h["labels"][:], h["labels2"][:]):
            fine[k.decode()], coarse[k.decode()] = int(a), int(b)
n = 0
for x, y, y2, keys in L:
    for a, b, k in zip(y, y2, keys):
        assert (a, b) == (fine[k], coarse[k]), k
        n += 1
assert n == len(fine) and len(set(coarse.values())) > 1
print(f"label2: {n} CIFAR-100 records, fine and coarse labels as stored")
X

# ---- a flipped byte: inside a compressed chunk, and a valid frame with one pixel changed ----
cp -r S S2
$PY - <<'X'
import glob
import h5py, numpy as np, zstandard
f = sorted(glob.glob("S/train-00001-*.h5"))[0]
with h5py.File(f, "r") as h:
    info = h["images"].id.get_chunk_info(0)
data = bytearray(open(f, "rb").read())
data[info.byte_offset + info.size // 2] ^= 0x10
open(f, "wb").write(data)
# S2: record 5 of shard 1 one pixel value off, in a chunk that decompresses fine
f2 = f.replace("S/", "S2/")
with h5py.File(f2, "r+") as h:
    ds = h["images"]
    rows = ds.chunks[0]
    block = ds[0:rows]
    block[5, 3, 4, 1] ^= 0x01
    ds.id.write_direct_chunk((0, 0, 0, 0), zstandard.ZstdCompressor(write_checksum=True).compress(block.tobytes()))
X
shard=$(cd S && ls train-00001-*.h5)
expect_status 1 ./reader_dump S2 train iter 16 0 plain direct 0 1 0
expect_err_has "S2/$shard: record 5"
expect_err_has "do not match their checksum"
expect_status 1 ./reader_dump S train iter 16 0 plain direct 0 1 0
expect_err_has "S/$shard: record"
$PY - "$shard" <<'X'
import sys
import shardpipe
for d, what in (("S2", "record 5"), ("S", "record")):
    try:
        for _ in shardpipe.Loader(d, batch_size=16, shuffle=False, world_size=1, rank=0):
            pass
    except (shardpipe.CorruptShardError, shardpipe.ReaderError) as e:
        assert f"{d}/{sys.argv[1]}: {what}" in str(e), str(e)
        print(type(e).__name__, e)
    else:
        raise AssertionError(f"{d}: the corrupt shard was read")
X
echo ok
