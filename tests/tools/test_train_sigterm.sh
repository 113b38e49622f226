# sp-train on SIGTERM (Slurm's pre-emption): the step in progress ends, -o
# is written with the position inside the epoch, one line says where and how
# to resume, status 143; the resumed run ends with the uninterrupted run's
# weights, optimizer state and per-epoch figures (--metrics lines and the
# checkpoint's, but seconds) bit for bit. --checkpoint-every N writes such a
# checkpoint every N steps: resumed from one, the same. Without -o the run
# still stops with 143 and says nothing was saved. Under mpirun -np 2 with
# TERM sent to rank 1 alone, both ranks stop at the same step and the run
# resumed under MPI ends with the uninterrupted MPI run's bytes.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_idx.py" idx --train 3000 --test 64 --size 28 28 > /dev/null   # 94 steps an epoch at batch 32
sp-unpack --dataset mnist idx/* | sp-decode -q | sp-shard -q -o m
# one thread: the sums' order, so the bits, follow the thread count
set -- --model cnn --batch 32 --epochs 3 --seed 3 --augment flip --threads 1
sp-train m "$@" -q -o full.ckpt --metrics full.jsonl

cat > same.py <<'X'
# same.py A B [METRICS_A METRICS_B]: the checkpoints' state (every byte after
# the header) and per-epoch figures equal, and so the --metrics lines, but
# for the seconds they took
import json, struct, sys
def ckpt(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12)
    return d[16 + h:-8], json.loads(d[16:16 + h])
def figures(es):
    return [{k: v for k, v in e.items() if k not in ("seconds", "images_per_second")} for e in es]
(a, ha), (b, hb) = ckpt(sys.argv[1]), ckpt(sys.argv[2])
assert a == b, f"{sys.argv[2]}: the weights or optimizer state differ from {sys.argv[1]}'s"
assert ha["optimizer"] == hb["optimizer"] and ha["epoch"] == hb["epoch"] and ha["rng"] == hb["rng"], (ha, hb)
assert "position" not in hb["extra"], hb["extra"]["position"]
assert figures(ha["extra"]["epochs"]) == figures(hb["extra"]["epochs"]), (ha["extra"], hb["extra"])
if len(sys.argv) > 3:
    ma, mb = ([json.loads(l) for l in open(p)] for p in sys.argv[3:5])
    assert len(ma) == 3 and figures(ma) == figures(mb), (ma, mb)
X

# SIGTERM at step 20 of epoch 1: term_at_step_20 (lib.sh)
status=$(term_at_step_20 log sp-train m "$@" -o part.ckpt --metrics part.jsonl)
[ "$status" = 143 ] || { cat log >&2; fail "SIGTERM: status $status, not 143"; }
grep -q '^sp-train: stopped by SIGTERM after step [0-9]* of 94 of epoch 1/3; part.ckpt holds that point: go on with sp-train m --resume part.ckpt -o part.ckpt --epochs 3$' log ||
    { cat log >&2; fail "no line saying where the run stopped and how to resume"; }
$PY - <<'X'
import json, struct
d = open("part.ckpt", "rb").read(); (h,) = struct.unpack_from("<I", d, 12); j = json.loads(d[16:16 + h])
p = j["extra"]["position"]
assert j["epoch"] == 0 and 20 <= p["epoch_step"] < 94 and len(p["loss_sum"]) == 1 and j["extra"]["epochs"] == [], j
assert p["seen"] == [32 * p["epoch_step"]] and p["records"] == 32 * p["epoch_step"], p
print(f"stopped after step {p['epoch_step']} of epoch 1")
X
[ ! -s part.jsonl ] || fail "an epoch line before the first epoch ended"
sp-train m -q --threads 1 --epochs 3 --resume part.ckpt -o part.ckpt --metrics part.jsonl
$PY same.py full.ckpt part.ckpt full.jsonl part.jsonl || fail "the run resumed after SIGTERM differs from the uninterrupted one"

# --checkpoint-every 40: the first, after step 40, kept (the save pauses once
# it is in place: SP_CKPT_PAUSE); resumed from it, the same
SP_CKPT_PAUSE=ckpt-committed sp-train m "$@" -q --checkpoint-every 40 -o every.ckpt &
pid=$!
for _ in $(seq 600); do [ -e .sp-pause-ckpt-committed ] && break; sleep 0.05; done
[ -e .sp-pause-ckpt-committed ] || { kill -KILL $pid; fail "no checkpoint after step 40"; }
kill -KILL $pid; wait $pid || true
$PY - <<'X'
import json, struct
d = open("every.ckpt", "rb").read(); (h,) = struct.unpack_from("<I", d, 12); j = json.loads(d[16:16 + h])
assert j["epoch"] == 0 and j["extra"]["position"]["epoch_step"] == 40 and j["optimizer"]["step"] == 40, j
X
sp-train m -q --threads 1 --epochs 3 --resume every.ckpt -o every.ckpt
$PY same.py full.ckpt every.ckpt || fail "the run resumed from --checkpoint-every's checkpoint differs"
# the steps count from the run's first one, a resumed run's too: step 300 is
# step 18 of epoch 4
rm .sp-pause-ckpt-committed
SP_CKPT_PAUSE=ckpt-committed sp-train m -q --threads 1 --resume every.ckpt --epochs 4 --checkpoint-every 100 -o every.ckpt &
pid=$!
for _ in $(seq 600); do [ -e .sp-pause-ckpt-committed ] && break; sleep 0.05; done
kill -KILL $pid; wait $pid || true
$PY - <<'X'
import json, struct
d = open("every.ckpt", "rb").read(); (h,) = struct.unpack_from("<I", d, 12); j = json.loads(d[16:16 + h])
assert j["epoch"] == 3 and j["extra"]["position"]["epoch_step"] == 18 and j["optimizer"]["step"] == 300, j
X

expect_status 2 sp-train m "$@" --checkpoint-every 10
expect_err "sp-train: --checkpoint-every: needs -o CKPT to write to"
status=$(term_at_step_20 log2 sp-train m "$@")
[ "$status" = 143 ] || fail "SIGTERM without -o: status $status, not 143"
grep -q '^sp-train: stopped by SIGTERM after step [0-9]* of 94 of epoch 1/3; nothing saved (no -o)' log2 ||
    { cat log2 >&2; fail "without -o: no line saying nothing was saved"; }

# scripts/slurm/train.sbatch outside Slurm: sp-train, with --resume once its
# checkpoint exists (the options given again each time)
sb=$SP_ROOT/scripts/slurm/train.sbatch
expect_status 0 "$sb" --help
grep -q '^usage: .*train.sbatch -o CKPT SHARDS' out && ! grep -q '^#' out || { cat out; fail "train.sbatch --help"; }
"$sb" -o sb.ckpt m --model mlp --epochs 1 --seed 3 -q --threads 1
"$sb" -o sb.ckpt m --model mlp --epochs 2 --seed 3 -q --threads 1
sp-train m --model mlp --epochs 2 --seed 3 -q --threads 1 -o sb2.ckpt
$PY same.py sb2.ckpt sb.ckpt || fail "train.sbatch run twice differs from one 2-epoch run"
expect_status 2 "$sb" m --epochs 2
expect_err_has "no -o CKPT"

command -v mpirun >/dev/null || fail "mpirun missing: install openmpi-bin (scripts/install-deps.sh)"
# Open MPI as in test_mpi.sh: as root, loopback TCP, no binding, no leak
# detection under AddressSanitizer
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=false
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
launch="mpirun --oversubscribe -np 2 --bind-to none --mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include lo
    --mca oob_tcp_if_include lo"
set -- --model cnn --batch 32 --epochs 1 --seed 3 --augment flip --threads 1
$launch sp-train m "$@" -q -o mpi-full.ckpt
status=$(term_at_step_20 log3 $launch sp-train m "$@" -o mpi.ckpt)
[ "$status" = 143 ] || { cat log3 >&2; fail "SIGTERM to rank 1: status $status, not 143"; }
[ "$(grep -c '^sp-train: stopped by SIGTERM after step [0-9]* of 94 of epoch 1/1; mpi.ckpt holds' log3)" = 1 ] ||
    { cat log3 >&2; fail "under MPI: not one line from rank 0 saying where the run stopped"; }
$PY - <<'X'
import json, struct
d = open("mpi.ckpt", "rb").read(); (h,) = struct.unpack_from("<I", d, 12); j = json.loads(d[16:16 + h])
p = j["extra"]["position"]
assert len(p["loss_sum"]) == 2 and p["seen"] == [16 * p["epoch_step"]] * 2, p
X
$launch sp-train m -q --threads 1 --epochs 1 --resume mpi.ckpt -o mpi.ckpt
$PY same.py mpi-full.ckpt mpi.ckpt || fail "under MPI, the run resumed after SIGTERM differs from the uninterrupted one"
echo ok
