# libshardpipe-reader under hostile use (tests/reader/reader_hostile.c): the
# set closed before its iterator, a batch of 0, labels NULL, fork() while the
# reader threads read, error codes rather than words, a directory path over
# 2,000 characters.
. "$SP_ROOT/tests/tools/lib.sh"
build_reader_dump
# SP_READER_BUILD: another build's library for this program (make tsan-reader)
export PKG_CONFIG_PATH="${SP_READER_BUILD:-$(dirname "$SP_BIN")}/lib/pkgconfig"
cc -std=c11 -Wall -Werror ${SP_SAN:-} "$SP_ROOT/tests/reader/reader_hostile.c" \
    $(pkg-config --cflags --libs shardpipe-reader) -o reader_hostile
$PY "$FIX/make_cifar.py" cf --per-batch 40
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-normalize | sp-shard -q -n 48 -o S
fork=fork
case "${SP_SAN:-}" in *thread*) fork=fork-nothreads ;; esac # ThreadSanitizer: no threads in a forked child
for mode in close-first batch0 labels-null $fork errcode; do
    ./reader_hostile $mode S > out.txt || fail "$mode: $(cat out.txt)"
    echo ok > want && diff -u want out.txt
done
# a directory path of 2,100 characters (ten levels of 209)
long=.
for i in 0 1 2 3 4 5 6 7 8 9; do long="$long/$(printf "d%0208d" $i)"; done
mkdir -p "$long" && cp -r S "$long/S"
[ "${#long}" -gt 2000 ] || fail "the long path is only ${#long} characters"
./reader_hostile labels-null "$long/S" > out.txt || fail "a long path: $(cat out.txt)"
./reader_dump "$long/S" train index > long.txt 2> info.txt && ./reader_dump S train index > short.txt 2> info.txt
cmp long.txt short.txt || fail "a long path reads other records"
# Python: a Loader in a reference cycle with its live iterator, collected;
# a batch of 0; errors mapped by code in a directory named corrupt...
mv S corrupt_set
PYTHONPATH="$SP_ROOT/python" $PY - <<'X'
import gc
import shardpipe
from shardpipe.loader import Reader
L = shardpipe.Loader("corrupt_set", threads=4, batch_size=8)
L.it = iter(L)
next(L.it)
del L
gc.collect()
r = Reader("corrupt_set")
try:
    next(r.iterate(0, 0, False, 0, 0, 1))
except ValueError as e:
    assert "batch_size" in str(e), e
else:
    raise AssertionError("a batch of 0 was accepted")
try:
    r.read(r.count)
except shardpipe.CorruptShardError as e:
    raise AssertionError(f"a record out of range is not corruption: {e}")
except shardpipe.ReaderError as e:
    assert "out of range" in str(e), e
print("ok")
X
# an encoded record damaged before its checksum was taken (it does not
# decode, its checksum holds): CorruptShardError, in a directory named
# corrupt... as anywhere
PYTHONPATH="$SP_ROOT/python:$SP_ROOT/bench" $PY -c "from benchlib import make_photo_archive; make_photo_archive('.', 8)"
expect_stages "0 0 0" 'sp-unpack -q train.tar | sp-decode -q --classes classes.txt --encoded | sp-shard -q -n 16 -o enc'
first=$(ls enc/*.h5 | head -n 1)
PYTHONPATH="$SP_ROOT/python" $PY - "$first" <<'X'
import sys
import h5py, numpy as np, xxhash
with h5py.File(sys.argv[1], "r+") as f:
    a, b = (int(v) for v in f["offsets"][:2])
    rec = f["encoded"][a:b]
    rec[:2] = 0  # no JPEG or PNG signature
    f["encoded"][a:b] = rec
    f["checksums"][0] = np.uint64(xxhash.xxh3_64_intdigest(rec.tobytes()))
X
for d in enc corrupt_enc; do
    [ -d $d ] || cp -r enc $d
    PYTHONPATH="$SP_ROOT/python" $PY - $d <<'X'
import sys
import shardpipe
try:
    for _ in shardpipe.Loader(sys.argv[1], batch_size=4, shuffle=False, view="eval", size=32, threads=2):
        pass
except shardpipe.CorruptShardError as e:
    assert "record 0" in str(e), e
else:
    raise AssertionError("the damaged record was read, or raised another error")
X
done
# Python and fork(): the child's use of the parent's Loader iterator raises
# (naming fork()), a Loader of its own reads the whole epoch; never a hang
PYTHONPATH="$SP_ROOT/python" timeout 120 $PY - <<'X'
import os, signal
import shardpipe
L = shardpipe.Loader("corrupt_set", threads=4, batch_size=8, shuffle=True)
it = iter(L)
for k in range(10):
    next(it)
    pid = os.fork()
    if pid == 0:
        signal.alarm(30)
        try:
            next(it)
            os._exit(3)
        except shardpipe.ReaderError as e:
            if "fork()" not in str(e):
                os._exit(4)
        n = sum(len(y) for _, y in shardpipe.Loader("corrupt_set", threads=2, batch_size=8))
        os._exit(0 if n == L.reader.count else 5)
    _, status = os.waitpid(pid, 0)
    assert status == 0, f"fork {k}: the child's status {status:#x}"
X
# an encoded set of grey images (its shapes say 1 channel): normalize=True
# gives the view's 3 channels, every one x/255 of the view's pixels
PYTHONPATH="$SP_ROOT/python" $PY - <<'X'
import os, tarfile
from PIL import Image
os.makedirs("grey/photos")
with tarfile.open("grey/train.tar", "w") as t:
    for f in sorted(os.listdir("photos")):
        Image.open(os.path.join("photos", f)).convert("L").save(os.path.join("grey/photos", f))
        t.add(os.path.join("grey/photos", f), arcname=f)
X
expect_stages "0 0 0" 'sp-unpack -q grey/train.tar | sp-decode -q --classes classes.txt --encoded | sp-shard -q -n 16 -o genc'
PYTHONPATH="$SP_ROOT/python" $PY - <<'X'
import glob, json
import h5py
import numpy as np
import shardpipe
# sp-decode records a grey JPEG as 3 channels: the shapes say 1 here, as a
# set written by another tool may
for p in glob.glob("genc/*.h5"):
    with h5py.File(p, "r+") as f:
        shape = f.attrs["shape"]
        shape[2] = 1
        f.attrs["shape"] = shape
        shapes = f["shapes"][:]
        shapes[:, 2] = 1
        f["shapes"][:] = shapes
m = json.load(open("genc/manifest.json"))
for e in m["shards"]:
    e["shape"][2] = 1
json.dump(m, open("genc/manifest.json", "w"))
args = dict(batch_size=8, shuffle=False, view="eval", size=32, threads=0)
assert shardpipe.Loader("genc", **args).reader.shape[2] == 1, "the fixture's shapes are not 1 channel"
for (x, _), (raw, _) in zip(shardpipe.Loader("genc", normalize=True, **args), shardpipe.Loader("genc", **args)):
    want = raw.transpose(0, 3, 1, 2).astype(np.float32) / 255
    assert x.shape == want.shape, (x.shape, want.shape)
    assert np.array_equal(x, want), float(np.nanmax(np.abs(x - want)))
X
echo ok
