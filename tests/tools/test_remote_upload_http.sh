# sp-shard -o http(s)://... into nginx with WebDAV's PUT on 127.0.0.1 (HTTP
# and HTTPS with a CA made here; stopped by PID): the files equal the local
# set's byte for byte, the manifest put last, sp-verify passes and the Loader
# gives the local set's batches; a SIGKILL after the second shard's upload
# leaves no manifest, and a rerun keeps the object that hashes right, puts
# again one of the right size but wrong bytes and one cut short, and ends
# with the files of an uninterrupted run, as after a SIGKILL in the middle of
# a PUT (the tests' hook SHARDPIPE_TEST_UPLOAD_KILL_MID); PUT refused, 403 (405) and 503 on every
# try fail naming the URL without its password, and leave no manifest; a 503
# or a reset mid-body to each file's first PUT (tests/servers/fault_server.py)
# is retried and the files are the local set's;
# --merge of parts written to URLs into a URL equals a local merge, and a
# part that does not fit is named by its URL.
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/python"
$PY "$FIX/make_cifar.py" cf --per-batch 41
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-normalize > rec
sp-shard -q -n 48 -o S rec
mkdir www
make_test_ca
NGINX_EXTRA='client_max_body_size 0; dav_methods PUT; create_full_put_path on;
    location /ro/ { dav_methods off; } location /flaky/ { return 503; } location /deny/ { return 403; }'
