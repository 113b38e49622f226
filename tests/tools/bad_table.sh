#!/bin/sh
# Rebuilds tests/tools/bad_input_table.md (docs/reliability.md's table)
# from real runs of the bad-input tests: each case's exit status and the first
# line of its stderr as the run gave them.  usage: tests/tools/bad_table.sh
set -eu
cd "$(dirname "$0")/../.."
root=$(pwd)
build=${SP_BUILD:-build}
export SP_BIN="$root/$build/bin" SP_ROOT="$root" HDF5_PLUGIN_PATH="$root/$build/hdf5-plugin" PATH="$root/$build/bin:$PATH"
rows=$(mktemp)
export SP_BAD_TABLE="$rows"
for t in test_bad_shard test_bad_manifest test_bad_labels test_idx_bad test_bombs test_empty_set; do
    work=$(mktemp -d)
    (cd "$work" && bash "$root/tests/tools/$t.sh" > "$work.log" 2>&1) || { cat "$work.log"; echo "$t failed" >&2; exit 1; }
    rm -rf "$work" "$work.log"
done
{
    echo "<!-- made by tests/tools/bad_table.sh from the runs of the tests it names; do not edit -->"
    echo "| Case | Status | Message (first line of stderr) | Nothing lost / note |"
    echo "|---|---|---|---|"
    cat "$rows"
} > tests/tools/bad_input_table.md
rm -f "$rows"
echo "$(($(wc -l < tests/tools/bad_input_table.md) - 3)) cases in tests/tools/bad_input_table.md"
