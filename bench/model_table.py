#!/usr/bin/python3
"""docs/training.md's model table: for each model of sp-train, its input size,
parameters, forward FLOPs per image, and measured training images/s and
memory at batch 32.

  parameters: nn/'s count for the classes given (1000 for the ImageNet
      models, as torchvision states them; 10 for the CIFAR ones)
  FLOPs: 2 x the multiply-adds of the convolutions and dense layers of one
      forward pass of one image, counted on the same net in PyTorch
      (torchvision's, or tests/fixtures/torch_models.py's) with hooks
  images/s: sp-train --batch 32 --threads 2 on synthetic shards of that size
      (tests/fixtures: CIFAR-10-shaped, or ILSVRC-shaped resized), epochs of
      --steps-per-epoch STEPS training steps (forward, backward, SGD step;
      reading the shards included): the second of two epochs, so the first
      step's set-up (oneDNN's kernels, the first touch of each buffer) is
      left out, the faster of RUNS runs
  GFLOP/s: 3 x the forward FLOPs (forward, input and weight gradients) x
      images/s, next to the machine's FMA peak (bench/fma_peak.c)
  memory: the net's buffers for batch 32 as sp-train reports them
      (activations, gradients, scratch, parameters with their gradients and
      optimizer state), and the process's peak resident size (GNU time)

usage: model_table.py BUILD_DIR [MODEL...]
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
from torch_models import cnn, resnet  # noqa: E402

# model: (input side, classes for the parameter count, training steps an epoch)
MODELS = {
    "mlp": (28, 10, 50), "cnn": (32, 10, 50), "cnn-same": (32, 10, 50), "resnet20": (32, 10, 10),
    "vgg11-cifar": (32, 10, 4), "vgg11_bn-cifar": (32, 10, 4), "vgg16-cifar": (32, 10, 4),
    "vgg16_bn-cifar": (32, 10, 4), "resnet18": (224, 1000, 2), "resnet34": (224, 1000, 2),
    "resnet50": (224, 1000, 2), "inception_v3": (299, 1000, 2), "inception_v3+head1024": (299, 1000, 2),
    "vgg11": (224, 1000, 1), "vgg11_bn": (224, 1000, 1), "vgg16": (224, 1000, 1), "vgg16_bn": (224, 1000, 1),
}
RUNS = 1


def torch_model(name, classes):
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, classes)), 1
    if name in ("cnn", "cnn-same"):
        return cnn(classes, padding=int(name == "cnn-same")), 3
    if name == "resnet20":
        return resnet("resnet20", classes), 3
    if "+head" in name:  # the seed's head: global average pool, dense N, relu, dense classes
        base, width = name.split("+head")
        m, c = torch_model(base, classes)
        m.fc = nn.Sequential(nn.Linear(m.fc.in_features, int(width)), nn.ReLU(), nn.Linear(int(width), classes))
        return m, c
    base = name.split("-")[0]
    if base == "inception_v3":
        return torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                               num_classes=classes), 3
    m = getattr(torchvision.models, base)(weights=None, num_classes=classes)
    if name.endswith("-cifar"):
        m.avgpool = nn.Identity()
        m.classifier = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Dropout(), nn.Linear(512, 512), nn.ReLU(),
                                     nn.Dropout(), nn.Linear(512, classes))
    return m, 3


def flops(name, side, classes):
    m, c = torch_model(name, classes)
    macs = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            macs[0] += out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            macs[0] += mod.in_features * mod.out_features * (out.numel() // mod.out_features)

    for mod in m.modules():
        mod.register_forward_hook(hook)
    m.eval()
    with torch.no_grad():
        m(torch.zeros(1, c, side, side))
    return 2 * macs[0]


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          **kw)


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    models = sys.argv[2:] or list(MODELS)
    b, tmp = build + "/bin", tempfile.mkdtemp(prefix="sp-model-table-")
    env = dict(os.environ, HDF5_PLUGIN_PATH=build + "/hdf5-plugin")
    shards = {}
    for side in sorted({MODELS[m][0] for m in models}):
        if side == 28:
            sh(f"{b}/sp-unpack -q /usr/share/datasets/fashion-mnist/*.gz | {b}/sp-decode -q | {b}/sp-shard -q -o {tmp}/s28")
        elif side == 32:
            sh(f"/usr/bin/python3 {ROOT}/tests/fixtures/make_cifar.py {tmp}/cf --per-batch 400")
            sh(f"{b}/sp-unpack -q {tmp}/cf/cifar-10-binary.tar.gz | {b}/sp-decode -q | {b}/sp-shard -q -o {tmp}/s32")
        else:
            if not os.path.exists(f"{tmp}/in10"):
                sh(f"/usr/bin/python3 {ROOT}/tests/fixtures/make_imagenet10.py {tmp}/in10 --train 8 --val 4")
            sh(f"{b}/sp-unpack -q {tmp}/in10/ILSVRC2012_img_train.tar {tmp}/in10/ILSVRC2012_img_val.tar | "
               f"{b}/sp-decode -q --classes {tmp}/in10/classes.txt --labels {tmp}/in10/LOC_val_solution.csv | "
               f"{b}/sp-resize {side} | {b}/sp-shard -q -o {tmp}/s{side}")
        shards[side] = f"{tmp}/s{side}"
    peak = [float(sh(f"{build}/bench/fma_peak 1 {t}").stdout.split()[0]) for t in (1, 2)]
    print(f"(FMA peak measured by bench/fma_peak.c: {peak[0]:.0f} GFLOP/s on one core, {peak[1]:.0f} on both)")
    print(f"| model | input | parameters | GFLOPs/image (forward) | images/s (train, batch 32, 2 threads) | "
          f"GFLOP/s (train: 3x forward) | memory: net buffers / peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for m in models:
        side, classes, steps = MODELS[m]
        params = sh(f"{build}/tests/nn_reference --plan {m} {side} {classes}").stdout.strip() \
            if m != "mlp" else str(784 * 128 + 128 + 128 * classes + classes)
        best, net_mb, rss = 0.0, 0.0, 0.0
        for _ in range(RUNS):
            model = m.replace("+head", " --head ")  # sp-train's spelling of a model with the seed's head
            r = sh(f"/usr/bin/time -f 'maxrss %M' {b}/sp-train {shards[side]} --model {model} --batch 32 --epochs 2 "
                   f"--steps-per-epoch {steps} --eval-steps 1 --threads 2 --optimizer sgd --lr 0.01 --augment none "
                   f"--no-verify -v --json {tmp}/run.json", env=env)
            ips = json.load(open(f"{tmp}/run.json"))["per_epoch"][1]["images_per_second"]
            best = max(best, ips)
            net_mb = float(re.search(r"([\d.]+) MB for batches of 32", r.stderr)[1])
            rss = max(rss, int(re.search(r"maxrss (\d+)", r.stderr)[1]) / 1024)
        f = flops(m, side, classes)
        print(f"| {m} | {side}x{side}{'x1' if side == 28 else 'x3'} | {int(params):,} | "
              f"{f / 1e9:.3g} | {best:.1f} | {3 * f * best / 1e9:.0f} | {net_mb:.0f} / {rss:.0f} |", flush=True)
    sh(f"rm -rf {tmp}")


if __name__ == "__main__":
    main()
