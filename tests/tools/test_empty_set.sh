# A run whose every image is rejected: sp-decode exits 1, sp-shard refuses to
# commit a set of no records (status 1, the directory as it was: an earlier
# set stays), and sp-verify fails a manifest of no records instead of
# printing "OK: 0 records in 0 shards". An empty part of --part is allowed.
. "$SP_ROOT/tests/tools/lib.sh"
. "$SP_ROOT/tests/tools/bad_lib.sh"
$PY "$FIX/make_ilsvrc.py" il
# the val images have no labels file: every one is rejected as unlabeled
expect_stages "0 1 1" 'sp-unpack il/ILSVRC2012_img_val.tar | sp-decode -q --allow-empty --classes il/classes.txt | sp-shard -q -o S'
expect_err_has "sp-shard: S: no records to write: the input held none (every image rejected upstream?); the directory is left as it was"
[ ! -e S/manifest.json ] || fail "an empty set was committed"
[ -z "$(ls S)" ] || fail "files left in S: $(ls S)"
got=1 row "every image rejected: sp-decode, then sp-shard into a new directory" "was: an empty set committed, status 0; now nothing written" "no records to write"
# over an earlier set: it stays, byte for byte
expect_stages "0 0/1 0" 'sp-unpack il/ILSVRC2012_img_train.tar | sp-decode -q --classes il/classes.txt --resize 16 | sp-shard -q -o T'
sp-verify -q T
(cd T && sha256sum manifest.json *.h5) > before
expect_stages "0 1 1" 'sp-unpack il/ILSVRC2012_img_val.tar | sp-decode -q --allow-empty --classes il/classes.txt --resize 16 | sp-shard -q -o T'
(cd T && sha256sum manifest.json *.h5) > after
cmp before after || fail "the earlier set changed"
got=1 row "every image rejected: sp-shard over an earlier set" "the earlier set byte for byte as it was" "no records to write"
# a manifest of no records (as an older sp-shard wrote) fails sp-verify
mkdir E
$PY - T/manifest.json E/manifest.json <<'X'
import json, sys
m = json.load(open(sys.argv[1]))
m.update(shards=[], splits={}, total_records=0, total_bytes=0)
json.dump(m, open(sys.argv[2], "w"))
X
expect_status 1 sp-verify E
expect_err "sp-verify: E: manifest: the set holds no records
sp-verify: E: FAILED: 1 problem in 0 shards"
row "sp-verify of a manifest of no records" "was: OK: 0 records in 0 shards, status 0"
# an empty part is allowed: a small set split into many parts
expect_stages "0 0/1 0" 'sp-unpack il/ILSVRC2012_img_train.tar | sp-decode -q --classes il/classes.txt --resize 16 | sp-shard -q --part 0/100000 -o P'
[ "$($PY -c 'import json; print(json.load(open("P/manifest.json"))["total_records"])')" = 0 ] ||
    fail "part 0 of 100000 is not the empty part this test needs"
sp-verify -q P
echo ok
