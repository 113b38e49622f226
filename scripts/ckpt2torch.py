#!/usr/bin/python3
"""ckpt2torch.py: a shardpipe checkpoint (sp-train -o) to a PyTorch
state_dict, the inverse of torch2ckpt.py.

usage: ckpt2torch.py IN.ckpt OUT.pth

The state_dict has the names of the PyTorch model that computes what nn/
computes: torchvision's for resnet18, resnet34, resnet50, inception_v3
(aux_logits=False), vgg11, vgg16, vgg11_bn and vgg16_bn; the project's
mirror models (tests/fixtures/torch_models.py, next to this script's
repository) for mlp, cnn, cnn-same and the CIFAR resnets (resnet20, 32, 44,
56 and 110, option A shortcuts, without parameters). nn/ builds each model with
its parameters in PyTorch's order, so the checkpoint's arrays (each
parameter's values, then its two optimizer moments, which are dropped; then
each batchnorm's running mean and variance) are taken in the state_dict's
order; num_batches_tracked is 0. The model takes what sp-train's model
takes: (N, C, H, W) float32 pixels scaled to [0, 1], or normalized with the
parameters the shards record. The checkpoint's class names (if any) are
printed. Load it with model.load_state_dict(torch.load("OUT.pth")).
Exit status: 0, 1 for a file that is not such a checkpoint or a model this
script does not know (a "+head" model, a -cifar vgg), 2 for usage.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import xxhash

MAGIC = b"\x89SPCKPT\n"


def fail(msg, status=1):
    print(f"ckpt2torch.py: {msg}", file=sys.stderr)
    sys.exit(status)


def read_checkpoint(path):
    """(header, float32 array of everything after it), checked: magic, version, XXH3-64, size."""
    b = open(path, "rb").read()
    if len(b) < 24 or b[:8] != MAGIC:
        fail(f"{path}: not a shardpipe checkpoint")
    version, n = struct.unpack("<II", b[8:16])
    if version != 1 or 16 + n + 8 > len(b) or (len(b) - 16 - n - 8) % 4:
        fail(f"{path}: version {version} or a header length of {n} does not fit the file's {len(b)} bytes")
    if struct.unpack("<Q", b[-8:])[0] != xxhash.xxh3_64_intdigest(b[:-8]):
        fail(f"{path}: checksum mismatch (damaged)")
    return json.loads(b[16:16 + n]), np.frombuffer(b[16 + n:-8], dtype="<f4")


def torch_model(name, shape, classes):
    """The PyTorch model of nn/'s model name for inputs shape (C, H, W)."""
    import torch.nn  # noqa: F401
    import torchvision
    if name in ("resnet18", "resnet34", "resnet50", "vgg11", "vgg16", "vgg11_bn", "vgg16_bn"):
        return getattr(torchvision.models, name)(num_classes=classes)
    if name == "inception_v3":
        return torchvision.models.inception_v3(num_classes=classes, aux_logits=False, init_weights=False)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
    from torch_models import CIFAR_BLOCKS, cnn, mlp, resnet
    if name == "mlp":
        return mlp(shape[0] * shape[1] * shape[2], classes)
    if name in ("cnn", "cnn-same"):
        return cnn(classes, padding=1 if name == "cnn-same" else 0, hw=(shape[1], shape[2]))
    if name in CIFAR_BLOCKS:
        return resnet(name, classes)
    fail(f"model {name}: no PyTorch model of it here (torchvision's resnets, vggs and inception_v3; "
         "mlp, cnn, cnn-same and resnet20, 32, 44, 56, 110)")


def main():
    ap = argparse.ArgumentParser(description="A shardpipe checkpoint to a PyTorch state_dict (.pth).")
    ap.add_argument("input", metavar="IN.ckpt")
    ap.add_argument("output", metavar="OUT.pth")
    a = ap.parse_args()
    import torch
    h, floats = read_checkpoint(a.input)
    model = torch_model(h["model"], h["input"], h["classes"])
    sd = model.state_dict()
    params = [k for k in sd if k.rsplit(".", 1)[-1] not in ("running_mean", "running_var", "num_batches_tracked")]
    stats = [k for k in sd if k.rsplit(".", 1)[-1] in ("running_mean", "running_var")]
    want = sum(3 * sd[k].numel() for k in params) + sum(sd[k].numel() for k in stats)
    if want != floats.size:
        fail(f"{a.input}: {floats.size} floats, but {h['model']} for {h['input']} and {h['classes']} classes "
             f"holds {want}")
    at, out = 0, {}
    for k in params:  # values, then two optimizer moments
        n = sd[k].numel()
        out[k] = torch.from_numpy(floats[at:at + n].copy()).reshape(sd[k].shape)
        at += 3 * n
    for k in stats:
        n = sd[k].numel()
        out[k] = torch.from_numpy(floats[at:at + n].copy()).reshape(sd[k].shape)
        at += n
    for k in sd:
        if k.endswith("num_batches_tracked"):
            out[k] = torch.zeros((), dtype=torch.long)
    state = {k: out[k] for k in sd}  # the model's own order
    model.load_state_dict(state)  # every name and shape checked
    tmp = a.output + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, a.output)
    names = (h.get("extra") or {}).get("class_names")
    print(f"{a.output}: {h['model']}, {len(params)} parameter tensors, {len(stats) // 2} batchnorm layers, "
          f"{h['classes']} classes{': ' + ', '.join(names) if names else ''}", file=sys.stderr)


if __name__ == "__main__":
    main()
