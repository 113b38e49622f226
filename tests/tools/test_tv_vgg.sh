# run.sh: long
# vgg16, vgg16_bn and vgg11_bn against torchvision's own, weights copied by
# name, in their CIFAR form (32x32: torchvision's features, then nn/'s small
# classifier in place of the adaptive pool and the 4096-wide one): one
# training-mode step's logits, loss, input gradient, every parameter
# gradient and every batchnorm running statistic, held to the float64
# reference as PyTorch's own float32 is (tests/unit/nn_reference.c,
# torchvision_case), on both of nn/'s paths (lib.sh's tv_case); and the
# 224x224 models' parameter counts for 1000
# classes equal to torchvision's (their classifier is torchvision's).
. "$SP_ROOT/tests/tools/lib.sh"
skip_under_sanitizers "VGG's layers (convolution, batchnorm, pooling, dense) run under them in test_tv_resnet, test_tv_inception and test_nn"
ref="$SP_BIN/../tests/nn_reference"
for m in vgg16-cifar vgg16_bn-cifar vgg11_bn-cifar; do
    $PY "$FIX/torchvision_fixtures.py" $m 32 4 train $m.fix
    tv_case $m $m.fix
    rm $m.fix
done
for m in vgg11 vgg11_bn vgg16 vgg16_bn; do
    ours=$("$ref" --plan $m 224 1000)
    theirs=$($PY -c "import torchvision, sys; print(sum(p.numel() for p in getattr(torchvision.models, sys.argv[1])().parameters()))" $m)
    [ "$ours" = "$theirs" ] || fail "$m: $ours parameters, torchvision's $theirs"
    echo "$m: $ours parameters at 224x224, 1000 classes, as torchvision's"
done
echo ok
