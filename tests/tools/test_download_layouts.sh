# The data as keras.datasets and torchvision.datasets leave it on disk
# converts with no options, equal to the published binary versions (CIFAR)
# and to the IDX files (MNIST): Keras' extracted cifar-10-batches-py given
# as the folder itself, CIFAR-100's cifar-100-python (its train, test and
# meta known as pickles), and torchvision's data/ roots, which keep each
# archive beside what was extracted from it: every file is read once, the
# copies reported.
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/tests/ref"
$PY "$FIX/make_cifar.py" fx
$PY "$FIX/make_cifar_py.py" fx py
for v in 10 100; do
    sp-unpack fx/cifar-$v-binary.tar.gz | sp-decode -q | sp-shard -q -o bin$v
done
same() { $PY "$SP_ROOT/tests/ref/same_records.py" "$1" "$2" > got || { cat got; fail "$2"; }; }

# Keras: ~/.keras/datasets/cifar-10-batches-py (and its tar.gz beside it)
mkdir -p keras/datasets tv/data
tar -xzf py/cifar-10-python.tar.gz -C keras/datasets
tar -xzf py/cifar-100-python.tar.gz -C keras/datasets
cp py/cifar-10-python.tar.gz keras/datasets/cifar-10-batches-py.tar.gz
sp-unpack keras/datasets/cifar-10-batches-py | sp-decode -q | sp-shard -q -o k10
same bin10 k10
sp-unpack keras/datasets/cifar-100-python | sp-decode -q | sp-shard -q -o k100
same bin100 k100
sp-unpack keras/datasets/cifar-10-batches-py.tar.gz | sp-decode -q | sp-shard -q -o k10tgz
same bin10 k10tgz

# torchvision: data/cifar-10-python.tar.gz beside data/cifar-10-batches-py/
cp py/cifar-10-python.tar.gz tv/data/
tar -xzf py/cifar-10-python.tar.gz -C tv/data
sp-unpack tv/data | sp-decode 2> err | sp-shard -q -o tv10
same bin10 tv10
grep -c "the same bytes as" err > n
echo 7 | diff -u - n
grep -qF "sp-decode: cifar-10-batches-py/data_batch_1: the same bytes as cifar-10-python.tar.gz/cifar-10-batches-py/data_batch_1, read once" err || fail "copy not reported"

# torchvision: data/MNIST/raw/ holds the .gz files and what they hold
$PY "$FIX/make_idx.py" idx --train 40 --test 20 --size 28 28
mkdir -p tvm/data/MNIST/raw
for f in idx/*; do gzip -n -c $f > tvm/data/MNIST/raw/$(basename $f).gz; cp $f tvm/data/MNIST/raw/; done
# (the reference named as the root folder names the set: "data")
sp-unpack -d data idx/* | sp-decode -q | sp-shard -q -o idxset
sp-unpack tvm/data | sp-decode -q | sp-shard -q -o tvm
same idxset tvm
cat got
echo ok
