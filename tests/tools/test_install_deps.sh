# scripts/install-deps.sh: nothing to do when all is installed; as a user
# who is not root, with a package missing, it prints the apt-get line and
# fails without touching anything.
. "$SP_ROOT/tests/tools/lib.sh"
expect_status 0 "$SP_ROOT/scripts/install-deps.sh"
[ ! -s err ] || fail "printed with nothing missing: $(cat err)"
[ "$(id -u)" = 0 ] || { echo "not root: the non-root case is this run itself"; }
# a copy the unprivileged user can read wherever the checkout lives
pub=$(mktemp -d /tmp/sp-deps.XXXXXX)
trap 'rm -rf "$pub"' EXIT
chmod 755 "$pub" && cp "$SP_ROOT/scripts/install-deps.sh" "$pub/"
as_user() {
    if [ "$(id -u)" = 0 ]; then (cd / && setpriv --reuid=65534 --regid=65534 --clear-groups "$@")
    else "$@"; fi
}
expect_status 1 as_user "$pub/install-deps.sh" shardpipe-no-such-package
expect_err "install-deps: missing Debian packages: shardpipe-no-such-package
install-deps: run as root:  apt-get update && apt-get install -y shardpipe-no-such-package"
echo ok
