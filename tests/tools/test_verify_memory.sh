# sp-verify's memory is bounded by its batch (about 4 MiB of pixels, with
# their labels, checksums and keys), not by the shards or the set: two sets of
# 64x64 records 10x apart (8 MB and 82 MB of pixels, a shard each) verify with
# peak RSS within 12 MB of each other. (A batch of a whole shard up to 64 MiB,
# with the shard's keys held, took 62 MB more for the larger set.)
. "$SP_ROOT/tests/tools/lib.sh"
skip_under_sanitizers "peak RSS under ASan is the sanitizer's shadow memory; test_bad_shard, test_corrupt" \
    "and test_encoded run sp-verify's reads under it"
[ -x /usr/bin/time ] || fail "/usr/bin/time (Debian package time) is not installed"

for n in 2000 20000; do
    $PY "$FIX/make_idx.py" idx$n --train $n --test 1 --size 64 64
    sp-unpack --dataset mnist idx$n/* | sp-decode -q | sp-shard -q -o S$n
    rm -r idx$n
    expect_status 0 /usr/bin/time -f %M -o rss$n sp-verify S$n
    expect_err_has "S$n: OK: $((n + 1)) records in 2 shards"
done
small=$(tail -1 rss2000) big=$(tail -1 rss20000)
echo "sp-verify's peak RSS: $((small / 1024)) MB for 2,001 records, $((big / 1024)) MB for 20,001"
[ "$big" -lt $((small + 12 * 1024)) ] || fail "sp-verify's peak RSS grows with the set: $small kB, then $big kB"
