# inception_v3 (no auxiliary classifier) against torchvision's own, weights
# copied by name, at 139x139 (the reduced input: Mixed_7c ends 3x3): one
# training-mode step's logits, loss, input gradient, every parameter
# gradient and every batchnorm running statistic, held to the float64
# reference as PyTorch's own float32 is (tests/unit/nn_reference.c,
# torchvision_case), on both of nn/'s paths (lib.sh's tv_case); the
# parameter count for 299x299 and 1000 classes equal
# to torchvision's without AuxLogits; and 224x224 input (as Keras allows)
# planned without complaint.
. "$SP_ROOT/tests/tools/lib.sh"
ref="$SP_BIN/../tests/nn_reference"
$PY "$FIX/torchvision_fixtures.py" inception_v3 139 2 train inc.fix
tv_case inception_v3 inc.fix
ours=$("$ref" --plan inception_v3 299 1000)
theirs=$($PY -c "
import torchvision
m = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
print(sum(p.numel() for p in m.parameters()))")
[ "$ours" = "$theirs" ] || fail "inception_v3: $ours parameters, torchvision's $theirs"
[ "$("$ref" --plan inception_v3 224 1000)" = "$ours" ] || fail "inception_v3 at 224x224"
expect_status 1 "$ref" --plan inception_v3 74 1000
echo "inception_v3: $ours parameters at 299x299 and 224x224, 1000 classes, as torchvision's; 74x74 refused"
echo ok
