# run.sh: long
# sp-train under Open MPI, 2 ranks on loopback: the mlp and resnet20 (with
# --sync-bn) train the model that one process trains at the same global batch,
# within docs/training.md's tolerance (the order of float32 sums differs, see
# "Training on several processes or nodes (MPI)"); per-rank batchnorm, as DDP's
# default, does not; -np 1 is today's run to the bit; a run resumed under MPI
# ends with the uninterrupted run's bytes; a batch that leaves a rank nothing
# is refused.
. "$SP_ROOT/tests/tools/lib.sh"
command -v mpirun >/dev/null || fail "mpirun missing: install openmpi-bin (scripts/install-deps.sh)"
# as root (CI) Open MPI wants both variables; loopback TCP, no shared-memory
# transport, no binding (a rank's --threads may use more than one core)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=false
# (mpirun_loopback, lib.sh: the ranks under ASan run without leak checks;
# the one-process runs here, which load no MPI, keep them)

$PY "$FIX/make_idx.py" idx --train 512 --test 64 --size 16 16 > /dev/null
sp-unpack --dataset mnist idx/* | sp-decode -q | sp-shard -q -o m
$PY "$FIX/make_cifar.py" cf --per-batch 12 > /dev/null   # 60 train records: 2 steps at batch 32
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -o c


# mlp: 2 epochs of 8 steps at global batch 64, SGD with momentum; one thread
# a rank unless told (the default, every CPU the process may use, would
# change the sums' order with the machine: see docs/training.md)
set -- --model mlp --epochs 2 --batch 64 --optimizer sgd --lr 0.05 --momentum 0.9 --seed 3 -q --threads 1
sp-train m "$@" -o one.ckpt --json one.json
mpirun_loopback 2 sp-train m "$@" -o two.ckpt --json two.json
$PY "$SP_ROOT/tests/tools/ckpt_close.py" one.ckpt two.ckpt 1e-6
mpirun_loopback 2 sp-train m "$@" --threads 2 -o two-t2.ckpt   # --threads inside each rank
$PY "$SP_ROOT/tests/tools/ckpt_close.py" one.ckpt two-t2.ckpt 1e-6
sp-train m "$@" --lr 0.0505 -o lr.ckpt               # the tolerance sees a 1% change of the rate
$PY "$SP_ROOT/tests/tools/ckpt_close.py" one.ckpt lr.ckpt 1e-5 --over
$PY - <<'X'
import json
one, two = json.load(open("one.json")), json.load(open("two.json"))
assert two["ranks"] == 2 and two["allreduce_seconds"] > 0 and "ranks" not in one, two
assert abs(one["loss"] - two["loss"]) < 1e-5 and one["train_accuracy"] == two["train_accuracy"], (one, two)
assert one["test_accuracy"] == two["test_accuracy"], (one["test_accuracy"], two["test_accuracy"])
print(f"mlp: loss {one['loss']:.6f} on 1 rank, {two['loss']:.6f} on 2; "
      f"allreduce {two['allreduce_seconds']:.3f} s of {two['train_seconds']:.3f}")
X
# -np 1 is today's run: the same bytes
mpirun_loopback 1 sp-train m "$@" -o np1.ckpt
$PY "$SP_ROOT/tests/tools/ckpt_close.py" one.ckpt np1.ckpt 0

# resnet20: 2 steps at global batch 32 (16 + 16, then 14 + 14)
set -- --model resnet20 --epochs 1 --batch 32 --optimizer sgd --lr 0.01 --momentum 0.9 --seed 4 --augment none -q \
    --threads 1
sp-train c "$@" -o r1.ckpt
sp-train c "$@" --sync-bn -o r1-sync.ckpt                # one rank: --sync-bn's sums are norm.c's
$PY "$SP_ROOT/tests/tools/ckpt_close.py" r1.ckpt r1-sync.ckpt 0
mpirun_loopback 2 sp-train c "$@" --sync-bn -o r2-sync.ckpt --json r2-sync.json
$PY "$SP_ROOT/tests/tools/ckpt_close.py" r1.ckpt r2-sync.ckpt 1e-3
mpirun_loopback 2 sp-train c "$@" -o r2-local.ckpt --json r2-local.json  # per-rank statistics: another model
$PY "$SP_ROOT/tests/tools/ckpt_close.py" r1.ckpt r2-local.ckpt 1e-2 --over
# the gradients' sums started as their layers' backward ends (the default) or
# after the whole backward (SP_ALLREDUCE_OVERLAP=0): the same bytes, with
# --sync-bn's allreduces inside the backward and without
SP_ALLREDUCE_OVERLAP=0 mpirun_loopback 2 sp-train c "$@" --sync-bn -o r2-sync-off.ckpt --json r2-sync-off.json
$PY "$SP_ROOT/tests/tools/ckpt_close.py" r2-sync.ckpt r2-sync-off.ckpt 0
SP_ALLREDUCE_OVERLAP=0 mpirun_loopback 2 sp-train c "$@" -o r2-local-off.ckpt --json r2-local-off.json
$PY "$SP_ROOT/tests/tools/ckpt_close.py" r2-local.ckpt r2-local-off.ckpt 0
$PY - <<'X'
import json
for run in ("r2-sync", "r2-local"):
    on, off = json.load(open(run + ".json")), json.load(open(run + "-off.json"))
    # resnet20's 269,722 gradients in 5 buckets of 2^16 floats, 2 steps: 4 of
    # each step's 5 start before the first layers' backward ends, with overlap
    assert on["allreduce_overlap"] is True and off["allreduce_overlap"] is False, (on, off)
    assert on["allreduce_buckets"] == off["allreduce_buckets"] == 10, (on, off)
    assert on["allreduce_buckets_early"] == 8 and off["allreduce_buckets_early"] == 0, (on, off)
    print(f"{run}: {on['allreduce_buckets_early']} of {on['allreduce_buckets']} buckets started during the backward")
X

# resume under MPI: stopped after epoch 1 of the mlp, resumed to 3, equals 3 in one go
set -- --model mlp --batch 64 --optimizer sgd --lr 0.05 --momentum 0.9 --seed 5 -q
mpirun_loopback 2 sp-train m "$@" --epochs 3 -o full.ckpt
mpirun_loopback 2 sp-train m "$@" --epochs 1 -o part.ckpt
mpirun_loopback 2 sp-train m --epochs 3 --resume part.ckpt -o part.ckpt -q
$PY "$SP_ROOT/tests/tools/ckpt_close.py" full.ckpt part.ckpt 0
# resnet20 with --sync-bn and crop-flip: 2 epochs against 1 + 1
set -- --model resnet20 --batch 32 --optimizer sgd --lr 0.01 --momentum 0.9 --seed 6 --crop-scale 0.5 --sync-bn -q
mpirun_loopback 2 sp-train c "$@" --epochs 2 -o rfull.ckpt
mpirun_loopback 2 sp-train c "$@" --epochs 1 -o rpart.ckpt
mpirun_loopback 2 sp-train c --epochs 2 --resume rpart.ckpt --sync-bn -o rpart.ckpt -q
$PY "$SP_ROOT/tests/tools/ckpt_close.py" rfull.ckpt rpart.ckpt 0

# ranks started with other options, shard sets or checkpoints (an MPMD line:
# one rank each): every rank stops before training, status 2, naming the first
# difference with rank 0's value and the other's (they hung, overran the
# allreduce's buffer, or trained apart). timeout: a hang fails the test.
$PY "$FIX/make_idx.py" idx2 --train 256 --test 64 --size 16 16 > /dev/null
sp-unpack --dataset mnist idx2/* | sp-decode -q | sp-shard -q -o m2
set -- --model mlp --batch 64 --optimizer sgd --lr 0.05 --seed 7 -q --threads 1
sp-train m "$@" --epochs 1 -o e1.ckpt
sp-train m --epochs 2 --resume e1.ckpt -o e2.ckpt -q --threads 1
disagree() { # WHAT ARGS0 -- ARGS1: rank 0 runs sp-train ARGS0, rank 1 sp-train ARGS1
    what=$1; shift
    a=(); while [ "$1" != -- ]; do a+=("$1"); shift; done; shift
    expect_status 2 timeout -k 5 120 bash -c 'ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" mpirun --oversubscribe \
        --bind-to none --mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo "$@"' \
        mpi -np 1 sp-train "${a[@]}" : -np 1 sp-train "$@"
    expect_err_has "sp-train: the ranks disagree on $what"
    expect_err_has "(every rank must be started with the same options, shard set and checkpoint)"
    [ "$(grep -c 'the ranks disagree' err)" -eq 2 ] || { cat err >&2; fail "$what: not reported by both ranks"; }
}
disagree "--epochs: 2 on rank 0, 3 on rank 1" m "$@" --epochs 2 -- m "$@" --epochs 3
disagree "--batch: 64 on rank 0, 32 on rank 1" m "$@" --epochs 1 -- m "$@" --epochs 1 --batch 32
disagree "--model: mlp on rank 0, cnn-same on rank 1" m "$@" --epochs 1 -- m "$@" --epochs 1 --model cnn-same
disagree "--seed: 7 on rank 0, 8 on rank 1" m "$@" --epochs 1 -- m "$@" --epochs 1 --seed 8
disagree "the shard set: manifest " m "$@" --epochs 1 -- m2 "$@" --epochs 1
disagree "the epoch resumed from: 1 on rank 0, 2 on rank 1" m --resume e1.ckpt --epochs 3 -q --threads 1 -- \
    m --resume e2.ckpt --epochs 3 -q --threads 1
disagree "--sync-bn: off on rank 0, on on rank 1" m "$@" --epochs 1 -- m "$@" --epochs 1 --sync-bn

# a global batch that would leave a rank no record: a usage error (2), from every rank
expect_status 2 mpirun_loopback 3 sp-train m --model mlp --epochs 1 --batch 2 -q
expect_err_has "sp-train: 3 ranks need at least one record each of every batch: batch 2 over 512 records"
echo ok
