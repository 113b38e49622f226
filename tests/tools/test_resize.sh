# sp-resize: PIL-exact for every filter at 224 and 32 on photographs and a
# zone plate; the squash, pad and resize-to modes against PIL; records
# already at size pass through untouched; 1-channel records stay 1-channel;
# an ImageNet-shaped set of mixed sizes becomes one verified shard set.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$SP_ROOT/tests/ref/check_resize.py" "$SP_BIN" golden > golden.txt || { cat golden.txt; fail "golden"; }
cat golden.txt

# the other modes, against PIL too
$PY - <<'X'
import io, os, subprocess, sys, tarfile
import numpy as np
from PIL import Image
sys.path.insert(0, os.path.join(os.environ["SP_ROOT"], "tests/ref"))
from recstream import read_stream
rng = np.random.default_rng(2)
img = Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).resize((300, 200), Image.BICUBIC)
b = io.BytesIO(); img.save(b, "PNG")
with tarfile.open("one.tar", "w") as t:
    info = tarfile.TarInfo("one.png"); info.size = len(b.getvalue()); t.addfile(info, io.BytesIO(b.getvalue()))
subprocess.run(["bash", "-o", "pipefail", "-c", "sp-unpack -q one.tar | sp-decode -q --unlabeled > one.sprs"], check=True)
def run(args):
    out = subprocess.run(f"sp-resize {args} one.sprs", shell=True, check=True, stdout=subprocess.PIPE).stdout
    r = read_stream(out)[1][0]
    return np.frombuffer(r["payload"], np.uint8).reshape(r["shape"])
# squash to 64x48
want = np.asarray(img.resize((64, 48), Image.BILINEAR))
assert np.array_equal(run("--mode squash 64x48"), want), "squash"
# pad into 64x64: fit 64x42, centred at row 11, padding 7
fit = np.asarray(img.resize((64, 42), Image.BILINEAR))
canvas = np.full((64, 64, 3), 7, np.uint8); canvas[11:53] = fit
assert np.array_equal(run("--mode pad --pad-value 7 64"), canvas), "pad"
# resize 256 (shorter side), then the centre 224: torchvision's recipe
r = img.resize((384, 256), Image.BICUBIC)
left, top = int(round((384 - 224) / 2.0)), int(round((256 - 224) / 2.0))
assert np.array_equal(run("-f bicubic --resize-to 256 224"), np.asarray(r.crop((left, top, left + 224, top + 224)))), "resize-to"
# a non-square crop target: cover 80x40, then the centre
r = img.resize((80, 53), Image.BILINEAR)
assert np.array_equal(run("80x40"), np.asarray(r.crop((0, 6, 80, 46)))), "crop WxH"
print("modes ok")
X

