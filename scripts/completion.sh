#!/bin/sh
# Writes the bash completion of the shardpipe tools to stdout: each tool's
# options as its --help lists them (short and long), and for sp-fetch the
# dataset names; any other word completes as a file name (bash's default).
# usage: completion.sh [-d "DATASET..."] TOOL_BINARY...
# Fails (status 1) if a tool's --help fails or lists no option.
set -eu
datasets=""
if [ "${1:-}" = "-d" ]; then datasets=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: completion.sh [-d \"DATASET...\"] TOOL_BINARY..." >&2; exit 2; }

cat <<'X'
# bash completion for the shardpipe tools (sp-*), generated from their --help
# by scripts/completion.sh. Installed as completions/shardpipe, with one link
# per tool name for bash-completion's on-demand loading.
X
names=""
for bin in "$@"; do
    name=$(basename "$bin")
    help=$("$bin" --help) || { echo "completion.sh: $name --help failed" >&2; exit 1; }
    # option lines: "  -c, --cache DIR   ..." or "      --offline   ..."
    opts=$(printf '%s\n' "$help" | sed -n 's/^  *\(-[A-Za-z0-9], \)\{0,1\}\(--[A-Za-z0-9][A-Za-z0-9-]*\).*/\1\2/p' \
        | tr -d ',' | tr '\n' ' ' | sed 's/ *$//')
    [ -n "$opts" ] || { echo "completion.sh: $name --help lists no option" >&2; exit 1; }
    var=$(printf '%s' "$name" | tr -c 'A-Za-z0-9\n' '_')
    printf "_shardpipe_opts_%s='%s'\n" "$var" "$opts"
    # the values of options that take one of a list (SP_HELP_CHOICES: "--NAME VALUE..." lines)
    SP_HELP_CHOICES=1 "$bin" --help | while read -r opt values; do
        ovar=$(printf '%s' "$opt" | tr -c 'A-Za-z0-9\n' '_')
        printf "_shardpipe_vals_%s_%s='%s'\n" "$var" "$ovar" "$values"
    done
    names="$names $name"
done
printf "_shardpipe_words_sp_fetch='%s'\n" "$datasets"
cat <<'X'

# A word after an option that takes one of a list (--model, --split, ...):
# its values; a word starting with '-': the tool's options; any other word of
# sp-fetch: the dataset names that match; else no match here, and bash
# completes a file name (complete -o default).
_shardpipe() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev= tool=${1##*/} opts words vals
    [ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD-1]}
    tool=${tool//[^A-Za-z0-9]/_}
    opts=_shardpipe_opts_$tool words=_shardpipe_words_$tool vals=_shardpipe_vals_${tool}_${prev//[^A-Za-z0-9]/_}
    COMPREPLY=()
    if [[ $prev == -* && -n ${!vals-} ]]; then
        COMPREPLY=($(compgen -W "${!vals}" -- "$cur"))
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${!opts-}" -- "$cur"))
    elif [[ -n ${!words-} ]]; then
        COMPREPLY=($(compgen -W "${!words}" -- "$cur"))
    fi
}
X
echo "complete -o default -F _shardpipe$names"
