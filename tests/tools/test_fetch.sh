# sp-fetch against real servers on 127.0.0.1: nginx for the normal path, the
# cache and resume; the fault server for every way a download goes wrong.
# Each case ends in a verified file or a clear error, never a corrupt file in
# the cache.
. "$SP_ROOT/tests/tools/lib.sh"
mkdir data m
make_fetch_data 7
# manifest NAME MIRROR...: a dataset of a.bin and b.txt.gz served from the mirrors
manifest() {
    name=$1; shift
    $PY - "$name" "$@" <<'X'
import json, sys
files = json.load(open("files.json"))
json.dump({"name": sys.argv[1], "mirrors": sys.argv[2:], "files": files}, open(f"m/{sys.argv[1]}.json", "w"))
X
}
export SP_MANIFESTS=$PWD/m
FAST="--retry-delay 0.05 --stall-timeout 1 --connect-timeout 5"
same_as_source() { # CACHE_FILE: byte-identical to data/
    cmp "$1" "data/$(basename "$1")" || fail "$1 differs from the served file"
}

# ---- nginx: a normal fetch, a refetch from the cache, a resume ----
start_nginx "$PWD/data"
manifest web "http://127.0.0.1:$NGINX_PORT"
expect_status 0 sp-fetch -c C web
mv out web.sprs
same_as_source C/web/a.bin
same_as_source C/web/b.txt.gz
sp-cat web.sprs | $PY -c "
import json, sys, xxhash
for l in sys.stdin:
    r = json.loads(l); d = open('data/' + r['key'], 'rb').read()
    assert r['size'] == len(d) and r['checksum'] == xxhash.xxh3_64_hexdigest(d), r
print('stream ok')"
grep -c '^GET /a.bin HTTP/1.1 200 range=-$' nginx/access.log | grep -qx 1 || fail "a.bin not fetched once"
expect_err_has "sp-fetch: web/a.bin: 300.0 kB from http://127.0.0.1:$NGINX_PORT/a.bin, verified by md5"

requests=$(wc -l < nginx/access.log)
expect_status 0 sp-fetch -c C web
[ "$(wc -l < nginx/access.log)" -eq "$requests" ] || fail "a cached file was requested again"
expect_err "sp-fetch: web/a.bin: cached
sp-fetch: web/b.txt.gz: cached"

rm C/web/a.bin
head -c 100000 data/a.bin > C/web/a.bin.part
expect_status 0 sp-fetch -c C --path web
grep -q '^GET /a.bin HTTP/1.1 206 range=bytes=100000-$' nginx/access.log || { cat nginx/access.log; fail "no resume"; }
same_as_source C/web/a.bin
[ ! -e C/web/a.bin.part ] || fail ".part left behind"
printf '%s\n' "$PWD/C/web/a.bin" "$PWD/C/web/b.txt.gz" | sed "s|$PWD/||" > want
sed "s|$PWD/||" out > got && diff -u want got

# --raw: one file's bytes; --file selects it
expect_status 0 sp-fetch -c C --raw --file b.txt.gz web
cmp out data/b.txt.gz
expect_status 2 sp-fetch -c C --raw web
expect_err "sp-fetch: --raw writes one file; 2 are selected (use --file)"
# --offline: the cache serves, a missing file is an error
expect_status 0 sp-fetch -c C --offline --path web
expect_status 1 sp-fetch -c EMPTY --offline web
expect_err "sp-fetch: web/a.bin: not in the cache (EMPTY) and --offline is set"

# ---- the fault server ----
start_fault plain "$PWD/data"
P=$FAULT_PORT
run_case() { # NAME MODE: fetch dataset NAME whose only mirror is /MODE/
    manifest "$1" "http://127.0.0.1:$P/$2"
    expect_status "${3:-0}" sp-fetch -c C $FAST --retries 2 "$1"
}

# body cut mid-way: the .part is kept and the retry resumes it
run_case cut cut
same_as_source C/cut/a.bin
grep -q "^GET /cut/a.bin range=bytes=150000-$" plain.log || { cat plain.log; fail "cut: no resume"; }
expect_err_has "sp-fetch: cut/a.bin: http://127.0.0.1:$P/cut/a.bin: transfer closed with 150000 bytes remaining to read; retrying"

