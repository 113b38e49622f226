# The documentation against the tree: in README.md and docs/*.md, every
# relative link names a file that exists (and a heading of it, for a link
# with an anchor), every `make TARGET` in code names a target of the
# Makefile, and every option given to a tool in code (`sp-xxx --option`, in
# an indented block or an inline code span) is one its --help lists. The
# check is run first on three broken copies of a small doc, each of which it
# must refuse, then on the real docs.
. "$SP_ROOT/tests/tools/lib.sh"
cat > check_docs.py <<'X'
"""check_docs.py ROOT MAKEFILE DOC...: prints one line per problem, exits 1 if any."""
import os, re, subprocess, sys

root, makefile, docs = sys.argv[1], sys.argv[2], sys.argv[3:]
problems = []
checked = {"links": 0, "make targets": 0, "tool options": 0}
TOOLS = ["sp-fetch", "sp-unpack", "sp-decode", "sp-resize", "sp-normalize", "sp-shard",
         "sp-cat", "sp-verify", "sp-inspect", "sp-train", "sp-eval"]


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, blanks to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    seen, out = {}, set()
    for line in open(path, encoding="utf-8"):
        m = re.match(r"#{1,6} (.*)", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def code_parts(text):
    """The code of a doc: indented lines (4 spaces or more; a line ending in '\\'
    joined to the next) and inline code spans of the other lines."""
    parts, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("    "):
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1] + " " + lines[i].strip()
            parts.append(line.strip())
        else:
            parts += re.findall(r"`([^`]+)`", line)
        i += 1
    return parts


targets = set()
for line in open(makefile, encoding="utf-8"):
    m = re.match(r"([A-Za-z][\w.-]*(?: +[A-Za-z][\w.-]*)*) *:(?!=)", line)
    if m:
        targets.update(m.group(1).split())

helps = {}


def options_of(tool):
    if tool not in helps:
        out = subprocess.run([tool, "--help"], capture_output=True, text=True).stdout
        opts = set()
        for line in out.split("\n"):
            m = re.match(r"\s+(-[A-Za-z0-9])?(?:, )?(--[A-Za-z0-9][\w-]*)?", line)
            if m:
                opts.update(o for o in m.groups() if o)
        if not opts:
            problems.append(f"{tool} --help lists no option")
        helps[tool] = opts
    return helps[tool]


for doc in docs:
    text = open(doc, encoding="utf-8").read()
    here = os.path.dirname(doc)
    prose = re.sub(r"`[^`]*`", "", text)
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue                      # http:, https:, mailto:
        checked["links"] += 1
        path, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(here, path)) if path else doc
        if not os.path.exists(dest):
            problems.append(f"{doc}: link to a missing file: {target}")
        elif anchor and (not dest.endswith(".md") or anchor not in anchors(dest)):
            problems.append(f"{doc}: link to a missing heading: {target}")
    for code in code_parts(text):
        for m in re.finditer(r"(?:^|[;&|(]|\bsudo|\$)[ \t]*make((?: +(?:-\S+|[A-Z_]+=\S*))*) +([a-z][\w.-]*)", code, re.M):
            checked["make targets"] += 1
            if m.group(2) not in targets:
                problems.append(f"{doc}: `make {m.group(2)}`: no such target in the Makefile")
        for segment in re.split(r"\||;|&&|->|\s#|\s:\s", code):   # commands apart
            m = re.search(r"(?:^|[\s/(])(sp-[a-z]+)(?=\s|$)", segment)
            if not m or m.group(1) not in TOOLS:
                continue
            tool, rest = m.group(1), segment[m.end():]
            for opt in re.findall(r"(?<![\w\-'\"=./*])(--?[A-Za-z][\w-]*)", rest):
                checked["tool options"] += 1
                if opt not in options_of(tool):
                    problems.append(f"{doc}: `{tool} {opt}`: not an option of {tool} --help")
for p in problems:
    print(p)
print(", ".join(f"{n} {what}" for what, n in checked.items()) + " checked", file=sys.stderr)
sys.exit(1 if problems else 0)
X

# the check must refuse each kind of fault, alone: a good doc passes, each
# broken copy fails naming the fault
mkdir -p good/docs
printf '%s\n' '# Top' '' 'See [the part](docs/part.md#a-part) and [top](#top).' '' \
    '    make test' '    sp-decode --resize 64 | sp-shard -o out' > good/README.md
printf '%s\n' '# A part' '' 'Back to [the top](../README.md).' > good/docs/part.md
$PY check_docs.py good "$SP_ROOT/Makefile" good/README.md good/docs/part.md > out || { cat out; fail "the good doc"; }
bad() { # NAME SED-EXPRESSION EXPECTED-PROBLEM
    rm -rf "$1"; cp -r good "$1"
    sed -i "$2" "$1/README.md"
    if $PY check_docs.py "$1" "$SP_ROOT/Makefile" "$1/README.md" "$1/docs/part.md" > out; then
        fail "$1: the check passed"
    fi
    grep -qF -- "$3" out || { cat out; fail "$1: no line '$3'"; }
}
bad missing-file 's|docs/part.md#|docs/parts.md#|' "link to a missing file: docs/parts.md#a-part"
bad missing-anchor 's|#a-part|#b-part|' "link to a missing heading: docs/part.md#b-part"
bad missing-target 's|make test|make tests|' "\`make tests\`: no such target"
bad missing-option 's|--resize 64|--resize-size 64|' "\`sp-decode --resize-size\`: not an option of sp-decode"

# the real docs
cd "$SP_ROOT"
$PY "$OLDPWD/check_docs.py" . Makefile README.md docs/*.md > "$OLDPWD/problems" || { cat "$OLDPWD/problems" >&2; fail "the docs"; }
cd "$OLDPWD"
echo ok
