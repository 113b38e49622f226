# Keras' mnist.npz (x_train, y_train, x_test, y_test) made from Fashion-MNIST's
# IDX files converts to the same records as the IDX files: deflated members
# with uint8 labels (np.savez_compressed, as Keras ships it) and stored ones
# with int64 and big-endian int32 labels (np.savez). Truncated .npy files,
# Fortran order and other dtypes are errors naming the file.
. "$SP_ROOT/tests/tools/lib.sh"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
export PYTHONPATH="$SP_ROOT/tests/ref"
$PY - "$FMNIST" <<'P'
import gzip, sys
import numpy as np
def idx(name):
    b = gzip.open(f"{sys.argv[1]}/{name}.gz").read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)
x, y = idx("train-images-idx3-ubyte"), idx("train-labels-idx1-ubyte")
xt, yt = idx("t10k-images-idx3-ubyte"), idx("t10k-labels-idx1-ubyte")
np.savez_compressed("mnist.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
np.savez("stored.npz", x_train=x, y_train=y.astype(np.int64), x_test=xt, y_test=yt.astype(">i4"))
np.save("x_train.npy", x[:5])
np.save("y_train.npy", y[:5].astype(np.int16))
np.save("fortran.npy", np.asfortranarray(x[:5]))
np.save("float.npy", x[:5].astype(np.float32))
P
sp-unpack --dataset fashion-mnist $FMNIST/*.gz | sp-decode -q | sp-shard -q -o idx
for z in mnist stored; do
    sp-unpack --dataset fashion-mnist $z.npz | sp-decode -q | sp-shard -q -o $z
    $PY "$SP_ROOT/tests/ref/same_records.py" idx $z > got || { cat got; fail "$z.npz"; }
done
cat got

# each a directory that sp-unpack reads: keys are the paths inside it
mkdir cut && head -c 3000 x_train.npy > cut/x_train.npy
cp y_train.npy cut/
expect_stages "0/141 1 1" 'sp-unpack cut | sp-decode -q | sp-shard -q -o X'
expect_err_has "sp-decode: x_train.npy: truncated: the header's 3920 elements of |u1 need 3920 bytes, 2872 left"
mkdir bad && cp fortran.npy bad/x_train.npy && cp y_train.npy bad/
expect_stages "0/141 1 1" 'sp-unpack bad | sp-decode -q | sp-shard -q -o X'
expect_err_has "sp-decode: x_train.npy: an array in Fortran order (only C order)"
cp float.npy bad/x_train.npy
expect_stages "0/141 1 1" 'sp-unpack bad | sp-decode -q | sp-shard -q -o X'
expect_err_has "sp-decode: x_train.npy: dtype <f4 is not allowed (images are uint8, labels integers)"
[ ! -e X/manifest.json ] || fail "committed a bad .npy"
echo ok
