# sp-train --mix over a CIFAR-10-shaped set (205 train records, 10 classes)
# and a CIFAR-100-shaped one (41, 100 classes): refused without
# --mix-classes union (their class lists differ), trained with it on the
# 110 classes of the union, sorted by byte, evaluated on the first set's test
# split; 3 epochs of 7 steps straight against 1 + 2 resumed (the epochs' ends
# fall inside the mix's passes, a repeat-set's second pass included, with the
# flip's draws replayed): the same weights and optimizer state; a resume with
# other weights, or without --mix, is refused; --mix-classes without --mix and
# a weight of 0 are usage errors. Under Open MPI: 2 ranks, each reading its
# partitions of every slot (about half the bytes) and replaying the other
# rank's flip draws slot by slot, train what one process trains within
# test_mpi's tolerance (1e-6), and 2 ranks' checkpoint after epoch 1 resumed
# by one process equals the uninterrupted run within it.
. "$SP_ROOT/tests/tools/lib.sh"
command -v mpirun >/dev/null || fail "mpirun missing: install openmpi-bin (scripts/install-deps.sh)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=false
$PY "$FIX/make_cifar.py" cf --per-batch 41
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 48 -o S10
sp-unpack cf/cifar-100-binary.tar.gz | sp-decode -q | sp-shard -q -n 48 -o S100

expect_status 1 sp-train S10 --mix S10:0.7 --mix S100:0.3 --model mlp -e 1
expect_err_has 'sp-train: S10 and S100: their class lists differ (class 0 is "airplane" and "fine00"): mix sets of one class list, or map them into their union (--mix-classes union)'
expect_status 2 sp-train S10 --mix-classes union --model mlp -e 1
expect_err_has "sp-train: --mix-classes: only with --mix"
expect_status 2 sp-train S10 --mix S10:0 --model mlp -e 1
expect_err_has "weight 0: a number above 0"

M="--mix S10:0.7 --mix S100:0.3:repeat --mix-classes union --model mlp --batch 16 --steps-per-epoch 7 --augment flip -q"
sp-train S10 $M -e 3 -o full.ckpt --json full.json
sp-train S10 $M -e 1 -o part.ckpt
sp-train S10 $M -e 3 --resume part.ckpt -o part.ckpt
$PY - <<'X'
import json, struct
def state(p):  # the float arrays after the header, without the trailing checksum
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12); return d[16 + h:-8], json.loads(d[16:16 + h])
a, ha = state("full.ckpt"); b, hb = state("part.ckpt")
assert a == b, "the resumed mix's weights differ from an uninterrupted run's"
assert ha["epoch"] == hb["epoch"] == 3 and ha["classes"] == 110, (ha["epoch"], ha["classes"])
extra = json.loads(ha["extra"]) if isinstance(ha["extra"], str) else ha["extra"]
names = extra["class_names"]
assert len(names) == 110 and names == sorted(names, key=lambda s: s.encode()), names[:12]
assert [m["policy"] for m in extra["mix"]] == ["stop", "repeat"], extra["mix"]
summary = json.load(open("full.json"))
assert summary["test_split"] == "test" and len(summary["per_epoch"]) == 3
print("--mix-classes union: 110 classes; 3 epochs of 7 steps equal to 1 + 2 resumed")
X
# under MPI: 2 epochs of 7 steps (S100's pass ends in the 9th with a slot of
# one record: one rank gets 7 of the step, the other 8), SGD and one thread a
# rank as test_mpi
T="${M/-q/--optimizer sgd --lr 0.02 --momentum 0.9 --threads 1 -q}"
sp-train S10 $T -e 2 -o one.ckpt --json one.json
mpirun_loopback 2 sp-train S10 $T -e 2 -o two.ckpt --json two.json
$PY "$SP_ROOT/tests/tools/ckpt_close.py" one.ckpt two.ckpt 1e-6
mpirun_loopback 2 sp-train S10 $T -e 1 -o half.ckpt
sp-train S10 $T -e 2 --resume half.ckpt -o half.ckpt
$PY "$SP_ROOT/tests/tools/ckpt_close.py" one.ckpt half.ckpt 1e-6
$PY - <<'X'
import json
one, two = json.load(open("one.json")), json.load(open("two.json"))
share = [b / one["read_bytes"][0] for b in two["read_bytes"]]
print("read bytes a rank at 2 ranks, of one process's:", " ".join(f"{s:.3f}" for s in share))
assert len(share) == 2 and all(0.4 <= s <= 0.6 for s in share), share
X
expect_status 2 sp-train S10 ${M/S10:0.7/S10:0.6} -e 4 --resume part.ckpt
expect_err_has "sp-train: part.ckpt: trained on another mix ("
expect_status 2 sp-train S10 --model mlp -q -e 4 --resume part.ckpt
expect_err_has "sp-train: part.ckpt: trained on a mix of sets: give the same --mix options"
