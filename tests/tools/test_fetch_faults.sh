# run.sh: long
# Faults and crashes in sp-fetch's cache: a dataset's two files downloaded from
# nginx on 127.0.0.1, a URL with --md5, a file:// URL (a local file copied into
# the cache) and --from DIR (a user's copy, verified, with a stamp written into
# the cache). Each fault -- ENOSPC and EIO on write, a failed fsync, a failed
# rename, a failed mkstemp (tests/faults/nth_fault.c and mkstemp_fault.c fail
# the Nth call of each, walking every call site; fiu-run from Debian's
# fiu-utils fails the first), short writes, a real full tmpfs -- must end with
# status 3 and one message naming the path and the OS error, leave the cache's
# earlier entries byte for byte, no .part, .bad, .lock or temporary, nothing under a
# final name but whole verified files, and a rerun equal to a clean run. Then
# SIGKILL at the named phases of a download (SP_FETCH_PAUSE in
# pipeline/fetch.c), each kill checked to have landed there: the rerun resumes
# (nginx logs its Range request) and equals a clean run.
# The rows go to $SP_FAULTS_TABLE (default fetch_table.md here).
. "$SP_ROOT/tests/tools/lib.sh"
command -v nginx >/dev/null || fail "nginx is missing: scripts/install-deps.sh installs nginx-light"
build_fault_shims
mkdir data m
make_fetch_data 11
start_nginx "$PWD/data"
$PY - "http://127.0.0.1:$NGINX_PORT" <<'X'
import json, sys
files = json.load(open("files.json"))
for name in ("old", "web", "local"):
    json.dump({"name": name, "mirrors": [sys.argv[1]], "files": files}, open(f"m/{name}.json", "w"))
X
export SP_MANIFESTS=$PWD/m NGINX_PORT
# the earlier entries every case starts from: a dataset and a URL's file
sp-fetch -q -c PREV --path old > /dev/null
sp-fetch -q -c PREV --path --md5 "$(md5sum < data/b.txt.gz | cut -c1-32)" "http://127.0.0.1:$NGINX_PORT/b.txt.gz" > /dev/null
$PY - "${SP_FAULTS_TABLE:-fetch_table.md}" <<'X'
import errno, hashlib, os, re, shutil, sys, time
sys.path.insert(0, os.path.join(os.environ["SP_ROOT"], "tests/tools"))
from crashlib import count_runs, fiu_works, kill_at_mark, nth_sweep, run, sweep_row, write_table

TABLE = sys.argv[1]
HERE = os.getcwd()
BASE = f"http://127.0.0.1:{os.environ['NGINX_PORT']}"
MD5A = hashlib.md5(open("data/a.bin", "rb").read()).hexdigest()
SOURCE = {n: open(f"data/{n}", "rb").read() for n in ("a.bin", "b.txt.gz")}
Q = ["sp-fetch", "-q", "-c", "C", "--path", "--retries", "0"]
CMDS = {
    "dataset from nginx": Q + ["web"],
    "URL with --md5": Q + ["--md5", MD5A, f"{BASE}/a.bin"],
    "file:// URL (a local file copied in)": Q + ["--md5", MD5A, f"file://{HERE}/data/a.bin"],
    "--from DIR (the stamp in the cache)": ["sp-fetch", "-q", "-c", "C", "--from", f"{HERE}/data", "--path", "local"],
}
LEFTOVER = re.compile(r"\.part$|\.bad$|\.lock$|\.tmp-[A-Za-z0-9]{6}$|^\.sp-pause-")
n_case, rows = 0, []