start_nginx "$PWD/www" "$PWD/srv.pem" "$PWD/srv.key"
P=$NGINX_PORT T=$NGINX_TLS_PORT
export SHARDPIPE_CA_FILE=$PWD/ca.pem SHARDPIPE_CACHE=$PWD/cache
same_files() { # LOCAL SERVED: the same file names, byte for byte
    [ "$(ls "$1")" = "$(ls "$2")" ] || fail "$2 holds $(ls "$2" | tr '\n' ' '), not the files of $1"
    for f in "$1"/*; do cmp -s "$f" "$2/$(basename "$f")" || fail "$2/$(basename "$f") differs from $f"; done
}
first=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["shards"][0]["file"])' S/manifest.json)

# ---- an upload over https: the local set's files, the manifest last ----
expect_status 0 sp-shard -n 48 -o "https://127.0.0.1:$T/a/" rec
expect_err_has "uploaded 6 shards (0 in parts), 0 already there, and the manifest"
same_files S www/a
[ "$(grep -o 'PUT /a/[^ ]*' nginx/access.log | tail -n 1)" = "PUT /a/manifest.json" ] || fail "the manifest was not put last"
[ -z "$(ls cache/staging)" ] || fail "the default staging directory is left behind"
expect_status 0 sp-verify --cache c1 "http://127.0.0.1:$P/a"
expect_err "sp-verify: http://127.0.0.1:$P/a: OK: 246 records in 6 shards, 0.9 MB"
[ "$($PY "$SP_ROOT/tests/tools/remote_same.py" S "https://127.0.0.1:$T/a/" c2)" = same ] || fail "the Loader over the uploaded set differs from the local set"

# ---- killed after the second shard's upload: no manifest; the rerun completes ----
expect_status 137 env SHARDPIPE_TEST_UPLOAD_KILL=2 sp-shard -q -n 48 -o "http://127.0.0.1:$P/b/" rec
[ "$(ls www/b | wc -l)" = 2 ] || fail "the killed run left $(ls www/b | wc -l) files, not 2"
[ ! -e www/b/manifest.json ] || fail "a manifest exists before every shard is up"
bad=$(ls www/b | head -n 1)
cut=$($PY -c 'import json, os; print(next(s["file"] for s in json.load(open("S/manifest.json"))["shards"] if not os.path.exists("www/b/" + s["file"])))')
head -c "$(stat -c %s "www/b/$bad")" /dev/zero > "www/b/$bad.new" && mv "www/b/$bad.new" "www/b/$bad"
head -c 1000 "S/$cut" > "www/b/$cut" # as a server that keeps a PUT cut short would
expect_status 0 sp-shard -n 48 -o "http://127.0.0.1:$P/b/" rec
expect_err_has "uploaded 5 shards (0 in parts), 1 already there, and the manifest"
same_files S www/b

# ---- killed in the middle of the third shard's PUT: no part of it is kept ----
third=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["shards"][2]["file"])' S/manifest.json)
expect_status 137 env SHARDPIPE_TEST_UPLOAD_KILL_MID=3 sp-shard -q -n 48 -o "http://127.0.0.1:$P/e/" rec
grep -q "^PUT /e/$third HTTP/1.1 " nginx/access.log || fail "the killed run did not start the third shard's PUT"
[ "$(ls -A www/e | wc -l)" = 2 ] && [ ! -e "www/e/$third" ] || fail "the run killed mid-PUT left: $(ls -A www/e)"
expect_status 0 sp-shard -n 48 -o "http://127.0.0.1:$P/e/" rec
expect_err_has "uploaded 4 shards (0 in parts), 2 already there, and the manifest"
same_files S www/e

# ---- PUT refused (405), 403, 503 on every try: named, no password, no manifest ----
expect_status 3 sp-shard -q -n 48 -o "http://alice:s3cret@127.0.0.1:$P/ro/c/" rec
expect_err "sp-shard: http://127.0.0.1:$P/ro/c/$first: HTTP 405: refused (the server does not take PUT here: for nginx, WebDAV's dav_methods PUT)"
! grep -qaF s3cret err || fail "stderr holds the password"
[ ! -e www/ro/c ] || fail "a refused upload left files"
expect_status 3 sp-shard -q -n 48 -o "http://127.0.0.1:$P/deny/c/" rec
expect_err "sp-shard: http://127.0.0.1:$P/deny/c/$first: HTTP 403: refused (no access: check the credentials or the bucket's policy)"
expect_status 3 sp-shard -q -n 48 -o "http://127.0.0.1:$P/flaky/d/" rec
expect_err "sp-shard: http://127.0.0.1:$P/flaky/d/$first: HTTP 503 (after 5 attempts)"
[ "$(grep -c "/flaky/d/$first HTTP/1.1 503" nginx/access.log)" = 5 ] || fail "503 was not tried 5 times"

# ---- a 503, or a reset mid-body, to each file's first PUT: retried, the same files ----
mkdir fs
start_fault put "$PWD/fs"
for mode in busy cut; do
    expect_status 0 sp-shard -q -n 48 -o "http://127.0.0.1:$FAULT_PORT/$mode/u/" rec
    same_files S fs/u
    [ "$(grep -c "^PUT /$mode/u/.* 201$" put.log)" = 7 ] && [ "$(grep -c "^PUT /$mode/u/.* \(503\|cut\)$" put.log)" = 7 ] ||
        { cat put.log >&2; fail "$mode: not each of the 7 files refused once, then put"; }
    rm -r fs/u
done

# ---- --merge: parts at URLs into a URL, equal to a local merge ----
for i in 0 1; do
    sp-shard -q -n 48 --part $i/2 -o lp/$i rec
    sp-shard -q -n 48 --part $i/2 -o "http://127.0.0.1:$P/parts/$i/" rec
done
sp-shard -q --merge -o LM lp/0 lp/1
kept=$(ls cache/staging) # the failed uploads' above, for their reruns
expect_status 0 sp-shard --merge -o "https://bob:pw0rd@127.0.0.1:$T/m/" "http://127.0.0.1:$P/parts/0" "https://127.0.0.1:$T/parts/1/"
expect_err_has "merged 2 shard sets into https://127.0.0.1:$T/m/"
! grep -qaF pw0rd err || fail "stderr holds the password"
same_files LM www/m
expect_status 0 sp-verify --cache c3 "http://127.0.0.1:$P/m"
[ "$(ls cache/staging)" = "$kept" ] || fail "the merge left staging directories: $(ls cache/staging)"
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 48 --part 1/2 -o raw1 # not normalized
expect_status 1 sp-shard -q --merge -o M2 "http://127.0.0.1:$P/parts/0/" raw1
expect_err "sp-shard: raw1: its normalization differ from http://127.0.0.1:$P/parts/0/'s"
echo ok
