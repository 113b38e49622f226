# sp-shard killed with SIGKILL at 10 points of its run (reading, shuffling,
# writing, committing): the directory always holds a set that verifies (or,
# before the first commit, none), and rerunning the same command ends with
# the records of an uninterrupted run.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_idx.py" idx --train 20000 --test 3000 --size 16 16
sp-unpack --dataset mnist idx/* | sp-decode -q > s.sprs
sp-shard -q -n 1000 -o REF s.sprs
sp-cat REF > ref.txt
$PY - <<'X'
import os, random, signal, subprocess, time
rng = random.Random(9)
# how long a whole run takes here, to spread the kills over it
t = time.perf_counter(); subprocess.run(["sp-shard", "-q", "-n", "1000", "-o", "OUT", "s.sprs"], check=True)
full = time.perf_counter() - t
subprocess.run(["rm", "-rf", "OUT"], check=True)
for i in range(10):
    # the first kills hit a fresh directory, the rest one that holds a committed set
    subprocess.run(["rm", "-rf", "OUT"], check=True)
    if i >= 5:
        subprocess.run(["sp-shard", "-q", "-n", "1000", "-o", "OUT", "s.sprs"], check=True)
    p = subprocess.Popen(["sp-shard", "-q", "-n", "1000", "-o", "OUT", "s.sprs"])
    delay = rng.uniform(0, full)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    state = "a set that verifies" if os.path.exists("OUT/manifest.json") else "nothing committed"
    temporaries = len([f for f in os.listdir("OUT") if f.startswith(".sp-tmp")]) if os.path.isdir("OUT") else 0
    if os.path.exists("OUT/manifest.json"):
        subprocess.run(["sp-verify", "-q", "OUT"], check=True)
    elif i >= 5:
        raise SystemExit(f"kill {i}: the committed set is gone")
    subprocess.run(["sp-shard", "-q", "-n", "1000", "-o", "OUT", "s.sprs"], check=True)
    subprocess.run(["sp-verify", "-q", "OUT"], check=True)
    got = subprocess.run(["sp-cat", "OUT"], check=True, stdout=subprocess.PIPE).stdout
    if got != open("ref.txt", "rb").read():
        raise SystemExit(f"kill {i} at {delay:.3f} s: the rerun differs from an uninterrupted run")
    assert not [f for f in os.listdir("OUT") if f.startswith(".sp-tmp")], "the rerun left temporaries"
    print(f"kill {i} at {delay * 1000:.0f} ms of {full * 1000:.0f}: {state}, {temporaries} temporaries "
          f"left; the rerun verifies and equals an uninterrupted run")
X
echo ok