# already at size: untouched (same checksums); 1-channel records stay so
$PY "$FIX/make_cifar.py" cf --per-batch 4
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q > c.sprs
sp-resize 32 c.sprs | sp-cat > a && sp-cat c.sprs > b
cmp a b || fail "32x32 records changed"
$PY "$FIX/make_idx.py" idx --train 3 --test 2
sp-unpack idx/* | sp-decode -q | sp-resize 32 | sp-cat > gray
head -1 gray | grep -q '"shape":\[32,32,1\]' || fail "gray"

# decode and resize in one stage gives the records of the two stages
$PY "$FIX/make_ilsvrc.py" il
# (status 1 from sp-decode: the fixture's corrupt images are rejected)
expect_stages "0 1 0 0" 'sp-unpack il/ILSVRC2012_img_train.tar | sp-decode -q --classes il/classes.txt | sp-resize -f bicubic 40 | sp-cat > two'
expect_stages "0 1 0" 'sp-unpack il/ILSVRC2012_img_train.tar | sp-decode -q --classes il/classes.txt --resize 40 --resize-filter bicubic | sp-cat > one'
cmp one two || fail "sp-decode --resize differs from sp-resize"
# ... and at a size where the JPEGs decode at a DCT scale, it is --draft plus sp-resize
expect_stages "0 1 0 0" 'sp-unpack il/ILSVRC2012_img_train.tar | sp-decode -q --classes il/classes.txt --draft 12 | sp-resize 12 | sp-cat > two'
expect_stages "0 1 0" 'sp-unpack il/ILSVRC2012_img_train.tar | sp-decode -q --classes il/classes.txt --resize 12 | sp-cat > one'
cmp one two || fail "sp-decode --resize 12 differs from --draft 12 | sp-resize 12"

# decoding only the part of a JPEG the resize reads (libjpeg's partial
# decompression) changes no byte: every subsampling, grayscale, progressive,
# restart markers, CMYK, odd and thin sizes, every mode and filter, at full
# size and at DCT scales, against a full decode piped to sp-resize
$PY - <<'X'
import io, subprocess, tarfile
import numpy as np
from PIL import Image
rng = np.random.default_rng(5)
def photo(w, h):  # smooth shapes plus noise: every DCT frequency in use
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 3) % 256], -1)
    return np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
variants = [("420", {"subsampling": 2}), ("422", {"subsampling": 1}), ("444", {"subsampling": 0}),
            ("prog", {"progressive": True}), ("q50", {"quality": 50})]
sizes = [(500, 375), (375, 500), (333, 500), (231, 301), (1000, 90), (70, 600), (257, 256), (600, 450), (48, 48)]
with tarfile.open("kinds.tar", "w") as t:
    def add(name, img, **kw):
        b = io.BytesIO(); img.save(b, "JPEG", **kw)
        info = tarfile.TarInfo(name); info.size = len(b.getvalue()); t.addfile(info, io.BytesIO(b.getvalue()))
    for i, (w, h) in enumerate(sizes):
        for v, kw in variants:
            add(f"{i}-{v}.jpg", Image.fromarray(photo(w, h)), quality=kw.pop("quality", 90), **kw)
        add(f"{i}-gray.jpg", Image.fromarray(photo(w, h)).convert("L"), quality=90)
        add(f"{i}-cmyk.jpg", Image.fromarray(photo(w, h)).convert("CMYK"), quality=90)
    # restart markers every 2 MCU rows, by jpegtran (Debian's Pillow 9.4 ignores restart_marker_rows)
    b = io.BytesIO(); Image.fromarray(photo(500, 375)).save(b, "JPEG", quality=90)
    rst = subprocess.run(["jpegtran", "-restart", "2"], input=b.getvalue(), capture_output=True, check=True).stdout
    assert sum(rst.count(bytes([0xFF, 0xD0 + i])) for i in range(8)) > 5, "jpegtran wrote no restart markers"
    info = tarfile.TarInfo("rst.jpg"); info.size = len(rst); t.addfile(info, io.BytesIO(rst))
X
sp-unpack -q kinds.tar > kinds.sprs
for args in "224" "64" "--resize-to 256 224" "-f lanczos3 100x60" "-f area --mode squash 90x130" \
            "-f bicubic --mode pad 80" "300"; do
    for draft in 9999 24; do
        fused=$(echo "$args" | sed 's/-f /--resize-filter /; s/--mode /--resize-mode /; s/\([0-9x]*\)$/--resize \1/')
        sp-decode -q --unlabeled --draft $draft $fused < kinds.sprs | sp-cat > one
        sp-decode -q --unlabeled --draft $draft < kinds.sprs | sp-resize $args | sp-cat > two
        [ "$(wc -l < one)" -ge 60 ] || fail "too few records for $args"
        cmp one two || fail "a region decode differs: sp-resize $args, --draft $draft"
    done
done

# ... and finds the same damage: files cut short or with bytes overwritten,
# early and late (where only rows outside the region are hit), are rejected
# alike with and without the region
$PY - <<'X'
import io, tarfile
import numpy as np
from PIL import Image
rng = np.random.default_rng(6)
with tarfile.open("damaged.tar", "w") as t:
    for w, h in [(375, 500), (500, 375)]:
        b = io.BytesIO(); Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(b, "JPEG", quality=90)
        d = b.getvalue()
        for f in (0.2, 0.5, 0.9, 0.97, 0.995):
            cut = d[:int(len(d) * f)]
            bad = bytearray(d); at = int(len(d) * f); bad[at:at + 40] = bytes(rng.integers(0, 256, 40, dtype=np.uint8))
            for name, data in [(f"{w}x{h}-cut{f}.jpg", cut), (f"{w}x{h}-bad{f}.jpg", bytes(bad))]:
                info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
X
sp-unpack -q damaged.tar > damaged.sprs
for rej in full region; do # status 1: the cut files are rejected
    st=0
    if [ $rej = full ]; then opts=""; else opts="--resize 224"; fi
    sp-decode -q --unlabeled --rejects $rej.rej $opts < damaged.sprs > /dev/null || st=$?
    [ "$st" -eq 1 ] || fail "sp-decode with rejects: status $st, expected 1"
done
[ "$(grep -c -- '-cut' full.rej)" -eq 10 ] || fail "not every cut file rejected: $(cat full.rej)"
cut -d, -f1-2 full.rej > a && cut -d, -f1-2 region.rej > b
cmp a b || fail "a region decode rejects other files: $(diff a b)"

# on 3 threads: the same records in the same order
# (sp-decode's status 1: the fixture's corrupt images are rejected)
sp-unpack il/ILSVRC2012_img_train.tar il/ILSVRC2012_img_val.tar > il.blobs
st=0; sp-decode -q --classes il/classes.txt --labels il/LOC_val_solution.csv il.blobs > il.sprs || st=$?
[ "$st" -eq 1 ] || fail "sp-decode with rejects: status $st, expected 1"
sp-resize 40 il.sprs | sp-cat > one && sp-resize -j 3 40 il.sprs | sp-cat > three
cmp one three || fail "-j 3 differs"

# mixed sizes (an ILSVRC-shaped set) to one size, sharded and verified
expect_stages "0 1 0 0" 'sp-unpack il/ILSVRC2012_img_train.tar il/ILSVRC2012_img_val.tar |
    sp-decode -q --classes il/classes.txt --labels il/LOC_val_solution.csv | sp-resize 40 | sp-shard -q -o S'
sp-verify S
expect_stages "0/141 1" 'sp-unpack il/ILSVRC2012_img_val.tar | sp-resize 40'
expect_err_has "a blob record; sp-resize takes uint8 pixels of 1 to 4 channels (run sp-decode first)"
expect_status 2 sp-resize 0
expect_err_has "not a size (SIZE or WxH): 0"
echo ok
