#!/usr/bin/python3
"""The stall table: a consumer that takes batches at a fixed rate from
shardpipe.Loader over a set at a URL (one partition: one shard in use at a
time), from a server throttled to 1.2x the bytes that rate needs (one token
bucket for all connections), cache limit 50% of the set, prefetch on
(SHARDPIPE_PREFETCH): the time the consumer waited in the Loader per epoch,
against the epoch's length. Epoch 0's first batch (the first shard's
download from a cold cache: nothing can be read before it) is shown apart;
every other wait counts, the first batch of epochs 1, 2 (the boundaries)
included. Side by side, the same run with the Loader not telling the cache
the next epoch's order (as before it did). Then the Loader's throughput
over loopback, unthrottled, from a cold cache, against the local disk, each
read `runs` times, alternately.

usage: bench_stall.py BUILD [--records N] [--rate R] [--runs K]
  N: train records (default 10000, in shards of 200); R: the consumer's
  records/s (default 2500); K: runs of the cold read and the local one (5).
"""
import argparse
import functools
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))


class Bucket:
    """rate bytes/s shared by every connection; 0: no limit."""

    def __init__(self, rate):
        self.rate, self.lock, self.t = rate, threading.Lock(), time.monotonic()

    def take(self, n):
        if not self.rate:
            return
        with self.lock:
            self.t = max(self.t, time.monotonic()) + n / self.rate
            wait = self.t - time.monotonic()
        if wait > 0:
            time.sleep(wait)


def serve(directory, bucket):
    """A server of directory on 127.0.0.1 in a process of its own (so that
    it does not take turns with the consumer for Python's lock)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)

        class H(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def copyfile(self, src, dst):
                while True:
                    b = src.read(65536)
                    if not b:
                        break
                    bucket.take(len(b))
                    dst.write(b)

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=directory))
        os.write(w, str(srv.server_address[1]).encode())
        os.close(w)
        srv.serve_forever()
        os._exit(0)
    os.close(w)
    port = int(os.read(r, 32))
    os.close(r)
    return pid, f"http://127.0.0.1:{port}/S"


def stop(pid):
    os.kill(pid, 15)
    os.waitpid(pid, 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=2500.0)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.environ["HDF5_PLUGIN_PATH"] = f"{build}/hdf5-plugin"
    os.environ["SHARDPIPE_READER_LIB"] = f"{build}/lib/libshardpipe-reader.so"
    import shardpipe
    import shardpipe.loader
    tmp = tempfile.mkdtemp(prefix="sp-stall.")
    env = dict(os.environ, PATH=f"{build}/bin:" + os.environ["PATH"])
    subprocess.run([sys.executable, f"{ROOT}/tests/fixtures/make_cifar.py", f"{tmp}/cf", "--per-batch",
                    str(a.records // 5)], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(f"sp-unpack {tmp}/cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 200 -o {tmp}/www/S",
                   shell=True, check=True, env=env)
    m = json.load(open(f"{tmp}/www/S/manifest.json"))
    train = [s for s in m["shards"] if s["split"] == "train"]
    total, records = sum(s["bytes"] for s in train), sum(s["records"] for s in train)
    batch = 64
    iterate = shardpipe.loader.Reader.iterate

    def without_next(self, *args, next_seed=None, **kw):  # the Loader as it was: one epoch's order at a time
        return iterate(self, *args, **kw)

    def epochs(url, cache=None, limit=None, seconds_per_batch=0.0, n=1, tell_next=True):
        """[(epoch s, first batch s, waited s after it)] for n epochs."""
        shardpipe.loader.Reader.iterate = iterate if tell_next else without_next
        loader = shardpipe.Loader(url, batch_size=batch, seed=1, threads=2, cache=cache, cache_limit=limit,
                                  partitions=1)
        rows = []
        for e in range(n):
            loader.set_epoch(e)
            it, waited, first, start = iter(loader), 0.0, None, time.monotonic()
            due = start
            while True:
                t = time.monotonic()
                try:
                    next(it)
                except StopIteration:
                    break
                if first is None:
                    first = time.monotonic() - t
                else:
                    waited += time.monotonic() - t
                # the consumer's pace: a batch every seconds_per_batch of its own work, on a clock that a wait
                # does not move back
                due = max(due, time.monotonic()) + seconds_per_batch
                time.sleep(max(0.0, due - time.monotonic()))
            rows.append((time.monotonic() - start, first, waited))
        shardpipe.loader.Reader.iterate = iterate
        return rows

    load = os.getloadavg()
    bps = a.rate * total / records
    pid, url = serve(f"{tmp}/www", Bucket(1.2 * bps))
    table = {}
    for tell in (True, False):
        table[tell] = epochs(url, cache=f"{tmp}/c-slow-{int(tell)}", limit=total // 2,
                             seconds_per_batch=batch / a.rate, n=3, tell_next=tell)
    stop(pid)
    # the same consumer over the local disk: what the Loader's own work costs it (its floor)
    table["local"] = epochs(f"{tmp}/www/S", seconds_per_batch=batch / a.rate, n=3)

    pid, url = serve(f"{tmp}/www", Bucket(0))
    local, cold = [], []
    epochs(f"{tmp}/www/S")  # the library loaded, the set in the page cache
    for k in range(a.runs):
        local.append(epochs(f"{tmp}/www/S")[0][0])
        cold.append(epochs(url, cache=f"{tmp}/c-fast-{k}")[0][0])
    stop(pid)
    load_after = os.getloadavg()

    print(f"{len(train)} train shards, {records} records, {total} bytes; batch {batch}, one partition; the consumer "
          f"takes {a.rate:.0f} records/s ({bps / 1e6:.2f} MB/s), the server gives 1.2x that; cache limit 50%; "
          f"SHARDPIPE_PREFETCH={os.environ.get('SHARDPIPE_PREFETCH', 'default')}; load average "
          f"{load[0]:.2f} before, {load_after[0]:.2f} after\n")
    print("| read | epoch | epoch (s) | first batch (s) | waited, boundary included (s) | share of the epoch |")
    print("|---|---|---|---|---|---|")
    names = {True: "URL, next epoch's order told", False: "URL, one epoch's order (as before)",
             "local": "local disk, same consumer"}
    for key in (True, False, "local"):
        for e, (t, first, waited) in enumerate(table[key]):
            w = waited if e == 0 else waited + first
            print(f"| {names[key]} | {e} | {t:.2f} | {first:.3f} | {w:.3f} | {100 * w / t:.2f}% |")
    print("\n(epoch 0's first batch, the cold start, is not in its waits; in epochs 1 and 2 it is)\n")
    med_l, med_c = statistics.median(local), statistics.median(cold)
    print("unthrottled loopback from a cold cache against the local disk, records/s, run by run:")
    print("| run | local disk | cold loopback | ratio |")
    print("|---|---|---|---|")
    for k in range(a.runs):
        print(f"| {k} | {records / local[k]:.0f} | {records / cold[k]:.0f} | {local[k] / cold[k]:.2f}x |")
    print(f"| median | {records / med_l:.0f} | {records / med_c:.0f} | {med_l / med_c:.2f}x |")


if __name__ == "__main__":
    main()
