# Image folders (the layout torchvision's ImageFolder reads): sp-unpack DIR and
# sp-decode --labels-from dirs give the records, order and classes of
# ImageFolder on the same tree (nested class directories, a symbolic link, a
# non-image file, an empty class); --val-fraction is stable; a stage that
# writes nothing from a non-empty input fails unless --allow-empty.
. "$SP_ROOT/tests/tools/lib.sh"
$PY - <<'X'
import os
from PIL import Image
def img(path, i):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", (5 + i % 3, 4), (i * 7 % 256, i * 13 % 256, 50)).save(path)
i = 0
for cls, n in (("cat", 20), ("dog", 20), ("fox", 20)):
    for k in range(n):
        sub = "kitten/" if cls == "cat" and k % 3 == 0 else ""   # a nested class directory
        sub = "kitten/deep/" if cls == "cat" and k % 7 == 0 else sub
        img(f"tree/train/{cls}/{sub}{cls}{k:02d}.{'png' if k % 2 else 'jpg'}", i); i += 1
for cls in ("cat", "fox"):
    for k in range(3):
        img(f"tree/val/{cls}/v{cls}{k}.jpg", i); i += 1
os.makedirs("tree/train/emu")                                   # an empty class
open("tree/train/dog/notes.txt", "w").write("not an image\n")   # a non-image
os.symlink("../cat/cat01.png", "tree/train/dog/alias.png")      # a symbolic link
X

# without --follow the link is reported and passed over (a warning, status 1)
expect_stages "1 0" 'sp-unpack tree | sp-decode -q --labels-from dirs > nofollow.sprs'
expect_err_has "sp-unpack: train/dog/alias.png: symbolic link, not followed (--follow follows links)"
sp-cat nofollow.sprs | grep alias > /dev/null && fail "the link was followed without --follow"

# with --follow, as ImageFolder (os.walk(followlinks=True)) reads it
expect_stages "0 0" 'sp-unpack --follow tree | sp-decode --labels-from dirs --rejects rej.jsonl > s.sprs'
grep -qF '{"key":"train/dog/notes.txt","reason":"skipped","detail":"not a recognised dataset file or image"}' rej.jsonl ||
    fail "the rejects log does not name the non-image: $(cat rej.jsonl)"
sp-cat s.sprs > recs.jsonl
sp-cat -m s.sprs > meta.json
$PY - <<'X'
import json, warnings
warnings.filterwarnings("ignore")
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import find_classes, make_dataset, IMG_EXTENSIONS
meta = json.load(open("meta.json"))
recs = [json.loads(l) for l in open("recs.jsonl")]
ours = meta["classes"]
for split in ("train", "val"):
    root = f"tree/{split}"
    classes, class_to_idx = find_classes(root)
    if split == "train":
        # torchvision 0.14 refuses a class directory with no image (0.17 has allow_empty):
        # its samples are those of the other classes, its index stays in the list
        try:
            ImageFolder(root)
            raise SystemExit("FAILED: ImageFolder accepted the empty class; the test needs it refused")
        except FileNotFoundError as e:
            assert "emu" in str(e), e
        assert ours == classes, (ours, classes)
    samples = make_dataset(root, {c: i for c, i in class_to_idx.items() if c != "emu"}, IMG_EXTENSIONS)
    want = [(p[len("tree/"):], classes[t]) for p, t in samples]
    got = [(r["key"], ours[r["label"]]) for r in recs if r["split"] == split]
    if got != want:
        for a, b in zip(got, want):
            print(a, b, "" if a == b else "<- differs")
        raise SystemExit(f"FAILED: {split}: {len(got)} records against ImageFolder's {len(want)}")
    if split == "train":
        assert [r["label"] for r in recs if r["split"] == split] == [t for _, t in samples]
        assert any(k.startswith("train/cat/kitten/deep/") for k, _ in got) and any("alias" in k for k, _ in got)
print(len(recs), "records in ImageFolder's order and classes:", ours)
X

# plain class names from --classes, in the file's order; a class not listed is no label
printf 'fox\ndog\ncat\nemu\n' > classes.txt
sp-unpack --follow tree | sp-decode -q --labels-from dirs --classes classes.txt > named.sprs
[ "$(sp-cat -m named.sprs | $PY -c 'import json,sys; print(json.load(sys.stdin)["classes"])')" = "['fox', 'dog', 'cat', 'emu']" ] ||
    fail "--classes order"
sp-cat named.sprs | grep '"key":"train/fox/fox00.jpg","split":"train","label":0,' > /dev/null || fail "fox is not class 0"
printf 'cat\ndog\n' > two.txt
expect_stages "0 1" 'sp-unpack --follow tree | sp-decode --labels-from dirs --classes two.txt > /dev/null'
expect_err_has "sp-decode: train/fox/fox00.jpg: rejected (unlabeled): class directory fox is not in the class list"

