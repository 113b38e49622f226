# make install into a temporary DESTDIR (PREFIX=/usr/local), used from there
# alone: a copy of the checkout and of its build directory installs, then the
# copy is deleted (the real build directory stays, for the tests running
# beside this one, but is off PATH and unnamed). From the installed tree:
# Fashion-MNIST offline through sp-fetch | sp-unpack | sp-decode | sp-shard,
# sp-verify, a C program built with pkg-config against
# libshardpipe-reader, the Python package finding the HDF5 plugin and the
# library by itself (and pip-installed offline from python/),
# man pages and bash completion, the ImageNet class list, torch2ckpt.py and
# the Slurm scripts (with --help); then make uninstall leaves no file behind
# and no directory it made.
. "$SP_ROOT/tests/tools/lib.sh"
skip_under_sanitizers "it builds the project a second time to install it; the installed programs are the code every other test runs under them"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
build=$(dirname "$SP_BIN")
work=$PWD dest=$PWD/dest tree=$PWD/tree
prefix=/usr/local
inst=$dest$prefix

# ---- install from a copy; the copy is gone before anything runs ----
mkdir -p "$tree/b"
(cd "$SP_ROOT" && tar --exclude=./build --exclude=./.git -cf - .) | tar -C "$tree" -xf - || fail "copying the checkout"
# what install's prerequisites are made from, times kept so nothing is rebuilt
for d in bin gen hdf5-plugin lib obj pic man completion; do
    [ ! -d "$build/$d" ] || cp -a "$build/$d" "$tree/b/" || fail "copying $build/$d"
done
make -C "$tree" --no-print-directory BUILD=b SAN="${SP_SAN:-}" PREFIX=$prefix DESTDIR="$dest" install \
    > install.log 2>&1 || { tail -30 install.log; fail "make install failed"; }
rm -rf "$tree"
[ ! -e "$tree" ] || fail "the copy is still there"

# nothing installed refers to a build tree or the checkout
for f in "$inst/lib/pkgconfig/shardpipe-reader.pc" "$inst/share/bash-completion/completions/shardpipe" \
         "$inst"/lib/python3*/dist-packages/shardpipe/*.py; do
    [ -f "$f" ] || fail "not installed: $f"
    ! grep -qF -e "$tree" -e "$SP_ROOT" -e "$build" "$f" || fail "$f names the build tree"
done
for f in "$inst"/bin/sp-* "$inst/lib/libshardpipe-reader.so.0.1.0" "$inst/lib/hdf5/plugin/libshardpipe-h5zstd.so"; do
    ! readelf -d "$f" | grep -E 'RPATH|RUNPATH' | grep -qF -e "$tree" -e "$SP_ROOT" -e "$work" \
        || fail "$f has an rpath into the build tree"
done
grep -qx 'libdir=${prefix}/lib' "$inst/lib/pkgconfig/shardpipe-reader.pc" || fail "libdir is not prefix-relative"
grep -qx "Requires.private: hdf5 libzstd jansson libxxhash libjpeg libpng libcurl libcrypto" "$inst/lib/pkgconfig/shardpipe-reader.pc" \
    || fail "Requires.private"
! grep -q -- '-Wl,-rpath' "$inst/lib/pkgconfig/shardpipe-reader.pc" || fail "the installed .pc has an rpath"
# the versioned library and its links; it needs nothing of archives (libjpeg
# and libpng: the views that decode encoded sets at load; libcurl and
# libcrypto: sets at a URL, downloaded and checked against their sha256)
[ "$(readlink "$inst/lib/libshardpipe-reader.so")" = libshardpipe-reader.so.0 ] || fail ".so link"
[ "$(readlink "$inst/lib/libshardpipe-reader.so.0")" = libshardpipe-reader.so.0.1.0 ] || fail ".so.0 link"
readelf -d "$inst/lib/libshardpipe-reader.so.0.1.0" > dyn || fail "readelf"
grep -q 'Library soname: \[libshardpipe-reader.so.0\]' dyn || fail "soname"
! grep NEEDED dyn | grep -E 'archive' || fail "libshardpipe-reader needs a tool-side library"
grep NEEDED dyn | grep -q 'libcurl' && grep NEEDED dyn | grep -q 'libcrypto' || fail "libshardpipe-reader without libcurl or libcrypto: no sets at a URL"

# ---- from here on, only the installed tree ----
export PATH="$inst/bin:/usr/bin:/bin"
unset HDF5_PLUGIN_PATH SP_BIN
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9  # any network use would fail
mkdir elsewhere && cd elsewhere
[ "$(command -v sp-shard)" = "$inst/bin/sp-shard" ] || fail "sp-shard is not the installed one"
# each stage's status, since sh has no pipefail
{ sp-fetch -c "$work/cache" fashion-mnist 2>fetch.err; echo $? > st.fetch; } |
    { sp-unpack; echo $? > st.unpack; } | { sp-decode -q; echo $? > st.decode; } |
    { sp-shard -q -o "$work/S"; echo $? > st.shard; }
for s in fetch unpack decode shard; do
    [ "$(cat st.$s)" = 0 ] || { cat fetch.err; fail "sp-$s exited $(cat st.$s)"; }
done
expect_status 0 sp-verify "$work/S"

flags=$(PKG_CONFIG_PATH="$inst/lib/pkgconfig" pkg-config --define-variable=prefix="$inst" --cflags --libs shardpipe-reader) \
    || fail "pkg-config shardpipe-reader"
cc -std=c11 -Wall -Werror ${SP_SAN:-} "$SP_ROOT/tests/tools/reader_count.c" $flags -o reader || fail "building against the installed library"
LD_LIBRARY_PATH="$inst/lib" ldd ./reader > reader.ldd 2>&1 || { cat reader.ldd >&2; fail "ldd ./reader"; }
grep -qF "libshardpipe-reader.so.0 => $inst/lib/libshardpipe-reader.so.0" reader.ldd \
    || { cat reader.ldd >&2; fail "the program does not load the installed library"; }
LD_LIBRARY_PATH="$inst/lib" expect_status 0 ./reader "$work/S"
read -r count seen label sum < out
[ "$count" = 10000 ] && [ "$seen" = 10000 ] || fail "the C reader saw $count / $seen test records"

pydir=$(echo "$inst"/lib/python3*/dist-packages)
PYTHONPATH="$pydir" expect_status 0 $PY -c "import shardpipe"
PYTHONPATH="$pydir" expect_status 0 $PY - "$work/S" "$pydir" <<'X'
import os, sys
import shardpipe
from h5py import h5pl
shards, pydir = sys.argv[1], sys.argv[2]
assert shardpipe.__file__.startswith(pydir), shardpipe.__file__
ds = shardpipe.ShardDataset(shards, "test", normalize=False)
img, label = ds[0]
plugins = [h5pl.get(i).decode() for i in range(h5pl.size())]
want = os.path.normpath(os.path.join(pydir, "..", "..", "hdf5", "plugin"))
assert want in plugins, plugins
print(len(ds), label, int(img.astype("uint64").sum()))
X
[ "$(cat out)" = "10000 $label $sum" ] || fail "Python read $(cat out), C read 10000 $label $sum"
# the Loader loads the installed libshardpipe-reader (by _install.py's LIB_DIR, no LD_LIBRARY_PATH);
# a sanitizer build's library needs the sanitizer runtimes loaded into python first
san_preload=""
case "${SP_SAN:-}" in *address*)
    san_preload="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
    export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" ;;
