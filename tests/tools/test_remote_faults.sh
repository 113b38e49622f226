# Faults of a server a set at a URL is read from (tests/servers/fault_server.py
# on 127.0.0.1): a reset mid-body, 500, a 503 once, 403, 404, a stalled body, a
# truncated body, wrong bytes, an object changed since the manifest, a cache
# limit under one shard, a password in the URL. Each either gives the local
# set's records exactly (retried, resumed by Range) or fails with its status
# and a message naming the URL and the shard, leaving nothing trusted in the
# cache: never wrong data, never a short read. docs/remote-sets.md's fault
# table is this test's rows (printed to stderr).
. "$SP_ROOT/tests/tools/lib.sh"
export PYTHONPATH="$SP_ROOT/python" SHARDPIPE_STALL_SECONDS=1
$PY "$FIX/make_cifar.py" cf --per-batch 41
mkdir www
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 48 -o www/S
cp -r www/S www/C # "changed": train-00000's object replaced by train-00001's (the same size)
f0=$(cd www/S && ls train-00000-*.h5) f1=$(cd www/S && ls train-00001-*.h5)
[ "$(stat -c %s www/S/$f0)" = "$(stat -c %s www/S/$f1)" ] || fail "the fixture's first two shards differ in size"
cp www/S/$f1 www/C/$f0
sp-cat www/S > local.jsonl
start_fault f www
U=http://127.0.0.1:$FAULT_PORT
n=0
# case NAME MODE WANT_STATUS WANT_MESSAGE (empty: none) [SET]: sp-cat over
# /MODE/SET in a fresh cache; its records must be the local set's whole, or
# none at all; no file of the cache but finished, verified shards.
case_() {
    name=$1 mode=$2 want=$3 msg=$4 set=${5:-S}
    n=$((n + 1))
    expect_status "$want" sp-cat --cache c$n "$U/$mode/$set"
    mv out got.jsonl
    if [ -n "$msg" ]; then expect_err "$msg"; else [ ! -s err ] || { cat err >&2; fail "$name: a message"; }; fi
    if [ "$want" = 0 ]; then
        cmp -s got.jsonl local.jsonl || fail "$name: the records differ from the local set's"
        data="all 246 records, equal to the local set's"
    else
        [ ! -s got.jsonl ] || fail "$name: records written before the failure"
        data="none"
    fi
    for p in c$n/objects/*; do
        case "$p" in *.lock|*'*') ;;
            *) [ "$($PY -c "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())" "$p")" = "$(basename "$p")" ] \
                   || fail "$name: $p in the cache is not what its name says" ;;
        esac
    done
    printf '| %s | %s | %s | %s |\n' "$name" "$want" "$(sed 's/|/\\|/g' err | tr '\n' ' ' | sed 's/ $//')" "$data" >> table.md
}
S0="$U/%s/S/$f0"
case_ "connection reset mid-body (each shard, once)" cut 0 ""
grep -q "GET /cut/S/$f0 range=bytes=" f.log || fail "the reset download did not resume by Range"
case_ "HTTP 500 on every try" error 3 "sp-cat: $(printf "$S0" error): HTTP 500 (after 5 attempts)"
case_ "HTTP 503 once, then 200" busy 0 ""
case_ "HTTP 403" forbidden 3 "sp-cat: $(printf "$S0" forbidden): HTTP 403: refused (no access: check the credentials or the bucket's policy)"
case_ "HTTP 404" notfound 1 "sp-cat: $(printf "$S0" notfound): HTTP 404: not found"
case_ "slow server: half the body, then silence" stall 0 ""
grep -q "GET /stall/S/$f0 range=bytes=" f.log || fail "the stalled download did not resume by Range"
case_ "truncated body (a short Content-Length)" short 1 \
    "sp-cat: $(printf "$S0" short): the server sent 85961 bytes, the manifest says 171923 (truncated)"
case_ "wrong bytes (the right length)" wrong 1 \
    "sp-cat: $(printf "$S0" wrong): sha256 $(printf '%s' "$($PY -c "import hashlib, sys; print(hashlib.sha256(bytes(b ^ 0x5A for b in open(sys.argv[1], 'rb').read())).hexdigest())" www/S/$f0)"), the manifest says ${f0:12:8}$(grep -o "\"sha256\": \"${f0:12:8}[0-9a-f]*" www/S/manifest.json | sed "s/.*\"${f0:12:8}//") (the object changed since the manifest was written, or is damaged)"
case_ "object changed since the manifest" ok 1 \
    "sp-cat: $U/ok/C/$f0: sha256 ${f1:12:8}$(grep -o "\"sha256\": \"${f1:12:8}[0-9a-f]*" www/S/manifest.json | sed "s/.*\"${f1:12:8}//"), the manifest says ${f0:12:8}$(grep -o "\"sha256\": \"${f0:12:8}[0-9a-f]*" www/S/manifest.json | sed "s/.*\"${f0:12:8}//") (the object changed since the manifest was written, or is damaged)" C

# ---- a cache limit under one shard: refused before any shard is asked for ----
: > f.log
expect_status 2 sp-train "$U/ok/S" --cache c-limit --cache-limit 100k --model mlp -e 1 -o x.ckpt
expect_err "sp-train: $U/ok/S/manifest.json: shard $f0 holds 171923 bytes, more than the cache limit of 102400 bytes (raise --cache-limit to the largest shard at least)"
! grep -q '\.h5' f.log || fail "a shard was asked for under a limit below its size"
printf '| %s | %s | %s | %s |\n' "cache limit under one shard (sp-train --cache-limit 100k)" 2 "$(cat err)" "none; no shard requested" >> table.md

# ---- sp-train and the Loader fail, never train on a short epoch ----
expect_status 1 sp-train "$U/notfound/S" --cache c-train --model mlp -e 1 -o y.ckpt
expect_err_has "$(printf "$S0" notfound): HTTP 404: not found"
[ ! -e y.ckpt ] || fail "sp-train wrote a checkpoint without its shards"
$PY - "$U/error/S" <<'X' 2> py.err && fail "the Loader read a set whose shards fail"
import sys, shardpipe
for batch in shardpipe.Loader(sys.argv[1], cache="c-py", batch_size=16, threads=2):
    pass
X
grep -q "HTTP 500 (after 5 attempts)" py.err || { cat py.err >&2; fail "the Loader's error lacks the reason"; }

# ---- a password in the URL is never shown ----
expect_status 1 sp-cat --cache c-pw "http://alice:s3cret@127.0.0.1:$FAULT_PORT/notfound/S"
expect_err "sp-cat: $(printf "http://127.0.0.1:$FAULT_PORT/%s/S/$f0" notfound): HTTP 404: not found"
! grep -rq s3cret c-pw || fail "the password is in the cache"
cat table.md >&2
echo ok
