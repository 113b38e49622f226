# The cache of a set at a URL (nginx on 127.0.0.1) under a limit of 25% of
# the set, over 3 epochs: the reader's eviction (next use in the epoch's
# order, then the most recently used) downloads fewer bytes than LRU on the
# same order, by the cache's own counters, which agree with nginx's log; the
# cache never holds more than its limit; every record is read every epoch.
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
echo ok
