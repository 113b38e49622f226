# CIFAR-10's MATLAB version (MAT v5, plain and zlib-compressed variables)
# converts to the same records, classes and splits as the binary version of
# the same images; a label out of range names the file and the record.
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/tests/ref"
$PY "$FIX/make_cifar.py" fx
sp-unpack fx/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -o bin
for c in plain compress; do
    $PY "$FIX/make_cifar_mat.py" fx $c $([ $c = compress ] && echo --compress)
    sp-unpack $c/cifar-10-matlab.tar.gz | sp-decode -q | sp-shard -q -o $c/s
    $PY "$SP_ROOT/tests/ref/same_records.py" bin $c/s > got || { cat got; fail "$c"; }
done
cat got
$PY "$FIX/make_cifar.py" bad --break label
$PY "$FIX/make_cifar_mat.py" bad badmat
expect_stages "0/141 1 1" 'sp-unpack badmat/cifar-10-matlab.tar.gz | sp-decode -q | sp-shard -q -o X'
expect_err_has "sp-decode: cifar-10-matlab.tar.gz/cifar-10-batches-mat/data_batch_3.mat: record 0: label 12 out of range (CIFAR-10 has 10 classes)"
[ ! -e X/manifest.json ] || fail "committed a bad batch"
echo ok
