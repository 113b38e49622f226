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

# spilled labels that read back short (the spill file cut to 8192 bytes while
# sp-decode waits for the images): the labels file and the record named
sp-unpack --dataset mnist lab1/* > lab1.sprs
rm -f go
$PY -c '
import os, sys, time
data = open("lab1.sprs", "rb").read()
sys.stdout.buffer.write(data[:250000])  # the labels and a few images
sys.stdout.flush()
while not os.path.exists("go"):
    time.sleep(0.02)
sys.stdout.buffer.write(data[250000:])
' | TMPDIR=$PWD/tmp sp-decode -q > /dev/null 2> err &
pid=$!
spill=
for _ in $(seq 500); do
    spill=$(find /proc/$pid/fd -lname "$PWD/tmp/.sp-decode-idx-*" 2>/dev/null | head -1 || true)
    [ -n "$spill" ] && [ "$(stat -L -c %s "$spill")" = 200000 ] && break
    spill=
    sleep 0.02
done
[ -n "$spill" ] || { touch go; wait $pid || true; fail "no labels spill file seen"; }
truncate -s 8192 "$spill"
touch go
status=0
wait $pid || status=$?
[ "$status" = 3 ] || { cat err >&2; fail "labels read back short: status $status, not 3"; }
expect_err "sp-decode: train-labels-idx1-ubyte: record 8192: cannot read back the spilled labels: file cut short"
echo "spilled labels read back short: an error naming the file and the record"