# without --labels-from dirs: the messages point to it
expect_stages "0 1" 'sp-unpack --follow tree | sp-decode --strict > /dev/null'
expect_err_has "rejected (unlabeled): no WNID in the key to label it by (class directories: --labels-from dirs)"
expect_stages "0 1" 'sp-unpack --follow tree | sp-decode --classes classes.txt > /dev/null'
expect_err_has "sp-decode: classes.txt:1: not a synset line (nXXXXXXXX words): fox (plain class names: --labels-from dirs)"

# files named one by one keep their directories with --keep-paths, and so their classes
(cd tree && sp-unpack train/dog/dog00.jpg) > base.sprs
sp-cat base.sprs > base.jsonl
grep -q '"key":"dog00.jpg",' base.jsonl || fail "without --keep-paths a named file is keyed by its base name"
(cd tree && sp-unpack --keep-paths train/dog/*.jpg train/cat/*.png | sp-decode -q --labels-from dirs) > named1.sprs
sp-cat named1.sprs > named1.jsonl; head -1 named1.jsonl | grep -q '"key":"train/dog/dog00.jpg","split":"train","label":0,' || fail "a named file lost its path"
[ "$(sp-cat -m named1.sprs | $PY -c 'import json,sys; print(json.load(sys.stdin)["classes"])')" = "['dog', 'cat']" ] ||
    fail "classes of named files, in the order first seen"

# --val-fraction: a stable split by the hash of the key
val_keys() { sp-cat "$1" | $PY -c "import json,sys; print('\n'.join(sorted(r['key'] for r in map(json.loads, sys.stdin) if r['split'] == 'val')))"; }
sp-unpack --follow tree | sp-decode -q --labels-from dirs --val-fraction 0.1 > v1.sprs
sp-unpack --follow tree | sp-decode -q --labels-from dirs --val-fraction 0.1 > v2.sprs
val_keys v1.sprs > val1
val_keys v2.sprs > val2
cmp val1 val2 || fail "two runs put different keys in val"
# a reordered tree: the same files made in the opposite order, and named one by one in reverse order
mkdir rev
(cd tree && find . -type f | sort -r | while read -r f; do mkdir -p "../rev/$(dirname "$f")"; cp "$f" "../rev/$f"; done)
mkdir rev/train/emu
sp-unpack rev | sp-decode -q --labels-from dirs --val-fraction 0.1 > v3.sprs
val_keys v3.sprs > val3
(cd tree && sp-unpack --keep-paths $(find train val -name '*.jpg' -o -name '*.png' | grep -v alias | sort -r) |
    sp-decode -q --labels-from dirs --val-fraction 0.1) > v4.sprs
val_keys v4.sprs > val4
grep -v alias val1 > val1n || true
cmp val1n val3 || fail "the reordered tree put other keys in val"
cmp val1n val4 || fail "the files in reverse order put other keys in val"
nval=$(grep -c '^train/' val1 || true)
[ "$nval" -ge 2 ] && [ "$nval" -le 14 ] || fail "$nval of 61 train images in val for --val-fraction 0.1"
[ "$(grep -c '^val/' val1)" = 6 ] || fail "the val/ directory's images are not all in val"

# a stage that writes nothing from a non-empty input fails, unless --allow-empty
mkdir -p junk/a && echo text > junk/a/readme.txt
expect_stages "0 1" 'sp-unpack junk | sp-decode -q --labels-from dirs > /dev/null'
expect_err "sp-decode: no records out of 1 in: every one rejected or skipped (--allow-empty lets an empty stream through)"
expect_stages "0 0" 'sp-unpack junk | sp-decode -q --labels-from dirs --allow-empty > /dev/null'
rm junk/a/readme.txt && ln -s /etc/passwd junk/a/link
expect_status 1 sp-unpack -q junk
expect_err "sp-unpack: no files out of 1 entries: every one was skipped (--allow-empty lets an empty stream through)"
expect_status 1 sp-unpack -q --allow-empty junk
# a directory of dataset files: the same shards as the files named one by one
# (its name gives the dataset, as the files' directory does)
mkdir fashion-mnist && cp "$FMNIST"/t10k-*.gz fashion-mnist/
sp-unpack fashion-mnist | sp-decode -q | sp-shard -q -o D1
sp-unpack fashion-mnist/*.gz | sp-decode -q | sp-shard -q -o D2
cmp D1/manifest.json D2/manifest.json || fail "a directory and its files named one by one differ"
echo ok
