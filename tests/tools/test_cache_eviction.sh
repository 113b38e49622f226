# The cache of a set at a URL (nginx on 127.0.0.1) under a limit of 25% of
# the set, over 3 epochs: the reader's eviction (next use in the epoch's
# order, then the most recently used) downloads fewer bytes than LRU on the
# same order, by the cache's own counters, which agree with nginx's log; the
# cache never holds more than its limit; every record is read every epoch.
# Then the epoch boundaries: each iterator told the next epoch's seed
# (SPR_NEXT_SEED, as shardpipe.Loader does), the cache's prefetch goes on into
# the next epoch's first shards while an epoch ends, so that no epoch after
# the first waits for a download in its first batch (cache_egress's "first":
# opens in the epoch's first batch of a shard not in the cache yet), with
# batches of 1 (a shuffle window of 16 records: 2 or 3 shards) and a consumer
# that pauses 3 ms a batch. Without the next epoch's order, epochs 1 and 2
# (seed 1) each start on a shard the cache did not keep, and wait for it.
. "$SP_ROOT/tests/tools/lib.sh"
EGRESS="$(dirname "$SP_BIN")/tests/cache_egress"
[ -x "$EGRESS" ] || fail "cache_egress is not built (make all)"
$PY "$FIX/make_cifar.py" cf --per-batch 41
mkdir www
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 8 -o www/S
start_nginx "$PWD/www"
total=$($PY -c "import json; print(sum(s['bytes'] for s in json.load(open('www/S/manifest.json'))['shards'] if s['split'] == 'train'))")
limit=$((total / 4))
run() { # POLICY: the counters' last line; the cache under its limit after every epoch
    : > nginx/access.log
    kill -USR1 "$(cat nginx/nginx.pid)"; sleep 0.2
    SHARDPIPE_CACHE=$PWD/cache-$1 SHARDPIPE_CACHE_LIMIT=$limit SHARDPIPE_CACHE_EVICTION=$1 \
        "$EGRESS" "http://127.0.0.1:$NGINX_PORT/S" train 3 1 8 > $1.out || fail "cache_egress $1 failed"
    [ "$(grep -c "records 205 " $1.out)" = 3 ] || { cat $1.out >&2; fail "$1: an epoch did not read its 205 records"; }
    held=$(find cache-$1/objects -type f ! -name '*.lock' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    [ "$held" -le "$limit" ] || fail "$1: the cache holds $held bytes, over its limit of $limit"
    gets=$(grep -c '^GET /S/train-.* 200 ' nginx/access.log || true)
    set -- $(tail -1 $1.out)
    [ "${6}" = "$gets" ] || fail "the cache counted ${6} downloads, nginx served $gets"
    echo "${8}"
}
plan=$(run plan)
lru=$(run lru)
echo "3 epochs at 25%: $plan bytes against LRU's $lru (the set: $total)" >&2
[ "$plan" -lt "$lru" ] || fail "the reader's eviction downloaded $plan bytes, LRU $lru"
[ "$lru" -gt $((2 * total)) ] || fail "LRU downloaded only $lru bytes of 3 epochs of $total"
SHARDPIPE_CACHE=$PWD/cache-next SHARDPIPE_CACHE_LIMIT=$limit \
    "$EGRESS" "http://127.0.0.1:$NGINX_PORT/S" train 3 1 1 1 3 > next.out || fail "cache_egress failed"
cat next.out >&2
[ "$(grep -c "records 205 " next.out)" = 3 ] || fail "an epoch did not read its 205 records"
for e in 1 2; do
    first=$(awk -v e=$e '$2 == e {print $NF}' next.out)
    [ "$first" = 0 ] || fail "epoch $e's first batch waited for $first downloads: its shards were not prefetched"
done
echo ok
