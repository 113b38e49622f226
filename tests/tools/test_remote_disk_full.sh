# The cache of a set at a URL on a full disk (a 256 KiB tmpfs, room for one
# shard of 168 KiB and not two): the read fails with exit 3 and a message
# naming the URL, the shard and the disk's reason; only verified shards stay
# in the cache, and a rerun with room reads the whole set.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_cifar.py" cf --per-batch 41
mkdir www
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 48 -o www/S
sp-cat www/S > local.jsonl
start_nginx "$PWD/www"
mount_tmpfs_or_skip small 256
U=http://127.0.0.1:$NGINX_PORT/S
f1=$(cd www/S && ls train-00001-*.h5)
expect_status 3 sp-cat --cache small "$U"
expect_err "sp-cat: $U/$f1: cannot make room for the shard's 171923 bytes in the cache small: No space left on device"
[ ! -s out ] || fail "records written before the failure"
for p in small/objects/*; do
    case "$p" in *.lock) ;; *)
        [ "$(sha256sum < "$p" | cut -d' ' -f1)" = "$(basename "$p")" ] || fail "$p is not what its name says" ;;
    esac
done
expect_status 0 sp-cat --cache big "$U"
cmp -s out local.jsonl || fail "the rerun's records differ from the local set's"
echo ok
