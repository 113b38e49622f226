# sp-decode streams IDX files: its peak memory does not grow with the images
# file's size, whether the labels come before the images (the images are read
# as they are written) or after them (the images wait in a spill file in
# $TMPDIR), and both orders give the same records. sp-unpack puts labels
# files first. Nor does it grow with the labels file's size: labels over
# 64 KiB wait in a spill file too.
. "$SP_ROOT/tests/tools/lib.sh"
[ -x /usr/bin/time ] || fail "/usr/bin/time (Debian package time) is not installed"

# a small pair in both orders: the same records
$PY "$FIX/make_idx.py" small --train 300 --test 7 --size 5 4
for order in "images labels" "labels images"; do
    set -- $order
    sp-unpack --dataset mnist small/train-$1-* small/train-$2-* small/t10k-$1-* small/t10k-$2-* \
        | sp-decode -q | sp-cat > "records.$1"
done
[ "$(wc -l < records.images)" = 307 ] || fail "small pair: $(wc -l < records.images) records, not 307"
cmp records.images records.labels || fail "labels first and images first give different records"
echo "IDX pair, labels before or after images: the same 307 records"

# sp-unpack sends labels FILEs first (here given after their images): nothing
# is spilled (a spill into a TMPDIR that does not exist would fail)
sp-unpack --dataset mnist small/* | TMPDIR=$PWD/none sp-decode -q | sp-cat > records.glob \
    || fail "sp-unpack DIR/*: the images were spilled"
cmp <(sort records.images) <(sort records.glob) || fail "sp-unpack DIR/*: other records"
echo "sp-unpack DIR/*: labels first, no spill"

# a 200 MB images file (256000 28x28 images): sp-decode's peak RSS stays under
# 100 MB (holding the file, as a whole-file decode does, takes 200 MB or more)
$PY "$FIX/make_idx.py" big --train 256000 --test 1
mkdir -p tmp
for order in "images labels" "labels images"; do
    set -- $order
    sp-unpack --dataset mnist big/train-$1-* big/train-$2-* big/t10k-$1-* big/t10k-$2-* \
        | TMPDIR=$PWD/tmp /usr/bin/time -f %M -o rss sp-decode -q > /dev/null \
        || fail "$1 first: sp-decode failed"
    kb=$(tail -1 rss)
    [ "$kb" -lt 102400 ] || fail "$1 first: sp-decode's peak RSS is $kb kB for a 200 MB IDX file"
    [ -z "$(ls -A tmp)" ] || fail "$1 first: a spill file is left in TMPDIR"
    echo "200 MB IDX, $1 first: sp-decode peak RSS: $((kb / 1024)) MB"
done

# labels files 10x apart (200000 and 2000000 records of 4x4 images, so the
# labels' 0.2 and 2 MB dominate): sp-decode's peak RSS grows by less than
# 1 MB between them, in either order (holding the labels adds 1.8 MB or more)
$PY "$FIX/make_idx.py" lab1 --train 200000 --test 1 --size 4 4
$PY "$FIX/make_idx.py" lab10 --train 2000000 --test 1 --size 4 4
for order in "images labels" "labels images"; do
    set -- $order
    for n in lab1 lab10; do
        sp-unpack --dataset mnist $n/train-$1-* $n/train-$2-* $n/t10k-$1-* $n/t10k-$2-* \
            | TMPDIR=$PWD/tmp /usr/bin/time -f %M -o rss.$n sp-decode -q > /dev/null \
            || fail "$n, $1 first: sp-decode failed"
        [ -z "$(ls -A tmp)" ] || fail "$n, $1 first: a spill file is left in TMPDIR"
    done
    a=$(tail -1 rss.lab1) b=$(tail -1 rss.lab10)
    [ $((b - a)) -lt 1024 ] || fail "$1 first: sp-decode's peak RSS grows from $a kB to $b kB with the labels file"
    echo "labels 0.2 MB and 2 MB, $1 first: sp-decode peak RSS: $a kB and $b kB"
done

# labels that cannot be spilled: the labels file and the spill path named
expect_status 3 sh -c "sp-unpack --dataset mnist lab1/* | TMPDIR=$PWD/none sp-decode -q > /dev/null"
grep -qE "^sp-decode: train-labels-idx1-ubyte: cannot spill the labels: $PWD/none/\.sp-decode-idx-\w+: No such file or directory\$" err \
    || { cat err >&2; fail "no spill of the labels: message"; }
echo "labels that cannot be spilled: an error naming the file and the spill path"
