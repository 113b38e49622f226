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
over loopback from nginx (unthrottled; the Python server tops out near
200 MB/s here, below what is measured), from a cold cache, with 2 and with
4 prefetch threads (SHARDPIPE_PREFETCH_THREADS), against the local disk,
and the floor: the same shards' bytes fetched from the same nginx by curl to
/dev/null, one at a time and 2 at a time (one process, its connections
reused), as records/s; each read `runs` times, alternately. Last, the floor
when no core is spare (the local read's and the faster curl's median times
added, computed, not measured). Then a trainer as the consumer: sp-train
for one epoch over a set of --trainer-records CIFAR-shaped records from the
local disk and from the same nginx into a cold cache, alternately, for each
model of --trainer-models (mlp, the lightest step, and cnn), as wall
seconds (the throughput ratio is local / cold).

usage: bench_stall.py BUILD [--records N] [--rate R] [--runs K] [--reader-threads T] [--cold-only]
                      [--trainer-records M] [--trainer-models LIST] [--trainer-runs J]
  N: train records (default 10000, in shards of 200); R: the consumer's
  records/s (default 2500); K: runs of the cold read and the local one (5);
  T: the Loader's reader threads (default 2; 1 leaves a core of this 2-core
  machine to the downloads, as a trainer's loader leaves cores to the rest);
  --cold-only: only the unthrottled reads (not the stall table).
