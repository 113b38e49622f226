#!/usr/bin/python3
"""The shard cache's egress, simulated: N equal shards, each used once an
epoch in a fresh seeded permutation (as the reader's shuffled order), a cache
of C shards, E epochs from a cold cache. Policies:
  lru      evict the least recently used shard
  plan     the reader's (shards/cache.c): the shard whose next use in this
           epoch's order lies furthest ahead; those with none this epoch
           first, the most recently used of them first
  belady   the offline optimum: knows every epoch's order, evicts the shard
           whose next use lies furthest ahead
Bound: each epoch after the first hits at most C shards (a hit needs the
shard kept across the epoch's boundary), so no policy downloads less than
E*N - (E-1)*C.

usage: cache_sim.py [--shards N] [--epochs E] [--seed S] [--trials T] [FRACTION...]
prints a Markdown table: downloads over the epochs per policy, in sets, and
each against LRU's.
"""
import argparse
import random


def simulate(n, cap, orders, policy):
    seq = [s for o in orders for s in o]
    epoch_of = [e for e, o in enumerate(orders) for _ in o]
    nxt = [None] * len(seq)  # the position of the same shard's next use
    last = {}
    for i in range(len(seq) - 1, -1, -1):
        nxt[i] = last.get(seq[i], float("inf"))
        last[seq[i]] = i
    cache, used_at, next_use, downloads = set(), {}, {}, 0
    epoch_end = {}
    for e, o in enumerate(orders):
        epoch_end[e] = sum(len(x) for x in orders[: e + 1])
    for i, s in enumerate(seq):
        if s not in cache:
            downloads += 1
            if len(cache) >= cap:
                if policy == "lru":
                    victim = min(cache, key=lambda x: used_at[x])
                elif policy == "belady":
                    victim = max(cache, key=lambda x: next_use[x])
                else:  # plan: next uses known within this epoch only; none: most recent first
                    end = epoch_end[epoch_of[i]]
                    victim = max(cache, key=lambda x: (next_use[x] if next_use[x] < end else float("inf"),
                                                       used_at[x]))
                cache.discard(victim)
            cache.add(s)
        used_at[s], next_use[s] = i, nxt[i]
    return downloads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("fractions", nargs="*", type=float, default=[0.10, 0.25, 0.50])
    a = ap.parse_args()
    print(f"| cache | LRU (sets) | plan (sets) | plan / LRU | offline Belady (sets) | bound (sets) |")
    print("|---|---|---|---|---|---|")
    for f in a.fractions:
        cap = max(1, round(f * a.shards))
        tot = {"lru": 0, "plan": 0, "belady": 0}
        for t in range(a.trials):
            rng = random.Random(a.seed * 1000 + t)
            orders = []
            for _ in range(a.epochs):
                o = list(range(a.shards))
                rng.shuffle(o)
                orders.append(o)
            for p in tot:
                tot[p] += simulate(a.shards, cap, orders, p)
        sets = {p: v / a.trials / a.shards for p, v in tot.items()}
        bound = a.epochs - (a.epochs - 1) * cap / a.shards
        print(f"| {f:.0%} | {sets['lru']:.3f} | {sets['plan']:.3f} | {sets['plan'] / sets['lru']:.3f}x "
              f"| {sets['belady']:.3f} | {bound:.3f} |")


if __name__ == "__main__":
    main()
