# Messages that name the problem once and give the reason: sp-verify of a
# directory that is no shard set, sp-fetch of a path that is not there, a
# picture that cannot be written (the errno reason).
. "$SP_ROOT/tests/tools/lib.sh"
mkdir empty && echo x > file
expect_status 1 sp-verify empty
expect_err "sp-verify: empty: not a shard directory (no manifest.json in it)"
expect_status 1 sp-verify file
expect_err "sp-verify: file: not a shard directory (a file: give the directory sp-shard -o wrote)"
expect_status 1 sp-fetch --path /nonexistent/x.tar.gz
expect_err "sp-fetch: /nonexistent/x.tar.gz: No such file or directory"
expect_status 2 sp-fetch --path no-such-dataset
expect_err_has "sp-fetch: no dataset named 'no-such-dataset' (known: "
sp-unpack $FMNIST/t10k*.gz | sp-decode -q | sp-shard -q -o F
expect_status 3 sp-inspect --grid /nonexistent/g.png F
expect_err_has "/nonexistent/g.png: No such file or directory"
# before any training step
expect_status 3 sp-train F -e 1 --curves /nonexistent/c.png
expect_err "sp-train: cannot create a temporary for /nonexistent/c.png: No such file or directory"
echo ok
