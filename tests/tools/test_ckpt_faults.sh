# Faults and crashes in sp-train's checkpoint save (-o FILE, through
# common/sp_atomic.c: mkstemp of the temporary, write, fsync, rename, fsync of
# the directory). A run resumes from the checkpoint of epoch 1 and saves epoch
# 2 over it; each fault -- ENOSPC and EIO on write, a failed fsync, a failed
# rename, a failed creation of the temporary (fiu-run from Debian's fiu-utils,
# tests/faults/nth_fault.c for the Nth call of each, and
# tests/faults/mkstemp_fault.c for mkstemp), short writes, a real full tmpfs --
# must end with status 3 and one message naming the path and the OS error,
# leave the epoch-1 checkpoint byte for byte (it still loads with sp-eval), no
# temporary, and a rerun equal to an uninterrupted run (its bytes less the
# recorded timings). Then SIGKILL at the named phases of a save (SP_CKPT_PAUSE
# in nn/checkpoint.c), each kill checked to have landed there.
# The rows go to $SP_FAULTS_TABLE (default ckpt_table.md here).
. "$SP_ROOT/tests/tools/lib.sh"
build_fault_shims
$PY "$FIX/make_idx.py" idx --train 600 --test 200 --size 16 16
expect_stages "0 0 0" "sp-unpack --dataset mnist idx/* | sp-decode -q | sp-shard -q -n 400 -o S"
TRAIN="sp-train -q S --model mlp -b 32 --lr 0.01 --optimizer sgd"
$TRAIN -e 1 -o prev.ckpt          # epoch 1: the committed state every case starts from
cp prev.ckpt ref.ckpt
$TRAIN -e 2 --resume ref.ckpt -o ref.ckpt   # epoch 2: what a clean run saves
cp prev.ckpt ref2.ckpt
$TRAIN -e 2 --resume ref2.ckpt -o ref2.ckpt
# a checkpoint records each epoch's seconds and images per second: two runs
# are compared by the rest (ckpt_state.py, written here), the training state
cat > ckpt_state.py <<'P'
import json, struct
def state(d):
    """A checkpoint's bytes less the timings: its header without seconds and
    images_per_second, and its weights and optimizer state."""
    (h,) = struct.unpack_from("<I", d, 12)
    head = json.loads(d[16:16 + h])
    for e in head.get("extra", {}).get("epochs", []):
        e.pop("seconds", None), e.pop("images_per_second", None)
    return json.dumps(head, sort_keys=True).encode() + d[16 + h:-8]
P
PYTHONPATH=. $PY -c "import sys, ckpt_state as c; sys.exit(c.state(open('ref.ckpt','rb').read()) != c.state(open('ref2.ckpt','rb').read()))" \
    || fail "two clean runs saved different training states"
cmp -s prev.ckpt ref.ckpt && fail "epoch 2 saved the bytes of epoch 1"
sp-eval S --checkpoint prev.ckpt > /dev/null
$PY - "${SP_FAULTS_TABLE:-ckpt_table.md}" "$TRAIN" <<'X'
import errno, os, re, shutil, subprocess, sys, time
sys.path[:0] = [os.getcwd(), os.path.join(os.environ["SP_ROOT"], "tests/tools")]
from ckpt_state import state
from crashlib import count_runs, fiu_works, kill_at_mark, nth_sweep, run, sweep_row, write_table

TABLE, TRAIN = sys.argv[1], sys.argv[2].split()
HERE = os.getcwd()
PREV = open("prev.ckpt", "rb").read()
REF = state(open("ref.ckpt", "rb").read())  # a clean run's training state
CMD = TRAIN + ["-e", "2", "--resume", "OUT/m.ckpt", "-o", "OUT/m.ckpt"]
n_case, rows, new_in_place = 0, [], 0

def setup():
    """A case directory whose OUT holds the epoch-1 checkpoint as m.ckpt."""
    global n_case
    n_case += 1
    d = os.path.join(HERE, f"case{n_case}")
    os.makedirs(os.path.join(d, "OUT"))
    os.symlink(os.path.join(HERE, "S"), os.path.join(d, "S"))
    shutil.copy("prev.ckpt", os.path.join(d, "OUT", "m.ckpt"))
    return d

