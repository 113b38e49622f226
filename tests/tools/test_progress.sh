# Progress in a pipeline: on a terminal (under script) one line tells the
# truth, the first stage's, with percent and ETA, and it reaches 100%; the
# stages reading a pipe stay quiet there. With stderr to a file and
# --progress-interval 1 every stage writes plain lines.
. "$SP_ROOT/tests/tools/lib.sh"
command -v script > /dev/null || fail "script (bsdutils) is not installed"
$PY - <<'X'
import io, os, tarfile
from PIL import Image
with tarfile.open("big.tar", "w") as t:   # 1000 PNGs of noise, 50 MB: over a second through three stages
    for i in range(1000):
        b = io.BytesIO()
        Image.frombytes("RGB", (128, 128), os.urandom(128 * 128 * 3)).save(b, "PNG", compress_level=0)
        i_ = tarfile.TarInfo(f"train/c{i % 3}/{i:05d}.png"); i_.size = len(b.getvalue())
        t.addfile(i_, io.BytesIO(b.getvalue()))
X

# ---- on a terminal ----
# (sp-shard starts a second late, so the pipe holds the first stage back past
# its first redraw however fast the machine)
SHELL=/bin/bash script -qec 'sp-unpack big.tar | sp-decode --labels-from dirs | { sleep 1; sp-shard -o T; }; echo "status ${PIPESTATUS[*]}"' /dev/null > tty.raw
tr '\r' '\n' < tty.raw | sed 's/\x1b\[K//g' > tty.txt
grep -qx 'status 0 0 0' tty.txt || { cat tty.txt >&2; fail "the pipeline failed"; }
grep -E '^sp-unpack: [0-9]+ files, [0-9.]+ MB, [0-9.]+ MB/s, [0-9]+ s, [0-9]+%' tty.txt > lines || { cat tty.txt >&2; fail "no progress line from the first stage"; }
grep -qE '^sp-unpack: 1000 files, [0-9.]+ MB, [0-9.]+ MB/s, [0-9]+ s, 100%$' lines || { cat tty.txt >&2; fail "the line did not reach 100%"; }
# (sp-shard's shuffle phase, after every stage before it ended, has a line of its own)
grep -E '^sp-(decode|shard): [0-9].*MB/s' tty.txt && fail "a stage reading a pipe drew a line on the terminal"
# the line is redrawn in place: carriage returns, no newline between its states
[ "$(grep -v 'sp-shard: shuffle: ' tty.raw | grep -c 'MB/s')" = 1 ] || fail "the progress states are on more than one line"
sp-verify -q T

# ---- stderr to files: plain lines from every stage ----
$PY -c '
import sys, time
data = open("big.tar", "rb").read()
step = len(data) // 40
for i in range(0, len(data), step):     # fed over 2 s
    sys.stdout.buffer.write(data[i:i + step]); sys.stdout.flush(); time.sleep(0.05)
' | sp-unpack --progress-interval 1 2> e1 | sp-decode --progress-interval 1 --labels-from dirs 2> e2 |
    sp-shard --progress-interval 1 -o P 2> e3
for e in e1:sp-unpack:files e2:sp-decode:images e3:sp-shard:records; do
    f=${e%%:*} rest=${e#*:}; tool=${rest%%:*} unit=${rest#*:}
    grep -qE "^$tool: [0-9]+ $unit, [0-9.]+ MB, [0-9.]+ MB/s, [0-9]+ s" "$f" || { cat "$f" >&2; fail "$tool wrote no plain progress line"; }
    grep -q $'\r' "$f" && fail "$tool drew a terminal line into a file"
done
# sp-shard's shuffle phase (compressing the shuffled records, after its input
# ended) writes its own lines, with its share done, and a last one at 100%
sp-unpack big.tar | sp-decode --labels-from dirs | sp-shard --progress-interval 0.001 -o Q 2> e5
grep -qE '^sp-shard: shuffle: [0-9]+ records, [0-9.]+ MB, [0-9.]+ MB/s, [0-9]+ s, [0-9]+%' e5 \
    || { cat e5 >&2; fail "no progress line from sp-shard's shuffle phase"; }
grep -qE '^sp-shard: shuffle: 1000 records, [0-9.]+ MB, [0-9.]+ MB/s, [0-9]+ s, 100%$' e5 \
    || { cat e5 >&2; fail "sp-shard's shuffle phase did not end at 100%"; }
# the last line of a stage that wrote one says where it ended
grep -qE '^sp-decode: 1000 images, ' e2 || { cat e2 >&2; fail "sp-decode's last line"; }
# the default interval (30 s) writes nothing in a short run; 0 never
sp-unpack big.tar 2> e4 > /dev/null
[ ! -s e4 ] || fail "a progress line in a short run: $(cat e4)"
expect_status 2 sp-unpack --progress-interval -1 big.tar
expect_err "sp-unpack: --progress-interval: not a number of at least 0: -1
Try 'sp-unpack --help' for more information."
echo ok
