#!/usr/bin/python3
"""sp-train under MPI on one machine: an epoch at 1 rank x 2 threads against 2
ranks x 1 thread (mpirun -np 2, Open MPI), the same global batch, and the
allreduce's share of the training time.

  mlp: Fashion-MNIST's 60000 training images, SGD 0.05 with momentum 0.9,
       batch 64 (938 steps, 102,000 parameters: 0.4 MB summed a step)
  resnet20: 2000 CIFAR-10-shaped images (tests/fixtures/make_cifar.py), SGD
       0.05 with momentum 0.9, batch 64, no augmentation (32 steps, 272,000
       parameters: 1.1 MB a step)

2 ranks run over loopback TCP (btl self,tcp, as the test) and over shared
memory (btl self,vader), unbound (--bind-to none), yielding the core while
they wait; 1 rank x 1 thread is shown for reference. The epoch's seconds are
sp-train's own (reading, normalizing and training; evaluation left out),
each the fastest of RUNS rounds in which every configuration runs once: on
a shared machine noise only adds time. The allreduce's share is the time
the ranks spent inside MPI_Allreduce (nn_dist_reduce_seconds, rank 0's,
waiting for the other rank included) over the training time of the same
run.

With --overlap, resnet20's step time at 2 ranks x 1 thread with the
gradients' allreduce overlapped with the backward pass (the default) and
after it (SP_ALLREDUCE_OVERLAP=0), side by side: STEPS steps (default 12) of
global batch 128 on the same 2000 images, over shared memory (vader) and
loopback TCP, RUNS rounds (default 5) in which each transport runs both ways,
the order of the two swapped every round. A step's time is the epoch's
(sp-train's own clock) over its steps, the first step (oneDNN's set-up)
included alike; the allreduce's time per step is rank 0's seconds inside MPI
calls (MPI_Allreduce, or MPI_Iallreduce, MPI_Test and MPI_Wait: start, the
tests between layers and the final waits, waiting for the other rank
included). Printed: every round's figures, then the median and best of each,
and the median of the rounds' ratios of each way's step time to the same
round's "after the backward" (the pair ran back to back).

usage: bench_mpi.py BUILD_DIR [RUNS]   (default 3)
       bench_mpi.py BUILD_DIR --overlap [RUNS [STEPS]]   (default 5, 12)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# mpi_yield_when_idle: a rank waiting in MPI_Allreduce yields its core
# instead of spinning, which on cores other work also uses gives the core to
# the rank being waited for
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none", "--mca", "pml", "ob1", "--mca", "mpi_yield_when_idle", "1"]
TRANSPORTS = {
    "tcp": ["--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"],
    "vader": ["--mca", "btl", "self,vader", "--mca", "btl_vader_single_copy_mechanism", "none",
              "--mca", "oob_tcp_if_include", "lo"],
}
CONFIGS = [("1 rank x 2 threads", 1, 2, None), ("1 rank x 1 thread (reference)", 1, 1, None), ("2 ranks x 1 thread, tcp", 2, 1, "tcp"),
           ("2 ranks x 1 thread, vader", 2, 1, "vader")]


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)


def train(b, shards, model, ranks, threads, transport, out, batch=64, extra=(), env=None):
    """sp-train's --json summary of one epoch (evaluation left out)."""
    cmd = [f"{b}/sp-train", shards, "--model", model, "--epochs", "1", "--batch", str(batch), "--optimizer", "sgd",
           "--lr", "0.05", "--momentum", "0.9", "--augment", "none", "--threads", str(threads), "--no-verify",
           "-q", "--json", out, *extra]
    if ranks > 1:
        cmd = MPIRUN + TRANSPORTS[transport] + ["-np", str(ranks)] + cmd
    subprocess.run(cmd, check=True, env=env)
    return json.load(open(out))


def epoch(b, shards, model, ranks, threads, transport, out):
    r = train(b, shards, model, ranks, threads, transport, out)
    return r["per_epoch"][0]["seconds"], r.get("allreduce_seconds", 0.0)