def loads(d):
    return subprocess.run(["sp-eval", "S", "--checkpoint", "OUT/m.ckpt"], cwd=d,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

def check(d, rc, err, want):
    """Raises unless the run ended as a faulted run must; returns its one message line."""
    global new_in_place
    out = os.path.join(d, "OUT")
    now = open(os.path.join(out, "m.ckpt"), "rb").read()
    left = sorted(set(os.listdir(out)) - {"m.ckpt"})
    assert not left, f"left in the directory: {left}"
    if want is None:  # short writes: completed, the clean run's bytes
        assert rc == 0 and state(now) == REF, f"status {rc}, the state of a clean run: {state(now) == REF}: {err}"
        return "(none: the writes were completed)"
    assert rc == 3, f"status {rc}, not 3: {err!r}"
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("sp-train: ") and want in lines[0], f"message {err!r} lacks {want!r}"
    assert "OUT/m.ckpt" in lines[0], f"message {err!r} does not name the checkpoint"
    assert now == PREV or state(now) == REF, "the checkpoint is neither epoch 1's nor a clean epoch 2's"
    assert loads(d), "the checkpoint left does not load with sp-eval"
    if now != PREV:  # renamed into place, then the directory's fsync failed
        new_in_place += 1
        return lines[0]
    rc2, err2 = run(d, CMD)
    assert rc2 == 0, f"the rerun failed: {err2}"
    assert state(open(os.path.join(out, "m.ckpt"), "rb").read()) == REF, "the rerun differs from a clean run"
    assert os.listdir(out) == ["m.ckpt"], f"the rerun left {os.listdir(out)}"
    return lines[0]

def tidy(msg):
    return re.sub(r"\.tmp-[A-Za-z0-9]{6}", ".tmp-XXXXXX", msg)

def fiu_case(spec, want, what):
    d = setup()
    rc, err = run(d, ["fiu-run", "-x", "-f", "", "-c", spec] + CMD)
    try:
        got = check(d, rc, err, want)
    except AssertionError as e:
        raise SystemExit(f"{what} ({spec}): {e}")
    rows.append(("sp-train -o", what, f"fiu-run `{spec}`", "1", str(rc), f"`{tidy(got)}`"))
    shutil.rmtree(d)

def sweep(shim, call, err_no, what):
    n, statuses, messages = nth_sweep(HERE, setup, CMD, shim, call, err_no, check, tidy, 100, what)
    rows.append(sweep_row("sp-train -o", what, shim, call, n, statuses, messages))

t0 = time.time()
if fiu_works("sp-train"):
    fiu_case("enable name=posix/io/rw/write,failinfo=28", "No space left on device", "ENOSPC on write")
    fiu_case("enable name=posix/io/rw/write,failinfo=5", "Input/output error", "EIO on write")
    fiu_case("enable name=posix/io/sync/fsync,failinfo=5", "Input/output error", "failed fsync (the first)")
    fiu_case("enable name=posix/io/dir/rename,failinfo=5", "Input/output error", "failed rename")
    fiu_case("enable name=posix/io/rw/write/reduce", None, "short writes on every write")
sweep("nth_fault.so", "write", errno.ENOSPC, "ENOSPC from write")
sweep("nth_fault.so", "write", errno.EIO, "EIO from write")
sweep("nth_fault.so", "write", 0, "short writes (half the bytes)")
sweep("nth_fault.so", "fsync", errno.EIO, "EIO from fsync (the file's, then the directory's)")
sweep("nth_fault.so", "rename", errno.EIO, "EIO from rename")
sweep("mkstemp_fault.so", "mkstemp", errno.ENOSPC, "ENOSPC creating the temporary (the check before training, then the save)")
sweep("mkstemp_fault.so", "mkstemp", errno.EACCES, "EACCES creating the temporary")
assert new_in_place == 1, f"{new_in_place} runs had the new checkpoint in place on failure (the directory's fsync: 1)"

# SIGKILL at the named phases of a save
def kill_at(phase, fresh):
    d = setup()
    out = os.path.join(d, "OUT")
    if fresh:
        os.unlink(os.path.join(out, "m.ckpt"))
        cmd = [c for c in CMD if c not in ("--resume",)]
        cmd = cmd[:cmd.index("OUT/m.ckpt")] + cmd[cmd.index("OUT/m.ckpt") + 1:]
        cmd[cmd.index("-e") + 1] = "1"
        want_before, want_after = None, state(PREV)  # a fresh 1-epoch run saves epoch 1's state
    else:
        cmd, want_before, want_after = CMD, PREV, REF
    mark = os.path.join(out, f".sp-pause-{phase}")
    kill_at_mark(cmd, d, {"SP_CKPT_PAUSE": phase}, lambda: [mark] if os.path.exists(mark) else [], phase, "the save")
    names = os.listdir(out)
    temps = [n for n in names if re.fullmatch(r"\.m\.ckpt\.tmp-[A-Za-z0-9]{6}", n)]
    have = open(os.path.join(out, "m.ckpt"), "rb").read() if "m.ckpt" in names else None
    if phase == "ckpt-written":
        assert len(temps) == 1 and have == want_before, f"{phase}: temporaries {temps}; the previous checkpoint kept: {have == want_before}"
        if have is not None:
            assert loads(d), f"{phase}: the previous checkpoint does not load"
        rc, err = run(d, cmd)
        assert rc == 0, f"{phase}: the rerun failed: {err}"
        seen = "previous checkpoint intact" if have else "no checkpoint under the final name"
    else:
        assert not temps and have is not None and state(have) == want_after, f"{phase}: temporaries {temps}; the new checkpoint in place: {have == want_after}"
        seen = "the new checkpoint whole in place"
    assert state(open(os.path.join(out, "m.ckpt"), "rb").read()) == want_after, f"{phase}: the result differs from an uninterrupted run"
    assert os.listdir(out) == ["m.ckpt"], f"{phase}: left after the rerun: {os.listdir(out)}"
    assert loads(d), f"{phase}: the result does not load"
    rows.append(("sp-train -o" + (" (no earlier checkpoint)" if fresh else ""), f"SIGKILL at `{phase}`",
                 f"SP_CKPT_PAUSE={phase}, killed once the pause mark appeared; died of SIGKILL", "1", "-9 (SIGKILL)",
                 f"({seen}; {'rerun' if phase == 'ckpt-written' else 'result'} equals an uninterrupted run, "
                 "stale temporary removed, loads with sp-eval)"))
    shutil.rmtree(d)

kill_at("ckpt-written", False)
kill_at("ckpt-written", True)
kill_at("ckpt-committed", False)

write_table(TABLE, f"Checkpoint save (`sp-train -o`): {len(rows)} cases of injected faults and kills "
            f"({count_runs(rows)} runs) and a real full disk (the last row), from "
            "tests/tools/test_ckpt_faults.sh. After every faulted run the epoch-1 checkpoint was byte for byte "
            f"as before and loaded with sp-eval -- except the {new_in_place} run where the directory's fsync failed "
            "after the rename: there the whole new checkpoint was in place -- no temporary was left, and a "
            "rerun without faults saved the training state of an uninterrupted run (every byte but the "
            "epochs' seconds and images per second).", rows)
print(f"{count_runs(rows)} runs in {time.time() - t0:.0f} s")
X
# a real full disk: a tmpfs that holds the epoch-1 checkpoint but not a second
# copy beside it (the temporary), so the save of epoch 2 meets ENOSPC
size=$(( ($(stat -c %s prev.ckpt) * 3 / 2 + 4095) / 4096 * 4 ))
mount_tmpfs_or_skip disk "$size"
cp prev.ckpt disk/m.ckpt
expect_status 3 $TRAIN -e 2 --resume disk/m.ckpt -o disk/m.ckpt
expect_err_has "disk/m.ckpt"
expect_err_has "No space left on device"
[ "$(wc -l < err)" -eq 1 ] || { cat err >&2; fail "more than one line of error"; }
[ "$(ls -A disk)" = "m.ckpt" ] || fail "left on the full disk: $(ls -A disk)"
cmp prev.ckpt disk/m.ckpt || fail "the epoch-1 checkpoint changed"
sp-eval S --checkpoint disk/m.ckpt > /dev/null
echo "| sp-train -o | a real full disk (tmpfs of ${size} KiB: the checkpoint fits once, not twice) | mount -t tmpfs | 1 | 3 | \`$(cat err)\` |" \
    >> "${SP_FAULTS_TABLE:-ckpt_table.md}"
echo "real ENOSPC: $(cat err)"
echo ok
