# run.sh: alone
# run.sh: long
# The Debian packages (debian/): dpkg-buildpackage -b in a copy of the
# checkout, lintian (no error, no warning), apt-get install of the five .debs, then
# with the installed files alone: Fashion-MNIST through sp-unpack | sp-decode
# | sp-shard, sp-verify, a C program built with pkg-config against
# libshardpipe-reader, /usr/bin/python3's shardpipe (a Loader epoch), h5py
# and h5dump reading a shard with no HDF5_PLUGIN_PATH; then apt-get purge,
# and nothing of the packages is left: no file, no directory they made.
# The machine is left as it was: the packages (and any dependency apt added)
# are purged on every exit. Needs root; refuses to run where any of the
# packages, or any of their files, is already installed.
. "$SP_ROOT/tests/tools/lib.sh"
case "${SP_SAN:-}" in *address*)
    echo "the packages build without sanitizers from the sources: tested in make test, not again in make asan" >&2
    exit 77 ;;
esac
[ "$(id -u)" = 0 ] || { echo "installs packages with apt-get: needs root" >&2; exit 77; }
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
for c in dpkg-buildpackage dh dh_python3 lintian fakeroot h5dump; do
    command -v $c > /dev/null || fail "$c is missing (scripts/install-deps.sh installs it)"
done
PKGS="shardpipe libshardpipe-reader0 libshardpipe-reader-dev python3-shardpipe hdf5-filter-shardpipe-zstd"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed\|config-files\|half'; }
for p in $PKGS; do
    ! installed "$p" || fail "$p is already installed: this test installs and purges it, so it will not run here"
done
work=$PWD
chmod 755 "$work"  # apt reads the .debs as _apt

# ---- build, in a copy without build/ ----
mkdir src
(cd "$SP_ROOT" && tar --exclude=./build --exclude=./.git -cf - .) | tar -C src -xf - || fail "copying the checkout"
(cd src && dpkg-buildpackage -b -us -uc -j2) > build.log 2>&1 || { tail -40 build.log; fail "dpkg-buildpackage"; }
debs=""  # the five, not the -dbgsym packages beside them
for p in $PKGS; do
    d=$(ls ./${p}_*.deb 2>/dev/null) || fail "no $p .deb built"
    debs="$debs $d"
done
lintian --fail-on error,warning --tag-display-limit 0 ./*.changes > lintian.log 2>&1 || { cat lintian.log; fail "lintian: errors or warnings"; }
# none of the files the packages hold may be there already (dpkg would take them over and purge them)
for d in $debs; do dpkg-deb --fsys-tarfile "$d" | tar -t; done | sed 's|^\./|/|; s|/$||' | grep -v '^/\?$' \
    | sort -u > paths
while read -r f; do
    if [ -d "$f" ] && [ ! -L "$f" ]; then echo "$f" >> dirs.before; continue; fi
    [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f is there already (installed from elsewhere?)"
done < paths
touch dirs.before

# ---- install; purge whatever happens from here on ----
dpkg-query -W -f='${Package}\n' | sort > pkgs.before
cleanup() {
    set +e
    cd "$work"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $PKGS > purge.log 2>&1
    dpkg-query -W -f='${Package}\n' | sort > pkgs.after
    added=$(comm -13 pkgs.before pkgs.after)
    [ -z "$added" ] || DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $added >> purge.log 2>&1
    dpkg-query -W -f='${Package}\n' | sort > pkgs.after
}
trap cleanup EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $debs > apt.log 2>&1 \
    || { tail -30 apt.log; fail "apt-get install ./*.deb"; }
for p in $PKGS; do installed "$p" || fail "$p is not installed"; done

# ---- the installed files alone ----
export PATH=/usr/bin:/bin
unset HDF5_PLUGIN_PATH SP_BIN PYTHONPATH LD_LIBRARY_PATH PKG_CONFIG_PATH
mkdir run && cd run
[ "$(dpkg -S /usr/bin/sp-shard)" = "shardpipe: /usr/bin/sp-shard" ] || fail "sp-shard is not the package's"
sp-unpack "$FMNIST"/*.gz 2>unpack.err | sp-decode -q | sp-shard -q -o S || { cat unpack.err; fail "the pipeline"; }
expect_status 0 sp-verify S
expect_err_has "S: OK: 70000 records in 2 shards"

cc -std=c11 -Wall -Werror "$SP_ROOT/tests/tools/reader_count.c" $(pkg-config --cflags --libs shardpipe-reader) -o reader \
    || fail "building against the installed library with pkg-config"
lib=$(ldd ./reader | sed -n 's/^\tlibshardpipe-reader.so.0 => \(.*\) (0x.*/\1/p')
owner() { dpkg -S "$(realpath "$1")" 2>/dev/null || dpkg -S "$1"; }  # merged /usr: /lib is /usr/lib
[ -n "$lib" ] && [ "$(owner "$lib")" = "libshardpipe-reader0:$(dpkg --print-architecture): $(realpath "$lib")" ] \
    || { ldd ./reader; fail "the program does not load the package's library"; }
expect_status 0 ./reader S
read -r count seen label sum < out
[ "$count" = 10000 ] && [ "$seen" = 10000 ] || fail "the C reader saw $count / $seen test records"

expect_status 0 /usr/bin/python3 -c "import shardpipe"
expect_status 0 /usr/bin/python3 - S <<'X'
import sys
import shardpipe
from shardpipe import _clib
assert shardpipe.__file__.startswith("/usr/lib/python3/dist-packages/shardpipe/"), shardpipe.__file__
n = 0
for x, y in shardpipe.Loader(sys.argv[1], "test", batch_size=1000, shuffle=False):
    n += len(y)
print(_clib.library_path, n)
X
read -r lib n < out
[ "$n" = 10000 ] || fail "a Loader epoch gave $n records"
[ "$(owner "$lib")" = "libshardpipe-reader0:$(dpkg --print-architecture): $(realpath "$lib")" ] \
    || fail "the Loader loaded $lib, not the package's library"
# h5py alone (not through shardpipe, which names the plugin itself) and h5dump: HDF5's default plugin path
shard=$(ls S/test-*.h5)
expect_status 0 /usr/bin/python3 -c "import h5py; f = h5py.File('$shard'); print(int(f['labels'][0]), int(f['images'][0].astype('uint64').sum()))"
[ "$(cat out)" = "$label $sum" ] || fail "h5py read $(cat out), the C reader $label $sum"
expect_status 0 h5dump -d labels -s 0 -c 1 "$shard"
grep -A1 'DATA {' out | tail -1 | grep -q "(0): $label\$" || { cat out; fail "h5dump's first label"; }

# ---- purge: nothing of the packages is left ----
cd "$work"
for p in $PKGS; do dpkg -L "$p"; done | sort -u > listed
trap - EXIT
cleanup
for p in $PKGS; do ! installed "$p" || fail "$p is still installed"; done
[ -z "$(comm -13 pkgs.before pkgs.after)" ] || fail "purging left packages: $(comm -13 pkgs.before pkgs.after)"
sort -u dirs.before > dirs.had
while read -r f; do
    [ "$f" != /. ] || continue
    [ -e "$f" ] || [ -L "$f" ] || continue
    grep -qxF "$f" dirs.had || fail "left behind: $f"
done < listed
[ ! -e /usr/lib/python3/dist-packages/shardpipe ] || fail "left behind: $(find /usr/lib/python3/dist-packages/shardpipe)"
[ ! -e /usr/share/shardpipe ] || fail "left behind: /usr/share/shardpipe"
echo ok
