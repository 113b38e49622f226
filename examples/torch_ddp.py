#!/usr/bin/python3
"""torch_ddp.py SHARDS [EPOCHS]: data-parallel PyTorch training on CPU, two
processes (torch.multiprocessing) joined by torch.distributed's gloo backend,
each reading its own share of every epoch through shardpipe.Loader.

The Loader takes rank and world size from the process group, so each rank
reads (and decompresses) about half the records; drop_last=True gives the
ranks the same number of batches, which DistributedDataParallel needs. The
script checks what it relies on, and exits 1 when it does not hold: the
ranks' records in an epoch are disjoint, their loss goes down, and their
weights are equal at the end. For GPUs, use the "nccl" backend and move the
model and batches to the rank's device.

In a checkout: PYTHONPATH=python examples/torch_ddp.py ~/shards/fmnist
"""
import datetime
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import shardpipe

WORLD = 2


def run(rank, shards, epochs, port):
    """One rank: trains, then checks the ranks' keys, losses and weights together."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    # a rank that never joins, or a collective that never ends, fails the run
    # after 2 minutes instead of gloo's default 30
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=datetime.timedelta(minutes=2))
    loader = shardpipe.Loader(shards, batch_size=64, normalize=True, as_torch=True, drop_last=True,
                              return_keys=True, threads=1)
    assert (loader.rank, loader.world_size) == (rank, WORLD), (loader.rank, loader.world_size)
    h, w, c = loader.reader.shape
    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = torch.nn.parallel.DistributedDataParallel(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(h * w * c, 64), torch.nn.ReLU(),
                            torch.nn.Linear(64, len(loader.reader.classes))))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses, first_keys = [], None
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        total = torch.zeros(2, dtype=torch.float64)  # loss sum, records
        keys = []
        for images, labels, batch_keys in loader:
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += torch.tensor([loss.item() * len(labels), len(labels)], dtype=torch.float64)
            keys += list(batch_keys)
        dist.all_reduce(total)  # over both ranks
        losses.append(total[0].item() / total[1].item())
        first_keys = keys if first_keys is None else first_keys
        if rank == 0:
            print(f"epoch {epoch + 1}: loss {losses[-1]:.4f} over {int(total[1])} records", flush=True)
    every = [None] * WORLD
    dist.all_gather_object(every, (len(loader), first_keys, [p.detach().clone() for p in model.parameters()]))
    if rank == 0:  # rank 0 prints for both: two processes' lines on one stdout may interleave
        for r, (batches, keys, _) in enumerate(every):
            print(f"rank {r} of {WORLD}: {batches} batches an epoch, {len(keys)} records in epoch 1", flush=True)
        (_, keys0, params0), (_, keys1, params1) = every
        shared = set(keys0) & set(keys1)
        assert not shared, f"the ranks read {len(shared)} records both, e.g. {sorted(shared)[:3]}"
        assert len(set(keys0)) == len(keys0) and len(set(keys1)) == len(keys1), "a rank read a record twice"
        assert all(torch.equal(a, b) for a, b in zip(params0, params1)), "the ranks' weights differ"
        assert losses[-1] < losses[0], f"the loss did not go down: {losses}"
        print(f"ranks' records disjoint ({len(keys0)} + {len(keys1)}), weights equal, "
              f"loss {losses[0]:.4f} -> {losses[-1]:.4f}", flush=True)
    # both ranks reach here before either tears the group down: a rank that
    # destroys it while the other is still in a collective may hang there
    dist.barrier()
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: torch_ddp.py SHARDS [EPOCHS]")
    epochs = int(sys.argv[2]) if len(sys.argv) == 3 else 3
    try:
        mp.spawn(run, args=(sys.argv[1], epochs, free_port()), nprocs=WORLD)
    except mp.ProcessRaisedException as e:
        sys.exit(f"torch_ddp.py: {str(e).strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
