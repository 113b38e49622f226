#!/usr/bin/python3
"""numpy_loop.py SHARDS [EPOCHS]: softmax regression in plain numpy on the
train split of a shard set, batches from shardpipe.Loader (the C reader's
threads, shuffled per epoch, normalized with the shards' statistics); a line
per epoch with the mean training loss, then the accuracy on the test split
(val where there is none).

In a checkout: PYTHONPATH=python examples/numpy_loop.py ~/shards/fmnist
"""
import sys

import numpy as np

import shardpipe


def softmax(z):
    """Row-wise softmax of z (n, k), shifted by each row's largest value."""
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: numpy_loop.py SHARDS [EPOCHS]")
    shards, epochs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 3
    train = shardpipe.Loader(shards, batch_size=64, normalize=True)
    h, w, c = train.reader.shape
    d, k = h * w * c, len(train.reader.classes)
    weights, bias = np.zeros((d, k), np.float32), np.zeros(k, np.float32)
    print(f"{train.reader.count} train records of {h}x{w}x{c}, {k} classes")
    for epoch in range(epochs):
        train.set_epoch(epoch)
        total, records = 0.0, 0
        for x, y in train:
            x = x.reshape(len(x), d)
            p = softmax(x @ weights + bias)
            total += float(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-30)).sum())
            records += len(y)
            p[np.arange(len(y)), y] -= 1          # d loss / d logits
            weights -= 0.1 * x.T @ p / len(y)
            bias -= 0.1 * p.mean(0)
        print(f"epoch {epoch + 1}: loss {total / records:.4f}")
    splits = shardpipe.load_manifest(shards)["splits"]
    split = "test" if "test" in splits else "val" if "val" in splits else None
    if split:
        test = shardpipe.Loader(shards, split=split, batch_size=1000, shuffle=False, normalize=True)
        right = sum(int((np.argmax(x.reshape(len(x), d) @ weights + bias, 1) == y).sum()) for x, y in test)
        print(f"{split} accuracy {right / test.reader.count:.4f}")

if __name__ == "__main__":
    main()