"""
import argparse
import functools
import http.server
import json
import os
import shutil
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


def nginx(tmp, directory):
    """nginx serving directory on 127.0.0.1 (one worker, sendfile, no log): (its pid
    file, its URL of directory/S)."""
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    d = f"{tmp}/nginx"
    os.makedirs(f"{d}/body", exist_ok=True)
    user = "user root;" if os.getuid() == 0 else ""
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(f"{user}\ndaemon on;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nworker_processes 1;\n"
                f"events {{ worker_connections 64; }}\nhttp {{ access_log off; sendfile on; client_body_temp_path {d}/body; "
                f"server {{ listen 127.0.0.1:{port}; root {directory}; }} }}\n")
    subprocess.run(["nginx", "-e", f"{d}/error.log", "-c", f"{d}/nginx.conf"], check=True)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return f"{d}/nginx.pid", f"http://127.0.0.1:{port}/S"


def curl_seconds(config, parallel):
    """Seconds for curl to fetch the URLs of config (a -K file) to /dev/null,
    `parallel` at a time."""
    cmd = ["curl", "-sSf", "--no-progress-meter", "-K", config] + (["-Z", "--parallel-max", str(parallel)] if parallel > 1 else [])
    t = time.monotonic()
    subprocess.run(cmd, check=True)
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=2500.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--reader-threads", type=int, default=2)
    ap.add_argument("--cold-only", action="store_true")
    ap.add_argument("--trainer-records", type=int, default=50000,
                    help="records of the set sp-train reads cold against the local disk (0: skip)")
    ap.add_argument("--trainer-models", default="mlp,cnn")
    ap.add_argument("--trainer-runs", type=int, default=3)
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
        loader = shardpipe.Loader(url, batch_size=batch, seed=1, threads=a.reader_threads, cache=cache, cache_limit=limit,
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
    table = {}
    if not a.cold_only:
        pid, url = serve(f"{tmp}/www", Bucket(1.2 * bps))
        for tell in (True, False):
            table[tell] = epochs(url, cache=f"{tmp}/c-slow-{int(tell)}", limit=total // 2,
                                 seconds_per_batch=batch / a.rate, n=3, tell_next=tell)
        stop(pid)
        # the same consumer over the local disk: what the Loader's own work costs it (its floor)
        table["local"] = epochs(f"{tmp}/www/S", seconds_per_batch=batch / a.rate, n=3)
        load_mid = os.getloadavg()

    if not shutil.which("nginx") or not shutil.which("curl"):
        sys.exit("bench_stall: the cold read needs nginx and curl (scripts/install-deps.sh)")
    pidfile, url = nginx(tmp, f"{tmp}/www")
    # each cold read under a URL of its own (a link to the set), so that each starts its own prefetch threads
    threads = (2, 4)
    config = f"{tmp}/curl.cfg"
    with open(config, "w") as f:
        for sh in train:
            f.write(f'url = "{url}/{sh["file"]}"\noutput = "/dev/null"\n')
    runs = {"local": [], "curl 1": [], "curl 2": []}
    runs.update({f"cold {t}": [] for t in threads})
    epochs(f"{tmp}/www/S")  # the library loaded, the set in the page cache
    curl_seconds(config, 1)
    for k in range(a.runs):
        runs["local"].append(epochs(f"{tmp}/www/S")[0][0])
        for t in threads:
            os.symlink("S", f"{tmp}/www/S{t}-{k}")
            os.environ["SHARDPIPE_PREFETCH_THREADS"] = str(t)
            runs[f"cold {t}"].append(epochs(f"{url}{t}-{k}", cache=f"{tmp}/c-fast-{t}-{k}")[0][0])
        del os.environ["SHARDPIPE_PREFETCH_THREADS"]
        runs["curl 1"].append(curl_seconds(config, 1))
        runs["curl 2"].append(curl_seconds(config, 2))
    trained = trainer_runs(a, tmp, env, url) if a.trainer_records else {}
    with open(pidfile) as f:
        os.kill(int(f.read()), 15)
    load_after = os.getloadavg()

    print(f"{len(train)} train shards, {records} records, {total} bytes; batch {batch}, one partition, "
          f"{a.reader_threads} reader threads; "
          f"load average {load[0]:.2f} before, {load_after[0]:.2f} after")
    if not a.cold_only:
        print(f"the consumer takes {a.rate:.0f} records/s ({bps / 1e6:.2f} MB/s), the server gives 1.2x that; "
              f"cache limit 50%; SHARDPIPE_PREFETCH={os.environ.get('SHARDPIPE_PREFETCH', 'default')}; "
              f"load average {load_mid[0]:.2f} after the stall table\n")
        print("| read | epoch | epoch (s) | first batch (s) | waited, boundary included (s) | share of the epoch |")
        print("|---|---|---|---|---|---|")
        names = {True: "URL, next epoch's order told", False: "URL, one epoch's order (as before)",
                 "local": "local disk, same consumer"}
        for key in (True, False, "local"):
            for e, (t, first, waited) in enumerate(table[key]):
                w = waited if e == 0 else waited + first
                print(f"| {names[key]} | {e} | {t:.2f} | {first:.3f} | {w:.3f} | {100 * w / t:.2f}% |")
        print("\n(epoch 0's first batch, the cold start, is not in its waits; in epochs 1 and 2 it is)")
    print("\nunthrottled loopback (nginx) from a cold cache against the local disk (page cache), and the floor: "
          "the shards' bytes by curl to /dev/null; records/s, run by run (ratio: to the local disk):")
    cols = ["local"] + [f"cold {t}" for t in threads] + ["curl 1", "curl 2"]
    heads = ["local disk"] + [f"cold, {t} prefetch threads" for t in threads] + ["curl, 1 at a time",
                                                                                  "curl, 2 at a time"]
    print("| run | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    med = {c: statistics.median(runs[c]) for c in cols}
    for k in list(range(a.runs)) + ["median"]:
        row = [med[c] if k == "median" else runs[c][k] for c in cols]
        loc = row[0]
        cells = [f"{records / row[0]:.0f}"] + [f"{records / v:.0f} ({loc / v:.2f}x)" for v in row[1:]]
        print(f"| {k} | " + " | ".join(cells) + " |")
    # with no core to spare, the transfer (client and server) and the read take turns: their times add up
    best = min(med["curl 1"], med["curl 2"])
    print(f"\nthe floor with no spare core (the medians' times added, computed): local + the faster curl = "
          f"{records / (med['local'] + best):.0f} records/s ({med['local'] / (med['local'] + best):.2f}x)")
    if trained:
        print(f"\na trainer as the consumer: sp-train -e 1 over {a.trainer_records} records (the same nginx), "
              "wall seconds from its start to its end, the local disk against a cold cache, run by run "
              "(ratio: local / cold, the cold run's throughput against the local one's):")
        print("| model | " + " | ".join(f"run {k}" for k in range(a.trainer_runs)) + " | median |")
        print("|---|" + "---|" * (a.trainer_runs + 1))
        for model, pairs in trained.items():
            cells = [f"{loc:.2f} / {cold:.2f} ({loc / cold:.2f}x)" for loc, cold in pairs]
            ml, mc = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
            print(f"| {model} | " + " | ".join(cells) + f" | {ml:.2f} / {mc:.2f} ({ml / mc:.2f}x) |")


def trainer_runs(a, tmp, env, url):
    """{model: [(local s, cold s), ...]}: sp-train -e 1 on a set of
    a.trainer_records CIFAR-shaped records from the local disk (its files in
    the page cache) and from url's server into a fresh cache, alternately."""
    d = f"{tmp}/www/T"
    subprocess.run([sys.executable, f"{ROOT}/tests/fixtures/make_cifar.py", f"{tmp}/tf", "--per-batch",
                    str(a.trainer_records // 5)], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(f"sp-unpack {tmp}/tf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 200 -o {d}",
                   shell=True, check=True, env=env)
    turl = url[:-len("/S")] + "/T/"

    def train(model, src, cache=None):
        e = dict(env, SHARDPIPE_CACHE=cache) if cache else env
        t = time.monotonic()
        subprocess.run(["sp-train", src, "-m", model, "-e", "1", "-q", "--eval-steps", "1"], check=True, env=e,
                       stdout=subprocess.DEVNULL)
        return time.monotonic() - t

    out = {}
    for model in a.trainer_models.split(","):
        train(model, d)  # the set in the page cache, the program loaded
        out[model] = [(train(model, d), train(model, turl, f"{tmp}/c-train-{model}-{k}"))
                      for k in range(a.trainer_runs)]
    return out


if __name__ == "__main__":
    main()
