# examples/, run as a user would on a Fashion-MNIST subset (a tenth:
# sp-decode --part 0/10): the C loop over libshardpipe-reader, built with
# pkg-config and the project's warnings; the numpy loop over shardpipe.Loader;
# PyTorch DDP on 2 CPU processes (gloo). Each one's loss goes down every
# epoch and its model beats chance by far; the DDP ranks read disjoint records
# and end with equal weights (the script checks that, and exits 1 otherwise).
. "$SP_ROOT/tests/tools/lib.sh"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
export PKG_CONFIG_PATH="$(dirname "$SP_BIN")/lib/pkgconfig" PYTHONPATH="$SP_ROOT/python" OMP_NUM_THREADS=1
sp-unpack -q "$FMNIST"/*.gz | sp-decode -q --part 0/10 | sp-shard -q -o fm

# falling: each "epoch N: loss L" line of FILE below the one before, and the
# "NAME accuracy A" line above 0.7
falling() {
    $PY - "$1" <<'Y' || { cat "$1" >&2; fail "$1: the loss does not go down, or the accuracy is low"; }
import re, sys
text = open(sys.argv[1]).read()
losses = [float(v) for v in re.findall(r"^epoch \d+: loss ([0-9.]+)", text, re.M)]
acc = re.findall(r"^(?:test|val) accuracy ([0-9.]+)$", text, re.M)
assert len(losses) == 3 and all(b < a for a, b in zip(losses, losses[1:])), losses
assert len(acc) == 1 and float(acc[0]) > 0.7, acc
Y
}

cc -std=c11 -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Werror ${SP_SAN:-} \
    "$SP_ROOT/examples/c_loop.c" $(pkg-config --cflags --libs shardpipe-reader) -lm -o c_loop
./c_loop fm 3 > c.out
falling c.out
expect_status 1 ./c_loop nothing-here
expect_err_has "c_loop: nothing-here: "

$PY "$SP_ROOT/examples/numpy_loop.py" fm 3 > numpy.out
falling numpy.out

timeout -k 5 300 $PY "$SP_ROOT/examples/torch_ddp.py" fm 3 > ddp.out 2> ddp.err || { cat ddp.out ddp.err >&2; fail "torch_ddp.py"; }
$PY - ddp.out <<'Y' || { cat ddp.out >&2; fail "torch_ddp.py's output"; }
import re, sys
text = open(sys.argv[1]).read()
losses = [float(v) for v in re.findall(r"^epoch \d+: loss ([0-9.]+) over \d+ records$", text, re.M)]
assert len(losses) == 3 and all(b < a for a, b in zip(losses, losses[1:])), losses
assert sorted(re.findall(r"^rank (\d) of 2: ", text, re.M)) == ["0", "1"]
assert re.search(r"^ranks' records disjoint \((\d+) \+ \1\), weights equal", text, re.M)
Y
echo ok
