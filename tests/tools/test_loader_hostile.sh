# The Python package under hostile use: sizes and arguments checked at the
# API (ValueError/TypeError naming the argument, before C sees them); every
# state_dict field checked and window_records part of it; set_epoch after
# load_state_dict keeps the resume point (docs/loading.md's resume loop, run as
# written, is tests/tools/test_loader_examples.sh's); set_epoch mid-iteration
# leaves state_dict on the running epoch; ShardDataset holds every shard to
# its manifest entry; ShardIterableDataset's epoch reaches persistent workers;
# a pickled Loader leaves its batch pool behind; the Loader's own thread
# gives threads=0's batches and errors and ends with its iteration; the
# seeded API fuzzer for
# SP_FUZZ_SECONDS (default 3).
. "$SP_ROOT/tests/tools/lib.sh"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
export PYTHONPATH="$SP_ROOT/python"
$PY "$FIX/make_cifar.py" cf --per-batch 41
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-normalize | sp-shard -q -n 48 -o S

# ---- arguments and state_dicts ----
$PY - <<'X'
import pickle
import torch
import shardpipe
from shardpipe.torch_data import ShardIterableDataset

def refused(f, name, kind=(ValueError, TypeError)):
    try:
        f()
    except kind as e:
        assert name in str(e), f"{name!r} not in {e}"
        return
    raise AssertionError(f"{name}: accepted")

refused(lambda: ShardIterableDataset("S", chunk_records=0), "chunk_records")
refused(lambda: next(shardpipe.Reader("S").iterate(0, 0, True, 0, 0, 1)), "batch_size")
refused(lambda: shardpipe.Loader("S", window_records=-1), "window_records")
refused(lambda: shardpipe.Loader("S", rank=0, world_size=2**32 + 2), "world_size")
refused(lambda: shardpipe.Loader("S", rank=0.5, world_size=2), "rank")
refused(lambda: shardpipe.Loader("S", batch_size=2**31), "batch_size")
refused(lambda: shardpipe.Loader("S", shuffle="no"), "shuffle")
# a world size must divide the partitions (global batch 384: 64 of them), partitions the global batch
refused(lambda: shardpipe.Loader("S", batch_size=128, rank=0, world_size=3), "world size 3")
refused(lambda: shardpipe.Loader("S", batch_size=16, rank=0, world_size=1, partitions=5), "partitions")
print("arguments: refused, naming the argument")

def loader(**kw):
    return shardpipe.Loader("S", batch_size=16, seed=4, rank=0, world_size=1, threads=1, **kw)

L = loader(window_records=32)
it = iter(L)
next(it); next(it)
state = L.state_dict()
assert state["batches"] == 2 and state["window_records"] == 32
refused(lambda: loader(window_records=64).load_state_dict(state), "window_records")
for bad in (-1, 10**6, 2**56, 2**64, len(L) + 1, 1.0, True, "2"):
    refused(lambda: loader(window_records=32).load_state_dict(dict(state, batches=bad)), "batches")
for k, bad in (("epoch", -1), ("epoch", 2**63), ("epoch", 0.5), ("version", 4), ("seed", -4), ("shuffle", 1),
               ("records", 204), ("global_batch_size", 32), ("partitions", 8), ("samples", 31)):
    refused(lambda: loader(window_records=32).load_state_dict(dict(state, **{k: bad})), k)
refused(lambda: loader(window_records=32).load_state_dict({k: v for k, v in state.items() if k != "epoch"}),
        "epoch")
# states of the order before the canonical partitions (versions 1 and 2) are refused
old = {k: state[k] for k in ("epoch", "batches", "seed", "shuffle")}
old.update(batch_size=16, rank=0, world_size=1)
refused(lambda: loader().load_state_dict(old), "version 1")
refused(lambda: loader().load_state_dict(dict(old, version=2, window_records=0, drop_last=False, records=205)),
        "version 2")
refused(lambda: loader(window_records=32).load_state_dict([1, 2]), "dict")
# the end of an epoch resumed: nothing left of it, then the next epoch
L2 = loader(window_records=32)
L2.load_state_dict(dict(state, batches=len(L2), samples=205))
assert list(L2) == [] and L2.epoch == 1 and len(list(L2)) == len(L2)
print("state_dict: window_records kept, tampered fields refused")

# set_epoch mid-iteration: state_dict stays on the running epoch
L = loader()
it = iter(L)
next(it); next(it); next(it)
L.set_epoch(7)
assert (L.state_dict()["epoch"], L.state_dict()["batches"]) == (0, 3), L.state_dict()
rest = list(it)
assert (L.state_dict()["epoch"], L.state_dict()["batches"]) == (7, 0), L.state_dict()
# set_epoch of the state's own epoch keeps the resume point; another starts afresh
full = [y.tolist() for _, y in loader()]
L = loader()
L.load_state_dict(dict(state, window_records=0))
L.set_epoch(0)
assert [y.tolist() for _, y in L] == full[2:]
L = loader()
L.load_state_dict(dict(state, window_records=0))
L.set_epoch(1)
L.set_epoch(0)
assert len(list(L)) == len(full)
print("set_epoch: the running epoch reported; the state's own epoch keeps the position")

# pickling leaves the batch pool behind
L = shardpipe.Loader("S", batch_size=200, normalize=True, rank=0, world_size=1)
batches = list(L)
n = len(pickle.dumps(L))
assert n < 16384, f"a pickled Loader is {n} bytes"
L3 = pickle.loads(pickle.dumps(L))
assert L3.state_dict() == L.state_dict() and len(list(L3)) == len(L)
print(f"pickled Loader: {n} bytes")

