# A set in S3: Ceph's radosgw on 127.0.0.1 (tests/servers/s3_server.sh, its
# daemons stopped by PID), the objects put with curl's SigV4. The Loader over
# s3://BUCKET/PREFIX gives the local set's batches (seed 7, epochs 0 and 1,
# threads 0 and 2); sp-train over it the local run's checkpoint state; the
# keys come from the environment or a profile of ~/.aws/credentials; a wrong
# secret and an anonymous read of the private bucket get 403, named; the
# secret appears in no message, --json, checkpoint (its recipe) or cache file.
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/python"
KEY=AKIASHARDPIPETEST SECRET=sEcReT/shardpipe+test/0123456789abcdefXYZ
$PY "$FIX/make_cifar.py" cf --per-batch 41
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-normalize | sp-shard -q -n 48 -o S
PORT=$(free_port)
mkdir ceph
stop_ceph() { for p in ceph/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; stop_servers; }
trap stop_ceph EXIT
t0=$(date +%s.%N)
"$SP_ROOT/tests/servers/s3_server.sh" ceph "$PORT" "$KEY" "$SECRET" || fail "the S3 server did not start"
echo "radosgw answered after $($PY -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$t0" "$(date +%s.%N)") s" >&2
E=http://127.0.0.1:$PORT
put() { curl -sf --aws-sigv4 aws:amz:us-east-1:s3 -u "$KEY:$SECRET" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"; }
put -X PUT "$E/bkt" || fail "cannot make the bucket"
for f in S/*; do put -T "$f" "$E/bkt/sets/cifar/$(basename "$f")" || fail "cannot put $f"; done

export AWS_ENDPOINT_URL=$E AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=us-east-1
U=s3://bkt/sets/cifar
[ "$($PY "$SP_ROOT/tests/tools/remote_same.py" S "$U" c1)" = same ] || fail "Loader over s3 differs from the local set"
sp-train -q S --model mlp -e 2 -b 16 -o local.ckpt
sp-train -q "$U/" --cache c2 --model mlp -e 2 -b 16 -o remote.ckpt --json train.json 2> train.err
$PY - local.ckpt remote.ckpt <<'X' || fail "sp-train over s3 wrote another checkpoint than over the local set"
import struct, sys
def state(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12); return d[16 + h:-8]
sys.exit(0 if state(sys.argv[1]) == state(sys.argv[2]) else 1)
X
sp-inspect --json --cache c2 "$U" > inspect.json

# ---- a profile of ~/.aws/credentials, --s3-endpoint ----
mkdir -p home/.aws
printf '[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n[ci]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$KEY" "$SECRET" > home/.aws/credentials
expect_status 0 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL HOME=$PWD/home AWS_PROFILE=ci \
    sp-verify --s3-endpoint "$E" --cache c3 "$U"
expect_err "sp-verify: $U: OK: 246 records in 6 shards, 0.9 MB"
cp err verify.err

# ---- a wrong secret, no credentials: 403, named ----
expect_status 3 env AWS_SECRET_ACCESS_KEY=wrong$SECRET sp-verify --cache c4 "$U"
expect_err "sp-verify: $U/manifest.json: HTTP 403: refused (no access: check the credentials or the bucket's policy)"
cp err wrong.err
expect_status 3 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME=$PWD/nohome sp-cat --cache c5 "$U"
expect_err "sp-cat: $U/manifest.json: HTTP 403: refused (no access: check the credentials or the bucket's policy)"
cp err anon.err

# ---- the secret (or the key) in nothing written ----
for f in train.err train.json inspect.json verify.err wrong.err anon.err remote.ckpt; do
    ! grep -qaF -e "$SECRET" -e "$KEY" "$f" || fail "$f holds the credentials"
done
! grep -rqaF -e "$SECRET" -e "$KEY" c1 c2 c3 c4 c5 || fail "the cache holds the credentials"
echo ok
