# run.sh: long
# Replays the fuzz targets over seeds made by the tools and 1500 seeded
# mutations of each: no crash, no sanitizer report (under make asan), no hang.
. "$SP_ROOT/tests/tools/lib.sh"
build=$(dirname "$SP_BIN")
"$SP_ROOT/tests/fuzz/make_seeds.sh" "$build" seeds
for t in recstream idx unpack image views mat checkpoint manifest cifar labels pickle wds; do
    timeout 300 "$build/tests/fuzz_$t" -m 1500 seeds/$t/* > out 2> err || { cat err; fail "fuzz_$t"; }
    cat out
    [ ! -s err ] || { cat err; fail "fuzz_$t wrote to stderr"; }
done
