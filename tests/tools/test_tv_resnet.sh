# run.sh: long
# resnet18, resnet34 and resnet50 against torchvision's own models, weights
# copied by name: one training-mode step's logits, loss, input gradient,
# every parameter gradient and every batchnorm running statistic, held to
# the float64 reference as PyTorch's own float32 is (the tolerances are
# stated in tests/unit/nn_reference.c, torchvision_case), on both of nn/'s
# paths (blocked on oneDNN, and NCHW: lib.sh's tv_case); and each model's
# parameter count for 224x224 and 1000 classes equal to torchvision's.
. "$SP_ROOT/tests/tools/lib.sh"
ref="$SP_BIN/../tests/nn_reference"
for spec in "resnet18 64" "resnet34 64" "resnet50 96"; do
    set -- $spec
    $PY "$FIX/torchvision_fixtures.py" "$1" "$2" 2 train "$1.fix"
    tv_case "$1" "$1.fix"
    rm "$1.fix"
done
for m in resnet18 resnet34 resnet50; do
    ours=$("$ref" --plan $m 224 1000)
    theirs=$($PY -c "import torchvision, sys; print(sum(p.numel() for p in getattr(torchvision.models, sys.argv[1])().parameters()))" $m)
    [ "$ours" = "$theirs" ] || fail "$m: $ours parameters, torchvision's $theirs"
    echo "$m: $ours parameters at 224x224, 1000 classes, as torchvision's"
done
echo ok
