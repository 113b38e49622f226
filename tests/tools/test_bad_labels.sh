# Damaged --classes and --labels files: a NUL byte, a directory, a file that
# cannot be read. Each stops sp-decode with status 1 and a message naming the
# file (and the line), where it used to end the parse silently with status 0.
# Also: palette and grayscale PNGs with a tRNS chunk decode as PIL does; a
# --labels CSV is read a line at a time (its size does not grow sp-decode's
# peak RSS).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$SP_ROOT/tests/tools/lib.sh"
. "$SP_ROOT/tests/tools/bad_lib.sh"
set -o pipefail
$PY - <<'X'
import io, tarfile, warnings
warnings.simplefilter("ignore")
from PIL import Image
def png(mode, trns):
    im = Image.new(mode, (7, 5))
    if mode == "P":
        im.putpalette([(i * 7) % 256 for i in range(768)])
    im.putdata([(x * 13) % 240 for x in range(35)])
    b = io.BytesIO(); im.save(b, "PNG", transparency=trns); return b.getvalue()
imgs = {"n01440764_1.png": png("P", bytes([0, 128, 255])), "n01443537_2.png": png("L", 26)}
with tarfile.open("ILSVRC2012_img_train.tar", "w") as t:
    for name, data in imgs.items():
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
with tarfile.open("ILSVRC2012_img_val.tar", "w") as t:
    for i in (1, 2):
        data = imgs["n01440764_1.png"]
        ti = tarfile.TarInfo("ILSVRC2012_val_%08d.png" % i); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
# the pixels PIL gives, for comparison
import xxhash, numpy as np, json
sums = {name: xxhash.xxh3_64_hexdigest(np.asarray(Image.open(io.BytesIO(d)).convert("RGB")).tobytes())
        for name, d in imgs.items()}
json.dump(sums, open("pil.json", "w"))
X
printf 'n01440764 tench\nn01443537 goldfish\nn01484850 great white shark\n' > classes.txt
printf 'n01440764\nn01443537\n' > val.txt

# the palette + tRNS and gray + tRNS images: decoded, pixels equal to PIL's convert("RGB")
sp-unpack ILSVRC2012_img_train.tar | sp-decode --strict --classes classes.txt | sp-cat > train.jsonl
$PY - <<'X'
import json
pil = json.load(open("pil.json"))
got = {json.loads(l)["key"].split("/")[-1]: json.loads(l)["checksum"] for l in open("train.jsonl")}
assert got == pil, (got, pil)
X

# a NUL byte in line 2 of --classes: an error naming file and line
printf 'n01440764 tench\nn01443537\0 goldfish\nn01484850 great white shark\n' > nul_classes.txt
expect_status 1 bash -c 'sp-unpack ILSVRC2012_img_train.tar | sp-decode --classes nul_classes.txt > /dev/null'
expect_err_has "sp-decode: nul_classes.txt:2: NUL byte in a text file"
row "a NUL byte in line 2 of a --classes file" "was: the class list silently cut at line 2, status 0"

# a NUL byte in --labels
printf 'n01440764\n\0n01443537\n' > nul_val.txt
expect_status 1 bash -c 'sp-unpack ILSVRC2012_img_val.tar | sp-decode --classes classes.txt --labels nul_val.txt > /dev/null'
expect_err_has "sp-decode: nul_val.txt:2: NUL byte in a text file"
row "a NUL byte in line 2 of a --labels file" "was: every later val image unlabeled, status 0"

# --labels DIR: the read error, not an empty file
mkdir labels_dir
expect_status 1 bash -c 'sp-unpack ILSVRC2012_img_val.tar | sp-decode --classes classes.txt --labels labels_dir > /dev/null'
expect_err_has "sp-decode: labels_dir: read error: Is a directory"
row '`--labels DIR`' "was: read as empty, every val image unlabeled, status 0"
expect_status 1 bash -c 'sp-unpack ILSVRC2012_img_val.tar | sp-decode --classes labels_dir > /dev/null'
expect_err_has "sp-decode: labels_dir: read error: Is a directory"
row '`--classes DIR`' ""
expect_status 1 bash -c 'sp-unpack ILSVRC2012_img_val.tar | sp-decode --classes classes.txt --labels missing.txt > /dev/null'
expect_err_has "sp-decode: missing.txt: No such file or directory"
row "a --labels file that does not exist" ""

# a validation image number past the limit (it used to size the table: 2^64-1 looped forever)
printf 'ImageId,PredictionString\nILSVRC2012_val_00000001,n01440764 1 2 3 4\nILSVRC2012_val_18446744073709551615,n01440764 1 2 3 4\n' > big.csv
expect_status 1 timeout 20 bash -c 'sp-unpack ILSVRC2012_img_val.tar | sp-decode --classes classes.txt --labels big.csv > /dev/null'
expect_err_has "sp-decode: big.csv:3: validation image number over the limit of 10000000"
row "a --labels CSV naming ILSVRC2012_val_18446744073709551615" "was: an endless loop sizing the table (found by fuzz_labels)"

# a --labels file of 100,000 bytes and no newline: refused at 64 KiB, not read
# whole (nor /dev/zero forever)
head -c 100000 /dev/zero | tr '\0' x > one_line.txt
expect_status 1 bash -c 'sp-unpack ILSVRC2012_img_val.tar | sp-decode --classes classes.txt --labels one_line.txt > /dev/null'
expect_err_has "sp-decode: one_line.txt:1: a line over 64 KiB"
row "a --labels file of 100,000 bytes with no newline" ""

# a LOC_val_solution.csv of 50,000 lines (4.8 MB) against one of 500: sp-decode's
# peak RSS within 1.5 MB (the file held whole took it 4 MB up); not under the
# sanitizers, whose RSS is theirs
if [ -z "${SP_SAN:-}" ]; then
    [ -x /usr/bin/time ] || fail "/usr/bin/time is missing (scripts/install-deps.sh installs time)"
    for n in 500 50000; do
        $PY - $n <<'X'
import sys
n = int(sys.argv[1])
with open(f"loc{n}.csv", "w") as f:
    f.write("ImageId,PredictionString\n")
    for i in range(1, n + 1):
        f.write(f"ILSVRC2012_val_{i:08d},n0144{3537 if i % 2 else 764:04d} 12 34 256 300 n01440764 1 2 3 4\n")
X
        expect_stages "0 0" "sp-unpack ILSVRC2012_img_val.tar | /usr/bin/time -f %M -o rss$n sp-decode --strict --classes classes.txt --labels loc$n.csv > /dev/null"
    done
    small=$(tail -1 rss500) big=$(tail -1 rss50000)
    echo "sp-decode's peak RSS: $small KB with 500 val labels, $big KB with 50,000"
    [ $((big - small)) -lt 1536 ] || fail "sp-decode's peak RSS grows with the --labels file: $small KB, $big KB"
fi

# the good files still label every val image
sp-unpack ILSVRC2012_img_val.tar | sp-decode --strict --classes classes.txt --labels val.txt | sp-cat > val.jsonl
[ "$(grep -c '"label":0' val.jsonl)" -eq 1 ] && [ "$(grep -c '"label":1' val.jsonl)" -eq 1 ] || fail "val labels: $(cat val.jsonl)"
echo ok
