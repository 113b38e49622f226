#!/usr/bin/python3
"""PyTorch's run of one of the seed's recipes on a shard set, for
bench/reproduce.py: the project's mirror of the model
(tests/fixtures/torch_models.py), Adam at LR, batch BATCH, EPOCHS passes
over the train split (or STEPS batches each, the passes following one
another), pixels as sp-train sees them (x / 255, then the shards' recorded
normalization if any), a shuffle of its own per pass from SEED; then
accuracy on the test split. Prints one JSON line: test_accuracy, seconds.

usage: reproduce_torch.py SHARDS MODEL EPOCHS BATCH LR SEED [STEPS]
MODEL: mlp or cnn
"""
import json
import os
import sys
import time

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from torch_models import cnn, mlp  # noqa: E402


def load(d, man, split):
    fs = [h5py.File(os.path.join(d, s["file"]), "r") for s in man["shards"] if s["split"] == split]
    x = np.concatenate([f["images"][:] for f in fs]).astype(np.float32) / 255  # (N, H, W, C)
    norm = man.get("normalize")
    if norm and not norm.get("applied"):
        x = (x - np.array(norm["mean"], np.float32)) / np.array(norm["std"], np.float32)
    y = np.concatenate([f["labels"][:] for f in fs]).astype(np.int64)
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y)


def main():
    if len(sys.argv) not in (7, 8):
        sys.exit(__doc__)
    d, name, epochs, batch, lr, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
        float(sys.argv[5]), int(sys.argv[6])
    steps = int(sys.argv[7]) if len(sys.argv) == 8 else 0
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    man = json.load(open(os.path.join(d, "manifest.json")))
    x, y = load(d, man, "train")
    xt, yt = load(d, man, "test")
    classes = len(man["classes"])
    c, h, w = x.shape[1:]
    model = mlp(c * h * w, classes) if name == "mlp" else cnn(classes, hw=(h, w))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0 = time.time()
    perm, pos = torch.randperm(len(x)), 0
    per_epoch = steps or (len(x) + batch - 1) // batch
    for _ in range(epochs * per_epoch):
        if pos >= len(x):
            perm, pos = torch.randperm(len(x)), 0
        idx = perm[pos:pos + batch]
        pos += batch
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        right = sum(int((model(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum()) for i in range(0, len(xt), 1000))
    print(json.dumps({"test_accuracy": right / len(xt), "seconds": time.time() - t0}))


if __name__ == "__main__":
    main()
