# One flipped byte in a shard's compressed pixels (a byte the zstd frame still
# decodes, so only the records' checksums can tell): sp-verify, sp-cat,
# sp-inspect, sp-train, the C reader library and the Python reader each fail
# with status 1 and name the shard file and the record.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$SP_ROOT/tests/tools/lib.sh"
. "$SP_ROOT/tests/tools/bad_lib.sh"
set -o pipefail
build_reader_dump
make_small_set
cp -r S GOOD

# flip a byte in the second train shard's first images chunk, chosen so the
# frame still decodes (a literal byte) and the pixels change: prints the
# shard's file name and the index of the first record whose pixels changed
read -r shard record < <($PY - <<'X'
import json, h5py, numpy as np, zstandard
m = json.load(open("S/manifest.json"))
name = [s["file"] for s in m["shards"] if s["split"] == "train"][1]
path = "S/" + name
with h5py.File(path, "r") as h:
    ds = h["images"]
    rb = int(np.prod(ds.shape[1:]))
    info = ds.id.get_chunk_info(0)
    mask, raw = ds.id.read_direct_chunk(info.chunk_offset)
    chunk_records = ds.chunks[0]
def plain(frame):
    # the frame without its content checksum (if the writer stored one), so a
    # changed literal decodes and shows which bytes it changed
    f = bytearray(frame)
    if f[4] & 0x04:
        f[4] &= ~0x04
        f = f[:-4]
    return zstandard.ZstdDecompressor().decompress(bytes(f), max_output_size=chunk_records * rb)
want = plain(raw)
for off in range(len(raw) // 2, len(raw) - 8):
    b = bytearray(raw); b[off] ^= 0x55
    try:
        got = plain(bytes(b))
    except zstandard.ZstdError:
        continue
    if len(got) == len(want) and got != want:
        first = next(i for i in range(len(got)) if got[i] != want[i])
        break
else:
    raise SystemExit("no byte of the chunk decodes changed")
with open(path, "r+b") as f:
    f.seek(info.byte_offset + off)
    c = f.read(1)[0]
    f.seek(info.byte_offset + off)
    f.write(bytes([c ^ 0x55]))
print(name, first // rb)
X
)
[ -n "$shard" ] && [ -n "$record" ] || fail "no byte flipped"
echo "flipped $shard record $record"

expect_status 1 sp-verify S
expect_err_has "sp-verify: S: $shard: sha256 "
# (a shard whose bytes changed is read without its keys, which HDF5 cannot read safely from a damaged file)
expect_err_has "sp-verify: S: $shard: record $record: pixels do not match their checksum"
row "one flipped byte in a shard's pixels: sp-verify" "the undamaged copy verifies" ": record "

expect_status 1 sp-cat S
expect_err_has "S/$shard: record $record ("
expect_err_has "pixels do not match their checksum (corrupt shard)"
row "one flipped byte in a shard's pixels: sp-cat DIR" "was: status 0, the wrong pixels printed"
expect_status 1 sp-cat "S/$shard"
expect_err_has "S/$shard: record $record ("

expect_status 1 sp-inspect S
expect_err_has "S/$shard: record $record: pixels do not match their checksum (corrupt shard)"
row "one flipped byte in a shard's pixels: sp-inspect" "was: status 0 and a summary"

expect_status 1 ./reader_dump S train index
expect_err_has "S/$shard: record $record: pixels do not match their checksum (corrupt shard)"
row "one flipped byte in a shard's pixels: the C reader library (spr_read; the iterator too)" "was: the wrong pixels returned" "reader_dump:"
for mode in prefetch direct; do
    expect_status 1 ./reader_dump S train iter 16 3 shuffle $mode
    expect_err_has "S/$shard: record $record: pixels do not match their checksum (corrupt shard)"
done

# sp-train's reader checks each record it reads; --verify full checks the
# whole set (sp-verify's checks) before it trains
expect_status 1 sp-train S --model mlp --epochs 1 -o ckpt
expect_err_has "S/$shard: record $record: pixels do not match their checksum (corrupt shard)"
[ ! -e ckpt ] || fail "sp-train wrote a checkpoint from a corrupt shard"
row "one flipped byte in a shard's pixels: sp-train" "stopped at the record, nothing written" "pixels do not match"
expect_status 1 sp-train S --model mlp --epochs 1 -o ckpt --verify full
expect_err_has "sp-train: S: the shards do not verify: $shard: sha256 "
expect_err_has "; $shard: record $record: pixels do not match their checksum (run sp-verify S)"
grep -q "epoch" err && fail "sp-train --verify full trained on shards that do not verify"
row "one flipped byte in a shard's pixels: sp-train --verify full" "refused before the first epoch"

PYTHONPATH="$SP_ROOT/python" expect_status 1 $PY - "$shard" "$record" <<'X'
import sys, shardpipe
shard, record = sys.argv[1], int(sys.argv[2])
ds = shardpipe.ShardDataset("S", "train")
first = ds._ends[ds.files.index(shard) - 1]
for i in range(len(ds)):
    try:
        ds[i]
    except shardpipe.CorruptShardError as e:
        assert i == first + record, (i, first, record)
        sys.exit(f"CorruptShardError: {e}")
X
expect_err_has "S/$shard: record $record ("
row "one flipped byte in a shard's pixels: the Python reader" "was: the wrong pixels returned"

# a plain h5py reader (through the zstd filter plugin) notices too: the frame's checksum
expect_status 1 $PY - "$shard" <<'X'
import sys, h5py
with h5py.File("S/" + sys.argv[1]) as h:
    try:
        h["images"][...]
    except OSError as e:
        sys.exit(f"h5py: S/{sys.argv[1]}: {str(e).splitlines()[0]}")
X
expect_err_has "h5py: S/$shard: Can't read data (filter returned failure during read)"
row "one flipped byte in a shard's pixels: plain h5py (zstd frame checksum)" "was: the wrong pixels returned"

# the undamaged copy reads in full everywhere
sp-verify -q GOOD
sp-cat GOOD > /dev/null
sp-inspect GOOD > /dev/null
./reader_dump GOOD train index > /dev/null
echo ok
