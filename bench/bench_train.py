#!/usr/bin/python3
"""Training speed: sp-train against PyTorch (Debian's python3-torch, CPU) on
the same nets, optimizers, batch and images.

  mlp: Fashion-MNIST's 60000 training images, Adam 1e-3, batch 64
  cnn: the seed's Keras CIFAR net (unpadded 3x3 convs, 512 into Dense(128)),
       5000 CIFAR-10-shaped images (tests/fixtures/make_cifar.py), the seed's
       Adam 1e-3, batch 64
  resnet20: 2000 of the same kind, SGD 0.05 with momentum 0.9, batch 64, no
       augmentation on either side
  resnet18: 160 photographs at 224x224 (benchlib.py's set, decoded and
       resized by shardpipe), SGD 0.01 with momentum 0.9, batch 32,
       torchvision's resnet18 on PyTorch's side
  resnet50: 3 steps of batch 32 on the same photographs, torchvision's
       resnet50; and each side's peak memory (the largest resident set of
       the process, ru_maxrss)

mlp, cnn and resnet20 time their one epoch; resnet18 and resnet50 run two
epochs (resnet50's of 3 steps, sp-train --steps-per-epoch) and time the
second, on both sides, so neither pays its first step's set-up (oneDNN's
kernels are made at the first step, and the first touch of each buffer)
in the figure.

Each side runs with 1 and 2 threads (sp-train --threads, torch.set_num_threads)
and keeps its best; each figure is the fastest of 5 runs (3 for the 224x224
models), on both sides, the runs taken in rounds of all four (each side, 1
and 2 threads): on a shared virtual machine, neighbours now and then slow
runs by as much as 2x for seconds at a time, and such noise only ever adds
time. sp-train's time is its epoch as it reports it: reading and
normalizing the shards included. PyTorch trains from a tensor already in
memory. GFLOP/s counts the multiply-adds of the forward pass and of both
gradient products (not the first layer's input gradient, which neither side
computes) as 2 operations, next to the machine's FMA peak measured by
bench/fma_peak.c on one core and on both at once.

usage: bench_train.py BUILD_DIR [MODEL...]   (default: all five)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

RUNS = 5
# at most this fraction of PyTorch's time
TARGETS = {"mlp": 0.3, "cnn": 0.7, "resnet20": 0.9, "resnet18": 0.9, "resnet50": 0.9}
RUNS_224 = 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TORCH = r'''
import json, sys, time, torch, torch.nn as nn, numpy as np
model, threads, path, epochs, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads)
torch.manual_seed(0)
d = np.load(path)
X, Y = torch.tensor(d["x"]), torch.tensor(d["y"]).long()
batch = 64
if model == "mlp":
    m = nn.Sequential(nn.Flatten(), nn.Linear(X[0].numel(), 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
elif model in ("resnet18", "resnet50"):
    import torchvision
    m = getattr(torchvision.models, model)(num_classes=10)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    batch = 32
else:
    sys.path.insert(0, sys.argv[4])
    from torch_models import cnn, resnet
    m = cnn(10) if model == "cnn" else resnet("resnet20", 10)
    opt = (torch.optim.Adam(m.parameters(), lr=1e-3) if model == "cnn"
           else torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9))
m.train()
for epoch in range(epochs):  # the last epoch is timed
    t = time.perf_counter()
    perm = torch.randperm(len(X))
    for step, i in enumerate(range(0, len(X), batch)):
        if steps and step == steps:
            break
        idx = perm[i:i + batch]
        opt.zero_grad()
        nn.functional.cross_entropy(m(X[idx]), Y[idx]).backward()
        opt.step()
print(json.dumps({"seconds": time.perf_counter() - t}))
'''


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, stdout=subprocess.PIPE, **kw).stdout


def train_flops(model):
    """Floating-point operations of one training step per image."""
    if model == "mlp":
        layers = [(784 * 128, 1, True), (128 * 10, 1, False)]  # (weights, output pixels, first layer)
    elif model == "resnet20":
        layers = [(3 * 16 * 9, 32 * 32, True)]
        for st, (cin, cout, px) in enumerate([(16, 16, 32 * 32), (16, 32, 16 * 16), (32, 64, 8 * 8)]):
            for blk in range(3):
                first_in = cin if blk == 0 else cout
                layers += [(first_in * cout * 9, px, False), (cout * cout * 9, px, False)]
                if blk == 0 and cin != cout:
                    layers.append((cin * cout, px, False))  # the projection shortcut
        layers.append((64 * 10, 1, False))
    elif model in ("resnet18", "resnet50"):
        return torchvision_flops(model)
    else:
        # the seed's cnn: unpadded 3x3 convs, outputs 30x30, 13x13, 4x4; 512 into the dense 128
        layers = [(3 * 32 * 9, 30 * 30, True), (32 * 64 * 9, 13 * 13, False), (64 * 128 * 9, 4 * 4, False),
                  (512 * 128, 1, False), (128 * 10, 1, False)]
    macs = sum(w * px * (2 if first else 3) for w, px, first in layers)
    return 2 * macs


def torchvision_flops(model):
    """train_flops for torchvision's model at 224x224, from its convs' and
    linear layers' weights and output sizes (forward hooks on one image)."""
    import torch
    import torchvision
    m = getattr(torchvision.models, model)(num_classes=10)
    layers = []

    def hook(mod, _, out):
        layers.append((mod.weight.numel(), out[0, 0].numel() if out.dim() == 4 else 1, not layers))
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            mod.register_forward_hook(hook)
    with torch.no_grad():
        m(torch.zeros(1, 3, 224, 224))
    return 2 * sum(w * px * (2 if first else 3) for w, px, first in layers)


