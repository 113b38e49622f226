#!/usr/bin/python3
"""A GPU fed from shards: torchvision's ResNet-50 trained (SGD, bf16 autocast,
channels_last) on batches from shardpipe.Loader over 224x224 shards, against
the same steps on synthetic batches already on the device: images/s of each
and their ratio (goal: the Loader's >= 0.95x of synthetic, using at most 8
CPU cores).

The Loader's batches are uint8 NHWC as stored; they go to the device pinned
and non-blocking, and become float NCHW channels_last there, normalized with
the shards' mean and std (what a user's GPU training loop does with them).
The synthetic side skips all of that: random uint8 already on the device,
the same conversion, so the ratio is the data path's cost alone.

usage: bench_gpu_feed.py BUILD_DIR [PHOTOS] [--device cuda|cpu] [--steps N]
       [--batch N] [--threads N] [--shards DIR]
--device cpu runs the same code on the CPU (a check that it works, not a
measure); without a GPU and without --device cpu it says so and exits 77.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(os.path.dirname(here), "python"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("photos", nargs="?", type=int, default=2048)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=min(8, len(os.sched_getaffinity(0))))
    ap.add_argument("--shards", help="a 224x224 shard set to read (default: made from benchlib's photos)")
    a = ap.parse_args()
    import torch
    import torchvision
    import shardpipe
    if a.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu_feed: no CUDA device here (run with --device cpu to check the code path)", file=sys.stderr)
        sys.exit(77)
    build = os.path.abspath(a.build)
    os.environ.setdefault("HDF5_PLUGIN_PATH", build + "/hdf5-plugin")
    tmp = tempfile.mkdtemp(prefix="sp-bench-gpu-")
    try:
        d = a.shards
        if not d:
            from benchlib import make_photo_archive
            tar, classes, _ = make_photo_archive(tmp, a.photos)
            b = build + "/bin"
            subprocess.run(f"set -o pipefail; {b}/sp-unpack -q {tar} | {b}/sp-decode -q --classes {classes} "
                           f"--resize 224 | {b}/sp-shard -q -o {tmp}/s224", shell=True, check=True,
                           executable="/bin/bash")
            d = f"{tmp}/s224"
        dev = torch.device(a.device)
        torch.backends.cudnn.benchmark = True
        model = torchvision.models.resnet50(num_classes=1000).to(dev).to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loader = shardpipe.Loader(d, batch_size=a.batch, seed=0, threads=a.threads, drop_last=True,
                                  rank=0, world_size=1)
        r = loader.reader
        mean = torch.tensor(r.mean if r.mean is not None else [0.5] * 3, device=dev).view(1, 3, 1, 1) * 255
        std = torch.tensor(r.std if r.std is not None else [0.5] * 3, device=dev).view(1, 3, 1, 1) * 255
        amp = torch.autocast(device_type=dev.type, dtype=torch.bfloat16)

        def step(x_u8, y):
            x = x_u8.permute(0, 3, 1, 2).float().sub_(mean).div_(std).contiguous(memory_format=torch.channels_last)
            with amp:
                loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def sync():
            if dev.type == "cuda":
                torch.cuda.synchronize()

        def from_loader(steps):
            done = 0
            while done < steps:
                for x, y in loader:
                    xt = torch.from_numpy(x)
                    yt = torch.from_numpy(y)
                    if dev.type == "cuda":
                        xt, yt = xt.pin_memory().to(dev, non_blocking=True), yt.pin_memory().to(dev, non_blocking=True)
                    step(xt, yt)
                    done += 1
                    if done == steps:
                        break
            sync()
            return steps * a.batch

        def synthetic(steps):
            x = torch.randint(0, 256, (a.batch, 224, 224, 3), dtype=torch.uint8, device=dev)
            y = torch.randint(0, 10, (a.batch,), device=dev)
            for _ in range(steps):
                step(x, y)
            sync()
            return steps * a.batch

        rates = {}
        for name, run in (("synthetic batches on the device", synthetic), ("shardpipe.Loader", from_loader)):
            run(max(2, a.steps // 10))  # warm-up: cudnn's choices, the reader's buffers
            t = time.perf_counter()
            n = run(a.steps)
            rates[name] = n / (time.perf_counter() - t)
        print(f"ResNet-50 training, bf16 autocast, channels_last, batch {a.batch}, {a.steps} steps, "
              f"{a.threads} reader threads, device {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}")
        for name, v in rates.items():
            print(f"{name:34} {v:10,.0f} images/s")
        ratio = rates["shardpipe.Loader"] / rates["synthetic batches on the device"]
        print(f"Loader / synthetic: {ratio:.3f}x (goal >= 0.95x)")
        sys.exit(0 if ratio >= 0.95 or dev.type != "cuda" else 1)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
