# A real full disk: sp-shard into a 1 MiB tmpfs. A set that fits commits; a
# bigger conversion into the same directory ends with status 3 and a message
# naming ENOSPC, leaves no temporary behind, and the first set still verifies.
# Mounting needs root (CI runs the tests as root): without it the test is an
# explicit, counted skip (exit 77), never a silent pass.
. "$SP_ROOT/tests/tools/lib.sh"
mount_tmpfs_or_skip disk 1024
$PY "$FIX/make_idx.py" small --train 300 --test 100 --size 16 16
$PY "$FIX/make_idx.py" big --train 6000 --test 1000 --size 28 28
sp-unpack --dataset mnist small/* | sp-decode -q > small.sprs
sp-unpack --dataset mnist big/* | sp-decode -q > big.sprs
# -l 1 on noise-like fixture pixels: the big set needs about 5 MB, 5 times the disk
sp-shard -q -n 200 -o disk/OUT small.sprs
sp-verify -q disk/OUT
sp-cat disk/OUT > before.txt
(cd disk/OUT && sha256sum manifest.json *.h5) > before.sum

expect_status 3 sp-shard -n 1000 -o disk/OUT big.sprs
expect_err_has "No space left on device"
[ "$(wc -l < err)" -eq 1 ] || { cat err >&2; fail "more than one line of error"; }
grep -q "^sp-shard: disk/OUT/" err || { cat err >&2; fail "the message does not name the file"; }
ls -A disk/OUT > left
grep -E '^\.sp-tmp-|\.tmp-' left && fail "temporaries left on the full disk: $(cat left)"
sp-verify -q disk/OUT
(cd disk/OUT && sha256sum manifest.json *.h5) > after.sum.all
# the committed set is intact: its files unchanged (finished shards of the
# failed run may wait in .sp-done-* for a rerun, listed in the journal)
grep -f before.sum after.sum.all > after.sum || true
diff -u before.sum after.sum || fail "the committed set changed"
sp-cat disk/OUT > after.txt
cmp before.txt after.txt || fail "the committed records changed"
echo "ENOSPC: $(cat err)"
echo ok
