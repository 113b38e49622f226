# Resource bombs, each stopped by a stated limit with status 1 and a message
# naming the limit, in bounded time and memory (a 1 GiB address-space limit
# where the build is not sanitized):
#   a gzip bomb inside a tar          decompression ratio, 100:1 past 64 MiB
#   a tar of a million empty entries  100,000 empty members an archive
#   tars nested 100 deep              8 levels
#   a PNG and a JPEG claiming 100000x100000 / 65000x65000   100 megapixels
#   an IDX header claiming 2^32-1 images   its size must match the file's
#   a 10 GB sparse CIFAR batch given by name   streamed by sp-unpack; refused
#                                     by sp-decode from the record header's size
#                                     (100,000 records a batch), before reading it
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$SP_ROOT/tests/tools/lib.sh"
. "$SP_ROOT/tests/tools/bad_lib.sh"
set -o pipefail
limit=""
[ -n "${SP_SAN:-}" ] || limit="ulimit -v 1048576;"
# bounded RUN CMD: CMD under the memory limit and a 60 s clock
bounded() { timeout 60 bash -c "set -o pipefail; $limit $1"; }

$PY - <<'X'
import io, struct, tarfile, zlib

def add(t, name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))

# 10 GiB in 10 MB of gzip: full-flushed deflate segments repeat byte for byte
# (0x55 bytes: zeros would read as an empty tar, tested below)
c = zlib.compressobj(9, zlib.DEFLATED, 31)
zero = b"\x55" * (1 << 20)
first = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
seg = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
assert seg == c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
bomb = first + seg * 10238 + c.flush()  # (its CRC is wrong; nothing gets that far)
with tarfile.open("gzbomb.tar", "w") as t:
    add(t, "readme.txt", b"a member before the bomb\n")
    add(t, "train-images.bin.gz", bomb)

# zeros in gzip, in a tar: libarchive reads the zeros as an empty tar
z = zlib.compressobj(9, zlib.DEFLATED, 31)
with tarfile.open("gzzeros.tar", "w") as t:
    add(t, "zeros.bin.gz", z.compress(bytes(64 << 20)) + z.flush())

# a million empty members: one header patched per name (name digits and checksum)
ti = tarfile.TarInfo("e0000000"); ti.size = 0
hdr = bytearray(ti.tobuf(format=tarfile.USTAR_FORMAT))
base = sum(hdr[0:148]) + 8 * 32 + sum(hdr[156:512]) - sum(b"0000000")
z = zlib.compressobj(1, zlib.DEFLATED, 31)
with open("million.tar.gz", "wb") as f:
    out = []
    for i in range(1000000):
        d = b"%07d" % i
        hdr[1:8] = d
        hdr[148:156] = b"%06o\0 " % (base + sum(d))
        out.append(bytes(hdr))
        if len(out) == 20000:
            f.write(z.compress(b"".join(out))); out = []
    f.write(z.compress(b"".join(out) + bytes(1024)) + z.flush())

# tars nested 100 deep
data = b"the innermost file\n"
name = "inner.txt"
for depth in range(100):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        add(t, name, data)
    data, name = b.getvalue(), "level%03d.tar" % depth
open("nested.tar", "wb").write(data)

# a PNG claiming 100000 x 100000 (a valid IHDR, one tiny IDAT)
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(b"\0" * 301)) + chunk(b"IEND", b"")
# a JPEG claiming 65000 x 65000: a real 8x8 JPEG with its frame header's size patched
from PIL import Image
b = io.BytesIO(); Image.new("RGB", (8, 8), (200, 10, 10)).save(b, "JPEG"); jpg = bytearray(b.getvalue())
sof = jpg.index(b"\xff\xc0")
jpg[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
with tarfile.open("ILSVRC2012_img_train.tar", "w") as t:
    add(t, "n01440764_1.png", png)
    add(t, "n01440764_2.JPEG", bytes(jpg))

# an IDX images file claiming 2^32-1 images of 28x28, holding 10
with open("train-images-idx3-ubyte", "wb") as f:
    f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, 0xFFFFFFFF, 28, 28) + bytes(10 * 784))
X
mkdir -p cifar-10-batches-bin
truncate -s 10G cifar-10-batches-bin/data_batch_1.bin
start=$(date +%s)

