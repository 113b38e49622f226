# The foundation's main path: Fashion-MNIST's four .gz files to verified
# shards, exact against the IDX files, byte-identical on a rerun, and
# readable by h5py and h5dump.
. "$SP_ROOT/tests/tools/lib.sh"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"

pipeline() {
    sp-unpack $FMNIST/*.gz | sp-decode | sp-shard -o OUT
}
pipeline 2>err1
cat > want <<'X'
sp-decode: 4 records in, 70000 out, 0 skipped
X
grep -v '^sp-shard' err1 | diff -u want - || fail "sp-decode stderr"
grep -q '^sp-shard: 70000 records in 2 shards (train 60000, test 10000)' err1 || fail "sp-shard summary"

expect_status 0 sp-verify OUT
expect_err_has "OUT: OK: 70000 records in 2 shards"

# every pixel and label, read back by h5py with the project's filter plugin
$PY "$SP_ROOT/tests/ref/check_idx_shards.py" OUT $FMNIST > ref.txt || { cat ref.txt; fail "reference check"; }
cat > want <<'X'
train: 60000 records, 0 pixels differ, 0 labels differ, 0 keys differ, 0 checksums differ
test: 10000 records, 0 pixels differ, 0 labels differ, 0 keys differ, 0 checksums differ
X
diff -u want ref.txt

# h5dump (through the plugin) prints the same first labels as the IDX file
test_shard=$(ls OUT/test-*.h5)
h5dump -d labels -s 0 -c 8 "$test_shard" | grep -A1 'DATA {' | tail -1 | tr -d ' ' > dump.txt
$PY -c "
import gzip
d = gzip.open('$FMNIST/t10k-labels-idx1-ubyte.gz').read()[8:16]
print('(0):' + ','.join(str(b) for b in d))" > want
diff -u want dump.txt || fail "h5dump labels differ"
h5dump -p -H "$test_shard" > header.txt
grep -q 'FILTER_ID 32015' header.txt || fail "h5dump does not show filter 32015"

# the same command again: byte-identical manifest and shards
mkdir first && cp OUT/*.h5 OUT/manifest.json first/
pipeline 2>/dev/null
for f in first/*; do cmp "$f" "OUT/$(basename "$f")" || fail "rerun changed $(basename "$f")"; done
[ "$(ls OUT | wc -l)" -eq 3 ] || fail "rerun left extra files: $(ls OUT)"
echo "fashion-mnist ok"
