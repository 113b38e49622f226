# docs/layout.md against the tree: a "### `FOLDER/`" paragraph for each folder
# that holds a file git tracks, none for a folder that is not there, and
# every file a paragraph names in code (`name.ext`, or a path from the root)
# present in that folder. Patterns (`sp_hash.*`, `bench_*.py`, `sp-NAME.c`) and
# bare stems are not checked.
. "$SP_ROOT/tests/tools/lib.sh"
git -C "$SP_ROOT" rev-parse --git-dir > /dev/null 2>&1 || { echo "SKIP: not a git checkout: no list of tracked files" >&2; exit 77; }
git -C "$SP_ROOT" ls-files | sort > tracked
check_layout() {   # check_layout LAYOUT_MD: prints each problem, status 1 if any
    $PY - "$1" tracked <<'X'
import re, sys
text = open(sys.argv[1]).read()
tracked = set(open(sys.argv[2]).read().split())
folders = {t.rsplit("/", 1)[0] + "/" for t in tracked if "/" in t}
problems = []
parts = re.split(r"^### `([^`]+)`\s*$", text, flags=re.M)
named = parts[1::2]
for f in sorted(folders - set(named)):
    problems.append(f"no paragraph for the folder {f}")
for f in named:
    if f not in folders:
        problems.append(f"a paragraph for {f}, which holds no tracked file")
if len(named) != len(set(named)):
    problems.append("a folder has two paragraphs")
for folder, body in zip(named, parts[2::2]):
    for name in re.findall(r"`([A-Za-z0-9_./-]+\.[a-z]{1,5})`", body):
        if "NAME" in name:
            continue                     # a placeholder: sp-NAME.c
        if "/" in name:
            ok = name in tracked or any(t.startswith(name.rstrip("/") + "/") for t in tracked)
        else:
            ok = folder + name in tracked or name.endswith(".md") and not name.startswith(".")
        if not ok:
            problems.append(f"{folder}: names {name}, which is not there")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
X
}
# the check refuses a missing paragraph, a stale one and a stale file name
sed 's/^### `tests\/faults\/`$/### `tests\/fault-shims\/`/' "$SP_ROOT/docs/layout.md" > renamed.md
check_layout renamed.md > out && fail "a paragraph for a missing folder passed"
grep -q 'no paragraph for the folder tests/faults/' out || fail "not named: $(cat out)"
grep -q 'a paragraph for tests/fault-shims/' out || fail "not named: $(cat out)"
sed 's/`nth_fault.c`/`nth_faults.c`/' "$SP_ROOT/docs/layout.md" > stale.md
check_layout stale.md > out && fail "a stale file name passed"
grep -q 'tests/faults/: names nth_faults.c' out || fail "not named: $(cat out)"
check_layout "$SP_ROOT/docs/layout.md" > out || { cat out >&2; fail "docs/layout.md does not match the tree"; }
echo ok
