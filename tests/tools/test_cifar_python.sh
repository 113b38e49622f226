# CIFAR-10 and CIFAR-100 python versions (pickles, as keras.datasets and
# torchvision.datasets download them) convert to the same records, classes
# and dataset as the binary versions of the same images: written as Python
# 2's cPickle wrote the published files (protocol 2) and re-pickled by
# Python 3 at protocols 0 to 4. A pickle that would call anything else is
# refused with the global named; a huge claim and a truncated file are errors;
# nothing is committed.
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/tests/ref"
$PY "$FIX/make_cifar.py" fx
for v in 10 100; do
    sp-unpack fx/cifar-$v-binary.tar.gz | sp-decode -q | sp-shard -q -o bin$v
done
for w in cpickle2 pickle0 pickle1 pickle2 pickle3 pickle4; do
    $PY "$FIX/make_cifar_py.py" fx $w --writer $w
    for v in 10 100; do
        sp-unpack $w/cifar-$v-python.tar.gz | sp-decode -q | sp-shard -q -o $w/s$v
        $PY "$SP_ROOT/tests/ref/same_records.py" bin$v $w/s$v > got || { cat got; fail "$w CIFAR-$v"; }
    done
done
cat got
# keys are the file's and the record's index; the split is the file name's
sp-unpack cpickle2/cifar-10-python.tar.gz | sp-decode -q | sp-cat > cat.jsonl
$PY -c "
import json
r = [json.loads(l) for l in open('cat.jsonl')]
print(r[0]['key'], r[0]['split'], r[-1]['key'], r[-1]['split'], len(r))" > got
echo "cifar-10-python.tar.gz/cifar-10-batches-py/data_batch_1#0 train cifar-10-python.tar.gz/cifar-10-batches-py/test_batch#29 test 180" > want
diff -u want got

# hostile pickles, each as a batch file of an unpacked directory
mkdir -p ev/cifar-10-batches-py
printf "cos\nsystem\n(S'touch pwned'\ntR." > ev/cifar-10-batches-py/data_batch_1
expect_stages "0/141 1 1" 'sp-unpack ev | sp-decode -q | sp-shard -q -o X'
expect_err_has "sp-decode: cifar-10-batches-py/data_batch_1: pickle byte 0 (GLOBAL): global os.system is not allowed"
$PY - <<'P'
import os, pickle
class Call:
    def __reduce__(self):
        return (os.system, ("touch pwned",))
open("ev/cifar-10-batches-py/data_batch_1", "wb").write(pickle.dumps({b"data": Call()}, protocol=2))
P
expect_stages "0/141 1 1" 'sp-unpack ev | sp-decode -q | sp-shard -q -o X'
expect_err_has "sp-decode: cifar-10-batches-py/data_batch_1: pickle byte 53 (GLOBAL): global posix.system is not allowed"
$PY -c "
open('ev/cifar-10-batches-py/data_batch_1', 'wb').write(b'\x80\x04\x8e' + (1 << 40).to_bytes(8, 'little') + b'x' * 10)"
expect_stages "0/141 1 1" 'sp-unpack ev | sp-decode -q | sp-shard -q -o X'
expect_err_has "sp-decode: cifar-10-batches-py/data_batch_1: pickle byte 2 (BINBYTES8): a string of 1099511627776 bytes, over the limit of 268435456"
tar -xzf cpickle2/cifar-10-python.tar.gz -O cifar-10-batches-py/data_batch_1 > whole
head -c 50000 whole > ev/cifar-10-batches-py/data_batch_1
expect_stages "0/141 1 1" 'sp-unpack ev | sp-decode -q | sp-shard -q -o X'
expect_err_has "sp-decode: cifar-10-batches-py/data_batch_1: truncated: the pickle ends inside BINSTRING at byte 276"
[ ! -e pwned ] || fail "a pickle ran a command"
[ ! -e X/manifest.json ] || fail "committed a bad pickle"
echo ok
