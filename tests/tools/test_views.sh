# The load-time views against torchvision 0.14 on PIL (tests/ref/check_views.py): the train view's crop boxes
# follow RandomResizedCrop.get_params' distribution and fallback; on real photographs (bench/benchlib.py
# make_set) and grayscale, CMYK, PNG, progressive, restart-marker, tiny, wide and large images the eval view
# equals Resize(256) + CenterCrop(224) and the full-scale train view equals crop + resize + flip at the same box,
# 0 difference; views are reproducible per (seed, epoch, record); damaged bytes are an error naming the reason.
. "$SP_ROOT/tests/tools/lib.sh"
dump="$SP_BIN/../tests/view_dump"
$PY "$SP_ROOT/tests/ref/check_views.py" "$dump" boxes . > boxes.txt || { cat boxes.txt; fail "boxes"; }
cat boxes.txt
$PY "$SP_ROOT/tests/ref/check_views.py" "$dump" pixels . > pixels.txt || { cat pixels.txt; fail "pixels"; }
cat pixels.txt

# damaged bytes: the reason first, then libjpeg's or libpng's words; other files still done
f=photos/n00000000_0.JPEG
head -c 5000 "$f" > cut.jpg
printf 'GIF89a not a JPEG' > not.jpg
$PY -c "import sys; b = bytearray(open('$f', 'rb').read()); i = b.index(b'\xff\xc0'); b[i + 4] = 12; sys.stdout.buffer.write(b)" > sof12.jpg
head -c 300 rgba.png > cut.png
mkdir -p views
expect_status 1 "$dump" eval 224 views cut.jpg not.jpg sof12.jpg cut.png "$f"
expect_err_has "view_dump: cut.jpg: truncated: JPEG: Premature end of JPEG file"
expect_err_has "view_dump: not.jpg: unsupported: a GIF image: only JPEG and PNG are read (convert it to PNG first)"
expect_err_has "view_dump: sof12.jpg: corrupt: JPEG: Unsupported JPEG data precision 12"
expect_err_has "view_dump: cut.png: truncated: PNG: "
[ "$(grep -c . err)" -eq 4 ] || { cat err; fail "eval: $(grep -c . err) errors for 4 damaged files"; }
[ -s views/4.rgb ] || fail "eval: the good file after the damaged ones was not done"
expect_status 1 "$dump" train 224 1 0 2 views cut.jpg not.jpg sof12.jpg cut.png "$f"
expect_err_has "view_dump: cut.jpg: truncated: JPEG: Premature end of JPEG file"
expect_err_has "view_dump: sof12.jpg: corrupt: JPEG: Unsupported JPEG data precision 12"
[ "$(grep -c . err)" -eq 4 ] || { cat err; fail "train: $(grep -c . err) errors for 4 damaged files"; }
echo "damaged: truncated, not-an-image and corrupt named for the eval and train views"
