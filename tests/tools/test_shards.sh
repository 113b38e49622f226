# sp-shard options and sp-verify: shard splitting, stale shards removed on a
# rerun, the directory lock, shapes that differ, and every kind of damage
# sp-verify must name.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_idx.py" idx --train 100 --test 30 --size 6 7
sp-unpack --dataset mnist idx/* | sp-decode -q > s.sprs

# 100 train records by 32 -> 4 shards; test 30 -> 1; names sort by split and index
sp-shard -q -n 32 -o OUT s.sprs
$PY -c "
import json; m = json.load(open('OUT/manifest.json'))
print([(s['file'][:11], s['records']) for s in m['shards']], m['total_records'])" > got
echo "[('train-00000', 32), ('train-00001', 32), ('train-00002', 32), ('train-00003', 4), ('test-00000-', 30)] 130" > want
diff -u want got
sp-verify -q OUT
# sp-cat over the set gives the records in stream order within each split
sp-cat OUT | $PY -c "import sys,json; print(sum(1 for l in sys.stdin))" > got
echo 130 > want && diff -u want got
# the same records, labels and checksums as the stream
sp-cat s.sprs | sort > a
sp-cat OUT | sort > b
diff -u a b || fail "shards differ from the stream"

# by size: 6*7 bytes per record, 420 bytes per shard -> 10 records each
sp-shard -q --shard-size 420 -o OUT s.sprs
[ "$(ls OUT/*.h5 | wc -l)" -eq 13 ] || fail "size split: $(ls OUT)"
sp-verify -q OUT
# rerun with larger shards: the old ones the new manifest does not list are gone,
# and so are the shards a killed commit renamed into place (paused there by
# SP_WRITER_PAUSE, then killed); a file the writer did not write stays, even
# when it is named like a shard
cp OUT/test-00000-*.h5 OUT/train-00099-0123abcd.h5
echo keep > OUT/notes.txt
SP_WRITER_PAUSE=commit-renamed sp-shard -q -n 3 -o OUT s.sprs &
pid=$!
i=0
while [ ! -e OUT/.sp-pause-commit-renamed ]; do
    i=$((i + 1)); [ $i -lt 600 ] || fail "the commit never reached its pause"; sleep 0.05
done
kill -KILL $pid
set +e; wait $pid; st=$?; set -e
[ $st -eq 137 ] || fail "the paused commit was not killed (status $st)"
[ "$(ls OUT/train-*.h5 | wc -l)" -gt 30 ] || fail "the killed commit placed no shards: $(ls OUT)"
sp-verify -q OUT # the old manifest still holds
rm OUT/.sp-pause-commit-renamed
sp-shard -q -o OUT s.sprs
ls OUT/*.h5 | sed 's|OUT/||; s/-[0-9a-f]*\.h5$//' > got
printf 'test-00000\ntrain-00000\ntrain-00099\n' > want
diff -u want got || fail "stale shards left, or a stranger's file removed"
[ -f OUT/notes.txt ] || fail "removed a file that is not a shard"
[ ! -e OUT/.sp-owned ] || fail ".sp-owned left after the commit"
rm OUT/train-00099-0123abcd.h5
sp-verify -q OUT

# two writers on one directory: the second refuses
mkfifo hold
(sp-shard -q -o LOCKED hold &) ; exec 3>hold
i=0 # until the first one holds the lock (it waits on the fifo with it)
while [ ! -e LOCKED/.sp-lock ] || flock -n LOCKED/.sp-lock true; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "the first sp-shard never took the lock"; sleep 0.05
done
expect_status 3 sp-shard -o LOCKED s.sprs
expect_err "sp-shard: LOCKED: another sp-shard is writing this directory"
exec 3>&-

# shapes that differ within a split
$PY "$FIX/make_idx.py" other --train 5 --test 0 --size 8 8
sp-unpack other/train-* | sp-decode -q > other.sprs
expect_status 1 sp-shard -o MIX s.sprs other.sprs
expect_err_has "shape 8x8x1 uint8 differs from the 6x7x1 uint8 of the other train records (resize them to one size first)"
[ ! -e MIX/manifest.json ] || fail "committed mixed shapes"
# blobs are not pixels
expect_status 1 sh -c 'sp-unpack idx/* | sp-shard -o BLOB'
expect_err "sp-shard: t10k-labels-idx1-ubyte: a blob record; sp-shard stores pixel or encoded records (run sp-decode first)"

# --- sp-verify names each kind of damage ---
cp -r OUT D1
shard=$(cd D1 && ls train-*.h5)
$PY - "D1/$shard" <<'X'
import sys
# flip one byte near the end of the file, inside the image chunks or metadata
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0xFF
open(p, "wb").write(b)
X
expect_status 1 sp-verify D1
expect_err_has "D1: $shard: sha256 "
expect_err_has "D1: FAILED:"

cp -r OUT D2
rm D2/$shard
expect_status 1 sp-verify D2
expect_err_has "D2/$shard: No such file or directory"

cp -r OUT D3
sed -i 's/"records": 100,/"records": 99,/' D3/manifest.json
expect_status 1 sp-verify D3
expect_err_has "D3: $shard: 100 records, manifest says 99"
expect_err_has "D3: manifest: shards hold 129 records, total_records says 130"

# pixels changed but the file rewritten consistently (sha256 updated): the
# per-record checksums still catch it
cp -r OUT D4
HDF5_PLUGIN_PATH=$HDF5_PLUGIN_PATH $PY - "D4/$shard" <<'X'
import hashlib, json, os, sys
import h5py
p = sys.argv[1]
with h5py.File(p, "r+") as h:
    img = h["images"][5]; img[0, 0, 0] ^= 1; h["images"][5] = img
    open("key5", "w").write(h["keys"][5].decode())
m = json.load(open("D4/manifest.json"))
for s in m["shards"]:
    if s["file"] == os.path.basename(p):
        s["sha256"] = hashlib.sha256(open(p, "rb").read()).hexdigest(); s["bytes"] = os.path.getsize(p)
json.dump(m, open("D4/manifest.json", "w"))
X
expect_status 1 sp-verify D4
expect_err "sp-verify: D4: $shard: record 5 ($(cat key5)): pixels do not match their checksum
sp-verify: D4: FAILED: 1 problem in 2 shards"

expect_status 1 sp-verify NOPE
expect_err "sp-verify: NOPE: No such file or directory"
echo ok
