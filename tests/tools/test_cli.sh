# Every tool: --help and --version on stdout with status 0, usage errors on
# stderr with status 2, and nothing on stdout but data.
. "$SP_ROOT/tests/tools/lib.sh"
for t in sp-fetch sp-unpack sp-decode sp-resize sp-normalize sp-shard sp-cat sp-verify sp-inspect sp-train sp-eval; do
    expect_status 0 $t --help
    head -1 out | grep -q "^Usage: $t " || fail "$t --help: $(head -1 out)"
    grep -q "^Exit status:" out || fail "$t --help documents no exit status"
    [ ! -s err ] || fail "$t --help wrote to stderr"
    expect_status 0 $t --version
    echo "$t (shardpipe) 0.1.0" > want && diff -u want out
    expect_status 2 $t --no-such-option
    [ ! -s out ] || fail "$t: usage error wrote to stdout"
    grep -q "^$t: unknown option" err && grep -q "Try '$t --help'" err || { cat err; fail "$t usage message"; }
done
expect_status 2 sp-shard
expect_err "sp-shard: no output directory (-o DIR)
Try 'sp-shard --help' for more information."
expect_status 2 sp-shard -o X -n 0
expect_err_has "sp-shard: --records-per-shard: not a positive number: 0"
expect_status 2 sp-shard -o X --shard-size 12Q
expect_err_has "sp-shard: --shard-size: not a size: 12Q"
expect_status 2 sp-verify
expect_err_has "sp-verify: no shard directory given"
expect_status 2 sp-train
expect_err_has "sp-train: no shard directory given"
expect_status 2 sp-train X --optimizer rmsprop
expect_err_has "sp-train: --optimizer: adam or sgd, not rmsprop"
expect_status 2 sp-train X --lr -1
expect_err_has "sp-train: --lr: a positive number, not -1"
expect_status 2 sp-eval X
expect_err_has "sp-eval: no checkpoint (--checkpoint CKPT)"
expect_status 2 sp-fetch
expect_err_has "sp-fetch: nothing to fetch: name a dataset, a URL or a file"
expect_status 2 sp-fetch --path no-such-dataset
expect_err "sp-fetch: no dataset named 'no-such-dataset' (known: cifar10, cifar100, fashion-mnist, imagenet, mnist)"
expect_status 2 sp-fetch --retries x mnist
expect_err_has "sp-fetch: --retries: not a number from 0 to 100: x"

# input that is not a stream, and missing files
echo "just text" > text
expect_status 1 sp-decode text
expect_err "sp-decode: text: not a shardpipe record stream (bad magic)
sp-decode: 0 records in, 0 out, 0 skipped"
expect_status 1 sp-cat missing.sprs
expect_err "sp-cat: missing.sprs: No such file or directory"
expect_status 1 sp-unpack missing.tar
expect_err "sp-unpack: missing.tar: No such file or directory"
: > empty
expect_status 1 sp-shard -o O empty
expect_err "sp-shard: empty: empty input, not a record stream"

# -q silences the summary; diagnostics never reach stdout
$PY "$FIX/make_idx.py" idx --train 3 --test 2 --size 2 2
sp-unpack idx/* > s.sprs
expect_status 0 sp-decode -q s.sprs
[ ! -s err ] || fail "sp-decode -q printed: $(cat err)"
mv out px.sprs
expect_status 0 sp-shard -q -o OUT px.sprs
[ ! -s err ] && [ ! -s out ] || fail "sp-shard -q printed"
expect_status 1 sp-shard -o OUT2 s.sprs
expect_err "sp-shard: t10k-images-idx3-ubyte: a blob record; sp-shard stores pixel records (run sp-decode first)"
echo ok
