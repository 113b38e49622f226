#!/bin/sh
# Runs every test: the C unit tests, then the tool tests (tests/tools/*.sh),
# each in its own temporary directory. Prints one line per test and a closing
# "N passed, N failed, N skipped" line (CI reads that shape); exits non-zero if
# any failed or if SP_TESTS matched no test. A test that exits 77 is a skip:
# counted and printed with its reason, the last line it wrote to stderr.
# The tool tests run under bash (tests/tools/lib.sh sets pipefail).
#   SP_BUILD   build directory (default: build)
#   SP_SAN     sanitizer flags the build used, for programs the tests compile
#   SP_TESTS   run only the tests whose name contains this string
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
build=${SP_BUILD:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
export SP_BIN="$build/bin" SP_ROOT="$root" HDF5_PLUGIN_PATH="$build/hdf5-plugin"
export PATH="$SP_BIN:$PATH"
filter=${SP_TESTS:-}
pass=0 fail=0 skip=0 failed=""
logdir=$(mktemp -d "${TMPDIR:-/tmp}/sp-tests.XXXXXX")

run() { # name command...
    name=$1; shift
    case "$name" in *"$filter"*) ;; *) return ;; esac
    work=$(mktemp -d "$logdir/$name.XXXXXX")
    start=$(date +%s)
    # stdout and stderr apart (a skip's reason is stderr's last line); a
    # failure's log shows stdout, then stderr, where the FAILED lines are
    (cd "$work" && "$@") >"$work.log" 2>"$work.err"
    status=$?
    cat "$work.err" >> "$work.log"
    if [ "$status" -eq 0 ]; then
        pass=$((pass + 1)); echo "ok    $name ($(( $(date +%s) - start ))s)"
        rm -rf "$work" "$work.log" "$work.err"
    elif [ "$status" -eq 77 ]; then
        skip=$((skip + 1)); echo "skip  $name: $(grep . "$work.err" | tail -1)"
        rm -rf "$work" "$work.log" "$work.err"
    else
        fail=$((fail + 1)); failed="$failed $name"
        echo "FAIL  $name (status $status)"; sed 's/^/      | /' "$work.log" | tail -40
    fi
}

for t in "$build"/tests/test_*; do
    run "$(basename "$t")" "$t"
done
for t in tests/tools/test_*.sh; do
    run "$(basename "$t" .sh)" bash "$root/$t"
done

echo "$pass passed, $fail failed, $skip skipped"
if [ $((pass + fail + skip)) -eq 0 ]; then
    echo "no test name contains \"$filter\"" >&2
    rm -rf "$logdir"; exit 1
fi
[ "$fail" -eq 0 ] && rm -rf "$logdir"
[ "$fail" -eq 0 ] || { echo "failed:$failed (logs in $logdir)"; exit 1; }
