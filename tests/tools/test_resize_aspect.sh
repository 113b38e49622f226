# sp-decode --resize N --resize-mode shorter: the output size from the image's
# size in the file (not the DCT-scaled decode's), as torchvision's Resize(N)
# computes it, on odd sizes, in pixel and encoded mode.
. "$SP_ROOT/tests/tools/lib.sh"
$PY -c "import torchvision" 2>/dev/null || fail "python3-torchvision is not installed"
$PY - <<'X'
import os
from PIL import Image
os.makedirs("imgs/a")
for w, h in ((255, 1000), (3, 5000), (1001, 333), (641, 479), (17, 16)):
    Image.new("RGB", (w, h), (w % 256, h % 256, 7)).save(f"imgs/a/{w}x{h}.jpg", quality=90)
X
for n in 128 2 100; do
    for enc in "" --encoded; do
        sp-unpack imgs | sp-decode -q --labels-from dirs $enc --resize $n --resize-mode shorter > r.sprs
        sp-cat r.sprs > r.jsonl
        $PY - $n <<'X'
import json, re, sys
from PIL import Image
import torchvision.transforms.functional as F
n = int(sys.argv[1])
for r in map(json.loads, open("r.jsonl")):
    w, h = map(int, re.search(r"(\d+)x(\d+)\.jpg", r["key"]).groups())
    tw, th = F.resize(Image.new("RGB", (w, h)), n).size if min(w, h) > n else (w, h)
    got = (r["shape"][1], r["shape"][0])
    assert got == (tw, th), f"{r['key']} at {n}: {got}, torchvision's {(tw, th)}"
print(n, "ok")
X
    done
done
echo ok
