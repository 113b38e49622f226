# A flipped byte in a record makes the next stage fail naming the record; a
# stream cut at any point is an error and commits nothing; a failed run
# leaves the previous shard set exactly as it was.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_idx.py" idx --train 40 --test 10 --gz
sp-unpack idx/*.gz | sp-decode -q > s.sprs
sp-shard -q -o GOOD s.sprs
cp -r GOOD GOOD.before

# flip one byte inside the pixels of train-images-idx3-ubyte#7
$PY - <<'X'
data = bytearray(open("s.sprs", "rb").read())
key = b"train-images-idx3-ubyte#7"
at = data.index(key) + len(key) + 8 + 100   # past the key and the header checksum
data[at] ^= 0x01
open("flip-payload.sprs", "wb").write(data)
data = bytearray(open("s.sprs", "rb").read())
data[data.index(key) + 3] ^= 0x01           # inside the key itself
open("flip-head.sprs", "wb").write(data)
X
expect_status 1 sp-shard -o OUT flip-payload.sprs
expect_err "sp-shard: flip-payload.sprs: record 18 (train-images-idx3-ubyte#7): payload checksum mismatch (corrupt record)"
[ ! -e OUT/manifest.json ] && [ -z "$(ls OUT)" ] || fail "a corrupt stream committed: $(ls -A OUT)"
expect_status 1 sp-decode flip-payload.sprs
expect_err_has "record 18 (train-images-idx3-ubyte#7): payload checksum mismatch"
expect_status 1 sp-cat flip-head.sprs
expect_err "sp-cat: flip-head.sprs: record 18: frame header checksum mismatch (corrupt stream)"

# the same through a pipe into an existing good set: it stays as it was
expect_stages "0/141 1" 'cat flip-payload.sprs | sp-shard -q -o GOOD'
diff -r GOOD GOOD.before || fail "a failed run changed the good set"

# cut at 40 points through the stream: always an error, never a commit
size=$(wc -c < s.sprs)
i=0
while [ $i -lt 40 ]; do
    n=$(( size * i / 40 + i ))
    head -c $n s.sprs > cut.sprs
    expect_status 1 sp-shard -q -o GOOD cut.sprs
    grep -qE 'truncated|empty input|bad magic' err || { cat err; fail "cut at $n: unexpected message"; }
    i=$((i + 1))
done
diff -r GOOD GOOD.before || fail "a cut stream changed the good set"
[ -z "$(ls -A GOOD | grep -v -e '^\.sp-lock$' -e '\.h5$' -e '^manifest.json$')" ] || fail "temporary files left: $(ls -A GOOD)"

# an upstream stage that dies mid-way: the stream has no trailer
expect_stages "0/141 0 1 1" 'sp-unpack idx/*.gz | head -c 20000 | sp-decode -q | sp-shard -q -o OUT2'
expect_err_has "truncated stream"
[ ! -e OUT2/manifest.json ] || fail "committed after an upstream failure"
sp-verify -q GOOD
echo ok
