# The nn library against PyTorch: every layer's outputs and gradients, and
# two optimizer steps of the mlp and the cnn, within the tolerances stated in
# tests/unit/nn_reference.c; plus finite-difference gradient checks.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_nn_fixtures.py" nn.fix
"$SP_BIN/../tests/nn_reference" nn.fix
