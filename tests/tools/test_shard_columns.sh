# The per-record columns (labels, checksums): sp-shard writes them in chunks
# of 4096 rows (SP_SHARD_COLUMN_CHUNK), which the reader reads and keeps one
# at a time per open shard; a set written before, in 65536-row chunks (or any
# other layout HDF5 reads, here gzip), is read through HDF5 as before, with
# the same records. A damaged column chunk is an error that names the shard,
# the records and the chunk.
. "$SP_ROOT/tests/tools/lib.sh"
build_reader_dump
# 10,000 3x3 records, labels 0..9, in shards of 6,000 and 4,000: edge chunks
$PY - <<'X'
import numpy as np, struct
n, rng = 10000, np.random.default_rng(7)
with open("c-images-idx3-ubyte", "wb") as f:
    f.write(struct.pack(">IIII", 0x803, n, 3, 3) + rng.integers(0, 256, (n, 3, 3), dtype=np.uint8).tobytes())
with open("c-labels-idx1-ubyte", "wb") as f:
    f.write(struct.pack(">II", 0x801, n) + rng.integers(0, 10, n, dtype=np.uint8).tobytes())
X
expect_stages "0 0 0" 'sp-unpack -q --dataset fashion-mnist c-images-idx3-ubyte c-labels-idx1-ubyte | sp-decode -q | sp-shard -q --no-shuffle -n 6000 -o S'
./reader_dump S train index > new.txt 2> info.txt
./reader_dump S train iter 64 3 shuffle prefetch > new_iter.txt 2> info.txt
[ "$(wc -l < new.txt)" = 10000 ] || fail "read $(wc -l < new.txt) records, not 10000"
# the layout as written, and the labels in input order
$PY - S new.txt <<'X'
import glob, sys, h5py, numpy as np
for p in sorted(glob.glob(f"{sys.argv[1]}/train-*.h5")):
    with h5py.File(p, "r") as f:
        for c in ("labels", "checksums"):
            if f[c].chunks != (min(len(f[c]), 4096),):
                sys.exit(f"{p}: {c} in chunks of {f[c].chunks}, not 4096 rows")
want = np.frombuffer(open("c-labels-idx1-ubyte", "rb").read()[8:], np.uint8).astype(int)
got = np.array([int(line.split()[0]) for line in open(sys.argv[2])])
if not np.array_equal(want, got):
    sys.exit(f"labels differ from the IDX file's at {np.flatnonzero(want != got)[:5]}")
X
# a set of the earlier layout: the same columns in one chunk a shard (labels gzip)
cp -r S O
$PY - O <<'X'
import glob, sys, h5py
for p in glob.glob(f"{sys.argv[1]}/train-*.h5"):
    with h5py.File(p, "r+") as f:
        for c, extra in (("labels", dict(compression="gzip")), ("checksums", {})):
            v = f[c][:]
            del f[c]
            f.create_dataset(c, data=v, chunks=(len(v),), **extra)
X
./reader_dump O train index > old.txt 2> info.txt
./reader_dump O train iter 64 3 shuffle prefetch > old_iter.txt 2> info.txt
cmp new.txt old.txt || fail "the 65536-row layout reads other labels or records"
cmp new_iter.txt old_iter.txt || fail "the 65536-row layout gives another epoch"
# damage: labels chunk 1 of the first shard (its zstd frame's magic), then a
# checksums chunk (stored as it is: the pixels no longer match)
damage() { # SET COLUMN CHUNK: overwrites the chunk's first 4 bytes in the first train shard
    $PY - "$@" <<'X'
import glob, sys, h5py
d, col, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = sorted(glob.glob(f"{d}/train-*.h5"))[0]
with h5py.File(p, "r") as f:
    at = f[col].id.get_chunk_info(k).byte_offset
with open(p, "r+b") as f:
    f.seek(at)
    f.write(b"\xde\xad\xbe\xef")
print(p.split("/")[-1])
X
}
cp -r S D1 && f=$(damage D1 labels 1)
expect_status 1 ./reader_dump D1 train index
expect_err_has "$f: records 4096..5999: labels chunk 1"
expect_err_has "(corrupt shard)"
cp -r S D2 && f=$(damage D2 checksums 0)
expect_status 1 ./reader_dump D2 train index
expect_err_has "$f: record 0: pixels do not match their checksum (corrupt shard)"
