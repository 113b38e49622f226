# Helpers for the tool tests; sourced by tests/tools/test_*.sh, which run in
# an empty temporary directory with the tools on PATH.
set -eu
PY=/usr/bin/python3
FIX="$SP_ROOT/tests/fixtures"
FMNIST=/usr/share/datasets/fashion-mnist

fail() { echo "FAILED: $*" >&2; exit 1; }

# expect_status WANT command...: runs command, stdout to out, stderr to err.
expect_status() {
    want=$1; shift
    set +e
    "$@" >out 2>err
    got=$?
    set -e
    [ "$got" -eq "$want" ] || { cat err >&2; fail "$* exited $got, expected $want"; }
}

# expect_err TEXT: the stderr of the last expect_status is exactly TEXT.
expect_err() {
    printf '%s\n' "$1" > want_err
    diff -u want_err err >&2 || fail "stderr differs"
}

# expect_err_has TEXT: stderr contains TEXT.
expect_err_has() {
    grep -qF -- "$1" err || { cat err >&2; fail "stderr lacks: $1"; }
}
