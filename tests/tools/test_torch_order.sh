# ShardIterableDataset's order (docs/elastic-order.md): whatever world_size x
# DataLoader workers (1, 2 or 4 parts, the ranks simulated in one process,
# the workers real), every train record is seen once an epoch, each part
# reads whole partitions (its own), and each partition's sequence of keys is
# the same as when every partition is a part of its own, for the default 64
# partitions and for 4, at two chunk sizes; epochs differ; parts that do not
# divide the partitions are refused naming both; without shuffle the parts
# still cut the listed order in contiguous shares.
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/python"
$PY -c "import torch" 2>/dev/null || fail "python3-torch missing (scripts/install-deps.sh)"
$PY "$FIX/make_cifar.py" cf --per-batch 41 > /dev/null   # 205 train records
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 48 -o S

cat > order.py <<'X'
import warnings
from torch.utils.data import DataLoader, get_worker_info
from shardpipe import ShardIterableDataset
warnings.filterwarnings("ignore", "This DataLoader will create")  # 3 workers on 2 cores, on purpose

def worker_id(_image):  # the transform: which worker read the record
    info = get_worker_info()
    return info.id if info else 0

def parts(kw, world, workers, epoch, chunk=64):
    """[keys of part 0, part 1, ...]: part = rank * workers + worker (workers 0: in this process)."""
    out = [[] for _ in range(world * max(workers, 1))]
    total = 0
    for rank in range(world):
        ds = ShardIterableDataset("S", seed=9, rank=rank, world_size=world, return_keys=True, transform=worker_id,
                                  chunk_records=chunk, **kw)
        ds.set_epoch(epoch)
        total += len(ds)
        items = list(DataLoader(ds, batch_size=None, num_workers=workers)) if workers else list(ds)
        for w, _, key in items:
            out[rank * max(workers, 1) + w].append(key)
    assert total == 205, total
    return out

# (world, workers, chunk_records): 1, 2 and 4 parts, by ranks and by workers
RUNS = {(64, 0): ((1, 0, 64), (1, 2, 5), (2, 2, 3), (4, 0, 1)), (4, 0): ((1, 0, 64), (2, 1, 7), (4, 0, 64)),
        (4, 1): ((1, 0, 64), (2, 0, 3))}
for (P, epoch), runs in RUNS.items():
    kw = {} if P == 64 else {"partitions": P}  # 64: the default
    ref = parts(kw, P, 0, epoch)  # each partition a part of its own: its sequence
    keys = sorted(k for q in ref for k in q)
    assert len(keys) == 205 and len(set(keys)) == 205, len(set(keys))
    of = {k: q for q in range(P) for k in ref[q]}
    for world, workers, chunk in runs:
        got = parts(kw, world, workers, epoch, chunk)
        where = f"partitions {P}, epoch {epoch}, world {world} x {workers} workers, chunk {chunk}"
        assert sorted(k for p in got for k in p) == keys, where + ": not every record once"
        lanes = P // len(got)
        for p, seq in enumerate(got):
            assert {of[k] for k in seq} <= set(range(p * lanes, (p + 1) * lanes)), where + f": part {p}"
            for q in range(p * lanes, (p + 1) * lanes):
                assert [k for k in seq if of[k] == q] == ref[q], where + f": partition {q}'s order differs"
    print(f"partitions {P}, epoch {epoch}: 205 keys once and every partition's order the same at 1, 2 "
          "and 4 parts")
assert parts({"partitions": 4}, 4, 0, 0) != parts({"partitions": 4}, 4, 0, 1), "the epochs' orders are the same"

for make in (lambda: ShardIterableDataset("S", world_size=3, rank=0, partitions=4),
             lambda: list(DataLoader(ShardIterableDataset("S", world_size=1, rank=0, partitions=4), batch_size=None,
                                     num_workers=3))):
    try:
        make()
        raise SystemExit("3 parts over 4 partitions were not refused")
    except ValueError as e:
        assert "3 parts: they must divide partitions=4" in str(e), e
print("3 parts over 4 partitions refused, as a world size and as workers")
# without shuffle, as Loader's: one partition a part by default, the listed order cut in contiguous shares
listed = [k for _, _, k in ShardIterableDataset("S", shuffle=False, return_keys=True)]
assert listed == [k for r in range(3) for _, _, k in ShardIterableDataset("S", shuffle=False, return_keys=True,
                                                                            rank=r, world_size=3)], "shuffle=False"
print("without shuffle: 3 ranks read the listed order in contiguous shares")
X
$PY order.py
echo ok
