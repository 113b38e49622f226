# CIFAR-10 and CIFAR-100 binary archives: every pixel and label exact against
# an independent numpy reader; names from the archive's own files (CIFAR-100's
# arrive after its records); bad sizes and labels are errors.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_cifar.py" fx
for a in cifar-10 cifar-100; do
    sp-unpack fx/$a-binary.tar.gz | sp-decode -q | sp-shard -q -o $a
    sp-verify -q $a
    $PY "$SP_ROOT/tests/ref/check_cifar_shards.py" $a fx/$a-binary.tar.gz > ref.txt || { cat ref.txt; fail "$a"; }
    cat ref.txt
done
$PY -c "
import json
a = json.load(open('cifar-10/manifest.json')); b = json.load(open('cifar-100/manifest.json'))
print(a['dataset'], len(a['classes']), a['classes'][9], a['splits']['train']['shape'])
print(b['dataset'], len(b['classes']), len(b['classes2']), b['classes2'][19])" > got
cat > want <<'X'
cifar10 10 truck [32, 32, 3]
cifar100 100 20 coarse19
X
diff -u want got
# the readme is reported, not lost silently
sp-unpack fx/cifar-10-binary.tar.gz | sp-decode > /dev/null 2> err
cat > want <<'X'
sp-decode: cifar-10-binary.tar.gz/cifar-10-batches-bin/readme.html: not a recognised dataset file or image
sp-decode: 8 records in, 180 out, 1 skipped
X
diff -u want err

$PY "$FIX/make_cifar.py" bad-size --break size
expect_stages "0/141 1 1" 'sp-unpack bad-size/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -o X'
expect_err_has "sp-decode: cifar-10-binary.tar.gz/cifar-10-batches-bin/data_batch_2.bin: 92189 bytes is not a whole number of 3073-byte CIFAR-10 records"
$PY "$FIX/make_cifar.py" bad-label --break label
expect_stages "0/141 1 1" 'sp-unpack bad-label/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -o X'
expect_err_has "sp-decode: cifar-10-binary.tar.gz/cifar-10-batches-bin/data_batch_3.bin: record 0: label 12 out of range (CIFAR-10 has 10 classes)"
[ ! -e X/manifest.json ] || fail "committed a bad archive"
echo ok