# persistent workers see set_epoch
ds = ShardIterableDataset("S", seed=2, world_size=1, rank=0, return_keys=True)
def epochs(persistent):
    dl = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, persistent_workers=persistent,
                                     collate_fn=lambda b: [r[2] for r in b])
    out = []
    for e in (0, 1, 2):
        ds.set_epoch(e)
        out.append([k for b in dl for k in b])
    return out
p, f = epochs(True), epochs(False)
assert p == f and p[0] != p[1] != p[2], "persistent workers: the epochs' orders"
assert len(pickle.loads(pickle.dumps(ds)).reader.shape) == 3
print("persistent_workers: every epoch its own order, as without")
X

# ---- ShardDataset: a manifest that disagrees with its shards ----
for what in short negative split total; do
    rm -rf B && cp -r S B
    $PY - "$what" <<'X'
import json, sys
m = json.load(open("B/manifest.json"))
e = [s for s in m["shards"] if s["split"] == "train"][1]
if sys.argv[1] == "short":
    e["records"] -= 1
    m["splits"]["train"]["records"] -= 1
elif sys.argv[1] == "negative":
    e["records"] = -5
elif sys.argv[1] == "split":
    e["split"] = "test"
    m["splits"]["train"]["records"] -= e["records"]
    m["splits"]["test"]["records"] += e["records"]
else:
    m["splits"]["train"]["records"] += 1
json.dump(m, open("B/manifest.json", "w"))
X
    $PY - "$what" <<'X'
import sys
import shardpipe
for split in ("train", "test"):
    try:
        shardpipe.ShardDataset("B", split)
    except ValueError as e:
        print(sys.argv[1], e)
        break
else:
    raise AssertionError(f"{sys.argv[1]}: ShardDataset read the manifest")
X
done > bad.out
grep -q "^short B/train-00001-.*: 48 records, manifest says 47$" bad.out || { cat bad.out; fail "short"; }
grep -q "^negative B/train-00001-.*: the manifest's record count -5 is not a count$" bad.out || { cat bad.out; fail "negative"; }
grep -q "^split B/train-00001-.*: split train, manifest says test$" bad.out || { cat bad.out; fail "split"; }
grep -q "^total B: split train lists 206 records, its shards hold 205$" bad.out || { cat bad.out; fail "total"; }

# ---- the Loader's own thread (threads > 0: batches made one ahead) ----
# the same batches as threads=0 (normalized, as tensors, with keys); an
# iteration broken off, or dropped in a reference cycle with its Loader,
# ends its thread; a damaged record raises the same error, at the same batch
cp -r S D
first=$(ls D/train-*.h5 | head -n 1)
$PY - "$first" <<'X'
import h5py, sys
import numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    c = f["checksums"][:]
    c[5] ^= np.uint64(1)
    f["checksums"][...] = c
X
$PY - <<'X'
import gc, threading
import numpy as np
import shardpipe

def epoch(threads, **kw):
    L = shardpipe.Loader("S", batch_size=16, seed=3, threads=threads, **kw)
    return [tuple(a.numpy() if hasattr(a, "numpy") else a for a in b) for b in L]

for kw in ({}, dict(normalize=True, as_torch=True, return_label2=True, return_keys=True)):
    a, b = epoch(0, **kw), epoch(2, **kw)
    assert len(a) == len(b) > 3, (len(a), len(b))
    for x, y in zip(a, b):
        assert all(np.array_equal(u, v) for u, v in zip(x, y)), f"{kw}: threads=2 gives other batches"

def loader_threads():
    return [t for t in threading.enumerate() if t.name == "shardpipe-loader"]

L = shardpipe.Loader("S", batch_size=16, threads=2)
for b in L:
    assert len(loader_threads()) == 1, loader_threads()
    break
assert not loader_threads(), f"a broken-off iteration left {loader_threads()}"
L.it = iter(L)
next(L.it)
del L
gc.collect()
assert not loader_threads(), f"a Loader in a cycle with its iterator, collected, left {loader_threads()}"

def failure(threads):
    got = 0
    try:
        for b in shardpipe.Loader("D", batch_size=4, shuffle=False, threads=threads):
            got += 1
    except shardpipe.CorruptShardError as e:
        return got, str(e)
    raise AssertionError(f"threads={threads}: the damaged record was read")

assert failure(0) == failure(2), (failure(0), failure(2))
assert "record 5" in failure(2)[1], failure(2)
assert not loader_threads()

# a cycle holding an iteration, collected by a collection that runs on the
# Loader's thread itself (the collector runs where an allocation triggers it):
# its close() there must not wait for itself
import time
from shardpipe.loader import _Ahead
gc.disable()
go = threading.Event()
def made():
    yield 1
    go.wait(10)
    gc.collect()
    yield 2
def iteration():
    a = _Ahead(made())
    try:
        yield from a
    finally:
        a.close()
class Holder:
    pass
h = Holder()
h.it, h.me = iteration(), h
next(h.it)
del h
go.set()
for _ in range(100):
    if not loader_threads():
        break
    time.sleep(0.05)
assert not loader_threads(), "a collection on the Loader's thread left it waiting for itself"
gc.enable()
print("ahead ok")
X

# ---- the seeded fuzzer of the Python API ----
$PY "$SP_ROOT/tests/fuzz/fuzz_python_api.py" S "${SP_FUZZ_SECONDS:-3}" "${SP_FUZZ_SEED:-1}"
echo ok
