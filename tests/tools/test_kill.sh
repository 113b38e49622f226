# sp-shard killed with SIGKILL at 10 random points of its run (reading,
# shuffling, writing, committing) and at three named phases (a shard just
# finished, a commit's shards in place before its manifest, a merge's shards
# in place before its manifest): the directory always holds a set that
# verifies (or, before the first commit, none), and rerunning the same
# command ends with the records of an uninterrupted run. Each kill is checked
# to have landed: the process died of SIGKILL (it had not finished), and the
# phase it hit is read from the directory (or, for the named phases, the
# writer announced it: SP_WRITER_PAUSE).
. "$SP_ROOT/tests/tools/lib.sh"
skip_under_sanitizers "the processes it kills never reach the sanitizers' checks; the writer's reruns over what a failed run left run under them in test_writer_faults"
$PY "$FIX/make_idx.py" idx --train 20000 --test 3000 --size 16 16
sp-unpack --dataset mnist idx/* | sp-decode -q > s.sprs
sp-shard -q -n 1000 -o REF s.sprs
sp-cat REF > ref.txt
for i in 0 1; do sp-shard -q -n 1000 --part $i/2 -o P$i s.sprs; done
sp-shard -q --merge -o MREF P0 P1
sp-cat MREF > mref.txt
$PY - <<'X'
import os, random, signal, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ["SP_ROOT"], "tests/tools"))
from crashlib import kill_at_mark
rng = random.Random(9)
SHARD = ["sp-shard", "-q", "-n", "1000", "-o", "OUT", "s.sprs"]

def phase_seen(d):
    """The phase a kill hit, read from what the writer had on disk."""
    names = os.listdir(d) if os.path.isdir(d) else []
    if ".sp-owned" in names:
        return "committing"
    if any(n.startswith(".sp-tmp-") and n.endswith(".h5") for n in names):
        return "writing a shard"
    if any(n.startswith(".sp-done-") for n in names):
        return "between shards"
    return "reading or shuffling"

def check_after(i, ref, cmd, what):
    if os.path.exists("OUT/manifest.json"):
        subprocess.run(["sp-verify", "-q", "OUT"], check=True)
    subprocess.run(cmd, check=True)
    subprocess.run(["sp-verify", "-q", "OUT"], check=True)
    got = subprocess.run(["sp-cat", "OUT"], check=True, stdout=subprocess.PIPE).stdout
    if got != open(ref, "rb").read():
        raise SystemExit(f"kill {i} ({what}): the rerun differs from an uninterrupted run")
    left = [f for f in os.listdir("OUT") if f.startswith((".sp-tmp", ".sp-done", ".sp-owned", ".sp-journal"))]
    assert not left, f"kill {i} ({what}): the rerun left {left}"

# how long a whole run takes here, to spread the kills over it
t = time.perf_counter(); subprocess.run(SHARD, check=True)
full = time.perf_counter() - t
phases = {}
for i in range(10):
    # the first kills hit a fresh directory, the rest one that holds a committed set
    for attempt in range(20):
        subprocess.run(["rm", "-rf", "OUT"], check=True)
        if i >= 5:
            subprocess.run(SHARD, check=True)
        p = subprocess.Popen(SHARD)
        delay = rng.uniform(0, full) * (0.8 ** attempt)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if p.returncode == -signal.SIGKILL:
            break
        assert p.returncode == 0, f"kill {i}: sp-shard failed by itself ({p.returncode})"
    else:
        raise SystemExit(f"kill {i}: the run always finished before the signal")
    phase = phase_seen("OUT")
    phases[phase] = phases.get(phase, 0) + 1
    state = "a set that verifies" if os.path.exists("OUT/manifest.json") else "nothing committed"
    if i >= 5 and state == "nothing committed":
        raise SystemExit(f"kill {i}: the committed set is gone")
    check_after(i, "ref.txt", SHARD, phase)
    print(f"kill {i} at {delay * 1000:.0f} ms of {full * 1000:.0f} (try {attempt + 1}), while {phase}: {state}; "
          "the rerun verifies and equals an uninterrupted run")
print("random kills by phase:", phases)

def named_kill(i, phase, cmd, rerun, ref, committed_before):
    subprocess.run(["rm", "-rf", "OUT"], check=True)
    if committed_before:
        subprocess.run(SHARD, check=True)
        before = open("OUT/manifest.json", "rb").read()
    mark = f"OUT/.sp-pause-{phase}"
    kill_at_mark(cmd, None, {"SP_WRITER_PAUSE": phase}, lambda: [mark] if os.path.exists(mark) else [], phase, "the writer")
    seen = phase_seen("OUT")
    if committed_before:
        assert open("OUT/manifest.json", "rb").read() == before, f"{phase}: the committed manifest changed"
    else:
        assert not os.path.exists("OUT/manifest.json"), f"{phase}: a manifest before the commit"
    check_after(i, ref, rerun, phase)
    print(f"kill {i} at the named phase {phase} (on disk: {seen}): the committed set intact; "
          "the rerun verifies and equals an uninterrupted run")
    return seen

assert named_kill(10, "shard-finished", SHARD, SHARD, "ref.txt", False) == "between shards"
assert named_kill(11, "shard-finished", SHARD, SHARD, "ref.txt", True) == "between shards"
assert named_kill(12, "commit-renamed", SHARD, SHARD, "ref.txt", True) == "committing"
MERGE = ["sp-shard", "-q", "--merge", "-o", "OUT", "P0", "P1"]
assert named_kill(13, "merge-copied", MERGE, MERGE, "mref.txt", True) == "committing"
assert named_kill(14, "merge-copied", MERGE, MERGE, "mref.txt", False) == "committing"
# after a killed merge and its rerun, a conversion into the same directory
# removes the merged shards: the writer knows them as its own
subprocess.run(SHARD, check=True)
import json
listed = {e["file"] for e in json.load(open("OUT/manifest.json"))["shards"]}
extra = sorted(set(f for f in os.listdir("OUT") if f.endswith(".h5")) - listed)
assert not extra, f"shards of the merge left: {extra}"
X
echo ok
