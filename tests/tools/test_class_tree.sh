# A tree of class folders with no split directory (CLASS/FILE, as a folder, a
# zip or a tar): its records are train, and every reader opens the set; the
# classes come in ImageFolder's sorted order whatever the container and the
# order of its members; sp-shard refuses a record of no split before writing.
. "$SP_ROOT/tests/tools/lib.sh"
$PY - <<'X'
import os, random, tarfile, zipfile
from PIL import Image
random.seed(5)
files = []
# "zebra" first on purpose: a shuffled archive names classes in another order
for c, cls in enumerate(("zebra", "nature", "abstract", "Mixed")):
    for k in range(6):
        for top in ("tree", "split"):
            sub = f"{'train' if k < 4 else 'val'}/" if top == "split" else ""
            path = f"{top}/{sub}{cls}/{cls}{k}.png"
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.new("RGB", (9, 7), (c * 60, k * 40, 90)).save(path)
            files.append(path)
for top in ("tree", "split"):
    mine = [f for f in files if f.startswith(top + "/")]
    for n in range(2):   # two archives of each, members in two shuffled orders
        random.shuffle(mine)
        with zipfile.ZipFile(f"{top}{n}.zip", "w") as z:
            for f in mine:
                z.write(f, f[len(top) + 1:])
        with tarfile.open(f"{top}{n}.tar", "w") as t:
            for f in mine:
                t.add(f, f[len(top) + 1:])
X

# issue: such a tree gave split "none", which no reader opens
sp-unpack tree | sp-decode -q --labels-from dirs --resize 8 | sp-shard -q -o S
ls S | grep -q '^train-' || fail "the records of a tree without train/ are not train: $(ls S)"
sp-verify -q S || fail "sp-verify refuses the set"
sp-inspect S > /dev/null || fail "sp-inspect refuses the set"
sp-train -q S --model mlp -e 1 -b 8 -o m.ckpt || fail "sp-train refuses the set"
sp-eval -q S --split train -c m.ckpt > /dev/null || fail "sp-eval refuses the set"
PYTHONPATH="$SP_ROOT/python" $PY -c "
import shardpipe
n = sum(len(y) for _, y in shardpipe.Loader('S', split='train', batch_size=8))
assert n == 24, n" || fail "the Loader refuses the set"
# --unlabeled keeps unlabelled images: train too
mkdir -p loose && cp tree/zebra/zebra0.png loose/a.png && cp tree/nature/nature1.png loose/b.png
sp-unpack loose | sp-decode -q --unlabeled | sp-shard -q -o U
sp-verify -q U && ls U | grep -q '^train-' || fail "--unlabeled records are not train"
# --split names another split
sp-unpack tree | sp-decode -q --labels-from dirs --split test | sp-shard -q -o T
ls T | grep -q '^test-' || fail "--split test"
sp-verify -q T

# (sp-shard's refusal of a record of no split: tests/unit/test_shard_split.c)

# the same classes, in sorted order, and the same records and labels from the
# folder, the zips and the tars, whatever the order of their members; with
# train/ and val/ in small shards (-n 3, no shuffle) shards finish before the
# last class is seen
for top in tree split; do
    for src in $top ${top}0.zip ${top}1.zip ${top}0.tar ${top}1.tar; do
        sp-unpack $src | sp-decode -q --labels-from dirs | sp-shard -q --no-shuffle -n 3 -o "O_$src"
        sp-verify -q "O_$src"
    done
done
$PY - <<'X'
import glob, json, h5py
for top in ("tree", "split"):
    sets = {}
    for src in (top, f"{top}0.zip", f"{top}1.zip", f"{top}0.tar", f"{top}1.tar"):
        m = json.load(open(f"O_{src}/manifest.json"))
        assert "class_order" not in m, m
        recs = set()
        for f in glob.glob(f"O_{src}/*.h5"):
            with h5py.File(f, "r") as h:
                assert [c.decode() if isinstance(c, bytes) else c for c in h.attrs["classes"]] == m["classes"], f
                for k, l in zip(h["keys"][:], h["labels"][:]):
                    k = k.decode()
                    recs.add((k if src == top else k.split("/", 1)[1], h.attrs["split"], m["classes"][l]))
        assert all(k.split("/")[-2] == c for k, _, c in recs), sorted(recs)[:3]
        sets[src] = (m["classes"], sorted(recs))
    want = sets[top]
    assert want[0] == sorted(want[0]) == ["Mixed", "abstract", "nature", "zebra"], want[0]
    for src, got in sets.items():
        assert got == want, f"{src}: {got[0]} against the folder's {want[0]}"
print("classes and labels equal from the folder, zips and tars")
X
echo ok