def make_cifar(b, tmp):
    sh(f"/usr/bin/python3 {ROOT}/tests/fixtures/make_cifar.py {tmp}/cf --per-batch 400")
    sh(f"{b}/sp-unpack -q {tmp}/cf/cifar-10-binary.tar.gz | {b}/sp-decode -q | {b}/sp-shard -q -o {tmp}/resnet20")


def overlap(b, tmp, runs, steps):
    """resnet20 at 2 ranks with the allreduce overlapped and not, side by side."""
    make_cifar(b, tmp)
    extra = ["--steps-per-epoch", str(steps)]
    ways = [("overlapped", "1"), ("after the backward", "0")]
    got = {}  # (transport, way) -> [(ms a step, allreduce ms a step)]
    print(f"resnet20, 2 ranks x 1 thread, {steps} steps of global batch 128 a run; ms a step "
          "(allreduce ms a step, rank 0)")
    for i in range(runs):
        line = []
        for transport in ("vader", "tcp"):
            for name, value in ways if i % 2 == 0 else ways[::-1]:
                env = dict(os.environ, SP_ALLREDUCE_OVERLAP=value)
                r = train(b, f"{tmp}/resnet20", "resnet20", 2, 1, transport, f"{tmp}/r.json", 128, extra, env)
                assert r["allreduce_overlap"] == (value == "1"), r
                step = 1000 * r["per_epoch"][0]["seconds"] / steps
                red = 1000 * r["allreduce_seconds"] / steps
                got.setdefault((transport, name), []).append((step, red))
                line.append(f"{transport} {name} {step:.1f} ({red:.1f})")
        print(f"round {i + 1}: " + "; ".join(line), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs after the runs")
    print("| transport | allreduce | median ms a step | best ms a step | median allreduce ms a step "
          "| median of the rounds' ratios to after the backward (range) |")
    print("|---|---|---|---|---|---|")
    for transport in ("vader", "tcp"):
        after = got[transport, ways[1][0]]
        for name, _ in ways:
            v = got[transport, name]
            # each round's pair ran back to back: their ratio is less moved by the load's spells
            ratios = [a[0] / b[0] for a, b in zip(v, after)]
            print(f"| {transport} | {name} | {statistics.median(s for s, _ in v):.1f} | {min(s for s, _ in v):.1f} | "
                  f"{statistics.median(r for _, r in v):.1f} | {statistics.median(ratios):.3f}x "
                  f"({min(ratios):.2f} to {max(ratios):.2f}) |")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    b = os.path.abspath(os.path.join(sys.argv[1], "bin"))
    os.environ.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    tmp = tempfile.mkdtemp(prefix="bench-mpi.")
    try:
        if len(sys.argv) > 2 and sys.argv[2] == "--overlap":
            args = [int(a) for a in sys.argv[3:5]]
            overlap(b, tmp, *(args + [5, 12][len(args):]))
            return
        runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
        sh(f"{b}/sp-unpack -q /usr/share/datasets/fashion-mnist/*.gz | {b}/sp-decode -q | {b}/sp-shard -q -o {tmp}/mlp")
        make_cifar(b, tmp)
        best = {}
        for _ in range(runs):
            for model in ("mlp", "resnet20"):
                for name, ranks, threads, transport in CONFIGS:
                    secs, red = epoch(b, f"{tmp}/{model}", model, ranks, threads, transport, f"{tmp}/r.json")
                    if (model, name) not in best or secs < best[model, name][0]:
                        best[model, name] = (secs, red)
        print(f"sp-train epochs, best of {runs} rounds; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} CPUs")
        print("| model | configuration | epoch s | x 1 rank x 2 threads | allreduce s | allreduce share |")
        print("|---|---|---|---|---|---|")
        for model in ("mlp", "resnet20"):
            base = best[model, CONFIGS[0][0]][0]
            for name, ranks, _, _ in CONFIGS:
                secs, red = best[model, name]
                red_s, share = (f"{red:.3f}", f"{100 * red / secs:.0f}%") if ranks > 1 else ("-", "-")
                print(f"| {model} | {name} | {secs:.3f} | {secs / base:.2f}x | {red_s} | {share} |")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
