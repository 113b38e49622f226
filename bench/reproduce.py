#!/usr/bin/python3
"""Runs the reference trainer's recipes end to end against their published or
PyTorch figures, and writes the table (recipe, the figure to reach, ours,
wall time, seed) into the docs between the reproduce:begin and
reproduce:end markers, with each run's curves (PNG) and JSON under OUT.

Recipes (each on DATA/NAME, a shard set made by the project's tools; one
whose set is missing is listed as not run):
  resnet20   DATA/cifar10: He et al. 2016 (Table 6): batch 128, SGD lr 0.1,
             momentum 0.9, weight decay 1e-4, lr / 10 at 32k and 48k
             iterations, 64k iterations (160 epochs of 400 steps),
             pad-crop-flip; the paper's test error 8.75%, ours at most 9.25%
  cnn        DATA/cifar10: the seed's CIFAR CNN, 10 epochs of Adam 1e-3 at
             batch 64, against PyTorch's run of the same (within 0.02)
  mlp        DATA/mnist: the seed's MLP, 5 epochs of Adam 1e-3 at batch 64,
             against PyTorch's run of the same (within 0.005)
--short runs each a few dozen steps (the test suite's version: the options
parse and run, the rate drops where the milestones say, the table is
written) and checks no figure.

usage: reproduce.py [--short] [--only NAME,...] DATA OUT [DOCS]
  BUILD (environment): the build directory (default: build)
Exit status: 0 when every recipe run reached its figure (--short: ran and
dropped the rate where it should), 1 otherwise.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- reproduce:begin -->", "<!-- reproduce:end -->"

# name, data, sp-train options (full, short), figure, PyTorch peer (model, epochs, batch, lr; steps when short)
RESNET = ["-m", "resnet20", "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9", "--weight-decay", "1e-4",
          "--schedule", "multistep", "--augment", "pad-crop-flip"]
RECIPES = [
    ("resnet20", "cifar10", "ResNet-20, CIFAR-10, He et al. 2016 (Table 6)",
     RESNET + ["-b", "128", "--milestones-steps", "32000,48000", "--steps-per-epoch", "400", "-e", "160"],
     RESNET + ["-b", "16", "--milestones-steps", "20,30", "--steps-per-epoch", "10", "-e", "4", "--eval-steps", "1"],
     ("error", 0.0875, 0.0925), None),
    ("cnn", "cifar10", "the seed's CIFAR CNN, 10 epochs Adam 1e-3 batch 64",
     ["-m", "cnn", "--optimizer", "adam", "--lr", "0.001", "-b", "64", "-e", "10"],
     ["-m", "cnn", "--optimizer", "adam", "--lr", "0.001", "-b", "64", "-e", "2"],
     ("torch", None, 0.02), ("cnn", 10, 64, 0.001)),
    ("mlp", "mnist", "the seed's MLP, MNIST, 5 epochs Adam 1e-3 batch 64",
     ["-m", "mlp", "--optimizer", "adam", "--lr", "0.001", "-b", "64", "-e", "5"],
     ["-m", "mlp", "--optimizer", "adam", "--lr", "0.001", "-b", "64", "-e", "1", "--steps-per-epoch", "100"],
     ("torch", None, 0.005), ("mlp", 5, 64, 0.001)),
]
# --short: the rate of each epoch's last step the resnet20 recipe must show
# (10 steps an epoch, milestones at steps 20 and 30)
SHORT_LRS = [0.1, 0.1, 0.01, 0.001]


def run_recipe(name, data, opts, peer, short, build, out, seed):
    json_path, curves = os.path.join(out, name + ".json"), os.path.join(out, name + ".png")
    t0 = time.time()
    subprocess.run([os.path.join(build, "bin", "sp-train"), data, *opts, "--seed", str(seed), "-q",
                    "--json", json_path, "--curves", curves], check=True)
    wall = time.time() - t0
    summary = json.load(open(json_path))
    res = {"ours": summary["test_accuracy"], "wall": wall, "lrs": [e["lr"] for e in summary["per_epoch"]]}
    if peer:
        model, epochs, batch, lr = peer
        args = [sys.executable, os.path.join(ROOT, "bench", "reproduce_torch.py"), data, model,
                str(2 if short and model == "cnn" else 1 if short else epochs), str(batch), str(lr), str(seed)]
        if short and model == "mlp":
            args.append("100")
        env = dict(os.environ, HDF5_PLUGIN_PATH=os.path.join(build, "hdf5-plugin"))
        res["torch"] = json.loads(subprocess.run(args, check=True, stdout=subprocess.PIPE, env=env).stdout)
    return res


def row(title, figure, res, seed, short):
    kind, paper, target = figure
    if res is None:
        return f"| {title} | {'paper: %.2f%% test error' % (100 * paper) if paper else 'PyTorch'} | not run | | {seed} |", True
    wall = f"{res['wall'] / 3600:.2f} h" if res["wall"] >= 3600 else f"{res['wall']:.0f} s"
    if kind == "error":
        err = 1 - res["ours"]
        ok = short or err <= target
        return (f"| {title} | paper: {100 * paper:.2f}% test error (at most {100 * target:.2f}%) | "
                f"{100 * err:.2f}% test error | {wall} | {seed} |", ok)
    theirs = res["torch"]["test_accuracy"]
    ok = short or abs(res["ours"] - theirs) <= target
    return (f"| {title} | PyTorch: test accuracy {theirs:.4f} (within {target}) | test accuracy {res['ours']:.4f} "
            f"({res['ours'] - theirs:+.4f}) | {wall} (PyTorch {res['torch']['seconds']:.0f} s) | {seed} |", ok)


def main():
    ap = argparse.ArgumentParser(description="The reference trainer's recipes against their figures.")
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("docs", nargs="?", default=os.path.join(ROOT, "docs", "reproducing.md"))
    a = ap.parse_args()
    build = os.path.abspath(os.environ.get("BUILD", os.path.join(ROOT, "build")))
    os.makedirs(a.out, exist_ok=True)
    only = set(filter(None, a.only.split(",")))
    lines = ["| recipe | figure to reach | ours | wall time on this machine | seed |", "|---|---|---|---|---|"]
    ok = True
    for name, set_name, title, full, short, figure, peer in RECIPES:
        data = os.path.join(a.data, set_name)
        res = None
        if (not only or name in only) and os.path.exists(os.path.join(data, "manifest.json")):
            res = run_recipe(name, data, short if a.short else full, peer, a.short, build, a.out, a.seed)
            lrs = res["lrs"]
            if a.short and name == "resnet20" and not (
                    len(lrs) == len(SHORT_LRS) and all(abs(x - y) <= 1e-6 * y for x, y in zip(lrs, SHORT_LRS))):
                print(f"reproduce.py: {name}: the rate per epoch is {res['lrs']}, not {SHORT_LRS}", file=sys.stderr)
                ok = False
        line, good = row(title + (" (short)" if a.short and res else ""), figure, res, a.seed, a.short)
        ok = ok and good
        lines.append(line)
        print(line)
    table = "\n".join(lines) + "\n"
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(table)
    text = open(a.docs).read()
    if BEGIN not in text or END not in text:
        sys.exit(f"reproduce.py: {a.docs}: no {BEGIN} ... {END} block to write the table into")
    head, rest = text.split(BEGIN, 1)
    text = head + BEGIN + "\n" + table + END + rest.split(END, 1)[1]
    tmp = a.docs + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, a.docs)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