esac
PYTHONPATH="$pydir" LD_PRELOAD="$san_preload" expect_status 0 $PY - "$work/S" "$inst/lib" <<'X'
import os, sys
import numpy as np
import shardpipe
from shardpipe import _clib
(x, y), (xt, yt) = shardpipe.load_data(sys.argv[1])
assert os.path.realpath(_clib.library_path) == os.path.realpath(sys.argv[2] + "/libshardpipe-reader.so.0"), _clib.library_path
assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28) and x.dtype == np.uint8
print(len(xt), int(yt[0]), int(xt[0].astype("uint64").sum()))
X
[ "$(cat out)" = "10000 $label $sum" ] || fail "load_data read $(cat out), C read 10000 $label $sum"

# pip installs the package offline (no build isolation) from a copy of python/
cp -r "$SP_ROOT/python" pysrc
$PY -m pip install -q --no-build-isolation --no-deps --no-index --target "$work/piptarget" ./pysrc \
    > pip.log 2>&1 || { cat pip.log; fail "pip install ./python"; }
PYTHONPATH="$work/piptarget" SHARDPIPE_READER_LIB="$inst/lib/libshardpipe-reader.so.0" HDF5_PLUGIN_PATH="$inst/lib/hdf5/plugin" \
    LD_PRELOAD="$san_preload" expect_status 0 $PY -c "import sys, shardpipe; assert shardpipe.__file__.startswith('$work/piptarget'); \
assert 'torch' not in sys.modules; print(len(shardpipe.Loader('$work/S', 'test', batch_size=1000)))"
[ "$(cat out)" = 10 ] || fail "the pip-installed Loader: $(cat out) batches"
# docs/loading.md's venv route (Debian 12's system pip refuses, PEP 668), offline: the package finds the
# library and the plugin through pkg-config (PKG_CONFIG_PATH only because this install is staged
# under DESTDIR; /usr/local's .pc is on pkg-config's own path); ShardDataset in a fresh process,
# before any Loader has loaded the library
$PY -m venv --system-site-packages "$work/venv" || fail "python3 -m venv"
cp -r "$SP_ROOT/python" "$work/pyvenv"
"$work/venv/bin/pip" install -q --no-build-isolation --no-index --no-deps "$work/pyvenv" > venvpip.log 2>&1 || { cat venvpip.log; fail "venv pip install"; }
for step in dataset loader; do
    expect_status 0 env -u SHARDPIPE_READER_LIB -u HDF5_PLUGIN_PATH -u PYTHONPATH \
        PKG_CONFIG_PATH="$inst/lib/pkgconfig" LD_PRELOAD="$san_preload" "$work/venv/bin/python" -c "import os, sys, shardpipe
