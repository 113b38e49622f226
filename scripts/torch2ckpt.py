#!/usr/bin/python3
"""torch2ckpt.py: a PyTorch state_dict with torchvision's names (a .pth file
the user brings; nothing is downloaded) to a shardpipe checkpoint, for
sp-train --init and sp-eval.

usage: torch2ckpt.py IN.pth OUT.ckpt --model NAME [--input CxHxW]

NAME is the nn/ model the state_dict is of (resnet18, resnet34, resnet50,
resnet20, cnn, ...): nn/ builds each torchvision model with its parameters
in torchvision's order, so the state_dict's tensors are taken in their own
order, parameters apart from buffers: every tensor but running_mean,
running_var and num_batches_tracked is a parameter (weights and biases, as
nn/ holds them), and each batchnorm's running_mean and running_var are its
running statistics. Inception v3's auxiliary classifier (AuxLogits.*) is
left out. The class count is the last tensor's length (the classifier's
bias); --input (default 3x224x224) is the image shape the checkpoint
records, which sp-train --init does not hold against the shards (the base
is convolutional), and sp-eval does.

The checkpoint (format in nn/nn.h: magic, version, header, float32 arrays,
XXH3-64) holds every parameter with zeroed Adam moments, epoch 0, and no
training recipe, so sp-train --resume refuses it: --init is its use. Its
size is checked here against the tensor count only; sp-train and sp-eval
check that it fits the model exactly (status 1 when not).
Exit status: 0, 1 for a file that is not such a state_dict, 2 for usage.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import xxhash

STATS = ("running_mean", "running_var")


def fail(msg, status=1):
    print(f"torch2ckpt.py: {msg}", file=sys.stderr)
    sys.exit(status)


def load_state_dict(path):
    import torch  # Debian's python3-torch; imported here so --help needs none
    try:
        sd = torch.load(path, map_location="cpu")
    except Exception as e:  # a file torch cannot read: the user's input
        fail(f"{path}: not a PyTorch file ({e.__class__.__name__}: {e})")
    if hasattr(sd, "state_dict") and not isinstance(sd, dict):
        sd = sd.state_dict()
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd or not all(hasattr(v, "numpy") for v in sd.values()):
        fail(f"{path}: not a state_dict (a mapping of names to tensors)")
    return {k: v.detach().cpu().float().numpy() for k, v in sd.items()}


def split(sd):
    """(parameters, running statistics), each a list of (name, float32 array) in the state_dict's order."""
    params, stats = [], []
    for name, t in sd.items():
        last = name.rsplit(".", 1)[-1]
        if name.startswith("AuxLogits.") or last == "num_batches_tracked":
            continue
        (stats if last in STATS else params).append((name, np.ascontiguousarray(t, dtype="<f4")))
    return params, stats


def checkpoint(model, shape, classes, params, stats, source):
    header = {
        "model": model, "input": list(shape), "classes": classes,
        "parameters": int(sum(t.size for _, t in params)),
        "optimizer": {"kind": "adam", "lr": 0.001, "momentum": 0.0, "weight_decay": 0.0, "beta1": 0.9,
                      "beta2": 0.999, "eps": 1e-8, "step": 0},
        "epoch": 0, "rng": ["9e3779b97f4a7c15", "bf58476d1ce4e5b9", "94d049bb133111eb", "2545f4914f6cdd1d"],
        "extra": {"converted_from": source, "tensors": [[n, list(t.shape)] for n, t in params + stats]},
    }
    hs = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    body = bytearray(b"\x89SPCKPT\n" + struct.pack("<II", 1, len(hs)) + hs)
    for _, t in params:  # values, then Adam's two moments (zero)
        body += t.tobytes() + bytes(2 * 4 * t.size)
    for _, t in stats:  # each batchnorm's running mean then running variance, in layer order
        body += t.tobytes()
    body += struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(body)))
    return bytes(body)


def main():
    ap = argparse.ArgumentParser(description="A torchvision state_dict (.pth) to a shardpipe checkpoint.")
    ap.add_argument("input", metavar="IN.pth")
    ap.add_argument("output", metavar="OUT.ckpt")
    ap.add_argument("--model", required=True, help="the nn/ model the state_dict is of (resnet18, ...)")
    ap.add_argument("--input", dest="shape", default="3x224x224", help="CxHxW the checkpoint records")
    a = ap.parse_args()
    try:
        shape = [int(v) for v in a.shape.split("x")]
        assert len(shape) == 3 and all(v > 0 for v in shape)
    except (ValueError, AssertionError):
        ap.error(f"--input: not CxHxW: {a.shape}")
    params, stats = split(load_state_dict(a.input))
    if not params or params[-1][1].ndim != 1:
        fail(f"{a.input}: its last parameter is not a classifier's bias")
    if any(name.rsplit(".", 1)[0] + ".running_var" not in dict(stats) for name, _ in stats
           if name.endswith(".running_mean")) or len(stats) % 2:
        fail(f"{a.input}: a batchnorm without both running statistics")
    data = checkpoint(a.model, shape, int(params[-1][1].size), params, stats, os.path.basename(a.input))
    tmp = a.output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, a.output)
    print(f"{a.output}: {a.model}, {len(params)} parameter tensors ({sum(t.size for _, t in params)} values), "
          f"{len(stats) // 2} batchnorm layers, {params[-1][1].size} classes", file=sys.stderr)


if __name__ == "__main__":
    main()