# a server that answers 200 to a Range request: start again from zero, never append
mkdir -p C/norange && head -c 100000 /dev/urandom > C/norange/a.bin.part
run_case norange norange
same_as_source C/norange/a.bin
grep -q "^GET /norange/a.bin range=bytes=100000-$" plain.log || fail "norange: no range asked"

# 416 to a Range request: a whole .part verifies as it is; a bad one restarts
mkdir -p C/r416 && cp data/a.bin C/r416/a.bin.part
run_case r416 416
same_as_source C/r416/a.bin
mkdir -p C/r416b && head -c 300000 /dev/urandom > C/r416b/a.bin.part
run_case r416b 416
same_as_source C/r416b/a.bin

# a stalled connection: cut after --stall-timeout, and the retry resumes
run_case stall stall
same_as_source C/stall/a.bin
grep -q "^GET /stall/a.bin range=bytes=150000-$" plain.log || fail "stall: no resume"
expect_err_has "sp-fetch: stall/a.bin: http://127.0.0.1:$P/stall/a.bin: stalled: nothing received for 1 s; retrying"
# ... a server that always stalls: a clear error, the partial file kept aside
run_case hang hang 1
expect_err_has "sp-fetch: hang/a.bin: no verified copy from any mirror: http://127.0.0.1:$P/hang/a.bin: stalled:"
expect_err_has "(3 tries)"
[ ! -e C/hang/a.bin ] && [ -s C/hang/a.bin.part ] || fail "hang: cache state"

# the wrong bytes: kept as .bad, an error naming both sums
run_case wrong wrong 1
want_md5=$($PY -c "import json; print(json.load(open('files.json'))[0]['md5'])")
got_md5=$(md5sum < C/wrong/a.bin.bad | cut -c1-32)
expect_err_has "sp-fetch: wrong/a.bin: no verified copy from any mirror: http://127.0.0.1:$P/wrong/a.bin: checksum mismatch (300000 bytes): expected md5 $want_md5, got $got_md5 (kept as C/wrong/a.bin.bad)"
[ ! -e C/wrong/a.bin ] || fail "a wrong file reached the cache"

# HTTP errors: the error page is never written; the next mirror serves the file
manifest errs "http://127.0.0.1:$P/notfound" "http://127.0.0.1:$P/error" "http://127.0.0.1:$P/ok"
expect_status 0 sp-fetch -c C $FAST --retries 1 errs
same_as_source C/errs/a.bin
expect_err_has "sp-fetch: errs/a.bin: http://127.0.0.1:$P/notfound/a.bin: HTTP 404"
expect_err_has "sp-fetch: errs/a.bin: http://127.0.0.1:$P/error/a.bin: HTTP 500 (2 tries)"
! grep -rq "ERROR PAGE" C || fail "an error page was written"

# a server that never stops: cut at the manifest's size + 1/8 + 1 MiB
run_case endless endless 1
expect_err_has "more than the 1386076 bytes the manifest allows"
[ ! -e C/endless/a.bin ] && [ ! -s C/endless/a.bin.part ] || fail "endless: bytes kept"

