# Manifests that disagree with their shards or break the limits: sp-verify,
# sp-cat, sp-inspect and the reader library each refuse them with status 1
# and a message naming what is wrong; the shards themselves are untouched.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$SP_ROOT/tests/tools/lib.sh"
. "$SP_ROOT/tests/tools/bad_lib.sh"
set -o pipefail
build_reader_dump
make_small_set --classes <(printf '%s\n' zero one two three four five six seven eight nine)
sp-cat S > all.jsonl
[ "$(wc -l < all.jsonl)" -eq 340 ] || fail "sp-cat gave $(wc -l < all.jsonl) records"
first=$($PY -c 'import json; print(json.load(open("S/manifest.json"))["shards"][0]["file"])')

# the class list renamed: the shards carry the old one
edit_manifest S C1 'm["classes"][3] = "kitten"'
refused_by_readers C1 "$first: classes differ from the manifest's (10 names in the shard, 10 in the manifest)"
row "manifest's class names differ from the shards'" "sp-cat, sp-inspect: status 1 too"
expect_status 1 ./reader_dump C1 train index
expect_err_has "classes differ from the manifest's"

# "classes": [] must not skip the label check
edit_manifest S C2 'm["classes"] = []'
expect_status 1 sp-verify C2
expect_err_has "$first: classes differ from the manifest's (10 names in the shard, 0 in the manifest)"
expect_err_has "label 7 outside the 0 classes"
row '`"classes": []`' "labels still checked: each reported outside the 0 classes"
expect_status 1 sp-cat C2
expect_err_has "classes differ from the manifest's"

# 2,000,000 classes: over the limit, refused before anything is sized from it
edit_manifest S C3 'm["classes"] = ["c%d" % i for i in range(2000000)]'
expect_status 1 sp-verify C3
expect_err "sp-verify: C3/manifest.json: classes is not a list of at most 1000000 names (2000000 entries)"
row "2,000,000 classes in the manifest" "refused by the 1,000,000 limit"
expect_status 1 ./reader_dump C3 train index
expect_err_has "classes is not a list of at most 1000000 names"

# a shard listed twice, with totals made to match: sp-cat printed 4,403 of 3,403 records
edit_manifest S D 'm["shards"].append(dict(m["shards"][0])); m["total_records"] += m["shards"][0]["records"]; m["splits"]["train"]["records"] += m["shards"][0]["records"]'
refused_by_readers D "D/manifest.json: shard $first is listed twice"
[ ! -s out ] || fail "sp-inspect printed a summary of a bad set"
row "a shard listed twice (totals adjusted)" "sp-cat prints nothing instead of 100 extra records"

# wrong counts, consistent totals: the shard holds 100
edit_manifest S N 'm["shards"][0]["records"] = 99; m["total_records"] -= 1; m["splits"]["train"]["records"] -= 1'
refused_by_readers N "$first: 100 records, manifest says 99"
row "a shard's record count off by one (totals adjusted)" "sp-cat, sp-inspect: status 1 too"
expect_status 1 ./reader_dump N train index
expect_err_has "100 records"

# totals that disagree with the shard entries
edit_manifest S T 'm["total_records"] += 1000'
expect_status 1 sp-cat T
expect_err "sp-cat: T/manifest.json: total_records says 1340, the shards hold 340"
row "total_records off by 1,000" ""

# wrong shape, wrong dtype, a shape past the limits, an unknown split
edit_manifest S H 'm["shards"][0]["shape"] = [28, 27, 1]'
for tool in sp-cat sp-inspect sp-verify; do
    expect_status 1 $tool H
    expect_err_has "$first: shape 28x28x1 differs from the manifest's 28x27x1"
done
row "a shard's shape wrong in the manifest" "sp-cat, sp-inspect: status 1 too"
edit_manifest S F 'm["shards"][0]["dtype"] = "float32"'
for tool in sp-cat sp-inspect sp-verify; do
    expect_status 1 $tool F
    expect_err_has "$first: dtype uint8, manifest says float32"
done
row "a shard's dtype wrong in the manifest" "sp-cat, sp-inspect: status 1 too"
edit_manifest S B 'm["shards"][0]["shape"] = [100000, 28, 1]'
expect_status 1 sp-cat B
expect_err "sp-cat: B/manifest.json: $first: shape is not [H, W, C] within [65536, 65536, 16]"
row "a shape of 100000x28x1" "refused by the 65,536 side limit"
edit_manifest S X 'm["shards"][0]["dtype"] = "int64"'
expect_status 1 sp-cat X
expect_err "sp-cat: X/manifest.json: $first: dtype is not uint8, float16 or float32"
row 'dtype `"int64"`' ""
edit_manifest S P 'm["shards"][0]["file"] = "../S/" + m["shards"][0]["file"]'
expect_status 1 sp-cat P
expect_err "sp-cat: P/manifest.json: shard entry 0 is malformed"
row "a shard file named ../S/..." "nothing outside the set is read"

# a shard cut in half, and one overwritten with zeros: refused as the manifest is loaded
rm -rf K && cp -r S K && head -c 20000 "S/$first" > "K/$first"
for tool in sp-cat sp-inspect sp-verify; do
    expect_status 1 $tool K
done
expect_err_has "$first"
row "a shard file cut to 20,000 bytes" "sp-cat, sp-inspect, sp-verify: status 1"
rm -rf Z && cp -r S Z && head -c "$(wc -c < "S/$first")" /dev/zero > "Z/$first"
expect_status 1 sp-cat Z
expect_err_has "Z/$first: cannot open as HDF5"
row "a shard file overwritten with zeros" ""

# the set itself was never changed by any of this
sp-verify -q S
sp-cat S | cmp - all.jsonl
echo ok
