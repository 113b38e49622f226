#!/bin/sh
# make bench: every benchmark, each printing its table of ratios against its
# peer measured in the same run. Exits non-zero if a target was missed.
set -u
build=${1:-build}
cd "$(dirname "$0")/.."
status=0
for b in bench/bench_*.py; do
    echo "== $b"
    /usr/bin/python3 "$b" "$build" || status=1
done
exit $status
