# shardpipe.Loader over a mix of two sets (docs/elastic-order.md, "Mixing
# sets"): CIFAR-10- and CIFAR-100-shaped fixtures at 0.7/0.3, both repeating,
# over 1,000 global batches: each set's share within 1% of its weight, every
# source index right after the labels and every key (last) of its own set; a
# seed repeats its batches; a state saved at world size 1 after k steps
# resumes at world size 2 with the same records at every step; len() and the
# stop-sets' epoch (the smaller set's records each once); a set of another
# shape, a state of other weights and drop_last are refused.
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/python"
$PY "$FIX/make_cifar.py" cf --per-batch 41
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 48 -o S10
sp-unpack cf/cifar-100-binary.tar.gz | sp-decode -q | sp-shard -q -n 48 -o S100
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-resize 16 | sp-shard -q -n 48 -o S16
$PY - <<'X'
import numpy as np
import shardpipe

SETS = [("S10", 0.7, "repeat"), ("S100", 0.3, "repeat")]
B, STEPS = 16, 1000
keys = [set(shardpipe.Reader(d).keys()) for d in ("S10", "S100")]
classes = [len(shardpipe.Reader(d).classes) for d in ("S10", "S100")]


def loaders(world, sets=SETS, **kw):
    kw.setdefault("epoch_steps", STEPS)
    return [shardpipe.Loader(sets, batch_size=B // world, rank=r, world_size=world, seed=3, return_source=True,
                             return_keys=True, threads=r % 2, **kw) for r in range(world)]


def steps(ls, state=None):
    """The sorted (source, key) pairs of each global step, every rank's together."""
    its = []
    for L in ls:
        if state is not None:
            L.load_state_dict(state)
        its.append(iter(L))
    out = []
    for batches in zip(*its):
        step = []
        for x, y, src, k in batches:
            assert x.shape[1:] == (32, 32, 3) and len(x) == len(y) == len(src) == len(k), (x.shape, len(src))
            for s, key, label in zip(src, k, y):
                assert key in keys[s] and 0 <= label < classes[s], (s, key, label)
                step.append((int(s), key))
        out.append(sorted(step))
    return out


(L1,) = loaders(1)
assert len(L1) == L1.steps == STEPS, len(L1)
ref = steps([L1])
# a pass of a repeat-set ends with a short slot (205 and 41 records in 2 partitions): 15 or 14 records
assert len(ref) == STEPS and all(len(s) >= B - 2 for s in ref)
src = [s for st in ref for s, _ in st]
share = np.bincount(src, minlength=2) / len(src)
print(f"shares over {STEPS} global batches of {B}: {share[0]:.4f} {share[1]:.4f}")
assert abs(share[0] - 0.7) <= 0.01 and abs(share[1] - 0.3) <= 0.01, share
assert steps(loaders(1)) == ref, "the same seed gave other batches"

# resume at world size 2 from world size 1's state after k steps
for k in (0, 123, STEPS - 1):
    (L,) = loaders(1)
    it = iter(L)
    for _ in range(k):
        next(it)
    state = L.state_dict()
    it.close()
    assert state["batches"] == k and state["sets"] == [{"records": len(keys[0]), "weight": 0.7, "policy": "repeat"},
                                                     {"records": len(keys[1]), "weight": 0.3, "policy": "repeat"}]
    assert steps(loaders(2), state) == ref[k:], f"k={k}: world size 2 resumed other records"
print("world size 2 resumes world size 1 at steps 0, 123 and 999: the same records at every step")

# stop-sets (the default): the epoch ends with the smaller set's last records, each once
stops = [("S10", 0.7), ("S100", 0.3)]
(L,) = loaders(1, stops, epoch_steps=None)
got = steps([L])
assert len(got) == len(L), (len(got), len(L))
seen = [k for st in got for s, k in st if s == 1]
assert sorted(seen) == sorted(keys[1]), "the stop-set's records are not each once"
assert all(len(st) >= B - 2 for st in got[:-1])

# refusals
for bad, want in ((lambda: loaders(1, [("S10", 0.7), ("S16", 0.3)]), "set 1 (S16): records of 16x16x3"),
                  (lambda: loaders(1, drop_last=True), "drop_last=True"),
                  (lambda: loaders(1, [("S10", 0.7), ("S100", -1)]), "weight -1"),
                  (lambda: loaders(1)[0].load_state_dict(dict(state, sets=[dict(state["sets"][0], weight=0.6),
                                                                            state["sets"][1]])), "state_dict is of sets")):
    try:
        bad()
    except ValueError as e:
        assert want in str(e), e
    else:
        raise AssertionError(f"not refused: {want}")
print("other shapes, drop_last, a weight below 0 and a state of other weights refused")
X