assert shardpipe.__file__.startswith('$work/venv/'), shardpipe.__file__
if sys.argv[1:] == ['dataset']:
    print(len(shardpipe.ShardDataset('$work/S', 'test')))
else:
    from shardpipe import _clib
    print(len(shardpipe.Loader('$work/S', 'test', batch_size=1000)), _clib.library_path)" $step
    echo "$step: $(cat out)" >> venv.out
done
grep -qx "dataset: 10000" venv.out && grep -qx "loader: 10 $inst/lib/libshardpipe-reader.so.0" venv.out \
    || { cat venv.out err; fail "the venv route"; }
# a plugin directory without the filter: opening a ShardDataset fails at once, saying what to do
PYTHONPATH="$pydir" HDF5_PLUGIN_PATH="$work/elsewhere" expect_status 1 $PY -c \
    "import shardpipe; shardpipe.ShardDataset('$work/S', 'test')"
grep -q "FilterMissingError: h5py cannot load the HDF5 zstd filter (32015).*HDF5_PLUGIN_PATH" err \
    || { cat err; fail "no clear message for a missing filter"; }

# man pages and bash completion, for every tool
for t in sp-fetch sp-unpack sp-decode sp-resize sp-normalize sp-shard sp-cat sp-verify sp-inspect sp-train sp-eval; do
    [ -x "$inst/bin/$t" ] || fail "$t not installed"
    grep -q "^$t \\\\- [A-Z]" "$inst/share/man/man1/$t.1" || fail "$t.1 has no NAME line"
    [ -f "$inst/share/bash-completion/completions/$t" ] || fail "no completion for $t"
done
MANPATH="$inst/share/man" man -w sp-shard | grep -qxF "$inst/share/man/man1/sp-shard.1" || fail "man does not find sp-shard"
bash -c '. "$1"
    COMP_WORDS=(sp-shard --no-sh); COMP_CWORD=1; _shardpipe sp-shard; echo "${COMPREPLY[*]}"
    COMP_WORDS=(sp-fetch fashion); _shardpipe sp-fetch; echo "${COMPREPLY[*]}"' \
    _ "$inst/share/bash-completion/completions/sp-shard" > completed || fail "completion script"
printf '%s\n' --no-shuffle fashion-mnist | diff -u - completed || fail "completion"

# what docs/install.md names under share/shardpipe: the ImageNet class list (the
# same as the tools' embedded one), torch2ckpt.py, the Slurm scripts with --help
share=$inst/share/shardpipe
cmp "$share/imagenet/classes.txt" "$SP_ROOT/manifests/imagenet/classes.txt" || fail "classes.txt"
[ "$(wc -l < "$share/imagenet/classes.txt")" = 1000 ] || fail "classes.txt has not 1000 classes"
[ -x "$share/torch2ckpt.py" ] || fail "torch2ckpt.py is not installed executable"
for s in convert-array.sbatch convert-parallel.sh merge.sbatch submit.sh train.sbatch; do
    [ -x "$share/slurm/$s" ] || fail "$s is not installed executable"
    expect_status 0 "$share/slurm/$s" --help
    grep -q "^usage: .*$s" out || { cat out; fail "$s --help shows no usage"; }
    ! grep -q '^#' out || fail "$s --help shows comment marks"
    [ ! -s err ] || fail "$s --help wrote to stderr"
done

# ---- uninstall leaves no file and no directory it made behind ----
cd "$work"
make -C "$SP_ROOT" --no-print-directory PREFIX=$prefix DESTDIR="$dest" uninstall > uninstall.log 2>&1 \
    || { cat uninstall.log; fail "make uninstall failed"; }
[ ! -e "$dest" ] || fail "left behind: $(find "$dest")"
# a directory that was there before stays, and so does a file of someone else's in one it made;
# installing twice, the second finds every directory there and must not forget the first's
mkdir -p "$dest$prefix/bin"
for i in 2 3; do
    make -C "$SP_ROOT" --no-print-directory BUILD="$build" SAN="${SP_SAN:-}" PREFIX=$prefix DESTDIR="$dest" install \
        > install$i.log 2>&1 || { tail -30 install$i.log; fail "make install (again) failed"; }
done
touch "$dest$prefix/share/man/man1/other.1"
make -C "$SP_ROOT" --no-print-directory PREFIX=$prefix DESTDIR="$dest" uninstall > uninstall2.log 2>&1 \
    || { cat uninstall2.log; fail "make uninstall (again) failed"; }
(cd "$dest" && find . | sort) > left
printf '%s\n' . ./usr ./usr/local ./usr/local/bin ./usr/local/share ./usr/local/share/man \
    ./usr/local/share/man/man1 ./usr/local/share/man/man1/other.1 | diff -u - left || fail "uninstall left or took these"
echo ok
