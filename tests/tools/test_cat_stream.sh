# sp-cat --stream: a shard set back into a pipeline. Re-sharded, it gives the
# same records (keys, splits, labels, pixel checksums) and classes; re-sized,
# the records of the new size; the stream carries the recipe so far plus
# sp-cat's entry; a cut stream commits nothing downstream.
. "$SP_ROOT/tests/tools/lib.sh"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
sp-unpack -q "$FMNIST"/t10k-*.gz | sp-decode -q | sp-shard -q -n 3000 -o A
records() { sp-cat "$1" | $PY -c '
import json, sys
rows = sorted((j["key"], j["split"], j["label"], j["checksum"], tuple(j["shape"])) for j in map(json.loads, sys.stdin))
print(len(rows)); [print(*r) for r in rows]'; }

expect_stages "0 0" "sp-cat --stream A | sp-shard -q -n 2500 -o B"
records A > a.txt
records B > b.txt
[ "$(head -1 a.txt)" = 10000 ] || fail "A holds $(head -1 a.txt) records"
cmp a.txt b.txt || fail "the re-sharded set's records differ"
$PY - <<'X'
import json
a, b = (json.load(open(d + "/manifest.json")) for d in "AB")
assert a["classes"] == b["classes"] and len(a["classes"]) == 10, (a["classes"], b["classes"])
assert len(b["shards"]) == 4, [s["file"] for s in b["shards"]]
tools = [step["tool"] for step in b["recipe"]]
assert tools[-2:] == ["sp-cat", "sp-shard"] and "sp-decode" in tools, tools
X
sp-verify -q B

# re-sized: every record 14x14, the same keys and labels
expect_stages "0 0 0" "sp-cat --stream A | sp-resize -q 14 | sp-shard -q -o C"
sp-cat C | $PY -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert len(rows) == 10000 and all(r["shape"] == [14, 14, 1] for r in rows), rows[0]'
diff <(sp-cat A | $PY -c 'import json,sys; [print(j["key"], j["label"]) for j in map(json.loads, sys.stdin)]' | sort) \
     <(sp-cat C | $PY -c 'import json,sys; [print(j["key"], j["label"]) for j in map(json.loads, sys.stdin)]' | sort) \
    || fail "the re-sized set's keys or labels differ"

# one shard file alone, and a stream passed through, give the same records
f=$(ls A/*.h5 | head -1)
expect_stages "0 0" "sp-cat --stream $f | sp-cat"
[ "$(wc -l < out)" = 3000 ] || fail "one shard streamed $(wc -l < out) records"
sp-cat --stream A > a.sps
expect_stages "0 0" "sp-cat --stream a.sps | sp-cat"
[ "$(wc -l < out)" = 10000 ] || fail "a stream passed through holds $(wc -l < out) records"

# a cut stream: the next stage fails and writes no set
head -c 3000000 a.sps > cut.sps
expect_stages "1" "sp-shard -q -o D cut.sps"
[ ! -e D/manifest.json ] || fail "a set was committed from a cut stream"

expect_status 2 sp-cat --stream --meta A
expect_err "sp-cat: --stream excludes --meta and --image
Try 'sp-cat --help' for more information."
echo ok
