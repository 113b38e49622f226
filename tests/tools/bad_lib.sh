# Helpers for the bad-input tests (test_bad_*.sh, test_bombs.sh): sourced
# after lib.sh. Each case can add a row to the bad-input table.
#   SP_BAD_TABLE  a file to append markdown rows to (unset: no rows)

# row CASE NOTE [TEXT]: one table row for the last expect_status: the case,
# its exit status, the first line of its stderr (the first holding TEXT, when
# given), and NOTE ("nothing lost" checks).
row() {
    [ -n "${SP_BAD_TABLE:-}" ] || return 0
    msg=$(grep -m 1 -F -- "${3:-}" err | sed -e "s#$PWD/##g" -e 's/|/\\|/g')
    printf '| %s | %s | `%s` | %s |\n' "$1" "$got" "$msg" "$2" >> "$SP_BAD_TABLE"
}

# edit_manifest SRC DST PYTHON: copies the set SRC to DST and runs PYTHON with
# the manifest as `m` (a dict), then writes it back.
edit_manifest() {
    rm -rf "$2" && cp -r "$1" "$2"
    $PY - "$2/manifest.json" "$3" <<'X'
import json, sys
path, code = sys.argv[1], sys.argv[2]
m = json.load(open(path))
exec(code)
json.dump(m, open(path, "w"), indent=2, sort_keys=True)
X
}

# make_small_set [SP-DECODE OPTION...]: a small MNIST-like set S of 340 records
# (300 train, 40 test, 100 to a shard) from gzipped IDX files in idx/, decoded
# with the options given; S verifies.
make_small_set() {
    $PY "$FIX/make_idx.py" idx --train 300 --test 40 --gz
    sp-unpack idx/*.gz | sp-decode -q "$@" | sp-shard -q -n 100 -o S
    sp-verify -q S
}

# refused_by_readers DIR TEXT: sp-verify, sp-cat and sp-inspect each exit 1 on
# the set DIR with TEXT in their stderr (out and err: sp-inspect's).
refused_by_readers() {
    for tool in sp-verify sp-cat sp-inspect; do
        expect_status 1 $tool "$1"
        expect_err_has "$2"
    done
}
