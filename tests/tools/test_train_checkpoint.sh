# sp-train and sp-eval on untrusted checkpoints and bad settings: every header
# field out of range is refused with status 1 and a message naming the file
# and the field, before anything is sized from it; the file's size must be
# what the header implies; a negative or non-finite learning rate or step is
# refused from the command line and from a checkpoint; -o on a missing or
# unwritable location fails before the first epoch with status 3.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_idx.py" idx --train 64 --test 16 --size 8 8
sp-unpack -q --dataset mnist idx/* > blobs.sprs
sp-decode -q blobs.sprs > pixels.sprs
sp-shard -q -o d < pixels.sprs
sp-train -q d -e 1 -b 16 -o good.ckpt
sp-eval -q d --checkpoint good.ckpt > /dev/null

# mutate OUT PYTHON: good.ckpt with its header changed by PYTHON (h is the
# header as a dict; raw bytes in d), written with a correct checksum, so only
# the field checks can refuse it
mutate() {
    $PY - "$1" "$2" <<'X'
import json, struct, sys, xxhash
out, code = sys.argv[1], sys.argv[2]
d = open("good.ckpt", "rb").read()
(hlen,) = struct.unpack_from("<I", d, 12)
h, body = json.loads(d[16:16 + hlen]), d[16 + hlen:-8]
exec(code)
hs = json.dumps(h, separators=(",", ":"), sort_keys=True).encode()
d = d[:12] + struct.pack("<I", len(hs)) + hs + body
open(out, "wb").write(d + struct.pack("<Q", xxhash.xxh3_64_intdigest(d)))
X
}

# refused_by_both CKPT MESSAGE: sp-eval and sp-train --resume exit 1 with it
refused_by_both() {
    expect_status 1 sp-eval d --checkpoint "$1"
    expect_err "sp-eval: $1: $2"
    expect_status 1 sp-train d -e 5 --resume "$1"
    expect_err "sp-train: $1: $2"
}

mutate side.ckpt 'h["input"][1] = h["input"][2] = 46341'
refused_by_both side.ckpt "header field input[1] (height): 46341 is out of range 1..4096"
mutate wide.ckpt 'h["input"][2] = 2**32 + 8'
refused_by_both wide.ckpt "header field input[2] (width): 4294967304 is out of range 1..4096"
mutate chan.ckpt 'h["input"][0] = -1'
refused_by_both chan.ckpt "header field input[0] (channels): -1 is out of range 1..64"
mutate classes.ckpt 'h["classes"] = 2**31 - 1'
refused_by_both classes.ckpt "header field classes: 2147483647 is out of range 2..65536"
mutate epoch.ckpt 'h["epoch"] = 2**40'
refused_by_both epoch.ckpt "header field epoch: 1099511627776 is out of range 0..100000"
mutate step.ckpt 'h["optimizer"]["step"] = -5'
refused_by_both step.ckpt "header field optimizer.step: -5 is out of range 0..9007199254740992"
mutate lr.ckpt 'h["optimizer"]["lr"] = -0.001'
refused_by_both lr.ckpt "header field optimizer.lr: -0.001 is outside (0, 1e+06]"
mutate lrbig.ckpt 'h["optimizer"]["lr"] = 1e300'
refused_by_both lrbig.ckpt "header field optimizer.lr: 1e+300 is outside (0, 1e+06]"
mutate beta.ckpt 'h["optimizer"]["beta2"] = 1.0'
refused_by_both beta.ckpt "header field optimizer.beta2: 1 is outside [0, 1)"
mutate kind.ckpt 'h["optimizer"]["kind"] = "lion"'
refused_by_both kind.ckpt "header field optimizer.kind: not sgd or adam"
mutate model.ckpt 'h["model"] = "resnet9"'
refused_by_both model.ckpt "unknown model resnet9 (mlp, cnn, cnn-same, resnet18, resnet34, resnet50, resnet20, resnet32, resnet44, resnet56, resnet110, inception_v3, vgg11, vgg16, vgg11_bn, vgg16_bn, the vggs with -cifar; any with +headN)"
mutate params.ckpt 'h["parameters"] += 1'
n=$($PY -c "import json, struct; d = open('good.ckpt', 'rb').read(); print(json.loads(d[16:16 + struct.unpack_from('<I', d, 12)[0]])['parameters'])")
refused_by_both params.ckpt "header field parameters: $((n + 1)), but model mlp has $n"
mutate rng.ckpt 'h["rng"] = ["0" * 16] * 4'
refused_by_both rng.ckpt "header field rng: all zero"
mutate rnghex.ckpt 'h["rng"][2] = "12345"'
refused_by_both rnghex.ckpt "header field rng[2]: not 16 hex digits"
mutate float.ckpt 'h["epoch"] = 1.5'
refused_by_both float.ckpt "header field epoch: missing or not an integer"
# the training recipe a resumed run takes from the checkpoint
refused_by_train() {
    expect_status 1 sp-train d -e 5 --resume "$1"
    expect_err "sp-train: $1: $2"
}
mutate rbatch.ckpt 'h["extra"]["recipe"]["batch"] = 2**32 + 16'
refused_by_train rbatch.ckpt "header field extra.recipe.batch: 4294967312 is out of range 1..65536"
mutate rlr.ckpt 'h["extra"]["recipe"]["lr"] = 1e300'
refused_by_train rlr.ckpt "header field extra.recipe.lr: 1e+300 is outside (0, 1e+06]"
mutate rlrneg.ckpt 'h["extra"]["recipe"]["lr"] = -1'
refused_by_train rlrneg.ckpt "header field extra.recipe.lr: -1 is outside (0, 1e+06]"
mutate rlrneg2.ckpt 'h["extra"]["recipe"]["lr"] = -1.5'
refused_by_train rlrneg2.ckpt "header field extra.recipe.lr: -1.5 is outside (0, 1e+06]"
mutate rwarm.ckpt 'h["extra"]["recipe"]["warmup"] = 2**40'
refused_by_train rwarm.ckpt "header field extra.recipe.warmup: 1099511627776 is out of range 0..100000"
mutate rsmooth.ckpt 'h["extra"]["recipe"]["label_smoothing"] = 1.0'
refused_by_train rsmooth.ckpt "header field extra.recipe.label_smoothing: 1 is outside [0, 1)"
mutate rsched.ckpt 'h["extra"]["recipe"]["schedule"] = "linear"'
refused_by_train rsched.ckpt "header field extra.recipe.schedule: missing or unknown"
mutate norecipe.ckpt 'del h["extra"]["recipe"]'
refused_by_train norecipe.ckpt "the checkpoint does not record its training recipe"

# a model whose header is in range but whose weights the file does not hold
mutate bigger.ckpt 'h["input"] = [1, 2048, 2048]; h["parameters"] = (2048 * 2048 + 1) * 128 + 129 * 10'
want=$($PY -c "import struct; d = open('bigger.ckpt', 'rb').read(); print(24 + struct.unpack_from('<I', d, 12)[0] + 4 * 3 * ((2048 * 2048 + 1) * 128 + 129 * 10))")
refused_by_both bigger.ckpt "$(stat -c %s bigger.ckpt) bytes, but its header (model mlp, 2048x2048x1, 10 classes) implies $want"
# four bytes too many after an intact header
$PY -c "d = open('good.ckpt', 'rb').read(); open('long.ckpt', 'wb').write(d + b'\0' * 4)"
good=$(stat -c %s good.ckpt)
refused_by_both long.ckpt "$((good + 4)) bytes, but its header (model mlp, 8x8x1, 10 classes) implies $good"
# a header length beyond 1 MiB
$PY -c "import struct; d = bytearray(open('good.ckpt', 'rb').read()); struct.pack_into('<I', d, 12, 2**31); open('hlen.ckpt', 'wb').write(d)"
refused_by_both hlen.ckpt "header length 2147483648 exceeds the limit of 1 MiB"
# a NaN among the weights, checksum intact
$PY - <<'X'
import struct, xxhash
d = bytearray(open("good.ckpt", "rb").read())
(hlen,) = struct.unpack_from("<I", d, 12)
struct.pack_into("<f", d, 16 + hlen + 40, float("nan"))
d = bytes(d[:-8]); open("nan.ckpt", "wb").write(d + struct.pack("<Q", xxhash.xxh3_64_intdigest(d)))
X
refused_by_both nan.ckpt "its weights or optimizer state hold a NaN or infinity"
# the checkpoint as saved still loads and resumes
sp-train -q d -e 2 --resume good.ckpt -o good.ckpt
sp-eval -q d --checkpoint good.ckpt > /dev/null

# the learning rate and other settings from the command line
try="Try 'sp-train --help' for more information."
for bad in -0.1 0 nan inf -inf 1e-50; do
    expect_status 2 sp-train d -e 1 --lr "$bad"
    expect_err "sp-train: --lr: not a number above 0 and at most 1000000: $bad
$try"
done
expect_status 2 sp-train d -e 1 --momentum nan
expect_err "sp-train: --momentum: not a number of at least 0 and below 1: nan
$try"
expect_status 2 sp-train d -e 1 --weight-decay inf
expect_err "sp-train: --weight-decay: not a number of at least 0 and at most 1000000: inf
$try"

# -o where nothing can be written: status 3 before any epoch
expect_status 3 sp-train d -e 1 -o missing/dir/x.ckpt
expect_err "sp-train: cannot create a temporary for missing/dir/x.ckpt: No such file or directory"
expect_status 3 sp-train d -e 1 -o /proc/x.ckpt
expect_err_has "/proc/x.ckpt"
grep -q epoch err && fail "an epoch ran before the unwritable -o was noticed"
[ ! -e missing ] || fail "made a directory for -o"
echo ok
