# Shared steps of the fault and crash tests (test_ckpt_faults.sh, test_fetch_faults.sh, test_kill.sh), imported by their embedded Python.
# Each test's Python adds $SP_ROOT/tests/tools to sys.path. Every check here
# raises AssertionError (or SystemExit with the case named) on failure.
import os
import signal
import subprocess
import time


def run(d, cmd, env=None):
    """Runs cmd (a list) in directory d, with env (a dict, or None) added to the
    environment; stdout is discarded. Returns (exit status, stderr as text)."""
    p = subprocess.run(cmd, cwd=d, env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stderr.decode(errors="replace")


def fiu_works(tool):
    """True when fiu-run can start `tool --version` (libfiu's preload does not
    start under a sanitizer); prints a note when it cannot."""
    ok = subprocess.run(["fiu-run", "-x", "-f", "", "-c", "enable name=none/at/all", tool, "--version"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    if not ok:
        print("NOTE: fiu-run cannot start these binaries (libfiu's preload under a sanitizer): its cases are left out")
    return ok


def nth_sweep(here, setup, cmd, shim, call, err_no, check, tidy, limit, what):
    """Fails call 1, 2, ... of `call` (through the LD_PRELOAD shim `shim` in
    `here`, tests/faults/*.c, with errno err_no; 0: a short write) in turn, one
    run of cmd per call, in a fresh directory from setup(), until a run no
    longer reaches the call (that run must succeed) or `limit` runs. Each
    faulted run must pass check(d, rc, err, want), which returns the run's
    message line; want is os.strerror(err_no), None for short writes.
    Returns (calls faulted, set of statuses, distinct tidy(message)s in order)."""
    import shutil
    want = None if err_no == 0 else os.strerror(err_no)
    statuses, messages, n = set(), [], 0
    while n < limit:
        n += 1
        d = setup()
        mark = os.path.join(d, "fired")
        rc, err = run(d, cmd, {"LD_PRELOAD": os.path.join(here, shim), "SP_FAULT_CALL": call,
                               "SP_FAULT_NTH": str(n), "SP_FAULT_ERRNO": str(err_no), "SP_FAULT_MARK": mark})
        if not os.path.exists(mark):
            assert rc == 0, f"{what}: a run without fault failed: {err}"
            shutil.rmtree(d)
            n -= 1
            break
        try:
            got = check(d, rc, err, want)
        except AssertionError as e:
            raise SystemExit(f"{what}, call {n} of {call} failed with errno {err_no}: {e}")
        statuses.add(rc)
        if tidy(got) not in messages:
            messages.append(tidy(got))
        shutil.rmtree(d)
    assert n > 0, f"{what}: {cmd[0]} never calls {call}"
    return n, statuses, messages


def sweep_row(tool, label, shim, call, n, statuses, messages):
    """The fault table's row for an nth_sweep's result."""
    return (tool, label, f"{shim}: call 1..{n} of {call}(), one per run", str(n),
            "/".join(map(str, sorted(statuses))), "<br>".join(f"`{m}`" for m in messages))


def kill_at_mark(cmd, cwd, env, find_marks, what, who):
    """Starts cmd in cwd with env (a dict) added to the environment (it names a
    SP_*_PAUSE=phase, so the tool writes a .sp-pause-PHASE mark and waits),
    polls find_marks() (a list of mark paths) for 60 s at most, SIGKILLs the
    process once a mark is there and checks that it died of SIGKILL. Removes
    the mark and returns its path. `what` and `who` ("the save") name the case
    in the messages."""
    p = subprocess.Popen(cmd, cwd=cwd, env=dict(os.environ, **env), stdout=subprocess.DEVNULL)
    marks = []
    for _ in range(1200):
        marks = find_marks()
        if marks or p.poll() is not None:
            break
        time.sleep(0.05)
    assert marks, f"{what}: {who} never reached the phase (status {p.poll()})"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, f"{what}: not killed by the signal ({p.returncode})"
    os.unlink(marks[0])
    return marks[0]


def write_table(path, intro, rows):
    """Writes the markdown fault table: intro (a paragraph), then one row per
    tuple (tool, injected, how, runs, status, message); prints the table."""
    with open(path, "w") as f:
        f.write(intro + "\n\n")
        f.write("| tool | injected | how | runs | status | message |\n|---|---|---|---|---|---|\n")
        for r in rows:
            f.write("| " + " | ".join(r) + " |\n")
    print(open(path).read())


def count_runs(rows):
    """The number of runs a table's rows stand for (their `runs` column)."""
    return sum(int(r[3]) for r in rows)
