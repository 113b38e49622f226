# Resume: a rerun after an interrupted sp-shard takes over the shards that
# run finished (the very files: same inodes) when their records and options
# are equal, writes the others anew, and ends byte-identical to an
# uninterrupted run, even when the input changed part-way through a shard or
# a finished file was damaged.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_idx.py" idx --train 20000 --test 3000 --size 16 16
sp-unpack --dataset mnist idx/* | sp-decode -q > s.sprs
# the same but for one pixel of test record 1500: the test split keeps its
# order, so with 1000 records a shard, test shard 1 differs from record 500 on
$PY - <<'X'
data = bytearray(open("idx/t10k-images-idx3-ubyte", "rb").read())
data[16 + 1500 * 256 + 5] ^= 0xff
open("t10k-changed", "wb").write(data)
X
mkdir idx2 && cp idx/train-* idx/t10k-labels-idx1-ubyte idx2/ && mv t10k-changed idx2/t10k-images-idx3-ubyte
sp-unpack --dataset mnist idx2/* | sp-decode -q > s2.sprs

$PY - <<'X'
import os, signal, subprocess, time

def shard(workdir, *args, stdin=None, check=True):
    """sp-shard in workdir (created), where the stream files are linked, so the
    recipe an uninterrupted run records is the same as the resumed run's."""
    os.makedirs(workdir, exist_ok=True)
    for f in ("s.sprs", "s2.sprs"):
        if not os.path.exists(f"{workdir}/{f}"):
            os.link(f, f"{workdir}/{f}")
    p = subprocess.run(["sp-shard", *args], cwd=workdir, input=stdin, capture_output=True)
    if check and p.returncode:
        raise SystemExit(f"sp-shard {' '.join(args)} in {workdir}: exit {p.returncode}: {p.stderr.decode()}")
    return p

def journal(d):
    try:
        return open(f"{d}/.sp-journal").read().splitlines()[1:]
    except FileNotFoundError:
        return []

def pending_inodes(d):
    """The finished files' inodes, each held by a second link in d.held so that
    no file created later can get the same inode number."""
    os.makedirs(f"{d}.held")
    inodes = {}
    for f in os.listdir(d):
        if f.startswith(".sp-done-"):
            os.link(f"{d}/{f}", f"{d}.held/{f}")
            inodes[f[len(".sp-done-"):-len(".h5")]] = os.stat(f"{d}/{f}").st_ino
    return inodes

def final_inodes(d):
    # train-00003-1a2b3c4d.h5 -> train-00003
    return {f.rsplit("-", 1)[0]: os.stat(f"{d}/{f}").st_ino for f in os.listdir(d) if f.endswith(".h5")}

def taken_over(p):
    err = p.stderr.decode()
    return int(err.split("; ")[1].split()[0]) if "taken over" in err else 0

def same_set(a, b, what):
    ma, mb = open(f"{a}/manifest.json", "rb").read(), open(f"{b}/manifest.json", "rb").read()
    if ma != mb:  # the manifest holds every shard's sha256
        raise SystemExit(f"{what}: {a}/manifest.json differs from the uninterrupted run's {b}/manifest.json")
    left = sorted(f for f in os.listdir(a) if f.startswith(".") and f != ".sp-lock")
    if left:
        raise SystemExit(f"{what}: files left behind: {left}")
    subprocess.run(["sp-verify", "-q", a], check=True)

opts = ["--no-shuffle", "-n", "1000", "-o", "OUT"]
stream = open("s.sprs", "rb").read()

# 1. the input ends one byte short: an error, after 19 train and 2 test shards
#    were finished (the last of each split is finished only at the commit)
p = shard("A", *opts, stdin=stream[:-1], check=False)
assert p.returncode == 1 and b"truncated" in p.stderr, p.stderr
assert not os.path.exists("A/OUT/manifest.json"), "a cut stream committed"
assert len(journal("A/OUT")) == 21, journal("A/OUT")
before = pending_inodes("A/OUT")
# damage one finished file, then rerun on the changed input
path = "A/OUT/.sp-done-train-00003.h5"
data = bytearray(open(path, "rb").read()); data[len(data) // 2] ^= 1; open(path, "wb").write(data)
p = shard("A", *opts, "s2.sprs")
after = final_inodes("A/OUT")
kept = sorted(k for k in before if after.get(k) == before[k])
want = sorted(k for k in before if k not in ("train-00003", "test-00001"))
assert kept == want, f"taken over {kept}, expected {want}"
assert taken_over(p) == 19, p.stderr
shard("REF2", *opts, "s2.sprs")
same_set("A/OUT", "REF2/OUT", "rerun on changed input")
print("cut stream: 21 shards finished; the rerun on input changed in test shard 1, with train shard 3 "
      "damaged, took over the other 19 files and equals an uninterrupted run")

# 2. other options (zstd level): nothing is taken over
shard("B", *opts, stdin=stream[:-1], check=False)
assert len(journal("B/OUT")) == 21
p = shard("B", *opts, "-l", "3", "s.sprs")
assert taken_over(p) == 0, p.stderr
shard("REF3", *opts, "-l", "3", "s.sprs")
same_set("B/OUT", "REF3/OUT", "rerun with another level")
print("another zstd level: 0 shards taken over, equals an uninterrupted run")

# 3. the default (shuffled) command killed once 5 shards are finished
args = ["-n", "1000", "-o", "OUT", "s.sprs"]
shard("REF", *args)
os.makedirs("C", exist_ok=True)
os.link("s.sprs", "C/s.sprs")
proc = subprocess.Popen(["sp-shard", "-q", *args], cwd="C")
deadline = time.time() + 60
while len(journal("C/OUT")) < 5:
    assert proc.poll() is None, "sp-shard ended before it was killed"
    assert time.time() < deadline, "no shard finished in 60 s"
    time.sleep(0.0005)
proc.send_signal(signal.SIGKILL)
proc.wait()
done = len(journal("C/OUT"))
assert not os.path.exists("C/OUT/manifest.json"), "committed before the kill"
p = shard("C", *args)
assert taken_over(p) == done, f"{done} shards finished before the kill, {taken_over(p)} taken over: {p.stderr}"
same_set("C/OUT", "REF/OUT", "rerun after SIGKILL")
print(f"SIGKILL after {done} shuffled shards: the rerun took over {done} and equals an uninterrupted run")

# 4. with -v the tool shows why a finished file was not taken over (the
#    library hands the note to the tool's callback; it never prints)
shard("D", *opts, stdin=stream[:-1], check=False)
path = "D/OUT/.sp-done-train-00003.h5"
data = bytearray(open(path, "rb").read()); data[len(data) // 2] ^= 1; open(path, "wb").write(data)
p = shard("D", "-v", *opts, "s.sprs")
notes = [l for l in p.stderr.decode().splitlines() if "not reused" in l]
assert len(notes) == 1 and notes[0].startswith("sp-shard: OUT/.sp-done-train-00003.h5: not reused ("), p.stderr
p = shard("E", *opts, stdin=stream[:-1], check=False)
p = shard("E", *opts, "s.sprs")
assert b"not reused" not in p.stderr, p.stderr
print("with -v:", notes[0])
X
echo ok
