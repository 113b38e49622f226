# sp-train under Open MPI reads only its own share (docs/elastic-order.md):
# at 2 ranks each rank's read_bytes (--json) is about half of what one
# process reads, and the run equals one process at the same
# global batch within test_mpi's tolerance, crop-flip augmentation included
# (each rank replays the other ranks' draws); a checkpoint written by 2 ranks
# inside a pass (--steps-per-epoch) resumes in one process, and the result
# equals the uninterrupted one-process run within that tolerance; a checkpoint
# written by 4 ranks stopped by SIGTERM inside an epoch resumes at 2 ranks and
# at 1, each equal to the uninterrupted 4-rank run within that tolerance.
. "$SP_ROOT/tests/tools/lib.sh"
command -v mpirun >/dev/null || fail "mpirun missing: install openmpi-bin (scripts/install-deps.sh)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=false
$PY "$FIX/make_idx.py" idx --train 512 --test 64 --size 16 16 > /dev/null
sp-unpack --dataset mnist idx/* | sp-decode -q | sp-shard -q -n 16 -o m   # 32 train shards of one chunk each

set -- --model mlp --batch 64 --optimizer sgd --lr 0.05 --momentum 0.9 --seed 5 -q --threads 1 --augment crop-flip \
    --steps-per-epoch 3
sp-train m "$@" --epochs 3 -o one.ckpt --json one.json
mpirun_loopback 2 sp-train m "$@" --epochs 3 -o two.ckpt --json two.json
$PY "$SP_ROOT/tests/tools/ckpt_close.py" one.ckpt two.ckpt 1e-6
$PY - <<'X'
import json
one, two = json.load(open("one.json")), json.load(open("two.json"))
share = [b / one["read_bytes"][0] for b in two["read_bytes"]]
print("read bytes a rank at 2 ranks, of one rank's:", " ".join(f"{s:.3f}" for s in share))
assert len(one["read_bytes"]) == 1 and len(share) == 2 and all(0.4 <= s <= 0.6 for s in share), share
X
# stopped by 2 ranks after epoch 1 (step 3 of the first pass), resumed by one process
mpirun_loopback 2 sp-train m "$@" --epochs 1 -o part.ckpt
sp-train m --resume part.ckpt --epochs 3 -o part.ckpt -q --threads 1
$PY "$SP_ROOT/tests/tools/ckpt_close.py" one.ckpt part.ckpt 1e-6

# inside an epoch: 4 ranks stopped by SIGTERM to rank 1 after step 20 (they
# agree on the step; rank 0 writes the checkpoint with its position), resumed
# by 2 ranks and by one process: each equals the uninterrupted 4-rank run
$PY "$FIX/make_idx.py" idx4 --train 3008 --test 64 --size 16 16 > /dev/null
sp-unpack --dataset mnist idx4/* | sp-decode -q | sp-shard -q -o m4   # 94 steps an epoch at batch 32
set -- --model mlp --batch 32 --epochs 1 --seed 3 --augment flip --threads 1
mpirun_loopback 4 sp-train m4 "$@" -q -o full4.ckpt
status=$(ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" term_at_step_20 log4 mpirun --oversubscribe -np 4 \
    --bind-to none --mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo \
    sp-train m4 "$@" -o mid.ckpt)
[ "$status" = 143 ] || { cat log4 >&2; fail "4 ranks, SIGTERM to rank 1: status $status, not 143"; }
$PY - <<'X'
import json, struct
d = open("mid.ckpt", "rb").read(); (h,) = struct.unpack_from("<I", d, 12); j = json.loads(d[16:16 + h])
p = j["extra"]["position"]
assert j["epoch"] == 0 and 20 <= p["epoch_step"] < 94 and len(p["seen"]) == 4, p
print(f"4 ranks stopped at step {p['epoch_step']} of 94")
X
cp mid.ckpt r2.ckpt
mpirun_loopback 2 sp-train m4 -q --threads 1 --epochs 1 --resume r2.ckpt -o r2.ckpt
$PY "$SP_ROOT/tests/tools/ckpt_close.py" full4.ckpt r2.ckpt 1e-6
cp mid.ckpt r1.ckpt
sp-train m4 -q --threads 1 --epochs 1 --resume r1.ckpt -o r1.ckpt
$PY "$SP_ROOT/tests/tools/ckpt_close.py" full4.ckpt r1.ckpt 1e-6
echo ok
