# Bad IDX input: each kind of broken file stops sp-decode with a message
# naming the file and the reason, and nothing is committed downstream.
. "$SP_ROOT/tests/tools/lib.sh"
. "$SP_ROOT/tests/tools/bad_lib.sh"

check() { # KIND expected-stderr-line
    rm -rf "$1" OUT
    $PY "$FIX/make_idx.py" "$1" --train 30 --test 5 --size 4 5 --break "$1"
    expect_stages "0/141 1 1" "sp-unpack --dataset mnist $1/* | sp-decode -q | sp-shard -q -o OUT"
    # sp-decode's message first, then sp-shard's about the cut stream
    head -1 err > got
    printf '%s\n' "$2" > want
    diff -u want got || fail "$1"
    grep -qE "^sp-shard: stdin: (truncated stream|empty input)" err || fail "$1: sp-shard did not refuse the stream"
    [ ! -e OUT/manifest.json ] || fail "$1: committed"
    row "IDX file: $1" "nothing committed downstream"
}
check bad-magic "sp-decode: train-images-idx3-ubyte: not an IDX file (bad magic)"
check long "sp-decode: train-images-idx3-ubyte: IDX header says 30 items of 20 bytes (616 bytes with header), file has 617 bytes"
check short "sp-decode: train-images-idx3-ubyte: IDX header says 30 items of 20 bytes (616 bytes with header), file has 615 bytes"
check count-mismatch "sp-decode: train-images-idx3-ubyte has 30 images but train-labels-idx1-ubyte has 29 labels"
check float "sp-decode: train-images-idx3-ubyte: IDX element type 0x0d is not supported (only 0x08, unsigned byte)"
check label-range "sp-decode: train-labels-idx1-ubyte: record 3: label 10 out of range: the dataset has 10 classes"

# a file that is not IDX by content or by name is skipped and reported
rm -rf other && $PY "$FIX/make_idx.py" other --train 3 --test 2 --size 2 2
echo hello > other/README
expect_stages "0 0" "sp-unpack other/* | sp-decode > /dev/null"
cat > want <<'X'
sp-decode: README: not a recognised dataset file or image
sp-decode: 5 records in, 5 out, 1 skipped
X
diff -u want err

# unpaired: a labels file alone
rm -rf one && $PY "$FIX/make_idx.py" one --train 3 --test 2 --size 2 2
expect_stages "0/141 1" "sp-unpack one/train-labels-idx1-ubyte | sp-decode"
cat > want <<'X'
sp-decode: train-labels-idx1-ubyte: IDX labels file has no matching images file in the input
sp-decode: 1 record in, 0 out, 0 skipped
X
diff -u want err

# label-range is fine for a dataset that is not a known 10-class one: named 0..N-1
rm -rf lr && $PY "$FIX/make_idx.py" lr --train 30 --test 5 --size 4 5 --break label-range
sp-unpack lr/* | sp-decode -q | sp-shard -q -o OUT
$PY -c "import json; print(json.load(open('OUT/manifest.json'))['classes'])" > got
echo "['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10']" > want
diff -u want got
# ... but with a known dataset's ten classes it is an error
expect_stages "0/141 1" "sp-unpack --dataset mnist lr/* | sp-decode -q"
expect_err_has "label 10 out of range: the dataset has 10 classes"

# labels [0, 200, 255] for a 10-class dataset: the first bad one is named, 200, not the largest
mkdir -p three
$PY - <<'X'
import struct
open("three/train-images-idx3-ubyte", "wb").write(struct.pack(">BBBBIII", 0, 0, 8, 3, 3, 2, 2) + bytes(12))
open("three/train-labels-idx1-ubyte", "wb").write(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([0, 200, 255]))
X
expect_status 1 sh -c "sp-unpack --dataset mnist three/* | sp-decode -q > /dev/null"
expect_err "sp-decode: train-labels-idx1-ubyte: record 1: label 200 out of range: the dataset has 10 classes"
row "IDX labels [0, 200, 255] for MNIST's 10 classes" "names the first bad label (record 1: 200), not the largest"

# the same with labels spilled (over 64 KiB of them): 70000 records, the first bad
# label at record 68000 (10), the largest (255) after it
mkdir -p many
$PY - <<'X'
import struct
n = 70000
open("many/train-images-idx3-ubyte", "wb").write(struct.pack(">BBBBIII", 0, 0, 8, 3, n, 1, 1) + bytes(n))
labels = bytearray(n)
labels[68000], labels[69999] = 10, 255
open("many/train-labels-idx1-ubyte", "wb").write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + labels)
X
expect_status 1 sh -c "sp-unpack --dataset mnist many/* | sp-decode -q > /dev/null"
expect_err "sp-decode: train-labels-idx1-ubyte: record 68000: label 10 out of range: the dataset has 10 classes"
row "IDX labels spilled (70000), first bad at record 68000" "names the first bad label (record 68000: 10), not the largest"
echo ok
