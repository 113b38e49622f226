# A shard set served by nginx on 127.0.0.1 over HTTP and HTTPS (a CA and a
# server certificate made here): shardpipe.Loader over the URL gives the
# local set's batches (seed, epochs 0 and 1, threads 0 and 2); sp-train over
# the URL writes the local run's checkpoint; sp-cat, sp-verify and sp-inspect
# take the URL; two processes on one cache download each shard once; a stale
# .part of a killed download is not trusted; HTTPS without the CA fails
# naming the URL; a cache limit under one shard fails at the start.
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/python"
$PY "$FIX/make_cifar.py" cf --per-batch 41
mkdir www
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-normalize | sp-shard -q -n 48 -o www/S

# ---- the CA, the server's certificate, nginx on two ports ----
make_test_ca
start_nginx "$PWD/www" "$PWD/srv.pem" "$PWD/srv.key"
P=$NGINX_PORT T=$NGINX_TLS_PORT
HTTP=http://127.0.0.1:$P/S HTTPS=https://127.0.0.1:$T/S/
export SHARDPIPE_CA_FILE=$PWD/ca.pem SHARDPIPE_CACHE=$PWD/cache

# ---- the Loader: the same batches as the local set ----
[ "$($PY "$SP_ROOT/tests/tools/remote_same.py" www/S "$HTTP" c1)" = same ] || fail "Loader over http differs from the local set"
[ "$($PY "$SP_ROOT/tests/tools/remote_same.py" www/S "$HTTPS" c2)" = same ] || fail "Loader over https differs from the local set"

# ---- sp-train, sp-cat, sp-verify, sp-inspect over the URL ----
sp-train -q www/S --model mlp -e 2 -b 16 -o local.ckpt
sp-train -q "$HTTPS" --cache c3 --cache-limit 1M --model mlp -e 2 -b 16 -o remote.ckpt
# the state (weights, optimizer, position) bit for bit; the header holds the run's timings
$PY - local.ckpt remote.ckpt <<'X' || fail "sp-train over https wrote another checkpoint than over the local set"
import struct, sys
def state(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12); return d[16 + h:-8]
sys.exit(0 if state(sys.argv[1]) == state(sys.argv[2]) else 1)
X
sp-cat www/S > local.jsonl
sp-cat --cache c4 "$HTTP" > remote.jsonl
cmp local.jsonl remote.jsonl || fail "sp-cat over http differs"
expect_status 0 sp-verify --cache c4 "$HTTP"
expect_err "sp-verify: $HTTP: OK: 246 records in 6 shards, 0.9 MB"
sp-inspect www/S | sed 1d > local.txt
sp-inspect --cache c4 "$HTTP" | sed 1d > remote.txt
cmp local.txt remote.txt || fail "sp-inspect over http differs"

# ---- two processes on one cache: each shard downloaded once ----
: > nginx/access.log
kill -USR1 "$(cat nginx/nginx.pid)" # reopen the log
sleep 0.2
sp-verify --cache c5 "$HTTP" 2>v1 & a=$!
sp-verify --cache c5 "$HTTP" 2>v2 & b=$!
wait $a || fail "the first of two sp-verify failed: $(cat v1)"
wait $b || fail "the second of two sp-verify failed: $(cat v2)"
for f in www/S/*.h5; do
    n=$(grep -c "GET /S/$(basename "$f") HTTP/1.1 200 " nginx/access.log || true)
    [ "$n" = 1 ] || { cat nginx/access.log >&2; fail "$(basename "$f") downloaded $n times by two processes on one cache"; }
done

# ---- a killed download leaves a .part: not trusted, fetched again ----
sha=$($PY -c "import json; print(json.load(open('www/S/manifest.json'))['shards'][0]['sha256'])")
mkdir -p c6/objects
head -c 1000 /dev/urandom > "c6/objects/$sha.part"
expect_status 0 sp-verify --cache c6 "$HTTP"
[ ! -e "c6/objects/$sha.part" ] || fail "the stale .part stayed"

# ---- HTTPS without the CA; a cache limit under one shard ----
expect_status 3 env -u SHARDPIPE_CA_FILE sp-verify --cache c7 "$HTTPS"
expect_err_has "sp-verify: https://127.0.0.1:$T/S/manifest.json: "
expect_err_has "certificate"
expect_status 2 sp-train "$HTTP" --cache c8 --cache-limit 100k --model mlp -e 1 -o x.ckpt
expect_err_has "holds 171923 bytes, more than the cache limit of 102400 bytes"
[ ! -e x.ckpt ] || fail "sp-train wrote a checkpoint"
echo ok
