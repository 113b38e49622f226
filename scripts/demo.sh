#!/bin/sh
# make demo: fetches Fashion-MNIST (offline: the manifest's first mirror is
# Debian's dataset-fashion-mnist package), converts it to verified HDF5+zstd
# shards in BUILD/demo/fashion-mnist, prints a summary, then trains the mlp
# on them for 5 epochs (a few seconds) and evaluates it; the training curves
# and the confusion heat map land in BUILD/demo/curves.png and heatmap.png.
set -eu
build=${1:-build}
bin="$build/bin"
src=/usr/share/datasets/fashion-mnist
out="$build/demo/fashion-mnist"
cache="$build/demo/cache"
[ -d "$src" ] || { echo "demo: $src is missing (apt-get install dataset-fashion-mnist)" >&2; exit 1; }

echo "== $bin/sp-fetch -c $cache fashion-mnist | $bin/sp-unpack | $bin/sp-decode | $bin/sp-shard -o $out"
start=$(date +%s.%N)
"$bin/sp-fetch" -c "$cache" fashion-mnist | "$bin/sp-unpack" | "$bin/sp-decode" | "$bin/sp-shard" -o "$out"
end=$(date +%s.%N)
echo "== $bin/sp-verify $out"
"$bin/sp-verify" "$out"
echo "== summary"
/usr/bin/python3 - "$out" "$start" "$end" <<'PY'
import json, os, sys
out, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
m = json.load(open(os.path.join(out, "manifest.json")))
print(f"dataset   {m['dataset']}  ({len(m['classes'])} classes: {', '.join(m['classes'])})")
for name, s in m["splits"].items():
    h, w, c = s["shape"]
    print(f"{name:9} {s['records']:6} records  {h}x{w}x{c} {s['dtype']}  {s['shards']} shard(s)  {s['bytes'] / 1e6:.1f} MB")
src = sum(os.path.getsize(os.path.join("/usr/share/datasets/fashion-mnist", f))
          for f in os.listdir("/usr/share/datasets/fashion-mnist"))
print(f"on disk   {m['total_bytes'] / 1e6:.1f} MB of shards from {src / 1e6:.1f} MB of .gz sources")
print(f"time      {end - start:.2f} s for the whole pipeline")
for sh in m["shards"]:
    print(f"shard     {out}/{sh['file']}")
print(f"read it   HDF5_PLUGIN_PATH={os.path.dirname(os.path.dirname(out))}/hdf5-plugin "
      f"/usr/bin/python3 -c \"import h5py; f = h5py.File('{out}/{m['shards'][0]['file']}'); print(f['images'].shape)\"")
PY
rm -f "$build/demo/metrics.jsonl" # --metrics appends
echo "== $bin/sp-train $out --model mlp --epochs 5 -o $build/demo/mlp.ckpt --metrics $build/demo/metrics.jsonl --curves $build/demo/curves.png"
"$bin/sp-train" "$out" --model mlp --epochs 5 -o "$build/demo/mlp.ckpt" --metrics "$build/demo/metrics.jsonl" \
    --curves "$build/demo/curves.png"
echo "== $bin/sp-eval $out --checkpoint $build/demo/mlp.ckpt --heatmap $build/demo/heatmap.png (first lines and the matrix)"
"$bin/sp-eval" "$out" --checkpoint "$build/demo/mlp.ckpt" --heatmap "$build/demo/heatmap.png" > "$build/demo/eval.txt"
head -4 "$build/demo/eval.txt"
sed -n '/^confusion/,$p' "$build/demo/eval.txt"
echo "== pictures: $build/demo/curves.png (loss, train and test accuracy per epoch), $build/demo/heatmap.png (confusion)"
