#!/usr/bin/python3
"""The egress table: bytes a remote set's cache downloads over 3 epochs with
the cache limit at 25% of the set, the reader's eviction (next use in this
epoch's order, then most recent) against LRU on the same order, counted by
the cache's own counters (build/tests/cache_egress), from a server on
127.0.0.1; then cache_sim.py's figures for 10%, 25% and 50%.

usage: bench_egress.py BUILD [SHARDS]   (SHARDS: a set to serve; default: a
CIFAR-like fixture of 1640 train records in shards of 16, made here)
"""
import functools
import http.server
import os
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    build = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="sp-egress.")
    env = dict(os.environ, PATH=f"{build}/bin:" + os.environ["PATH"])
    if len(sys.argv) > 2:
        shards = os.path.abspath(sys.argv[2])
    else:
        subprocess.run([sys.executable, f"{ROOT}/tests/fixtures/make_cifar.py", f"{tmp}/cf", "--per-batch", "328"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        shards = f"{tmp}/S"
        subprocess.run(f"sp-unpack {tmp}/cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 16 -o {shards}",
                       shell=True, check=True, env=env)
    import json
    m = json.load(open(f"{shards}/manifest.json"))
    train = [s for s in m["shards"] if s["split"] == "train"]
    total = sum(s["bytes"] for s in train)
    limit = total // 4
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=os.path.dirname(shards))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/{os.path.basename(shards)}"
    rows = {}
    for policy in ("plan", "lru"):
        e = dict(env, SHARDPIPE_CACHE=f"{tmp}/cache-{policy}", SHARDPIPE_CACHE_LIMIT=str(limit),
                 SHARDPIPE_CACHE_EVICTION=policy)
        out = subprocess.run([f"{build}/tests/cache_egress", url, "train", "3", "1", "32"], env=e, check=True,
                             capture_output=True, text=True).stdout.split("\n")
        rows[policy] = [int(line.split()[7]) for line in out if line]
    srv.shutdown()
    print(f"{len(train)} train shards, {total} bytes; cache limit {limit} bytes (25%); 3 epochs, seeds 1, 2, 3\n")
    print("| epoch | reader's eviction: bytes downloaded (total) | LRU (total) | ratio |")
    print("|---|---|---|---|")
    for e in range(3):
        p, l = rows["plan"][e], rows["lru"][e]
        print(f"| {e} | {p} ({p / total:.2f} sets) | {l} ({l / total:.2f} sets) | {p / l:.3f}x |")
    print(f"\nbound for any policy: {3 - 2 * 0.25:.2f} sets (each epoch after the first hits at most the cache)\n")
    print("Simulated (cache_sim.py, 100 equal shards, 3 epochs, 5 trials):\n")
    sys.stdout.flush()
    subprocess.run([sys.executable, f"{ROOT}/bench/cache_sim.py", "0.10", "0.25", "0.50"], check=True)


if __name__ == "__main__":
    main()
