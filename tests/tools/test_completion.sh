# The bash completion (scripts/completion.sh over the built tools): options,
# sp-fetch's dataset names, and the values of the options that take one of a
# list (--model, --optimizer, --labels-from, --split), long and short forms.
. "$SP_ROOT/tests/tools/lib.sh"
tools="sp-fetch sp-unpack sp-decode sp-resize sp-normalize sp-shard sp-cat sp-verify sp-inspect sp-train sp-eval"
sh "$SP_ROOT/scripts/completion.sh" -d "mnist fashion-mnist" $(for t in $tools; do printf '%s ' "$SP_BIN/$t"; done) > shardpipe \
    || fail "completion.sh failed"
complete_at() { # TOOL WORD...: the completions of the last word
    bash -c '. ./shardpipe; tool=$1; shift; COMP_WORDS=("$tool" "$@"); COMP_CWORD=$#; _shardpipe "$tool"; echo "${COMPREPLY[*]}"' _ "$@"
}
[ "$(complete_at sp-train S --model resnet2)" = "resnet20" ] || fail "--model: $(complete_at sp-train S --model resnet2)"
[ "$(complete_at sp-train S -m vgg16_)" = "vgg16_bn vgg16_bn-cifar" ] || fail "-m: $(complete_at sp-train S -m vgg16_)"
[ "$(complete_at sp-train S --optimizer '')" = "adam sgd" ] || fail "--optimizer: $(complete_at sp-train S --optimizer '')"
[ "$(complete_at sp-decode --labels-from '')" = "wnid dirs wds" ] || fail "--labels-from: $(complete_at sp-decode --labels-from '')"
[ "$(complete_at sp-decode --split v)" = "val" ] || fail "--split: $(complete_at sp-decode --split v)"
[ "$(complete_at sp-eval C S -s te)" = "test" ] || fail "sp-eval -s: $(complete_at sp-eval C S -s te)"
[ "$(complete_at sp-shard --no-sh)" = "--no-shuffle" ] || fail "options: $(complete_at sp-shard --no-sh)"
[ "$(complete_at sp-fetch fashion)" = "fashion-mnist" ] || fail "datasets: $(complete_at sp-fetch fashion)"
# a word after an option that takes a file or a number: nothing here (bash completes files)
[ -z "$(complete_at sp-train S --epochs '')" ] || fail "values offered after --epochs"
echo ok
