# WebDataset tars in and out: 600 photographs (bench/benchlib.py's set, from
# mate-backgrounds) as two WebDataset tars with .cls labels give the records of
# the ImageFolder path on the same photos; sp-cat --tar of an encoded set read
# back through sp-unpack | sp-decode --labels-from wds --encoded | sp-shard is
# the same set (bytes, keys, labels, splits, classes); --tar-shards cuts at
# --tar-size; hostile groups are rejected naming key and tar.
. "$SP_ROOT/tests/tools/lib.sh"
[ -d /usr/share/backgrounds/mate/nature ] || fail "no photographs: apt-get install mate-backgrounds"
PYTHONPATH="$SP_ROOT/bench" $PY - <<'X'
import io, os, tarfile
from benchlib import make_set
os.makedirs("photos")
files = make_set("photos", 600, [(96, 72), (72, 96), (96, 64), (80, 80)])
classes = [f"c{k}" for k in range(10)]
open("classes.txt", "w").writelines(c + "\n" for c in classes)
def add(t, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
tars = [tarfile.open(f"shards-{s:03d}.tar", "w") for s in range(2)]
for i, f in enumerate(sorted(files)):
    stem = os.path.basename(f)[:-len(".JPEG")]
    k = int(stem[1:9])
    data = open(f, "rb").read()
    os.makedirs(f"tree/train/c{k}", exist_ok=True)
    open(f"tree/train/c{k}/{stem}.jpg", "wb").write(data)
    t = tars[i % 2]
    add(t, f"{stem}.jpg", data)
    add(t, f"{stem}.cls", str(k).encode())
    add(t, f"{stem}.txt", b"a member that is neither image nor label")
for t in tars:
    t.close()
X

# 1. WebDataset with .cls labels = ImageFolder, record for record
expect_stages "0 0" 'sp-unpack shards-000.tar shards-001.tar | sp-decode --labels-from wds --classes classes.txt > wds.sprs'
expect_err_has "sp-decode: 1800 records in, 600 out, 0 skipped"
expect_err_has "sp-decode: 1200 WebDataset members joined to their key's record"
sp-unpack tree | sp-decode -q --labels-from dirs > folder.sprs
sp-cat wds.sprs > wds.jsonl
sp-cat folder.sprs > folder.jsonl
[ "$(sp-cat -m wds.sprs | $PY -c 'import json,sys; print(json.load(sys.stdin)["classes"])')" = \
  "$(sp-cat -m folder.sprs | $PY -c 'import json,sys; print(json.load(sys.stdin)["classes"])')" ] || fail "classes differ"
$PY - <<'X'
import json, os
def recs(path, key):
    return {key(r["key"]): (r["label"], r["split"], r["shape"], r["checksum"]) for r in map(json.loads, open(path))}
w = recs("wds.jsonl", lambda k: k)
f = recs("folder.jsonl", lambda k: os.path.basename(k)[:-len(".jpg")])
assert len(w) == len(f) == 600, (len(w), len(f))
bad = [k for k in f if w.get(k) != f[k]]
assert not bad, ("records differ", bad[:3], [(w.get(k), f[k]) for k in bad[:3]])
print("600 WebDataset records equal ImageFolder's: labels, splits, shapes, pixel checksums")
X

# --resize as the image is decoded: the same as the folder path's
sp-unpack shards-000.tar | sp-decode -q --labels-from wds --classes classes.txt --resize 32 | sp-cat > w32.jsonl
sp-unpack tree | sp-decode -q --labels-from dirs --resize 32 | sp-cat > f32.jsonl
$PY - <<'X'
import json, os
w = {r["key"]: (r["label"], r["shape"], r["checksum"]) for r in map(json.loads, open("w32.jsonl"))}
f = {os.path.basename(r["key"])[:-4]: (r["label"], r["shape"], r["checksum"]) for r in map(json.loads, open("f32.jsonl"))}
assert len(w) == 300 and all(w[k] == f[k] and w[k][1] == [32, 32, 3] for k in w), "--resize 32 differs"
X

# a pixel stream out as PNGs and back: the same pixels, labels and keys
sp-cat --tar wds.sprs > px.tar
tar -tf px.tar > px-names.txt
grep -qx 'n00000007_17.png' px-names.txt || fail "no n00000007_17.png in the tar of pixels"
[ "$(grep -c '\.png$' px-names.txt)" = 600 ] || fail "a pixel stream gave $(grep -c '\.png$' px-names.txt) PNGs, not 600"
sp-unpack px.tar | sp-decode -q --labels-from wds --classes classes.txt | sp-cat > px.jsonl
[ "$(sort px.jsonl)" = "$(sort wds.jsonl)" ] || fail "pixels out as PNG and back differ"

# 2. an encoded set out as a WebDataset tar and back: the same set
sp-unpack tree | sp-decode -q --labels-from dirs --encoded --val-fraction 0.2 | sp-shard -q -o set1
sp-cat set1 > /dev/null
sp-cat --tar set1 > out.tar
tar -tf out.tar > names.txt
[ "$(wc -l < names.txt)" = 1800 ] || fail "tar -tf: $(wc -l < names.txt) members, not 1800"
grep -qx 'train/c3/n00000003_3%2Ejpg.jpg' names.txt || fail "the escaped member name: $(head -3 names.txt)"
$PY - <<'X'
import json, tarfile
t = tarfile.open("out.tar")
names = t.getnames()
assert len(names) == 1800 and all(n.count(".") == 1 for n in names), names[:3]
j = json.load(t.extractfile("train/c3/n00000003_3%2Ejpg.json"))
assert j["key"] == "train/c3/n00000003_3.jpg" and j["class"] == "c3" and j["label"] == 3, j
assert j["split"] in ("train", "val") and len(j["checksum"]) == 16, j
assert t.extractfile("train/c3/n00000003_3%2Ejpg.cls").read() == b"3"
assert t.extractfile("train/c3/n00000003_3%2Ejpg.jpg").read() == open("tree/train/c3/n00000003_3.jpg", "rb").read()
X
sp-cat -m set1 | $PY -c 'import json,sys; print("\n".join(json.load(sys.stdin)["classes"]))' > set1-classes.txt
expect_stages "0 0 0" 'sp-unpack out.tar | sp-decode --labels-from wds --encoded --classes set1-classes.txt | sp-shard -q -o set2'
expect_err_has "sp-decode: 600 images kept as shipped, 0 re-encoded"
sp-cat set1 | sort > a.jsonl
sp-cat set2 | sort > b.jsonl
[ "$(wc -l < a.jsonl)" = 600 ] && grep -q '"split":"val"' a.jsonl || fail "set1 lacks its 600 records or a val split"
diff a.jsonl b.jsonl > /dev/null || fail "the set read back from the tar differs: $(diff a.jsonl b.jsonl | head -4)"
[ "$(sp-cat -m set1 | $PY -c 'import json,sys; print(json.load(sys.stdin)["classes"])')" = \
  "$(sp-cat -m set2 | $PY -c 'import json,sys; print(json.load(sys.stdin)["classes"])')" ] || fail "classes differ"
sp-cat --tar set1 | cmp - out.tar || fail "a second --tar gave other bytes"

# --tar-shards: tars of at most --tar-size bytes, the same members in order; --split
sp-cat --tar-shards 'part-%03d.tar' --tar-size 300k set1
n=$(ls part-*.tar | wc -l)
[ "$n" -ge 4 ] || fail "--tar-size 300k gave $n tars"
for f in part-*.tar; do [ "$(stat -c %s "$f")" -le 307200 ] || fail "$f is over 300k"; done
[ "$(for f in part-*.tar; do tar -tf "$f"; done)" = "$(tar -tf out.tar)" ] || fail "--tar-shards members differ from --tar's"
sp-cat --tar --split val set1 | tar -tf - > val-names.txt
grep '\.json$' val-names.txt > val.txt
[ "$(wc -l < val.txt)" = "$(grep -c '"split":"val"' a.jsonl)" ] || fail "--split val"
expect_status 2 sp-cat --tar-shards out.tar set1
expect_err_has "--tar-shards: not a file name with one %d"

# a key of 300 bytes with dots, UTF-8 and a '#' (a pax header in the tar) out and back
long="$(printf 'dir.with.dots%040d/' 1 2 3 4 5)café #1"
mkdir -p "lk/$long" && cp tree/train/c0/n00000000_0.jpg "lk/$long/x.jpg"
sp-unpack lk | sp-decode -q --labels-from dirs --encoded > lk.sprs
sp-cat --tar lk.sprs > lk.tar
$PY -c "import tarfile; n = tarfile.open('lk.tar').getnames(); assert len(n) == 3 and len(n[0]) > 300, n"
printf 'dir.with.dots%040d\n' 1 > lk-classes.txt
sp-unpack lk.tar | sp-decode -q --labels-from wds --encoded --classes lk-classes.txt | sp-cat > lk2.jsonl
[ "$(sp-cat lk.sprs)" = "$(cat lk2.jsonl)" ] || fail "a long key out and back: $(cat lk2.jsonl)"

# 3. hostile groups: one reject each, naming key and tar; the rest go through
$PY - <<'X'
import io, tarfile
def add(t, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
jpg = open("tree/train/c0/n00000000_0.jpg", "rb").read()
with tarfile.open("bad.tar", "w") as t:
    add(t, "ok.jpg", jpg); add(t, "ok.cls", b"1\n"); add(t, "ok.json", b'{"name": "c2"}')
    add(t, "noimage.cls", b"1")
    add(t, "nolabel.jpg", jpg)
    add(t, "word.jpg", jpg); add(t, "word.cls", b"cat")
    add(t, "huge.jpg", jpg); add(t, "huge.cls", b"7" * (8 << 20))
    add(t, "dir/net.ppm", b"P6\n1 1\n255\nabc"); add(t, "dir/net.cls", b"1")
    add(t, "nofield.jpg", jpg); add(t, "nofield.cls", b"1"); add(t, "nofield.json", b'{"other": 1}')
with tarfile.open("apart.tar", "w") as t:
    add(t, "a.jpg", jpg); add(t, "b.jpg", jpg); add(t, "b.cls", b"0"); add(t, "a.cls", b"0")
X
expect_stages "0 1" 'sp-unpack bad.tar | sp-decode --labels-from wds --classes classes.txt --rejects rej.jsonl > bad.sprs'
expect_err_has "sp-decode: bad.tar/noimage: rejected (not-an-image): WebDataset key noimage of bad.tar: no image (.jpg, .jpeg, .png) among its 1 member (.cls)"
expect_err_has "sp-decode: bad.tar/nolabel: rejected (unlabeled): WebDataset key nolabel of bad.tar: no .cls member"
expect_err_has 'sp-decode: bad.tar/word: rejected (unlabeled): WebDataset key word of bad.tar: the .cls member is not a class index (a decimal integer 0..2147483647): "cat"'
expect_err_has "sp-decode: bad.tar/huge: rejected (too-large): WebDataset key huge of bad.tar: its .cls member has 8388608 bytes (at most 64)"
expect_err_has "sp-decode: bad.tar/dir/net: rejected (unsupported): WebDataset key dir/net of bad.tar: its image is a .ppm: netpbm images are not read here (convert to PNG)"
expect_err_has "sp-decode: 14 records in, 2 out, 5 rejected"
[ "$(wc -l < rej.jsonl)" = 5 ] || fail "rejects log: $(cat rej.jsonl)"
[ "$(sp-cat bad.sprs | cut -d, -f1-3)" = '{"key":"ok","split":"train","label":1
{"key":"nofield","split":"train","label":1' ] || fail "the good keys: $(sp-cat bad.sprs)"
expect_stages "0 1" 'sp-unpack bad.tar | sp-decode --labels-from wds --wds-label json:name --classes classes.txt > named.sprs'
expect_err_has "sp-decode: bad.tar/nofield: rejected (unlabeled): WebDataset key nofield of bad.tar: the .json member's \"name\" is missing, not a class index (0 or more) or class name"
expect_err_has "sp-decode: bad.tar/word: rejected (unlabeled): WebDataset key word of bad.tar: no .json member (--wds-label json:name)"
sp-cat named.sprs > named.jsonl
grep -q '"key":"ok","split":"train","label":2,' named.jsonl || fail "json:name did not label ok as class c2: $(cat named.jsonl)"
expect_stages "0 1" 'sp-unpack apart.tar | sp-decode --labels-from wds > /dev/null'
expect_err_has "sp-decode: apart.tar/a.cls: WebDataset key a of apart.tar comes again after other keys: a key's members must be adjacent in the tar (tar them sorted by name)"
expect_status 2 sp-decode --wds-label json: -
expect_err_has "--wds-label"
echo "ok"
