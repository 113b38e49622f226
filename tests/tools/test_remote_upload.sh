# run.sh: long
# sp-shard -o s3://BUCKET/PREFIX/ into Ceph's radosgw on 127.0.0.1
# (tests/servers/s3_server.sh, its daemons stopped by PID): the objects equal
# the local set's files byte for byte (shards larger than --multipart-size go
# in parts) and sp-verify passes over them; a SIGKILL after the first shard's
# upload (the tests' fault hook SHARDPIPE_TEST_UPLOAD_KILL) leaves no manifest
# object, and a rerun puts the rest and ends with the same objects; a wrong
# secret gets a named 403 with no credentials in stderr; the manifest (its
# recipe) holds none either; --merge of parts put to s3:// into s3:// gives
# a local merge's files.
. "$SP_ROOT/tests/tools/lib.sh"
KEY=AKIASHARDPIPEUPLOAD SECRET=uPlOaD/shardpipe+test/0123456789abcdefXYZ
$PY "$FIX/make_cifar.py" cf --per-batch 41
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-normalize > rec
sp-shard -q -n 48 -o S rec
PORT=$(free_port)
mkdir ceph
stop_ceph() { for p in ceph/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; stop_servers; }
trap stop_ceph EXIT
"$SP_ROOT/tests/servers/s3_server.sh" ceph "$PORT" "$KEY" "$SECRET" || fail "the S3 server did not start"
E=http://127.0.0.1:$PORT
s3() { curl -sf --aws-sigv4 aws:amz:us-east-1:s3 -u "$KEY:$SECRET" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"; }
s3 -X PUT "$E/bkt" || fail "cannot make the bucket"
export AWS_ENDPOINT_URL=$E AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=us-east-1
export SHARDPIPE_CACHE=$PWD/cache
keys() { s3 "$E/bkt?list-type=2&prefix=$1%2F" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g; s|^[^/]*/||' | sort; }
same_as_local() { # PREFIX [DIR]: its objects are DIR's files (default S), byte for byte
    [ "$(keys "$1")" = "$(ls "${2:-S}" | sort)" ] || fail "the objects under $1 are not the files of ${2:-S}"
    for f in "${2:-S}"/*; do
        s3 -o got "$E/bkt/$1/$(basename "$f")" && cmp -s got "$f" || fail "$1/$(basename "$f") differs from $f"
    done
}

# ---- an upload, the shards above 64k in parts; sp-verify over it ----
big=$(find S -name '*.h5' -size +64k | wc -l)
[ "$big" -gt 0 ] || fail "no shard above 64k to put in parts"
expect_status 0 sp-shard -n 48 --multipart-size 64k --staging st -o s3://bkt/a/ rec
expect_err_has "uploaded 6 shards ($big in parts), 0 already there, and the manifest"
diff -r S st >/dev/null || fail "the staging directory differs from the local set"
same_as_local a
! grep -qaF -e "$SECRET" -e "$KEY" st/manifest.json err || fail "the manifest or stderr holds the credentials"
expect_status 0 sp-verify --cache c1 s3://bkt/a
expect_err "sp-verify: s3://bkt/a: OK: 246 records in 6 shards, 0.9 MB"

# ---- killed after the first shard's upload: no manifest; a rerun completes ----
expect_status 137 env SHARDPIPE_TEST_UPLOAD_KILL=1 sp-shard -q -n 48 -o s3://bkt/b/ rec
[ "$(keys b | wc -l)" = 1 ] || fail "the killed run left $(keys b | wc -l) objects, not 1"
! s3 -I "$E/bkt/b/manifest.json" >/dev/null || fail "a manifest object exists before every shard is up"
expect_status 0 sp-shard -n 48 -o s3://bkt/b/ rec
expect_err_has "uploaded 5 shards (0 in parts), 1 already there, and the manifest"
same_as_local b
[ -z "$(ls cache/staging)" ] || fail "the default staging directory is left behind"

# ---- --merge: parts put to s3:// merged into s3://, equal to a local merge ----
for i in 0 1; do
    sp-shard -q -n 48 --part $i/2 -o lp/$i rec
    sp-shard -q -n 48 --part $i/2 -o s3://bkt/p/$i/ rec
done
sp-shard -q --merge -o LM lp/0 lp/1
expect_status 0 sp-shard --merge -o s3://bkt/m/ s3://bkt/p/0 s3://bkt/p/1/
expect_err_has "merged 2 shard sets into s3://bkt/m/"
same_as_local m LM
expect_status 0 sp-verify --cache c2 s3://bkt/m
[ -z "$(ls cache/staging)" ] || fail "the merge left staging directories"

# ---- a wrong secret: a named 403, no credentials in stderr ----
first=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["shards"][0]["file"])' S/manifest.json)
expect_status 3 env AWS_SECRET_ACCESS_KEY=wrong$SECRET sp-shard -q -n 48 -o s3://bkt/c/ rec
expect_err "sp-shard: s3://bkt/c/$first: HTTP 403: refused (no access: check the credentials or the bucket's policy)"
! grep -qaF -e "$SECRET" -e "$KEY" err || fail "stderr holds the credentials"
[ -z "$(keys c)" ] || fail "a refused upload left objects"
echo ok
