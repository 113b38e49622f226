#!/usr/bin/python3
"""The stall table: a consumer that takes batches at a fixed rate from
shardpipe.Loader over a set at a URL, from a server throttled to 1.2x the
bytes that rate needs (one token bucket for all connections), cache limit
50% of the set, prefetch on (SHARDPIPE_PREFETCH, default 2): the time the
consumer waited in the Loader after the first shard arrived, per epoch,
against the epoch's length; then the Loader's throughput over loopback,
unthrottled and from a cold cache, against the local disk.

usage: bench_stall.py BUILD
"""
import functools
import http.server
import json
import os
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
    class H(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def copyfile(self, src, dst):
            while True:
                b = src.read(16384)
                if not b:
                    break
                bucket.take(len(b))
                dst.write(b)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=directory))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main():
    build = os.path.abspath(sys.argv[1])
    os.environ["HDF5_PLUGIN_PATH"] = f"{build}/hdf5-plugin"
    os.environ["SHARDPIPE_READER_LIB"] = f"{build}/lib/libshardpipe-reader.so"
    import shardpipe
    tmp = tempfile.mkdtemp(prefix="sp-stall.")
    env = dict(os.environ, PATH=f"{build}/bin:" + os.environ["PATH"])
    subprocess.run([sys.executable, f"{ROOT}/tests/fixtures/make_cifar.py", f"{tmp}/cf", "--per-batch", "1000"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(f"sp-unpack {tmp}/cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 200 -o {tmp}/www/S",
                   shell=True, check=True, env=env)
    m = json.load(open(f"{tmp}/www/S/manifest.json"))
    train = [s for s in m["shards"] if s["split"] == "train"]
    total, records = sum(s["bytes"] for s in train), sum(s["records"] for s in train)
    batch = 64

    def epoch_time(url, cache=None, limit=None, seconds_per_batch=0.0, epochs=1):
        loader = shardpipe.Loader(url, batch_size=batch, seed=1, threads=2, cache=cache, cache_limit=limit)
        rows = []
        for e in range(epochs):
            loader.set_epoch(e)
            it, waited, first, start = iter(loader), 0.0, None, time.monotonic()
            while True:
                t = time.monotonic()
                try:
                    next(it)
                except StopIteration:
                    break
                if first is None:
                    first = time.monotonic() - t  # the first shard's arrival
                else:
                    waited += time.monotonic() - t
                time.sleep(seconds_per_batch)
            rows.append((time.monotonic() - start, first, waited))
        return rows

    local = epoch_time(f"{tmp}/www/S")[0][0]
    srv = serve(f"{tmp}/www", Bucket(0))
    url = f"http://127.0.0.1:{srv.server_address[1]}/S"
    cold = epoch_time(url, cache=f"{tmp}/c-fast")[0][0]
    srv.shutdown()
    rate_records = 8000.0  # the consumer's records/s
    bps = rate_records * total / records
    srv = serve(f"{tmp}/www", Bucket(1.2 * bps))
    url = f"http://127.0.0.1:{srv.server_address[1]}/S"
    rows = epoch_time(url, cache=f"{tmp}/c-slow", limit=total // 2, seconds_per_batch=batch / rate_records, epochs=3)
    srv.shutdown()
    print(f"{len(train)} train shards, {records} records, {total} bytes; batch {batch}; the consumer takes "
          f"{rate_records:.0f} records/s ({bps / 1e6:.2f} MB/s), the server gives 1.2x that; cache limit 50%\n")
    print("| epoch | epoch (s) | first shard (s) | waited after it (s) | share of the epoch |")
    print("|---|---|---|---|---|")
    for e, (t, first, waited) in enumerate(rows):
        print(f"| {e} | {t:.2f} | {first:.3f} | {waited:.3f} | {100 * waited / t:.2f}% |")
    print(f"\nunthrottled loopback, cold cache: {records / cold:.0f} records/s; local disk: {records / local:.0f} "
          f"records/s; ratio {local / cold:.2f}x")


if __name__ == "__main__":
    main()
