# docs/loading.md's "Training from shards": its code blocks, taken from the doc as
# written, run on Fashion-MNIST shards: PyTorch in one process, torchrun with
# two ranks, ShardIterableDataset with transforms, and a numpy loop.
. "$SP_ROOT/tests/tools/lib.sh"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
export PYTHONPATH="$SP_ROOT/python"
mkdir shards
sp-unpack -q "$FMNIST"/*.gz | sp-decode -q | sp-normalize | sp-shard -q -o shards/fmnist
$PY - "$SP_ROOT/docs/loading.md" <<'X'
import sys
text = open(sys.argv[1]).read()
start = text.index("\n## Training from shards\n")
end = text.find("\n## ", start + 1)
section = text[start:end if end >= 0 else len(text)]
blocks, cur = [], None
for line in section.split("\n") + ["end"]:
    if line.startswith("    ") or (cur is not None and not line.strip()):
        if cur is None:
            cur = []
        cur.append(line[4:])
    elif cur is not None:
        blocks.append("\n".join(cur).strip() + "\n")
        cur = None
names = ["single.py", "train_ddp.py", "torchrun.sh", "iterable.py", "numpy_loop.py", "resume.py"]
assert len(blocks) == len(names), f"{len(blocks)} code blocks in the section"
for name, b in zip(names, blocks):
    open(name, "w").write(b)
X
$PY single.py > single.out
grep -q "^epoch 1: 235 batches, loss " single.out || { cat single.out; fail "single process"; }
grep -qx "torchrun --redirects 2 --tee 2 --nproc_per_node=2 train_ddp.py" torchrun.sh || fail "the torchrun line"
OMP_NUM_THREADS=1 bash torchrun.sh > ddp.out 2> ddp.err || { cat ddp.err; fail "torchrun"; }
# the two ranks print at once: their lines may run together
[ "$(grep -oE 'rank [01] of 2: 117 batches, loss [0-9.]+' ddp.out | cut -c1-6 | sort | tr '\n' ' ')" = "rank 0 rank 1 " ] \
    || { cat ddp.out ddp.err; fail "the two ranks"; }
$PY iterable.py > iterable.out
[ "$(cat iterable.out)" = "(256, 784) [0, 1]" ] || { cat iterable.out; fail "the IterableDataset example"; }
$PY numpy_loop.py > numpy.out
acc=$(sed -n 's/^test accuracy //p' numpy.out)
$PY -c "import sys; sys.exit(0 if float('$acc') > 0.75 else 1)" || { cat numpy.out; fail "numpy loop accuracy $acc"; }
# the resume example: stopped after 250 batches (epoch 1, batch 15), run again, against
# one uninterrupted run in another directory
mkdir whole
ln -s ../shards whole/shards
(cd whole && $PY ../resume.py) || fail "resume.py, uninterrupted"
$PY resume.py 250 || fail "resume.py, stopped"
[ "$(wc -l < seen.txt)" -eq 250 ] || fail "resume.py stopped after $(wc -l < seen.txt) batches, not 250"
$PY resume.py || fail "resume.py, resumed"
[ "$(wc -l < whole/seen.txt)" -eq $((3 * 235)) ] || fail "the uninterrupted run saw $(wc -l < whole/seen.txt) batches"
cmp seen.txt whole/seen.txt || fail "the resumed run's batches differ from the uninterrupted run's"
echo ok
