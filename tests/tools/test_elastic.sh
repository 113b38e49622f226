# The canonical order (docs/elastic-order.md) through shardpipe.Loader over
# libshardpipe-reader, 1005 records (odd) in 126 shards: at a global batch of
# 8, the records of each global step (every rank's batch together) are the
# same for 1, 2, 4 and 8 ranks (simulated in one process), whatever the
# reader threads; each record once an epoch; epochs differ; a seed repeats.
# A state saved at 4 ranks after k global steps (0, inside a window, the
# last, the end) resumes at 2 ranks and at 1: exactly the records not yet
# consumed, each once, the same steps in the same order. Each of 4 ranks
# reads at most 0.3 of the bytes one rank reads (the reader's counter).
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/python"
$PY "$FIX/make_cifar.py" cf --per-batch 201
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 8 -o S
$PY - <<'X'
import shardpipe

B = 8  # the global batch: 8 partitions of one record a step


def run(world, seed=3, epoch=0, state=None, threads=(0, 1, 3)):
    """Every rank's batches (keys) at world size `world`, and the loaders."""
    loaders = [shardpipe.Loader("S", batch_size=B // world, rank=r, world_size=world, seed=seed, return_keys=True,
                                threads=threads[r % len(threads)]) for r in range(world)]
    out = []
    for L in loaders:
        if state is not None:
            L.load_state_dict(state)
        else:
            L.set_epoch(epoch)
        out.append([list(b[2]) for b in L])
    return out, loaders


def steps(ranks):
    """The multiset of keys of each global step."""
    n = max(len(r) for r in ranks)
    return [sorted(k for r in ranks if s < len(r) for k in r[s]) for s in range(n)]


keys = sorted(shardpipe.Reader("S").keys())
ranks1, (L1,) = run(1)
ref = steps(ranks1)
assert len(ref) == L1.steps == 126 and sorted(k for s in ref for k in s) == keys, "W=1: not every key once"
whole = L1.bytes_read
for world in (2, 4, 8):
    ranks, loaders = run(world)
    assert steps(ranks) == ref, f"world size {world}: other global batches"
    assert [len(r) for r in ranks] == [len(L) for L in loaders]
    if world == 4:  # one reader thread a rank: each chunk read once, the boundaries' twice
        _, loaders = run(4, threads=(1,))
        share = [L.bytes_read / whole for L in loaders]
        print("bytes read at world size 4, of the set's:", " ".join(f"{s:.3f}" for s in share))
        assert all(0 < s <= 0.3 for s in share), share
assert steps(run(1, epoch=1)[0]) != ref, "epochs 0 and 1 in the same order"
assert run(1)[0] == ranks1 and steps(run(4, seed=4)[0]) != ref, "a seed does not repeat, or another one does"
print("world sizes 1, 2, 4, 8: the same 126 global batches; each of 1005 keys once; epochs differ; seeds repeat")

# drop_last: full steps only, as many on every rank
dl = [[list(b[2]) for b in shardpipe.Loader("S", batch_size=2, rank=r, world_size=4, seed=3, drop_last=True,
                                            return_keys=True, threads=0)] for r in range(4)]
assert [len(r) for r in dl] == [125] * 4 and all(len(b) == 2 for r in dl for b in r) and steps(dl) == ref[:125]

# resume across world sizes: stop at 4 ranks after k global steps
for k in (0, 24, 125, 126):  # windows of 16 records a partition: 24 is inside the second
    saved = []
    for r in range(4):
        L = shardpipe.Loader("S", batch_size=2, rank=r, world_size=4, seed=3, return_keys=True, threads=1)
        it = iter(L)
        for _ in range(min(k, len(L))):
            next(it)
        if len(L) >= k:  # a rank whose partitions ran out before step k cannot tell it; rank 0 always can
            saved.append(L.state_dict())
        it.close()
    assert all(s == saved[0] for s in saved), saved
    state = saved[0]
    assert state["batches"] == k and state["samples"] == sum(len(s) for s in ref[:k]), state
    for world in (2, 1):
        ranks, _ = run(world, state=state)
        rest = steps(ranks)
        assert rest == ref[k:], f"k={k}: world size {world} resumed other steps"
        got = sorted(x for s in rest for x in s)
        done = sorted(x for s in ref[:k] for x in s)
        assert len(set(got)) == len(got) and sorted(got + done) == keys, f"k={k}: not the complement"
    # at one rank the order inside each step is the uninterrupted run's too
    assert run(1, state=state)[0][0] == ranks1[0][k:], f"k={k}: not in the canonical order"
print("resumed at 2 and 1 ranks after 0, 24, 125, 126 steps at 4: the rest of the epoch, each key once, in order")
X
