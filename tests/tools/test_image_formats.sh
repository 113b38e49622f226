# Image formats torchvision's ImageFolder loads and sp-decode does not (BMP,
# TIFF, WebP, GIF) are rejected as unsupported, naming the format (status 1),
# like an empty .jpg; a file that is no image (a README) is skipped with a
# note and counted, status 0.
. "$SP_ROOT/tests/tools/lib.sh"
$PY - <<'X'
import os
from PIL import Image
os.makedirs("tree/cat"); os.makedirs("tree/dog")
im = Image.new("RGB", (6, 5), (10, 200, 30))
im.save("tree/cat/a.png"); im.save("tree/dog/b.jpg")
for fmt, ext in (("BMP", "bmp"), ("TIFF", "tif"), ("WEBP", "webp"), ("GIF", "gif")):
    im.save(f"tree/cat/x.{ext}", fmt)
im.save("tree/dog/bmp-named.png.bmp", "BMP")
open("tree/dog/empty.jpg", "wb").close()
open("tree/README", "w").write("a tree of pets\n")
open("tree/dog/notes.txt", "w").write("dogs\n")
X
expect_stages "0 1" 'sp-unpack tree | sp-decode --labels-from dirs --rejects rej.jsonl > s.sprs'
for f in "cat/x.bmp BMP" "cat/x.tif TIFF" "cat/x.webp WebP" "cat/x.gif GIF" "dog/bmp-named.png.bmp BMP"; do
    set -- $f
    expect_err_has "sp-decode: $1: rejected (unsupported): a $2 image: only JPEG and PNG are read (convert it to PNG first)"
    grep -qF "{\"key\":\"$1\",\"reason\":\"unsupported\"," rej.jsonl || fail "$1 is not logged as unsupported"
done
grep -qF '{"key":"dog/empty.jpg","reason":"' rej.jsonl || fail "the empty .jpg is not rejected"
grep -qF '{"key":"dog/notes.txt","reason":"skipped","detail":"not a recognised dataset file or image"}' rej.jsonl ||
    fail "the text file is not skipped"
expect_err_has "sp-decode: 10 records in, 2 out, 6 rejected (not-an-image 1, unsupported 5), 2 skipped"
# files that are no image alone: skipped, status 0
rm tree/cat/x.* tree/dog/bmp-named.png.bmp tree/dog/empty.jpg
expect_stages "0 0" 'sp-unpack tree | sp-decode --labels-from dirs > /dev/null'
expect_err_has "sp-decode: 4 records in, 2 out, 2 skipped"

# --encoded: a valid PNG too wide for a JPEG is rejected by its key (status 1), the rest goes on
mkdir -p wide/a
$PY -c "
from PIL import Image
Image.new('RGB', (100000, 1), (1, 2, 3)).save('wide/a/long.png')
Image.new('RGB', (5, 4), (1, 2, 3)).save('wide/a/small.png')"
expect_stages "0 1 0" 'sp-unpack wide | sp-decode --encoded --labels-from dirs | sp-shard -o W'
expect_err_has "sp-decode: a/long.png: rejected (too-large): 100000x1: a side over JPEG's 65500 pixels, so it cannot be re-encoded (--encoded)"
sp-verify -q W
echo ok
