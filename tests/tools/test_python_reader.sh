# The Python reader (python/shardpipe.py): the exact pixels and labels the C
# shard reader gives (sp-cat's checksums), normalization from the shard
# attributes, and python3-torch's DataLoader with 2 workers.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_cifar.py" cf --per-batch 40
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-normalize | sp-shard -q -n 64 -o S
sp-cat S > c_reader.jsonl
PYTHONPATH="$SP_ROOT/python" $PY - <<'X'
import json
import numpy as np
import torch
import xxhash
import shardpipe

c = {}
for line in open("c_reader.jsonl"):
    r = json.loads(line)
    c[r["key"]] = r
for split in ("train", "test"):
    ds = shardpipe.ShardDataset("S", split)
    assert len(ds) == sum(1 for r in c.values() if r["split"] == split)
    mean, std = ds.mean, ds.std
    direct = []
    for i in range(len(ds)):
        img, label, key = ds.raw(i)
        assert xxhash.xxh3_64_hexdigest(img.tobytes()) == c[key]["checksum"] and label == c[key]["label"], key
        x, y = ds[i]
        want = ((img / 255.0 - mean) / std).astype(np.float32).transpose(2, 0, 1)
        assert x.shape == (3, 32, 32) and x.dtype == np.float32 and np.array_equal(x, want) and y == label
        direct.append((x, y))
    # DataLoader, two worker processes, batches in order: the same tensors
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=False, num_workers=2)
    xs, ys = [], []
    for bx, by in loader:
        xs.append(bx.numpy()); ys.append(by.numpy())
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    assert np.array_equal(xs, np.stack([d[0] for d in direct])) and list(ys) == [d[1] for d in direct]
    print(f"{split}: {len(ds)} records, equal to the C reader, DataLoader(num_workers=2) equal")
raw = shardpipe.ShardDataset("S", "test", normalize=False)
assert raw[0][0].shape == (32, 32, 3) and raw[0][0].dtype == np.uint8
X
echo ok
