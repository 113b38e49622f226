# The C reader's memory on 224x224x3 records under the canonical order: a
# shuffled epoch at a batch of 256 (64 partitions, so 64 lanes) with 2 reader
# threads keeps one open shard a lane, shared by the threads, with one kept
# chunk each, and one compressed chunk and zstd decompressor a thread, not
# one a lane and thread: peak RSS (/usr/bin/time's %M) under 250 MB, where
# those copies took it over 320 MB. RSS is not the load's, but sanitizers
# multiply it: the reader's paths run under them in test_reader_hostile and
# test_elastic.
. "$SP_ROOT/tests/tools/lib.sh"
skip_under_sanitizers "peak RSS is the sanitizers' (test_reader_hostile, test_elastic)"
export PYTHONPATH="$SP_ROOT/bench"
[ -x /usr/bin/time ] || fail "/usr/bin/time is missing (scripts/install-deps.sh installs time)"
export PKG_CONFIG_PATH="$(dirname "$SP_BIN")/lib/pkgconfig"
cc -std=c11 -Wall -Werror "$SP_ROOT/bench/reader_bench.c" $(pkg-config --cflags --libs shardpipe-reader) -o reader_bench
# 320 photographs, 224x224 after --resize: one shard, 6 records a chunk
$PY - <<'X'
import os
from benchlib import make_set
for i, f in enumerate(make_set(".", 320, sizes=[(300, 250), (280, 320), (256, 256)])):
    os.makedirs(f"tree/train/c{i % 4}", exist_ok=True)
    os.rename(f, f"tree/train/c{i % 4}/{i}.jpg")
X
expect_stages "0 0 0" 'sp-unpack -q tree | sp-decode -q --labels-from dirs --resize 224 | sp-shard -q -o S'
/usr/bin/time -f "%M" -o rss.txt ./reader_bench S train 256 shuffle 2 > out.txt
read -r records _ _ < out.txt
[ "$records" = 320 ] || fail "read $records records, not 320"
rss=$(tail -1 rss.txt)
echo "peak RSS of an epoch: $((rss / 1024)) MB"
[ "$rss" -lt $((250 * 1024)) ] || fail "peak RSS $((rss / 1024)) MB, over 250 MB"

# Open shards against records: the reader keeps one chunk of labels and of
# checksums an open shard handle (4096 rows, SP_SHARD_COLUMN_CHUNK), not
# HDF5's chunk cache of each file's columns (up to 1 MiB a column, 2 MiB a
# file of 65536-row chunks). 50,000 2x2 records in one shard against 400,000
# in 4 (all 4 open across the 64 lanes): peak RSS within 3 MB, where the
# caches took the second 7 MB over the first.
$PY - <<'X'
import numpy as np, struct
for n in (50000, 400000):
    rng = np.random.default_rng(n)
    with open(f"i{n}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 2, 2))
        f.write(rng.integers(0, 256, (n, 2, 2), dtype=np.uint8).tobytes())
    with open(f"i{n}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, n))
        f.write(rng.integers(0, 10, n, dtype=np.uint8).tobytes())
X
# And the same 400,000 records in 64 shards (one a lane): the lanes' handles
# let go of HDF5 once open (sp_shard_detach), which keeps about 1 MB for
# every open file; within 3 MB of the 4 shards' RSS, where HDF5's took it 18
# MB over.
rss_of() { # N SHARD_RECORDS SET: peak RSS (KB) of an epoch of SET, made of iN's records
    expect_stages "0 0 0" "sp-unpack -q --dataset fashion-mnist i$1-images-idx3-ubyte i$1-labels-idx1-ubyte | sp-decode -q | sp-shard -q -n $2 -o $3"
    /usr/bin/time -f "%M" -o rss.txt ./reader_bench "$3" train 256 shuffle 2 > out.txt
    read -r records _ _ < out.txt
    [ "$records" = "$1" ] || fail "$3: read $records records, not $1"
    echo "$1 records in $(ls "$3"/train-*.h5 | wc -l) train shards: peak RSS $(tail -1 rss.txt) KB" >&2
    tail -1 rss.txt
}
small=$(rss_of 50000 100000 I1) big=$(rss_of 400000 100000 I4) many=$(rss_of 400000 6250 I64)
[ $((big - small)) -lt $((3 * 1024)) ] ||
    fail "peak RSS $((big / 1024)) MB with 4 shards of 100,000 records against $((small / 1024)) MB with 1 of 50,000: it grows with the shards' records"
[ $((many - big)) -lt $((3 * 1024)) ] ||
    fail "peak RSS $((many / 1024)) MB with 64 shards against $((big / 1024)) MB with 4: it grows with the open files"
