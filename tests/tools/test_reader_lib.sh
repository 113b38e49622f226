# libshardpipe-reader, used as a user would: a program built against it with
# pkg-config. Random access gives the Python reader's records, index for
# index; an epoch gives every record once, shuffled by the seed, the same
# with or without the prefetch thread.
. "$SP_ROOT/tests/tools/lib.sh"
build_reader_dump
$PY "$FIX/make_cifar.py" cf --per-batch 40
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-normalize | sp-shard -q -n 48 -o S
./reader_dump S train index > index.txt 2> info.txt
echo "200 records 32x32x3 dtype 1 classes 10 (airplane) norm 3" > want && diff -u want info.txt
PYTHONPATH="$SP_ROOT/python" $PY - <<'X' > py.txt
import shardpipe, xxhash
ds = shardpipe.ShardDataset("S", "train")
for i in range(len(ds)):
    img, label, key = ds.raw(i)
    print(f"{label} {xxhash.xxh3_64_hexdigest(img.tobytes())}")
X
cmp index.txt py.txt || fail "random access differs from the Python reader"
./reader_dump S train iter 32 5 shuffle direct > a.txt
./reader_dump S train iter 32 5 shuffle prefetch > b.txt
./reader_dump S train iter 7 5 plain prefetch > plain.txt
./reader_dump S train iter 32 6 shuffle direct > seed6.txt
cmp a.txt b.txt || fail "the prefetch thread changed the epoch"
cmp plain.txt index.txt || fail "an unshuffled epoch is not the index order"
sort a.txt > sa && sort index.txt > si && cmp sa si || fail "an epoch lost or repeated records"
! cmp -s a.txt index.txt || fail "not shuffled"
! cmp -s a.txt seed6.txt || fail "the seed changes nothing"
expect_status 1 ./reader_dump S nosuch index
expect_err_has "S: no shards of split nosuch"
echo ok
