# The nn library never prints or exits: a oneDNN primitive that fails to run
# (forward or backward), a layer whose primitives oneDNN cannot make for a
# new batch size (the epoch's last, smaller batch) and out of memory in a
# layer's pass come back through nn_forward / nn_backward as errors, which
# sp-train and sp-eval print as "progname: where: layer: why" and end with
# status 3, sp-train leaving no checkpoint. Each failure is forced where it
# happens by the library's test hook SP_NN_FAULT (nn/onednn.c).
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_cifar.py" cf --per-batch 40   # 200 training records, 40 test
expect_stages "0 0 0" "sp-unpack -q cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -o S"
TRAIN="sp-train S --model cnn --batch 64 --epochs 1 --threads 1 --no-verify -q"
# the cnn's convolutions and pooling on oneDNN, or nothing here to test
sp-train S --model cnn --batch 64 --epochs 1 --steps-per-epoch 1 --no-verify -v 2> log
grep -q 'layout: channels in blocks of' log || { echo "SKIP: no oneDNN kernels for this CPU (no AVX2)" >&2; exit 77; }
$TRAIN -o good.ckpt    # without a fault: trains, and the checkpoint sp-eval reads below

SP_NN_FAULT=forward expect_status 3 $TRAIN -o f.ckpt
expect_err "sp-train: epoch 1, step 1: a convolution 3x32x32 -> 32x30x30 on a batch of 64: oneDNN failed to run its forward pass (runtime error)"
SP_NN_FAULT=backward expect_status 3 $TRAIN -o f.ckpt
expect_err "sp-train: epoch 1, step 1: a max pooling 128x4x4 -> 128x2x2 on a batch of 64: oneDNN failed to run its backward pass (runtime error)"
# 200 records in batches of 64: the fourth holds 8
SP_NN_FAULT=batch expect_status 3 $TRAIN -o f.ckpt
expect_err "sp-train: epoch 1, step 4: a convolution 3x32x32 -> 32x30x30 on a batch of 8: oneDNN cannot make its primitives for this batch size"
# the first conv with a fused relu that backward reaches is the last
SP_NN_FAULT=oom expect_status 3 $TRAIN -o f.ckpt
expect_err "sp-train: epoch 1, step 1: a convolution 64x6x6 -> 128x4x4 on a batch of 64: out of memory for the gradient through its relu (524288 bytes)"
[ ! -e f.ckpt ] || fail "a failed run left a checkpoint"
ls -a | grep -q '^\.f\.ckpt\.tmp' && fail "a failed run left a temporary checkpoint"

# sp-eval: 40 test records in batches of 32, the second of 8
SP_NN_FAULT=forward expect_status 3 sp-eval S -c good.ckpt -b 32 --no-verify
expect_err "sp-eval: S: evaluating test: a convolution 3x32x32 -> 32x30x30 on a batch of 32: oneDNN failed to run its forward pass (runtime error)"
[ ! -s out ] || fail "sp-eval printed figures after a failure"
SP_NN_FAULT=batch expect_status 3 sp-eval S -c good.ckpt -b 32 --no-verify
expect_err "sp-eval: S: evaluating test: a convolution 3x32x32 -> 32x30x30 on a batch of 8: oneDNN cannot make its primitives for this batch size"
expect_status 0 sp-eval S -c good.ckpt -b 32 --no-verify
grep -q '^accuracy' out || fail "sp-eval without a fault printed no accuracy"
echo ok
