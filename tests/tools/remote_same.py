#!/usr/bin/python3
"""remote_same.py LOCAL URL CACHE: prints "same" when shardpipe.Loader over the
set at URL (cache CACHE, limit 2M) gives the local set's batches, seed 7,
epochs 0 and 1, threads 0 and 2, and load_data the same arrays; fails otherwise.
For tests/tools/test_remote_http.sh and test_remote_s3.sh."""
import sys

import numpy as np

import shardpipe

local, url, cache = sys.argv[1:4]
for threads in (0, 2):
    a = shardpipe.Loader(local, batch_size=16, seed=7, threads=threads)
    b = shardpipe.Loader(url, batch_size=16, seed=7, threads=threads, cache=cache, cache_limit="2M")
    for epoch in (0, 1):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        x, y = list(a), list(b)
        assert len(x) == len(y) == 13, (len(x), len(y))
        for p, q in zip(x, y):
            assert np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1]), (threads, epoch)
t = shardpipe.load_data(url, cache=cache)
l = shardpipe.load_data(local)
assert all(np.array_equal(p, q) for p, q in zip(t[0] + t[1], l[0] + l[1]))
print("same")