# ---- a URL: the sums' syntax, the cache key, the size cap, a full disk ----
URL="http://127.0.0.1:$P/ok/a.bin"
md5_a=$want_md5
requests=$(wc -l < plain.log)
# --md5 / --sha256 that are not sums: usage errors before any request
expect_status 2 sp-fetch -c U --path --md5 xyz "$URL"
expect_err "sp-fetch: --md5: not 32 hex digits: xyz
Try 'sp-fetch --help' for more information."
expect_status 2 sp-fetch -c U --path --sha256 "$md5_a" "$URL"
expect_err "sp-fetch: --sha256: not 64 hex digits: $md5_a
Try 'sp-fetch --help' for more information."
[ "$(wc -l < plain.log)" -eq "$requests" ] || fail "a request before the sums were checked"
# a copy cached without --md5 is not taken for a URL asked with a sum it does not have
expect_status 0 sp-fetch -c U --path "$URL"
same_as_source "$(cat out)"
zeros=00000000000000000000000000000000
expect_status 1 sp-fetch -c U --path $FAST --md5 $zeros "$URL"
expect_err_has "checksum mismatch (300000 bytes): expected md5 $zeros, got $md5_a"
[ ! -s out ] || fail "a path printed for a file that does not verify"
# ... and one with the right sum (in capitals) is fetched and verified
expect_status 0 sp-fetch -c U --path $FAST --md5 "$(echo "$md5_a" | tr a-f A-F)" "$URL"
same_as_source "$(cat out)"
expect_err_has "verified by md5"
# a server that never stops, for a file of no known size: cut at --max-size
expect_status 1 timeout 60 sp-fetch -c U --path $FAST --retries 0 --max-size 1M "http://127.0.0.1:$P/endless/a.bin"
expect_err_has "more than the 1048576 bytes allowed (--max-size)"
[ -z "$(find U -name 'a.bin*' -size +1M)" ] || fail "bytes beyond --max-size kept: $(find U)"
expect_status 2 sp-fetch -c U --max-size 12Q "$URL"
expect_err "sp-fetch: --max-size: not a size (like 64k, 256M, 2G) of at least 1: 12Q
Try 'sp-fetch --help' for more information."
# a full disk (a 64 KiB tmpfs as the cache): status 3, nothing under the final name
mkdir full
expect_status 3 unshare -rm sh -c 'mount -t tmpfs -o size=64k none full && exec sp-fetch -c full --path "$1"' sh "$URL"
expect_err_has "cannot write the download: No space left on device"

# https that redirects to http: refused; TLS verified against --ca-file
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 2>/dev/null
start_fault tls "$PWD/data" --tls cert.pem key.pem --plain-port "$P"
T=$FAULT_PORT
manifest down "https://127.0.0.1:$T/redirect-http"
expect_status 1 sp-fetch -c C $FAST --ca-file cert.pem down
expect_err_has "https://127.0.0.1:$T/redirect-http/a.bin: redirect to http://127.0.0.1:$P/ok/a.bin refused (https may only redirect to https)"
[ ! -e C/down/a.bin ] || fail "followed a downgrade"
manifest secure "https://127.0.0.1:$T/ok"
expect_status 0 sp-fetch -c C $FAST --ca-file cert.pem secure
same_as_source C/secure/a.bin
# without the CA the same server is refused
expect_status 1 sp-fetch -c C2 $FAST secure
expect_err_has "SSL certificate problem"
[ ! -e C2/secure/a.bin ] || fail "an unverified peer's file reached the cache"
# --from DIR: copies the user has are verified in place (ImageNet's way), a
# stamp spares the hashing next time, a bad copy is an error and left alone
manifest local "http://127.0.0.1:9/unused"
expect_status 0 sp-fetch -c C --from data --path local
printf '%s\n' data/a.bin data/b.txt.gz > want && diff -u want out
expect_err "sp-fetch: local/a.bin: data/a.bin, verified by md5
sp-fetch: local/b.txt.gz: data/b.txt.gz, verified by md5"
expect_status 0 sp-fetch -c C --from data --path local
expect_err_has "sp-fetch: local/a.bin: data/a.bin, verified before (stamp in C/local)"
mkdir other && cp data/a.bin other/ && printf 'x' | dd of=other/a.bin bs=1 seek=5 conv=notrunc 2>/dev/null
expect_status 1 sp-fetch -c C --from other --file a.bin local
expect_err_has "sp-fetch: other/a.bin: checksum mismatch (300000 bytes): expected md5"
cmp -s other/a.bin data/a.bin && fail "compared equal"; [ -f other/a.bin ] || fail "the user's copy was moved"
head -c 10 data/a.bin > other/a.bin
expect_status 1 sp-fetch -c C --from other --file a.bin local
expect_err "sp-fetch: other/a.bin: 10 bytes, the published file has 300000"
# ImageNet has no mirror: without --from the error says how to get it
expect_status 1 sp-fetch -c C imagenet
expect_err_has "sp-fetch: imagenet: The ILSVRC2012 archives are downloaded by hand"
# a dataset manifest whose name is a path is refused: the name becomes the cache's subdirectory
printf '{"name": "../escape", "files": [{"name": "a.bin"}], "mirrors": ["file://%s/data/"]}\n' "$PWD" > escape.json
expect_status 1 sp-fetch -c C escape.json
expect_err 'sp-fetch: escape.json: the dataset'"'"'s name "../escape" is not a plain name'
[ ! -e escape ] || fail "sp-fetch wrote outside its cache"
echo ok
