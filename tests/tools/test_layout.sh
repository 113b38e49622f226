# docs/layout.md's list against the tree: one line for each folder and
# each file git tracks, and no line for anything that is not there. A folder
# line is a path ending in '/'; the lines under it indented by two more spaces
# name its files; root files come first.
. "$SP_ROOT/tests/tools/lib.sh"
git -C "$SP_ROOT" rev-parse --git-dir > /dev/null 2>&1 || { echo "SKIP: not a git checkout: no list of tracked files" >&2; exit 77; }
git -C "$SP_ROOT" ls-files | sort > tracked
$PY - "$SP_ROOT/docs/layout.md" > listed <<'X'
import sys
text = "\n" + open(sys.argv[1]).read()
start = text.index("\n# Layout\n")
end = text.find("\n## ", start + 1)
end = len(text) if end < 0 else end
folder, seen = "", []
for line in text[start:end].splitlines():
    if not line.startswith("    ") or not line.strip():
        continue
    body = line[4:]
    name = body.split()[0]
    if body.startswith("  "):            # a file of the folder above
        if not folder:
            sys.exit(f"file line before any folder: {line!r}")
        seen.append(folder + name)
    elif name.endswith("/"):             # a folder
        folder = name
        seen.append(name)
    else:                                # a file at the root, before any folder
        if folder:
            sys.exit(f"root file after a folder: {line!r}")
        seen.append(name)
for s in sorted(seen):
    print(s)
X
# every folder that holds a tracked file, and the files themselves
{ sed -n 's|/[^/]*$|/|p' tracked; cat tracked; } | sort -u > want
grep -v '/$' listed | sort > files_listed
sort -u listed > listed_u
[ "$(wc -l < listed)" -eq "$(wc -l < listed_u)" ] || fail "docs/layout.md names a path twice: $(sort listed | uniq -d | tr '\n' ' ')"
diff -u want listed_u > layout.diff || { cat layout.diff >&2; fail "docs/layout.md does not match the tree (- missing from it, + not in the tree)"; }
echo ok
