# sp-shard removes only files it can prove it wrote: a file named like a shard
# that it did not write survives a conversion into a directory that never
# held a manifest, a rerun over a committed set, and a merge.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_idx.py" idx --train 60 --test 20 --size 6 6
sp-unpack --dataset mnist idx/* | sp-decode -q > s.sprs
mkdir OUT MERGED
echo "not sp-shard's" > OUT/train-00000-deadbeef.h5
echo "not sp-shard's" > OUT/test-00007-0123abcd.h5
echo "not sp-shard's" > MERGED/train-p0of2-00003-feedf00d.h5
cp OUT/train-00000-deadbeef.h5 want_content

sp-shard -q -n 25 -o OUT s.sprs
sp-verify -q OUT
for f in OUT/train-00000-deadbeef.h5 OUT/test-00007-0123abcd.h5; do
    [ -f "$f" ] || fail "sp-shard removed $f, which it never wrote"
    cmp -s "$f" want_content || fail "sp-shard changed $f"
done
# a rerun with other shard sizes replaces its own set, and only that
sp-shard -q -n 50 -o OUT s.sprs
sp-verify -q OUT
[ -f OUT/train-00000-deadbeef.h5 ] && [ -f OUT/test-00007-0123abcd.h5 ] || fail "a rerun removed a stranger's file"
$PY - <<'X'
import json, os
m = json.load(open("OUT/manifest.json"))
listed = {s["file"] for s in m["shards"]}
h5 = {f for f in os.listdir("OUT") if f.endswith(".h5")}
strangers = {"train-00000-deadbeef.h5", "test-00007-0123abcd.h5"}
assert h5 == listed | strangers, sorted(h5 ^ (listed | strangers))  # the first set's shards are gone
assert len(listed) == 3, listed
X

# a merge into a directory holding a stranger's file named like a part shard
sp-shard -q -n 25 --part 0/2 -o P0 s.sprs
sp-shard -q -n 25 --part 1/2 -o P1 s.sprs
sp-shard -q --merge -o MERGED P0 P1
sp-verify -q MERGED
[ -f MERGED/train-p0of2-00003-feedf00d.h5 ] || fail "the merge removed a stranger's file"
echo ok
