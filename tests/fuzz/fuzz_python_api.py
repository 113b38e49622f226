"""Hostile-input driver of the Python-facing API: seeded random arguments to
Loader, Reader.iterate, ShardIterableDataset and ShardDataset, and tampered
state_dicts to load_state_dict, for SECONDS. Every case must either work or
raise TypeError/ValueError (IndexError for ShardDataset's index), within
CASE_SECONDS; anything else (another exception, a crash, a hang) fails.

    fuzz_python_api.py DIR SECONDS [SEED]     DIR: a shard set with a train split

Prints the cases run and how many were refused; exit status 1 on a failure,
naming the case (its number and arguments) so it can be replayed.
"""
import random
import signal
import sys
import time

import numpy as np

import shardpipe

CASE_SECONDS = 20
BIG = [0, 1, 2, 7, 16, 255, 256, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 2, 2**56, 2**63, 2**64 - 1, 2**64,
       2**64 + 1, 10**6, 10**30]


def hostile(r, usual):
    """A value for an argument: often a usual one, else hostile (negative,
    huge, wrong type)."""
    k = r.random()
    if k < 0.5:
        return r.choice(usual)
    if k < 0.75:
        v = r.choice(BIG)
        return -v if r.random() < 0.3 else v
    return r.choice([0.5, -1.5, 1.0, float("nan"), float("inf"), "3", b"1", None, True, False, [1], {}, np.int64(3),
                     np.uint64(2**63), np.float32(2), np.bool_(True), object()])


def loader_args(r):
    names = {"batch_size": [1, 7, 16, 64], "seed": [0, 1, 5], "rank": [0, 1], "world_size": [1, 2, 3],
             "threads": [0, 1, 2], "window_records": [0, 1, 16, 100], "size": [224, 32], "shuffle": [True, False],
             "drop_last": [True, False], "normalize": [True, False], "return_keys": [False, True],
             "return_label2": [False, True], "view": [None, "train", "eval"]}
    return {k: hostile(r, v) for k, v in names.items() if r.random() < 0.5}


def take(it, n):
    for _ in range(n):
        if next(it, None) is None:
            return


def tamper(r, state):
    state = dict(state)
    for _ in range(r.randint(1, 3)):
        k = r.choice(sorted(state) + ["extra"])
        op = r.random()
        if op < 0.15:
            state.pop(k, None)
        else:
            state[k] = hostile(r, [state.get(k, 0), 0, 1])
    return state


def case(r, directory):
    what = r.randrange(5)
    if what == 0:  # a Loader: a few batches, its state to a fresh one
        args = loader_args(r)
        L = shardpipe.Loader(directory, **args)
        it = iter(L)
        take(it, r.randrange(4))
        state = L.state_dict()
        L2 = shardpipe.Loader(directory, **args)
        L2.load_state_dict(state)
        if r.random() < 0.5:
            L2.set_epoch(hostile(r, [0, 1, state["epoch"]]))
        take(iter(L2), 3)
        return args
    if what == 1:  # a tampered state_dict
        L = shardpipe.Loader(directory, batch_size=16, threads=1, world_size=1, rank=0)
        take(iter(L), 1)
        state = tamper(r, L.state_dict())
        L.load_state_dict(state)
        n = sum(1 for _ in L)
        assert n <= len(L), f"{n} batches of {len(L)}"
        return state
    if what == 2:  # Reader.iterate
        R = shardpipe.Reader(directory)
        args = [hostile(r, [1, 7, 64]), hostile(r, [0, 3]), r.random() < 0.5, hostile(r, [0, 1]),
                hostile(r, [0, 1]), hostile(r, [1, 2]), hostile(r, [0, 5]), hostile(r, [0, 16])]
        take(R.iterate(*args), 3)
        return args
    if what == 3:  # ShardIterableDataset
        args = {k: hostile(r, v) for k, v in {"chunk_records": [1, 64], "window_records": [0, 16],
                                               "seed": [0, 2], "rank": [0], "world_size": [1, 2],
                                               "size": [224], "shuffle": [True], "partitions": [64, 4]}.items()
                if r.random() < 0.5}
        from shardpipe.torch_data import ShardIterableDataset
        ds = ShardIterableDataset(directory, **args)
        ds.set_epoch(hostile(r, [0, 1]))
        take(iter(ds), 5)
        return args
    ds = shardpipe.ShardDataset(directory)  # ShardDataset: any index
    i = hostile(r, [0, 1, -1, 204])
    try:
        ds[i]
    except IndexError:
        pass
    return i


def main():
    directory, seconds = sys.argv[1], float(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    r = random.Random(seed)
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("case ran over its time")))
    end, n, refused = time.monotonic() + seconds, 0, 0
    while time.monotonic() < end:
        state = r.getstate()
        signal.alarm(CASE_SECONDS)
        try:
            case(r, directory)
        except (TypeError, ValueError):
            refused += 1
        except Exception as e:
            r.setstate(state)
            print(f"fuzz_python_api: case {n} (seed {seed}): {type(e).__name__}: {e}", file=sys.stderr)
            raise
        finally:
            signal.alarm(0)
        n += 1
    print(f"{n} cases, {refused} refused with TypeError/ValueError, none failed otherwise")


if __name__ == "__main__":
    main()
