#!/bin/bash
# Runs every test: the tool tests (tests/tools/*.sh) and the C unit tests,
# each in its own temporary directory, SP_JOBS at a time. Prints one line per
# test as it ends and a closing "N passed, N failed, N skipped" line (CI reads
# that shape); exits non-zero if any failed or if SP_TESTS matched no test. A
# test that exits 77 is a skip: counted and printed with its reason, the last
# line it wrote to stderr. A test that runs past SP_TEST_TIMEOUT is stopped
# (its process group: the servers it started too) and fails, so a hang shows
# as a failure with its log, never as a suite that does not end.
# The tool tests run under bash (tests/tools/lib.sh sets pipefail). A tool test
# whose file has the line "# run.sh: alone" runs with no other test beside it:
# one that changes the machine (test_deb installs packages) or whose figures
# depend on having the cores to itself. One whose file has "# run.sh: long"
# runs in a lane of its own beside the short ones (see the loop below).
#   SP_BUILD         build directory (default: build)
#   SP_SAN           sanitizer flags the build used, for programs the tests compile
#   SP_TESTS         run only the tests whose name contains this string
#   SP_JOBS          tests at a time (default: the number of cores)
#   SP_TEST_TIMEOUT  seconds one test may run (default 600)
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
build=${SP_BUILD:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
export SP_BIN="$build/bin" SP_ROOT="$root" HDF5_PLUGIN_PATH="$build/hdf5-plugin"
export PATH="$SP_BIN:$PATH"
# the tests that run make (test_install, test_deb) start as a user's would, not
# as part of the make that runs this script (its -j and jobserver)
unset MAKEFLAGS MFLAGS MAKELEVEL
filter=${SP_TESTS:-}
jobs_max=${SP_JOBS:-$(nproc)}
limit=${SP_TEST_TIMEOUT:-600}
case "$jobs_max$limit" in *[!0-9]*) echo "run.sh: SP_JOBS and SP_TEST_TIMEOUT are whole numbers" >&2; exit 2 ;; esac
[ "$jobs_max" -ge 1 ] || jobs_max=1
pass=0 fail=0 skip=0 failed=""
logdir=$(mktemp -d "${TMPDIR:-/tmp}/sp-tests.XXXXXX")
declare -A name_of start_of work_of   # by the pid of the running test
running=0

# finish PID STATUS: prints the line of the test that ended, counts it
finish() {
    local pid=$1 status=$2 name=${name_of[$1]} work=${work_of[$1]} secs
    secs=$(( $(date +%s) - ${start_of[$1]} ))
    unset "name_of[$pid]" "start_of[$pid]" "work_of[$pid]"
    running=$((running - 1))
    cat "$work.err" >> "$work.log"
    if [ "$status" -eq 0 ]; then
        pass=$((pass + 1)); echo "ok    $name (${secs}s)"
        rm -rf "$work" "$work.log" "$work.err"
    elif [ "$status" -eq 77 ]; then
        skip=$((skip + 1)); echo "skip  $name: $(grep . "$work.err" | tail -1)"
        rm -rf "$work" "$work.log" "$work.err"
    else
        fail=$((fail + 1)); failed="$failed $name"
        if { [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; } && [ "$secs" -ge "$limit" ]; then
            echo "FAIL  $name (stopped after ${limit}s)"
        else
            echo "FAIL  $name (status $status)"
        fi
        # a failure's log shows stdout, then stderr, where the FAILED lines are
        sed 's/^/      | /' "$work.log" | tail -40
    fi
}

# wait_one: waits for a running test to end, and reports it
long_pids=" "
wait_one() {
    local pid status
    wait -n -p pid; status=$?
    case "$long_pids" in *" $pid "*) long_pids=${long_pids/ $pid / }; long_running=$((long_running - 1)) ;; esac
    finish "$pid" "$status"
}

# The tests to run, in two queues of tool:NAME and unit:NAME entries: the
# long ones (their file has the line "# run.sh: long") and the rest.
long_q=() short_q=()
for t in tests/tools/test_*.sh; do
    name=$(basename "$t" .sh)
    case "$name" in *"$filter"*) ;; *) continue ;; esac
    if grep -qx '# run.sh: long' "$t"; then long_q+=("tool:$name"); else short_q+=("tool:$name"); fi
done
for t in "$build"/tests/test_*; do
    name=$(basename "$t")
    case "$name" in *"$filter"*) short_q+=("unit:$name") ;; esac
done

# start ENTRY: starts the test in the background
start() {
    local name=${1#*:} work
    work=$(mktemp -d "$logdir/$name.XXXXXX")
    case "$1" in
    tool:*) set -- bash "$root/tests/tools/$name.sh" ;;
    *) set -- "$build/tests/$name" ;;
    esac
    # timeout(1) signals the test's whole process group, then kills it 10 s later
    (cd "$work" && exec timeout -k 10 "$limit" "$@") >"$work.log" 2>"$work.err" &
    name_of[$!]=$name start_of[$!]=$(date +%s) work_of[$!]=$work
    running=$((running + 1))
}
is_alone() { case "$1" in tool:*) grep -qx '# run.sh: alone' "$root/tests/tools/${1#tool:}.sh" ;; *) return 1 ;; esac; }

# One long test at a time beside the short ones, so that two tests that each
# want every core do not share them while short tests wait; a second long test
# only once the short ones are all started. An "alone" test waits for the
# others to end and runs by itself.
long_running=0
while [ ${#long_q[@]} -gt 0 ] || [ ${#short_q[@]} -gt 0 ]; do
    if [ ${#long_q[@]} -gt 0 ] && { [ "$long_running" = 0 ] || [ ${#short_q[@]} -eq 0 ]; }; then
        entry=${long_q[0]} from=long
        long_q=("${long_q[@]:1}")
    else
        entry=${short_q[0]} from=short
        short_q=("${short_q[@]:1}")
    fi
    if is_alone "$entry"; then
        while [ "$running" -gt 0 ]; do wait_one; done
    else
        while [ "$running" -ge "$jobs_max" ]; do wait_one; done
    fi
    start "$entry"
    [ $from = short ] || { long_pids+="$! "; long_running=$((long_running + 1)); }
    ! is_alone "$entry" || wait_one
done
while [ "$running" -gt 0 ]; do wait_one; done

echo "$pass passed, $fail failed, $skip skipped"
if [ $((pass + fail + skip)) -eq 0 ]; then
    echo "no test name contains \"$filter\"" >&2
    rm -rf "$logdir"; exit 1
fi
[ "$fail" -eq 0 ] && rm -rf "$logdir"
[ "$fail" -eq 0 ] || { echo "failed:$failed (logs in $logdir)"; exit 1; }