def tree(root):
    """{relative path: bytes} of every file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out

PREV = tree("PREV")

def setup():
    global n_case
    n_case += 1
    d = os.path.join(HERE, f"case{n_case}")
    os.mkdir(d)
    shutil.copytree("PREV", os.path.join(d, "C"))
    return d

# each command's clean result
REF = {}
for what, cmd in CMDS.items():
    d = setup()
    rc, err = run(d, cmd)
    assert rc == 0 and not err, f"{what}: a clean run failed: {err}"
    REF[what] = tree(os.path.join(d, "C"))
    shutil.rmtree(d)

def check_cache(d, what):
    """The earlier entries intact, nothing left over, only whole files under final names."""
    now = tree(os.path.join(d, "C"))
    for p, b in PREV.items():
        assert now.get(p) == b, f"the earlier entry {p} changed or is gone"
    for p, b in now.items():
        if p in PREV:
            continue
        name = os.path.basename(p)
        assert not LEFTOVER.search(name), f"left in the cache: {p}"
        if name.endswith(".verified"):
            assert b == REF[what].get(p), f"{p} is not the stamp of a clean run"
        else:
            assert b in SOURCE.values(), f"{p}: a file under a final name that is not a whole source file"

def check(d, what, rc, err, want):
    cmd = CMDS[what]
    if want is None:  # short writes: completed
        assert rc == 0 and tree(os.path.join(d, "C")) == REF[what], f"status {rc}, not a clean run's cache: {err}"
        return "(none: the writes were completed)"
    assert rc == 3, f"status {rc}, not 3: {err!r}"
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("sp-fetch: ") and want in lines[0], f"message {err!r} lacks {want!r}"
    assert "C/" in lines[0], f"message {err!r} does not name the path in the cache"
    assert "/a.bin" in lines[0] or "/b.txt.gz" in lines[0], f"message {err!r} does not name the file"
    check_cache(d, what)
    rc2, err2 = run(d, cmd)
    assert rc2 == 0, f"the rerun failed: {err2}"
    assert tree(os.path.join(d, "C")) == REF[what], "the rerun's cache differs from a clean run's"
    return lines[0]

def tidy(msg):
    return re.sub(r"\.tmp-[A-Za-z0-9]{6}", ".tmp-XXXXXX", msg.replace(HERE + "/", "")).replace(BASE, "http://127.0.0.1:PORT")

def fiu_case(what, spec, want, label):
    d = setup()
    rc, err = run(d, ["fiu-run", "-x", "-f", "", "-c", spec] + CMDS[what])
    try:
        got = check(d, what, rc, err, want)
    except AssertionError as e:
        raise SystemExit(f"{what}, {label} ({spec}): {e}")
    rows.append((f"sp-fetch, {what}", label, f"fiu-run `{spec}`", "1", str(rc), f"`{tidy(got)}`"))
    shutil.rmtree(d)

def sweep(what, shim, call, err_no):
    n, statuses, messages = nth_sweep(HERE, setup, CMDS[what], shim, call, err_no,
                                      lambda d, rc, err, want: check(d, what, rc, err, want), tidy, 200, what)
    label = "short writes (half the bytes)" if err_no == 0 else f"{errno.errorcode[err_no]} from {call}"
    rows.append(sweep_row(f"sp-fetch, {what}", label, shim, call, n, statuses, messages))

t0 = time.time()
DS = "dataset from nginx"
if fiu_works("sp-fetch"):
    fiu_case(DS, "enable name=posix/io/rw/write,failinfo=28", "No space left on device", "ENOSPC on write")
    fiu_case(DS, "enable name=posix/io/rw/write,failinfo=5", "Input/output error", "EIO on write")
    fiu_case(DS, "enable name=posix/io/sync/fsync,failinfo=5", "Input/output error", "failed fsync (the first)")
    fiu_case(DS, "enable name=posix/io/dir/rename,failinfo=5", "Input/output error", "failed rename (the first)")
    fiu_case(DS, "enable name=posix/io/rw/write/reduce", None, "short writes on every write")
for what in CMDS:
    for call, e in (("write", errno.ENOSPC), ("write", errno.EIO), ("write", 0), ("fsync", errno.EIO),
                    ("rename", errno.EIO)):
        sweep(what, "nth_fault.so", call, e)
sweep("--from DIR (the stamp in the cache)", "mkstemp_fault.so", "mkstemp", errno.ENOSPC)

# SIGKILL during a download, at its named phases
def kill_at(what, phase, file):
    d = setup()
    cmd = CMDS[what]
    log0 = open("nginx/access.log").read().count("\n")
    mark = kill_at_mark(cmd, d, {"SP_FETCH_PAUSE": phase},
                        lambda: [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(d, "C"))
                                 for f in fs if f == f".sp-pause-{phase}"], f"{what}, {phase}", "the download")
    sub = os.path.dirname(mark)
    part = os.path.join(sub, file + ".part")
    have = os.path.getsize(part) if os.path.exists(part) else -1
    full = len(SOURCE[file])
    assert not os.path.exists(os.path.join(sub, file)), f"{phase}: {file} under its final name"
    if phase == "fetch-partial":
        assert 0 < have < full, f"{phase}: the .part holds {have} of {full} bytes"
    else:
        assert have == full, f"{phase}: the .part holds {have} of {full} bytes"
    now = tree(os.path.join(d, "C"))
    for k, b in PREV.items():
        assert now.get(k) == b, f"{phase}: the earlier entry {k} changed"
    rc, err = run(d, cmd)
    assert rc == 0, f"{what}, {phase}: the rerun failed: {err}"
    assert tree(os.path.join(d, "C")) == REF[what], f"{what}, {phase}: the rerun's cache differs from a clean run's"
    log = open("nginx/access.log").read().split("\n")[log0:]
    resumed = [l for l in log if f"/{file} " in l and f"range=bytes={have}-" in l]
    assert resumed, f"{what}, {phase}: the rerun did not resume at byte {have}: {log}"
    rows.append((f"sp-fetch, {what}", f"SIGKILL at `{phase}` ({file})",
                 f"SP_FETCH_PAUSE={phase}, killed once the pause mark appeared; died of SIGKILL", "1", "-9 (SIGKILL)",
                 f"(earlier entries intact, nothing under the final name, .part of {have} bytes; the rerun resumed "
                 f"at byte {have} (nginx: HTTP {resumed[0].split(' range=')[0].split(' ')[-1]} to range=bytes={have}-) "
                 "and its cache equals a clean run's)"))
    shutil.rmtree(d)

kill_at(DS, "fetch-partial", "a.bin")
kill_at(DS, "fetch-verified", "a.bin")
kill_at("URL with --md5", "fetch-partial", "a.bin")

write_table(TABLE, f"The sp-fetch cache: {len(rows)} cases of injected faults and kills "
            f"({count_runs(rows)} runs) and a real full disk (the last row), from "
            "tests/tools/test_fetch_faults.sh. After every faulted run the cache's earlier entries (a dataset "
            "and a URL's file) were byte for byte as before, no .part, .bad, .lock or temporary was left, nothing "
            "but a whole verified file was under a final name, and a rerun without "
            "faults gave a clean run's cache.", rows)
print(f"{count_runs(rows)} runs in {time.time() - t0:.0f} s")
X
# a real full disk: a cache on a 400 KiB tmpfs holds the earlier entries
# (about 300 kB), not a second 300 kB file
mount_tmpfs_or_skip disk 400
cp -a PREV disk/C
(cd PREV && find . -type f | sort | xargs sha256sum) > before.sum
expect_status 3 sp-fetch -q -c disk/C --path --retries 0 web
expect_err_has "No space left on device"
expect_err_has "disk/C/web/a.bin"
[ "$(wc -l < err)" -eq 1 ] || { cat err >&2; fail "more than one line of error"; }
find disk/C -name '*.part' -o -name '*.bad' -o -name '*.lock' -o -name '*.tmp-*' | grep . && fail "left on the full disk"
[ ! -e disk/C/web/a.bin ] || fail "a.bin under its final name on a full disk"
(cd disk/C && sha256sum -c --quiet ../../before.sum) || fail "the earlier entries changed"
echo "| sp-fetch, dataset from nginx | a real full disk (the cache on a 400 KiB tmpfs that holds the earlier entries) | mount -t tmpfs | 1 | 3 | \`$(sed "s/$NGINX_PORT/PORT/" err)\` |" \
    >> "${SP_FAULTS_TABLE:-fetch_table.md}"
echo "real ENOSPC: $(cat err)"
# with the space of the old entries freed, a rerun succeeds
rm -r disk/C/old
expect_status 0 sp-fetch -q -c disk/C --path --retries 0 web
cmp disk/C/web/a.bin data/a.bin
echo ok
