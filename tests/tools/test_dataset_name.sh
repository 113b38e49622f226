# A folder of the user's own names its set: sp-unpack of one directory that
# is no known dataset gives the stream (and so the shards) the folder's name;
# a known dataset's directory keeps its name; --dataset wins over both.
. "$SP_ROOT/tests/tools/lib.sh"
$PY - <<'X'
import os
import numpy as np
from PIL import Image
for c in ("nature", "abstract"):
    os.makedirs(f"catdog/{c}")
    Image.fromarray(np.full((8, 8, 3), len(c), np.uint8)).save(f"catdog/{c}/a.png")
X
expect_stages "0 0 0" "sp-unpack catdog/ | sp-decode -q --labels-from dirs | sp-shard -q -o S"
sp-inspect S > inspect.txt
grep -qx 'dataset     catdog (2 classes)' inspect.txt || { cat inspect.txt; fail "the set is not named after its folder"; }
(cd catdog && sp-unpack . | sp-decode -q --labels-from dirs | sp-shard -q -o ../T) || fail "sp-unpack ."
[ "$($PY -c 'import json; print(json.load(open("T/manifest.json"))["dataset"])')" = catdog ] || fail "'.' is not named after its folder"
expect_stages "0 0 0" "sp-unpack -d pets catdog | sp-decode -q --labels-from dirs | sp-shard -q -o U"
[ "$($PY -c 'import json; print(json.load(open("U/manifest.json"))["dataset"])')" = pets ] || fail "--dataset did not win"
echo ok