def run_peak(cmd, env=None):
    """Runs a shell command; returns (its stdout, its peak resident set in bytes)."""
    p = subprocess.Popen(cmd, shell=True, stdout=subprocess.PIPE, env=env)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise subprocess.CalledProcessError(p.returncode, cmd)
    return out, usage.ru_maxrss * 1024


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    models = sys.argv[2:] or list(TARGETS)
    if any(m not in TARGETS for m in models):
        sys.exit(f"bench_train.py: models are {', '.join(TARGETS)}")
    b = build + "/bin"
    tmp = tempfile.mkdtemp(prefix="sp-bench-train-")
    if "mlp" in models:
        sh(f"{b}/sp-unpack -q /usr/share/datasets/fashion-mnist/*.gz | {b}/sp-decode -q | {b}/sp-shard -q -o {tmp}/mlp")
    if "cnn" in models:
        sh(f"/usr/bin/python3 {ROOT}/tests/fixtures/make_cifar.py {tmp}/cf --per-batch 1000")
        sh(f"{b}/sp-unpack -q {tmp}/cf/cifar-10-binary.tar.gz | {b}/sp-decode -q | {b}/sp-shard -q -o {tmp}/cnn")
    if "resnet20" in models:
        sh(f"/usr/bin/python3 {ROOT}/tests/fixtures/make_cifar.py {tmp}/cf2 --per-batch 400")
        sh(f"{b}/sp-unpack -q {tmp}/cf2/cifar-10-binary.tar.gz | {b}/sp-decode -q | {b}/sp-shard -q -o {tmp}/resnet20")
    if "resnet18" in models or "resnet50" in models:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from benchlib import make_photo_archive
        tar, classes, _ = make_photo_archive(tmp, 160)
        sh(f"{b}/sp-unpack -q {tar} | {b}/sp-decode -q --classes {classes} --resize 224 | {b}/sp-shard -q -o {tmp}/photos")
        for m in ("resnet18", "resnet50"):
            os.symlink(f"{tmp}/photos", f"{tmp}/{m}")
    # the same training images for PyTorch, normalized as sp-train does (x/255)
    export = ("import sys, json, h5py, numpy as np; d = sys.argv[1]; "
              "sh = [s['file'] for s in json.load(open(d + '/manifest.json'))['shards'] if s['split'] == 'train']; "
              "fs = [h5py.File(d + '/' + f, 'r') for f in sh]; "
              "x = np.concatenate([f['images'][:] for f in fs]).transpose(0, 3, 1, 2).astype(np.float32) / 255; "
              "y = np.concatenate([f['labels'][:] for f in fs]); np.savez(sys.argv[2], x=x, y=y)")
    env = dict(os.environ, HDF5_PLUGIN_PATH=build + "/hdf5-plugin")
    exported = {}  # shard set -> its npz: resnet18 and resnet50 share the photos
    for m in models:
        src = os.path.realpath(f"{tmp}/{m}")
        if src in exported:
            os.symlink(exported[src], f"{tmp}/{m}.npz")
            continue
        sh(f"/usr/bin/python3 -c \"{export}\" {tmp}/{m} {tmp}/{m}.npz", env=env)
        exported[src] = f"{tmp}/{m}.npz"
    with open(f"{tmp}/torch_train.py", "w") as f:
        f.write(TORCH)
    peak = float(sh(f"{build}/bench/fma_peak 1").split()[0])
    peak2 = float(sh(f"{build}/bench/fma_peak 1 2").split()[0])
    args = {"mlp": "--model mlp --optimizer adam --lr 0.001", "cnn": "--model cnn --optimizer adam --lr 0.001",
            "resnet20": "--model resnet20 --optimizer sgd --lr 0.05 --momentum 0.9 --augment none",
            "resnet18": "--model resnet18 --optimizer sgd --lr 0.01 --momentum 0.9 --augment none --batch 32 --epochs 2",
            "resnet50": "--model resnet50 --optimizer sgd --lr 0.01 --momentum 0.9 --augment none --batch 32 --epochs 2 "
                        "--steps-per-epoch 3"}
    runs = {"mlp": (RUNS, 1, 0), "cnn": (RUNS, 1, 0), "resnet20": (RUNS, 1, 0),  # rounds, epochs, steps an epoch
            "resnet18": (RUNS_224, 2, 0), "resnet50": (RUNS_224, 2, 3)}

    print(f"{'benchmark (seconds per epoch, best of 1 and 2 threads)':56} {'shardpipe':>9} {'PyTorch':>8} {'ratio':>6} "
          f"{'target':>7}   GFLOP/s: shardpipe, PyTorch, FMA peak (one core, both)")
    ok = True
    memory = {}
    for m in models:
        n = {"mlp": 60000, "cnn": 5000, "resnet20": 2000, "resnet18": 160, "resnet50": 96}[m]
        rounds, epochs, steps = runs[m]
        ours, theirs = {1: [], 2: []}, {1: [], 2: []}
        ours_rss, theirs_rss = {1: 0, 2: 0}, {1: 0, 2: 0}
        for _ in range(rounds):  # rounds of all four, so a slow spell hits every side alike
            for t in (1, 2):
                base = "" if m in ("resnet18", "resnet50") else "--batch 64 --epochs 1 "
                _, rss = run_peak(f"{b}/sp-train {tmp}/{m} {args[m]} {base}--threads {t} --no-verify -q "
                                  f"--json {tmp}/run.json")
                ours[t].append(json.load(open(f"{tmp}/run.json"))["per_epoch"][-1]["seconds"])
                ours_rss[t] = max(ours_rss[t], rss)
                out, rss = run_peak(f"/usr/bin/python3 {tmp}/torch_train.py {m} {t} {tmp}/{m}.npz "
                                    f"{ROOT}/tests/fixtures {epochs} {steps}")
                theirs[t].append(json.loads(out)["seconds"])
                theirs_rss[t] = max(theirs_rss[t], rss)
        ours = {t: min(v) for t, v in ours.items()}
        theirs = {t: min(v) for t, v in theirs.items()}
        tb, pb = min(ours, key=ours.get), min(theirs, key=theirs.get)
        o, p = ours[tb], theirs[pb]
        flops = train_flops(m) * (steps * 32 if steps else n)
        target = TARGETS[m]
        verdict = "(no target)" if target is None else "ok" if o <= target * p else "MISSED"
        ok &= verdict != "MISSED"
        what = f"{steps} steps of 32" if steps else f"{n} images"
        name = f"{m}, {what} ({tb} thread{'s' if tb > 1 else ''} vs {pb})"
        print(f"{name:56} {o:9.2f} {p:8.2f} {o / p:5.2f}x {'<=' + str(target) + 'x' if target else '-':>7}   "
              f"{flops / o / 1e9:6.1f} {flops / p / 1e9:8.1f} {peak:8.1f} {peak2:6.1f}   {verdict}")
        for t in (1, 2):
            print(f"    {t} thread{'s' if t > 1 else ' '}: shardpipe {ours[t]:.2f} s, PyTorch {theirs[t]:.2f} s")
        memory[m] = (ours_rss[tb], theirs_rss[pb])
    for m, (mine, theirs) in memory.items():
        if m != "resnet50":
            continue
        verdict = "ok" if mine <= theirs else "MISSED"
        ok &= verdict == "ok"
        print(f"{'peak memory, ' + m + ' batch 32 (GB)':56} {mine / 1e9:9.2f} {theirs / 1e9:8.2f} "
              f"{mine / theirs:5.2f}x {'<=1x':>7}   {verdict}")
    shutil.rmtree(tmp)
    print(f"(fastest of {RUNS} rounds per side and thread count; the mlp target would need "
          f"{train_flops('mlp') * 60000 / 1e9:.1f} GFLOP in 0.3x PyTorch's time)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
