# The nn library's calls go one way: layers.c dispatches to the layer kinds
# (dense.c, conv.c, pool.c, norm.c, onednn.c and the files they call in
# turn), which call nothing of layers.c: the shape helpers they share are
# inline (nn.h, layer_kinds.h) and the gradient through a relu is relu.c's.
# Read from the built objects' symbols, so a call hidden behind a macro
# counts too. models.o stands apart: its nn_forward and nn_backward run the
# nets inside blocks and concatenations, which layers.c calls by design.
. "$SP_ROOT/tests/tools/lib.sh"
obj="$SP_BIN/../obj/nn"
[ -f "$obj/layers.o" ] || fail "no $obj/layers.o: build first (make all)"
command -v nm > /dev/null || { echo "SKIP: no nm (binutils)" >&2; exit 77; }
$PY - "$obj" <<'X'
import os, subprocess, sys
d = sys.argv[1]
def syms(o, flag):
    out = subprocess.run(["nm", flag, os.path.join(d, o)], check=True, capture_output=True, text=True).stdout
    return {l.split()[-1] for l in out.splitlines() if l.strip() and (flag == "-u" or l.split()[-2] in "TDBR")}
objs = sorted(o for o in os.listdir(d) if o.endswith(".o"))
defs = {o: syms(o, "--defined-only") for o in objs}
undef = {o: syms(o, "-u") for o in objs}
# the kinds: what layers.o calls, and what those call, through nn/ (models.o apart)
kinds, todo = set(), ["layers.o"]
while todo:
    caller = todo.pop()
    for o in objs:
        if o not in kinds and o not in ("layers.o", "models.o") and undef[caller] & defs[o]:
            kinds.add(o)
            todo.append(o)
want = {"dense.o", "conv.o", "pool.o", "norm.o", "onednn.o", "relu.o"}
if not want <= kinds:
    sys.exit(f"FAILED: layers.o no longer calls {sorted(want - kinds)}: this test's list is out of date")
back = [f"{o} calls {s}" for o in sorted(kinds) for s in sorted(undef[o] & defs["layers.o"])]
if back:
    sys.exit("FAILED: a layer kind calls back into layers.c:\n  " + "\n  ".join(back))
print("kinds:", " ".join(sorted(kinds)))
X
echo ok
