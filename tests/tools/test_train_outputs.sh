# sp-train's defaults and outputs for people and scripts: --threads from the
# CPUs the process may use (taskset), OMP_NUM_THREADS, SLURM_CPUS_PER_TASK,
# shown by -v; --metrics one flushed JSON line per epoch with floats as meant
# (lr 0.001); --json likewise; --curves a PNG; the progress line's batch i/N,
# ETA and running loss; sp-eval's aligned confusion matrix and --heatmap PNG;
# outputs that cannot be written fail before the work.
. "$SP_ROOT/tests/tools/lib.sh"
command -v taskset > /dev/null || fail "taskset (util-linux) is not installed"
$PY - <<'X'
import os, random
from PIL import Image
random.seed(3)
base = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}
for cls, rgb in base.items():
    os.makedirs(f"pics/{cls}")
    for k in range(120):
        px = bytes(max(0, min(255, v + random.randint(-60, 60))) for _ in range(64) for v in rgb)
        Image.frombytes("RGB", (8, 8), px).save(f"pics/{cls}/{k:03d}.png")
X
sp-unpack pics | sp-decode -q --labels-from dirs --val-fraction 0.25 | sp-shard -q -o S

# threads: the CPUs sched_getaffinity allows, or the environment's
taskset -c 0 sp-train S -v -e 1 -b 32 -o one.ckpt 2> log1
grep -qx 'sp-train: 1 thread (sched_getaffinity)' log1 || { cat log1 >&2; fail "1 CPU: not 1 thread"; }
if [ "$(nproc --all)" -ge 2 ]; then
    taskset -c 0,1 sp-train S -v -e 1 -b 32 2> log2
    grep -qx 'sp-train: 2 threads (sched_getaffinity)' log2 || { cat log2 >&2; fail "2 CPUs: not 2 threads"; }
    SLURM_CPUS_PER_TASK=8 taskset -c 0,1 sp-train S -v -e 1 -b 32 2> log3
    grep -qx 'sp-train: 2 threads (SLURM_CPUS_PER_TASK)' log3 || { cat log3 >&2; fail "SLURM_CPUS_PER_TASK over the affinity"; }
else
    echo "one CPU here: the 2-CPU default is not checked" >&2
fi
OMP_NUM_THREADS=3 SLURM_CPUS_PER_TASK=1 taskset -c 0 sp-train S -v -e 1 -b 32 2> log4
grep -qx 'sp-train: 3 threads (OMP_NUM_THREADS)' log4 || { cat log4 >&2; fail "OMP_NUM_THREADS"; }
sp-train S -v -e 1 -b 32 -j 1 2> log5
grep -qx 'sp-train: 1 thread (--threads)' log5 || { cat log5 >&2; fail "--threads"; }

# --metrics, --json, --curves: 3 epochs, then 1 more resumed: 4 lines appended
sp-train -q S -e 3 -b 32 --lr 0.001 -o m.ckpt --metrics m.jsonl --json run.json --curves curves.png
sp-train -q S -e 4 -b 32 --resume m.ckpt -o m.ckpt --metrics m.jsonl --curves curves.png
[ "$(wc -l < m.jsonl)" = 4 ] || fail "not one line per epoch: $(cat m.jsonl)"
grep -q '"lr":0.001,' m.jsonl || fail "lr not written as 0.001: $(head -1 m.jsonl)"
grep -q '"lr": 0.001,' run.json || fail "--json: lr not written as 0.001"
grep -q '0000000' m.jsonl run.json && fail "a float with a tail of float32 noise: $(grep 0000000 m.jsonl run.json)"
$PY - <<'X'
import json
from PIL import Image
lines = [json.loads(l) for l in open("m.jsonl")]
assert [l["epoch"] for l in lines] == [1, 2, 3, 4], lines
for l in lines:
    assert l["epochs"] in (3, 4) and l["test_split"] == "val" and 0 <= l["test_accuracy"] <= 1 and l["loss"] > 0, l
    assert l["lr"] == 0.001 and l["seconds"] > 0 and l["images_per_second"] > 0, l
