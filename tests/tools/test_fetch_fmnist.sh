# sp-fetch fashion-mnist with no network: the manifest's local mirror (the
# dataset-fashion-mnist package) verifies by content, and the shards hold the
# very records of the direct path (sp-unpack of the .gz files).
. "$SP_ROOT/tests/tools/lib.sh"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9  # any network use would fail
sp-fetch -c C fashion-mnist 2>fetch.err | sp-unpack | sp-decode -q | sp-shard -q -o FETCHED
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    grep -q "^sp-fetch: fashion-mnist/$f: .* from file://$FMNIST/$f, verified by content sha256 (a recompressed copy)$" fetch.err \
        || { cat fetch.err; fail "$f not from the local mirror"; }
done
sp-unpack $FMNIST/*.gz | sp-decode -q | sp-shard -q -o DIRECT
sp-verify -q FETCHED
sp-cat FETCHED > fetched.txt
sp-cat DIRECT > direct.txt
cmp fetched.txt direct.txt || fail "records differ"
[ "$(wc -l < fetched.txt)" -eq 70000 ] || fail "record count"
# the shards' content (everything but the recipe, which names the other command) is equal
HDF5_PLUGIN_PATH=$HDF5_PLUGIN_PATH $PY - <<'X'
import glob, h5py, numpy as np
for split in ("train", "test"):
    a = h5py.File(glob.glob(f"FETCHED/{split}-*.h5")[0]); b = h5py.File(glob.glob(f"DIRECT/{split}-*.h5")[0])
    for name in ("images", "labels", "keys", "checksums"):
        assert np.array_equal(a[name][...], b[name][...]), (split, name)
    for attr in ("dataset", "split", "classes", "shape", "dtype", "record_count"):
        assert np.array_equal(a.attrs[attr], b.attrs[attr]), (split, attr)
print("same content")
X
# and the second time, from the cache
sp-fetch -c C fashion-mnist 2>fetch.err >/dev/null
[ "$(grep -c ': cached$' fetch.err)" -eq 4 ] || fail "not served from the cache"

# Shards do not depend on where anything lies: the same conversion from copies
# of the inputs at two paths into two output directories gives byte-identical
# shards and manifests. Each stage's status is checked (files between stages).
# The recipe holds the options that shape the bytes, never a path.
convert() { # INPUT_DIR OUT_DIR
    sp-unpack "$1"/*.gz > "$2.blobs" || fail "sp-unpack $1: status $?"
    sp-decode -q "$2.blobs" > "$2.px" || fail "sp-decode: status $?"
    sp-shard -q -o "$2" "$2.px" || fail "sp-shard -o $2: status $?"
}
mkdir -p inputs_at_path_one/fashion-mnist "$PWD/there/deeper/fashion-mnist" elsewhere
cp $FMNIST/*.gz inputs_at_path_one/fashion-mnist/
cp $FMNIST/*.gz "$PWD/there/deeper/fashion-mnist/"
convert inputs_at_path_one/fashion-mnist out_dir_alpha
convert "$PWD/there/deeper/fashion-mnist" "$PWD/elsewhere/OUT_B"
ls out_dir_alpha > a.list && ls elsewhere/OUT_B > b.list && diff -u a.list b.list || fail "different file names"
[ "$(wc -l < a.list)" -eq 3 ] || fail "expected 2 shards and a manifest: $(cat a.list)"
for f in $(cat a.list); do cmp "out_dir_alpha/$f" "elsewhere/OUT_B/$f" || fail "$f differs between the two runs"; done
grep -q inputs_at_path_one out_dir_alpha/*.h5 out_dir_alpha/manifest.json && fail "an input directory in the shards"
grep -q out_dir_alpha out_dir_alpha/*.h5 out_dir_alpha/manifest.json && fail "the output directory in the shards"
sp-cat --meta out_dir_alpha | $PY -c "
import json, sys
r = json.load(sys.stdin)['recipe']
assert [(s['tool'], s['args'], s['inputs']) for s in r] == [('sp-unpack', [], []), ('sp-decode', [], []), ('sp-shard', [], [])], r
print('recipe ok')"
echo ok
