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
subprocess.run("sp-unpack -q one.tar | sp-decode -q --unlabeled > one.sprs", shell=True, check=True)
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
sp-unpack idx/* | sp-decode -q | sp-resize 32 | sp-cat | head -1 | grep -q '"shape":\[32,32,1\]' || fail "gray"

# decode and resize in one stage gives the records of the two stages
$PY "$FIX/make_ilsvrc.py" il
sp-unpack il/ILSVRC2012_img_train.tar | sp-decode -q --classes il/classes.txt | sp-resize -f bicubic 40 | sp-cat > two
sp-unpack il/ILSVRC2012_img_train.tar | sp-decode -q --classes il/classes.txt --resize 40 --resize-filter bicubic | sp-cat > one
cmp one two || fail "sp-decode --resize differs from sp-resize"
# ... and at a size where the JPEGs decode at a DCT scale, it is --draft plus sp-resize
sp-unpack il/ILSVRC2012_img_train.tar | sp-decode -q --classes il/classes.txt --draft 12 | sp-resize 12 | sp-cat > two
sp-unpack il/ILSVRC2012_img_train.tar | sp-decode -q --classes il/classes.txt --resize 12 | sp-cat > one
cmp one two || fail "sp-decode --resize 12 differs from --draft 12 | sp-resize 12"

# on 3 threads: the same records in the same order
sp-unpack il/ILSVRC2012_img_train.tar il/ILSVRC2012_img_val.tar | sp-decode -q --classes il/classes.txt \
    --labels il/LOC_val_solution.csv > il.sprs
sp-resize 40 il.sprs | sp-cat > one && sp-resize -j 3 40 il.sprs | sp-cat > three
cmp one three || fail "-j 3 differs"

# mixed sizes (an ILSVRC-shaped set) to one size, sharded and verified
sp-unpack il/ILSVRC2012_img_train.tar il/ILSVRC2012_img_val.tar |
    sp-decode -q --classes il/classes.txt --labels il/LOC_val_solution.csv |
    sp-resize 40 | sp-shard -q -o S
sp-verify S
expect_status 1 sh -c 'sp-unpack il/ILSVRC2012_img_val.tar | sp-resize 40'
expect_err_has "a blob record; sp-resize takes uint8 pixels of 1 to 4 channels (run sp-decode first)"
expect_status 2 sp-resize 0
expect_err_has "not a size (SIZE or WxH): 0"
echo ok