run = json.load(open("run.json"))
for a, b in zip(lines, run["per_epoch"]):   # the same figures, read back exactly
    assert a["loss"] == b["loss"] and a["train_accuracy"] == b["train_accuracy"] and a["test_accuracy"] == b["test_accuracy"], (a, b)
assert lines[-1]["test_accuracy"] > 0.9, lines[-1]  # three colours: easy
im = Image.open("curves.png").convert("RGB")
assert im.size == (800, 480), im.size
colours = {c for _, c in im.getcolors(1 << 20)}
for c in ((0xd6, 0x27, 0x28), (0x1f, 0x77, 0xb4), (0x2c, 0xa0, 0x2c)):   # loss, train, test
    assert c in colours, f"no curve in {c}"
print("metrics:", lines[-1])
X
# a metrics file that cannot be opened: said at once, with the reason
expect_status 3 sp-train S -e 1 --metrics /nonexistent/m.jsonl
expect_err "sp-train: /nonexistent/m.jsonl: cannot open: No such file or directory"

# the progress line in a log: batch i/N, ETA and the running loss
sp-train S -e 1 -b 8 --progress-interval 0.001 2> plog
grep -qE '^sp-train: batch [0-9]+/3[0-9], ETA [0-9]+ s, loss [0-9]+\.[0-9]{4}: [0-9]+ records, ' plog ||
    { cat plog >&2; fail "no batch i/N, ETA and loss in the progress lines"; }

# sp-eval: the confusion matrix in aligned columns, and as a heat map
sp-eval S -c m.ckpt --heatmap heat.png > report.txt
sed -n '/^confusion/,$p' report.txt > matrix.txt
cat matrix.txt
$PY - <<'X'
from PIL import Image
rows = open("matrix.txt").read().splitlines()[1:]
assert len(rows) == 4, rows
widths = {len(r) for r in rows}
assert len(widths) == 1, f"rows of different lengths: {rows}"
ends = [[i for i, ch in enumerate(r) if ch != " " and (i + 1 == len(r) or r[i + 1] == " ")] for r in rows]
assert all(e[-3:] == ends[0][-3:] for e in ends), f"columns not aligned: {rows}"
assert rows[1].split()[:2] == ["0", "blue"] and rows[0].split() == ["0", "1", "2"], rows
im = Image.open("heat.png").convert("RGB")
assert im.size[0] >= 3 * 56 and im.size[1] >= 3 * 56, im.size
print("heat map", im.size)
# the title is not cut: no dark pixel in the last 4 columns of the title rows
w, h = im.size
assert all(sum(im.getpixel((x, y))) > 600 for x in range(w - 4, w) for y in range(0, 40)), "the title runs off"
# a colour bar: a column whose top is the ramp's 1 (yellow) and bottom its 0 (dark purple)
ramp_top, ramp_bottom = (253, 231, 37), (68, 1, 84)
near = lambda p, q: all(abs(a - b) <= 2 for a, b in zip(p, q))
bars = [x for x in range(w) if any(near(im.getpixel((x, y)), ramp_top) for y in range(h))
        and any(near(im.getpixel((x, y)), ramp_bottom) for y in range(h))
        and sum(1 for y in range(h) if near(im.getpixel((x, y)), ramp_top)) <= 3]
assert bars and min(bars) > 3 * 56, f"no colour bar beside the matrix: {bars[:5]}"
X
expect_status 3 sp-eval S -c m.ckpt --heatmap /nonexistent/h.png
expect_err_has "/nonexistent/h.png"
expect_err_has "No such file or directory"

# every output that cannot be written fails before the work that fills it:
# with a checkpoint that is not there, the output is named (status 3), not
# the checkpoint (which the training or evaluation would read first)
for out in --json --logits --heatmap; do
    expect_status 3 sp-eval S -c missing.ckpt $out /nonexistent/x.out
    expect_err_has "/nonexistent/x.out"
done
for out in --json --curves --metrics -o; do
    expect_status 3 sp-train S -e 2 --resume missing.ckpt $out /nonexistent/x.out
    expect_err_has "/nonexistent/x.out"
done
echo ok
