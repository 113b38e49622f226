# sp-shard's global shuffle: a class-ordered input gives shards of mixed
# classes (chi-square per shard), the same seed gives byte-identical shards
# whatever the input order, and spilling to disk changes nothing.
. "$SP_ROOT/tests/tools/lib.sh"
# 1000 train images in class order: 100 of class 0, then 100 of class 1, ...
$PY - <<'X'
import os, struct
import numpy as np
os.makedirs("ordered", exist_ok=True)
rng = np.random.default_rng(4)
def idx(arr):
    return struct.pack(">BBBB", 0, 0, 8, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()
for prefix, n in (("train", 1000), ("t10k", 50)):
    open(f"ordered/{prefix}-images-idx3-ubyte", "wb").write(idx(rng.integers(0, 256, (n, 4, 4), dtype=np.uint8)))
    open(f"ordered/{prefix}-labels-idx1-ubyte", "wb").write(idx(np.repeat(np.arange(10, dtype=np.uint8), n // 10)))
X
sp-unpack --dataset mnist ordered/* | sp-decode -q > ordered.sprs
sp-shard -q -n 100 -o MIXED ordered.sprs
sp-shard -q -n 100 --no-shuffle -o KEPT ordered.sprs
chi2() { # DIR: the largest chi-square of a train shard's class histogram against uniform
    HDF5_PLUGIN_PATH=$HDF5_PLUGIN_PATH $PY - "$1" <<'X'
import glob, sys
import h5py, numpy as np
worst = 0.0
for f in sorted(glob.glob(sys.argv[1] + "/train-*.h5")):
    with h5py.File(f) as h:
        counts = np.bincount(h["labels"][...], minlength=10)
    expected = counts.sum() / 10
    worst = max(worst, float(((counts - expected) ** 2 / expected).sum()))
print(f"{worst:.1f}")
X
}
mixed=$(chi2 MIXED) kept=$(chi2 KEPT)
echo "largest chi-square of a shard: shuffled $mixed, input order $kept (p = 0.001 at 27.9, 9 degrees of freedom)"
$PY -c "import sys; sys.exit(0 if $mixed < 27.9 else 1)" || fail "a shuffled shard is not mixed: $mixed"
$PY -c "import sys; sys.exit(0 if $kept > 27.9 else 1)" || fail "the test cannot see class order: $kept"
# val/test keep their order
sp-cat MIXED > mixed.txt
grep -m3 '"split":"test"' mixed.txt | sed 's/.*#\([0-9]*\)".*/\1/' | tr '\n' ' ' > got
printf "0 1 2 " > want && diff -u want got

# the same records in another order: byte-identical shards
$PY "$FIX/make_cifar.py" A --per-batch 40
$PY "$FIX/make_cifar.py" B --per-batch 40 --reverse
for d in A B; do (cd $d && sp-unpack cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 64 -o OUT); done
[ "$(ls A/OUT | wc -l)" -gt 3 ] || fail "too few shards to compare"
for f in A/OUT/*; do cmp "$f" "B/OUT/$(basename "$f")" || fail "input order changed $(basename "$f")"; done
# another seed, another order
(cd A && sp-unpack cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 64 --shuffle 7 -o OUT7)
sp-cat A/OUT > all0 && sp-cat A/OUT7 > all7 && head -1 all0 > s0 && head -1 all7 > s7
! cmp -s s0 s7 || fail "the seed changes nothing"

# spilling to sorted runs on disk (1 MiB of memory for 1500 records of about
# 3.1 KB, 4.7 MB): the same records, and only the oldest records go to disk,
# a quarter of the memory at a time, while the youngest MiB is merged from memory
$PY "$FIX/make_cifar.py" C --per-batch 300
sp-unpack C/cifar-10-binary.tar.gz | sp-decode -q > c.sprs
sp-shard -v --memory 1M -o SPILL c.sprs 2> spill.err
line=$(grep -o "shuffling 1500 train records ([0-9]* runs on disk, [0-9.]* MB spilled)" spill.err) ||
    { cat spill.err; fail "no spill line"; }
echo "$line"
runs=$(echo "$line" | sed 's/.*(\([0-9]*\) runs.*/\1/') mb=$(echo "$line" | sed 's/.*disk, \([0-9.]*\) MB.*/\1/')
[ "$runs" -ge 4 ] || fail "$runs runs: the spill did not go a quarter at a time"
$PY -c "import sys; sys.exit(0 if 2.5 < $mb < 4.1 else 1)" || fail "$mb MB spilled of 4.7 MB with 1 MiB of memory (the set less the memory is 3.7)"
sp-shard -q -o MEM c.sprs
sp-cat SPILL > a && sp-cat MEM > b
cmp a b || fail "spilled shuffle differs"
[ -z "$(ls -A SPILL | grep sp-tmp)" ] || fail "run files left: $(ls -A SPILL)"
sp-verify -q SPILL
for f in MEM/*; do cmp "$f" "SPILL/$(basename "$f")" || fail "spilling changed $(basename "$f")"; done
# past 16 runs a spill writes the whole memory: 3000 records (9.4 MB), the same shards again
$PY "$FIX/make_cifar.py" D --per-batch 600
sp-unpack D/cifar-10-binary.tar.gz | sp-decode -q > d.sprs
sp-shard -v --memory 1M -o SPILL2 d.sprs 2> spill2.err
runs=$(sed -n 's/.*shuffling 3000 train records (\([0-9]*\) runs on disk.*/\1/p' spill2.err)
[ -n "$runs" ] || { cat spill2.err; fail "no spill line"; }
[ "$runs" -gt 16 ] || fail "$runs runs: the whole-memory runs were not reached"
sp-shard -q -o MEM2 d.sprs
for f in MEM2/*; do cmp "$f" "SPILL2/$(basename "$f")" || fail "spilling past 16 runs changed $(basename "$f")"; done
echo ok
