# An encoded shard's index (offsets, shapes, codecs: 21 bytes a record) as a
# reader's lanes read it: sp-shard writes it in chunks of 4096 rows, and each
# lane's handle keeps one chunk of it (sp_shard_open_lane), checked as read,
# not the whole index: 64 lanes on a shard of 30,000 records take within 12
# MB of their peak RSS on one of 6,000 (5 MB here: the allocator's; the whole
# index took 64 x 21 bytes a record, 37 MB more); a set of the earlier layout (the index in one chunk) loads it whole
# and gives the same batches; an index whose offsets do not rise is an error
# naming the shard and the record, in the reader and in sp-verify (which
# reads the index a batch at a time too), as is an unknown codec.
. "$SP_ROOT/tests/tools/lib.sh"
# Under sanitizers the RSS comparison is left out (peak RSS is theirs); the
# reads, the reopening stretch by stretch and the errors are checked.
[ -x /usr/bin/time ] || fail "/usr/bin/time is missing (scripts/install-deps.sh installs time)"
export PKG_CONFIG_PATH="$(dirname "$SP_BIN")/lib/pkgconfig"
cc -std=c11 -Wall -Werror ${SP_SAN:-} "$SP_ROOT/bench/reader_bench.c" $(pkg-config --cflags --libs shardpipe-reader) -o reader_bench
sizes="6000 30000"
[ -z "${SP_SAN:-}" ] || sizes=30000
$PY - $sizes <<'X'
import os, sys
from PIL import Image
for n in map(int, sys.argv[1:]):
    for i in range(n):
        d = f"t{n}/train/c{i % 4}"
        os.makedirs(d, exist_ok=True)
        Image.new("RGB", (8 + i % 5, 8), ((i * 7) % 256, (i * 13) % 256, i % 256)).save(f"{d}/{i}.jpg", quality=90)
X
for n in $sizes; do
    expect_stages "0 0 0" "sp-unpack -q t$n | sp-decode -q --labels-from dirs --encoded | sp-shard -q -o E$n"
    [ "$(ls E$n/train-*.h5 | wc -l)" = 1 ] || fail "E$n: not one train shard"
    /usr/bin/time -f "%M" -o rss$n.txt ./reader_bench E$n train 256 shuffle 2 1 train 16 > out$n.txt
    read -r records _ _ < out$n.txt
    [ "$records" = "$n" ] || fail "E$n: read $records records, not $n"
    echo "$n records: peak RSS $(tail -1 rss$n.txt) KB" >&2
done
if [ -z "${SP_SAN:-}" ]; then
    small=$(tail -1 rss6000.txt) big=$(tail -1 rss30000.txt)
    [ $((big - small)) -lt $((12 * 1024)) ] ||
        fail "peak RSS $((big / 1024)) MB on a shard of 30,000 encoded records against $((small / 1024)) MB on 6,000: the lanes hold the index"
fi
# the earlier layout: the index in one chunk a column; the same batches (eval and train views)
cp -r E30000 O
$PY - <<'X'
import glob, h5py
f = h5py.File(glob.glob("E30000/train-*.h5")[0], "r")
assert f["offsets"].chunks == (4096,) and f["shapes"].chunks == (4096, 3), (f["offsets"].chunks, f["shapes"].chunks)
with h5py.File(glob.glob("O/train-*.h5")[0], "r+") as g:
    for c in ("offsets", "shapes", "codecs"):
        v = g[c][:]
        del g[c]
        g.create_dataset(c, data=v, chunks=(len(v),) + v.shape[1:], compression="gzip")
X
PYTHONPATH="$SP_ROOT/python" $PY - <<'X'
import itertools
import numpy as np
import shardpipe
# one partition: a lane's stretch is the whole shard, placed 4 MiB at a time
# (sp_shard_detach), the shard opened again for each stretch
for view, parts in (("eval", None), ("train", None), ("train", 1)):
    a = shardpipe.Loader("E30000", batch_size=256, seed=2, view=view, size=16, partitions=parts)
    b = shardpipe.Loader("O", batch_size=256, seed=2, view=view, size=16, partitions=parts)
    n = 0
    for (x, y), (u, v) in zip(a, b):
        assert np.array_equal(x, u) and np.array_equal(y, v), f"{view}, {parts} partitions: batch {n} differs"
        n += 1
    assert n == len(a) == 118, n
print("the earlier layout: the same batches")
X
# offsets that do not rise at record 5000 (in the index's second chunk)
cp -r E30000 D
f=$($PY - <<'X'
import glob, h5py
p = glob.glob("D/train-*.h5")[0]
with h5py.File(p, "r+") as f:
    o = f["offsets"][:]
    o[5001] = o[5000]
    f["offsets"][...] = o
print(p.split("/")[-1])
X
)
expect_status 1 ./reader_bench D train 256 shuffle 2 1 train 16
expect_err_has "$f: record 5000: offsets do not rise within the"
expect_err_has "corrupt shard)"
# sp-verify, which reads the index a batch at a time too, finds the same, and a codec
# it does not know
expect_status 1 sp-verify D
expect_err_has "$f: record 5000: offsets do not rise within the"
cp -r E30000 C
$PY - <<'X'
import glob, h5py
with h5py.File(glob.glob("C/train-*.h5")[0], "r+") as f:
    c = f["codecs"][:]
    c[7] = 9
    f["codecs"][...] = c
X
expect_status 1 sp-verify C
expect_err_has "record 7: unknown codec 9 (corrupt shard)"
echo ok
