# run.sh: long
# docs/training.md's MPI resume example, run as written (its lines read from
# docs/training.md, with HOME a directory where shards/cifar10 is a small
# CIFAR-10 set, which the example names ~/shards/cifar10):
# resnet20 with --sync-bn for 5 epochs, then resumed to 20 without
# repeating --sync-bn, ends with the weights, optimizer state and batchnorm
# statistics of an uninterrupted 20-epoch run, bit for bit (the checkpoint
# keeps --sync-bn; a resume without it trained another model).
. "$SP_ROOT/tests/tools/lib.sh"
skip_under_sanitizers "it runs the documented MPI lines for 20 epochs; sp-train's MPI paths, resume included, run under them in test_mpi and test_mpi_elastic"
command -v mpirun >/dev/null || fail "mpirun missing: install openmpi-bin (scripts/install-deps.sh)"
# as test_mpi.sh: root allowed, loopback TCP, ranks may share the cores; set
# through the environment so that the doc's lines run unchanged. Under
# AddressSanitizer the ranks run without leak detection (see test_mpi.sh).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=false \
    OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo \
    OMPI_MCA_rmaps_base_oversubscribe=1 ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"

$PY "$FIX/make_cifar.py" cf --per-batch 12 > /dev/null   # 60 train records: one step an epoch at batch 128
export HOME=$PWD
mkdir shards
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -o shards/cifar10

# the example: the cifar10 lines of docs/training.md's MPI section, train then resume
grep -E '^    mpirun -np 2 .*sp-train ~/shards/cifar10 ' "$SP_ROOT/docs/training.md" | sed 's/^    //' > example.sh
[ "$(wc -l < example.sh)" -eq 2 ] && grep -q -- '--resume r20.ckpt' example.sh ||
    { cat example.sh >&2; fail "docs/training.md: the MPI example's two cifar10 lines (train, resume) not found"; }
first=$(head -1 example.sh)
case "$first" in *" -o r20.ckpt") ;; *) fail "docs/training.md: the first line does not end in -o r20.ckpt: $first" ;; esac
cat example.sh
bash -eu example.sh 2> example.err || { cat example.err >&2; fail "the doc's example failed"; }
# the uninterrupted run: the first line, to epoch 20
bash -eu -c "${first% -o r20.ckpt} --epochs 20 -o full.ckpt" 2> full.err || { cat full.err >&2; fail "the uninterrupted run failed"; }

$PY - <<'X'
import json, struct
def state(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12)
    return d[16 + h:-8], json.loads(d[16:16 + h])
(a, ha), (b, hb) = state("full.ckpt"), state("r20.ckpt")
assert ha["epoch"] == hb["epoch"] == 20, (ha["epoch"], hb["epoch"])
assert hb["extra"]["recipe"]["sync_bn"] is True, hb["extra"]["recipe"]
assert a == b, "the resumed example's state differs from the uninterrupted run's"
print(f"docs/training.md example: epoch 20 after 5 + 15 equals 20 in one go ({len(a)} bytes of state)")
X
echo ok
