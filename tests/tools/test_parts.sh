# Parallel conversion: three runs of sp-shard --part I/3 over the same
# stream, then sp-shard --merge, hold the same records as one run; each part
# is about a third; the merged set verifies.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_cifar.py" cf --per-batch 60
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q > s.sprs
for i in 0 1 2; do sp-shard -q -n 40 --part $i/3 -o P$i s.sprs & eval "part$i=$!"; done
for i in 0 1 2; do eval "wait \$part$i" || fail "sp-shard --part $i/3 failed"; done
sp-shard -q -n 40 -o ONE s.sprs
sp-shard -q --merge -o ALL P0 P1 P2
sp-verify -q ALL
sp-cat ALL | sort > merged
sp-cat ONE | sort > single
cmp merged single || fail "the parts hold other records than one run"
$PY - <<'X'
import json
parts = [json.load(open(f"P{i}/manifest.json")) for i in range(3)]
counts = [p["total_records"] for p in parts]
assert sum(counts) == 360 and all(90 <= c <= 150 for c in counts), counts
assert all(p["part"] == {"index": i, "count": 3} for i, p in enumerate(parts))
m = json.load(open("ALL/manifest.json"))
assert m["total_records"] == 360 and m["merged_parts"] == 3 and "part" not in m
assert [s["file"] for s in m["shards"]] == sorted((s["file"] for s in m["shards"]), key=lambda f: (f.split("-")[0] != "train", f))
print("parts", counts)
X
ls ALL | grep -qE '^train-p1of3-00000-[0-9a-f]{8}\.h5$' || fail "part names"
# sets that do not belong together
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q --dataset other | sp-shard -q --part 0/3 -o OTHER
expect_status 1 sp-shard --merge -o BAD P0 OTHER
expect_err_has "OTHER: its dataset differ from P0's"
expect_status 1 sp-shard --merge -o BAD2 P0 P0
expect_err_has "is in two of the sets"
expect_status 2 sp-shard -o X --part 3/3 s.sprs
expect_status 2 sp-decode --part 1 s.sprs
# the split can come first, in sp-decode (images of other parts are not decoded):
# the same part, record for record
$PY "$FIX/make_ilsvrc.py" il
# (status 1: the fixture's corrupt images are rejected)
sp-unpack il/ILSVRC2012_img_train.tar > il.blobs
st=0; sp-decode -q --classes il/classes.txt --resize 16 il.blobs > il.sprs || st=$?
[ "$st" -eq 1 ] || fail "sp-decode with rejects: status $st, expected 1"
sp-shard -q --part 1/3 -o LATE il.sprs
expect_stages "0 1 0" 'sp-unpack il/ILSVRC2012_img_train.tar | sp-decode --classes il/classes.txt --resize 16 --part 1/3 2> early.err | sp-shard -q --part 1/3 -o EARLY'
sp-cat LATE | sort > a && sp-cat EARLY | sort > b && cmp a b || fail "--part in sp-decode keeps other records"
grep -q "records left to the other parts" early.err || fail "no count of the other parts"
# parts of a stream with no dataset name (IDX files outside any manifest):
# both parts lack "dataset", and they still merge
$PY "$FIX/make_idx.py" idx --train 120 --test 30 --gz
sp-unpack idx/*.gz | sp-decode -q > idx.sprs
sp-shard -q -n 50 --part 0/2 -o I0 idx.sprs && sp-shard -q -n 50 --part 1/2 -o I1 idx.sprs
$PY -c 'import json; assert "dataset" not in json.load(open("I0/manifest.json"))'
sp-shard -q --merge -o IM I0 I1 || fail "parts with no dataset name do not merge"
sp-verify -q IM
# a uint8 part and a float32 part are not one set
sp-normalize -q --dtype float32 --mean 0.5 --std 0.25 idx.sprs | sp-shard -q -n 50 --part 1/2 -o F1
expect_status 1 sp-shard --merge -o BAD3 I0 F1
expect_err_has "F1: its normalization differ from I0's"
[ ! -e BAD3/manifest.json ] || fail "a refused merge committed"
# sp-verify holds every shard to its split's shape and dtype
cp -r IM IMX
$PY - IMX/manifest.json <<'X'
import json, sys
m = json.load(open(sys.argv[1]))
m["splits"]["train"]["dtype"] = "float32"
json.dump(m, open(sys.argv[1], "w"))
X
expect_status 1 sp-verify IMX
expect_err_has "shape or dtype differs from its split train's"
echo ok