expect_status 1 bounded 'sp-unpack gzbomb.tar > gz.sprs'
expect_err_has "sp-unpack: gzbomb.tar/train-images.bin: expands more than 100 to 1"
expect_err_has "a decompression bomb, refused"
row "a gzip bomb inside a tar (10 GiB in 10 MB)" "stopped past 64 MiB; no record of it written"
[ "$(wc -c < gz.sprs)" -lt $((70 << 20)) ] || fail "sp-unpack wrote $(wc -c < gz.sprs) bytes before stopping"

# the bomb one level down: a plain tar of 200 MiB of zeros inside a gzipped
# tar, so only the outer archive is compressed (its expansion counts the
# nested tar's bytes too)
head -c $((200 << 20)) /dev/zero > zeros.bin
tar cf inner.tar zeros.bin && tar cf - inner.tar | gzip -1 > nestbomb.tar.gz && rm zeros.bin inner.tar
expect_status 1 bounded 'sp-unpack nestbomb.tar.gz > nest.sprs'
expect_err_has "nestbomb.tar.gz/inner.tar: expands more than 100 to 1"
row "a plain tar of 200 MiB of zeros inside a gzipped tar (0.9 MB)" "stopped past 64 MiB: the nested tar's bytes count to the outer archive's expansion" "expands more than"
[ "$(wc -c < nest.sprs)" -lt $((70 << 20)) ] || fail "sp-unpack wrote $(wc -c < nest.sprs) bytes before stopping"
rm -f nest.sprs

expect_status 1 bounded 'sp-unpack gzzeros.tar > /dev/null'
expect_err_has "sp-unpack: gzzeros.tar/zeros.bin.gz: an archive with no members (or zeros that read as one)"
row "64 MiB of zeros, gzipped, in a tar (reads as an empty tar)" "was: gone without a word; now reported as skipped"

expect_status 1 bounded 'sp-unpack million.tar.gz > /dev/null'
expect_err "sp-unpack: million.tar.gz/e0100000: more than 100000 empty members in one archive, refused"
row "a tar.gz of 1,000,000 empty members" "stopped at member 100,001"

expect_status 1 bounded 'sp-unpack nested.tar > /dev/null'
expect_err_has "archives nested more than 8 deep"
row "tars nested 100 deep" "stopped at depth 9"

expect_status 1 bounded 'sp-unpack ILSVRC2012_img_train.tar | sp-decode --strict > /dev/null'
expect_err_has "n01440764_1.png: rejected (too-large): 100000x100000 is 10000.0 megapixels, over the limit of 100.0"
row "a PNG claiming 100000x100000 (sp-decode --strict)" "refused from the header, no pixel memory allocated"
expect_status 1 bounded 'sp-unpack ILSVRC2012_img_train.tar | sp-decode > /dev/null'
expect_err_has "n01440764_2.JPEG: rejected (too-large): 65000x65000 is 4225.0 megapixels, over the limit of 100.0"
expect_err_has "2 records in, 0 out, 2 rejected (too-large 2)"
row "a JPEG claiming 65000x65000 (sp-decode, no --strict)" "both rejected and counted: 2 in = 0 out + 2 rejected; status 1 (warnings)" "JPEG"

expect_status 1 bounded 'sp-unpack train-images-idx3-ubyte | sp-decode > /dev/null'
expect_err_has "sp-decode: train-images-idx3-ubyte: IDX header says 4294967295 items of 784 bytes (3367254359296 bytes with header), file has 7856 bytes"
row "an IDX header claiming 2^32-1 images of 28x28" "refused from the header before allocation"

expect_status 1 bounded 'sp-unpack cifar-10-batches-bin/data_batch_1.bin | sp-decode > /dev/null'
expect_err_has "sp-decode: data_batch_1.bin: 10737418240 bytes is over 100000 CIFAR-10 records, the limit of a batch file"
row "a 10 GB sparse CIFAR batch given by name" "sp-unpack streams it; sp-decode refuses it from the record header, unread"
truncate -s 0 cifar-10-batches-bin/data_batch_1.bin
truncate -s 1G cifar-10-batches-bin/data_batch_1.bin
expect_status 1 bounded 'sp-unpack cifar-10-batches-bin/data_batch_1.bin | sp-decode > /dev/null'
expect_err_has "sp-decode: data_batch_1.bin: 1073741824 bytes is over 100000 CIFAR-10 records, the limit of a batch file"
row "a 1 GiB sparse CIFAR batch (under the 4 GiB payload limit)" "refused from its size before it is read, under a 1 GiB memory limit"

took=$(( $(date +%s) - start ))
[ "$took" -lt 60 ] || fail "the bombs took $took s"
echo "ok ($took s)"
