#!/usr/bin/python3
"""The scale harness: every stage of every path at several set sizes, its
time per record and its peak RSS, to show that the cost grows linearly with
the records and the memory not at all.

usage: scale.py BUILD_DIR
  SCALE_SIZES  records per set, comma-separated (default 10000,100000)
  SCALE_PATHS  the paths to run (default all): idx, ilsvrc-224,
               ilsvrc-encoded, parts (ILSVRC --encoded through sp-decode and
               sp-shard --part I/64, then sp-shard --merge), photos (the
               conversion of real photographs against bare libjpeg-turbo,
               and the hours projected for ILSVRC2012)
  SCALE_PHOTOS the photographs of the photos path (default 1000)
  SCALE_DIR    where the sets are written (default a new directory in $TMPDIR,
               removed at the end; a given one is kept, and its sets reused)

The sets are synthetic, shaped like the real ones:
  idx     a Fashion-MNIST-style IDX pair (uncompressed): the real train images
          repeated, one pixel changed per copy (so no two images are the same),
          with their labels; 1% of the records are the test split.
  ilsvrc  ILSVRC2012_img_train.tar holding 1,000 class tars n0xxxxxxx.tar of
          small JPEGs (crops of real photographs, 24 to 96 pixels a side, a few
          grayscale, CMYK, or PNGs named .JPEG; each file made unique by a JPEG
          comment), ILSVRC2012_img_val.tar (1 record in 26, as 50,000 is to
          1.28 million) and its LOC_val_solution.csv.

Every stage runs as its own process of a pipeline, under nice -n 10; its
peak RSS is /usr/bin/time's %M and its time the CPU seconds (user + system)
it used, per record, so that stages sharing the cores are told apart. The
sets' consumers (sp-verify, sp-inspect, sp-train to its first step, the C
reader's epoch, the Python Loader's epoch) run alone: wall seconds. sp-train's
RSS is also given less its model's bytes (weights, gradients, Adam's moments
and a batch's activations, as sp-train -v counts them): what is left is the
reader's and the process's, which the goals are about.
Prints one table: a row per path and stage, a column pair per size, and the
ratios (time per record; RSS) of the largest size to the smallest and to the
one before it.
"""
import glob
import gzip
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from benchlib import make_set  # noqa: E402

NICE = ["nice", "-n", "10"]
FMNIST = "/usr/share/datasets/fashion-mnist"
PARTS = 64


def run_pipeline(stages, stdin=None, stdout=None, stderr=None):
    """Runs the commands of stages (lists of argv) as one pipeline, the first
    reading stdin (a path, or nothing) and the last writing stdout (a path, or
    /dev/null) and stderr (a path, or this process's stderr), each under /usr/bin/time (a forked copy of this interpreter
    would count in a child's own ru_maxrss). Returns (wall seconds, [(CPU
    seconds, peak RSS in MB)] a stage). Exits if a stage fails."""
    procs, prev = [], open(stdin, "rb") if stdin else subprocess.DEVNULL
    out = open(stdout or os.devnull, "wb")
    err = open(stderr, "wb") if stderr else None
    tmp = tempfile.mkdtemp(prefix="sp-scale-time-")
    t = time.perf_counter()
    for i, argv in enumerate(stages):
        last = i == len(stages) - 1
        p = subprocess.Popen(["/usr/bin/time", "-f", "%U %S %M", "-o", f"{tmp}/{i}"] + NICE + argv,
                             stdin=prev, stdout=out if last else subprocess.PIPE, stderr=err if last else None)
        if prev not in (None, subprocess.DEVNULL):
            prev.close()
        prev = p.stdout
        procs.append(p)
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - t
    out.close()
    if err:
        err.close()
    res = []
    for i, (argv, code) in enumerate(zip(stages, codes)):
        if code != 0:
            sys.exit(f"scale: {' '.join(argv)}: exit status {code}")
        user, system, kb = open(f"{tmp}/{i}").read().split()[-3:]
        res.append((float(user) + float(system), int(kb) / 1024))
    shutil.rmtree(tmp)
    return wall, res


def make_idx(d, n):
    """An IDX pair in d of n records (n - n//100 train, n//100 test) from the
    real Fashion-MNIST train images, copy k of an image with pixel k % 784
    changed. Returns the four paths, labels first."""
    with gzip.open(f"{FMNIST}/train-images-idx3-ubyte.gz") as f:
        imgs = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 784)
    with gzip.open(f"{FMNIST}/train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], np.uint8)
    os.makedirs(d, exist_ok=True)
    paths = []
    for split, count in (("train", n - n // 100), ("t10k", n // 100)):
        li, ii = f"{d}/{split}-labels-idx1-ubyte", f"{d}/{split}-images-idx3-ubyte"
        with open(li, "wb") as fl, open(ii, "wb") as fi:
            fl.write((2049).to_bytes(4, "big") + count.to_bytes(4, "big"))
            fi.write((2051).to_bytes(4, "big") + count.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2)
            for start in range(0, count, len(imgs)):
                k = start // len(imgs)
                m = min(len(imgs), count - start)
                block = imgs[:m].copy()
                block[:, k % 784] ^= 0x55 if split == "train" else 0xAA
                fi.write(block.tobytes())
                fl.write(labels[:m].tobytes())
        paths += [li, ii]
    return paths


def jpeg_pool(d, n=1000):
    """n small encoded images (bytes) cut from real photographs: JPEGs of 24 to
    96 pixels a side, 1 in 100 grayscale, 1 in 200 CMYK, 1 in 250 a PNG."""
    src = os.path.join(d, "pool")
    os.makedirs(src, exist_ok=True)
    sizes = [(w, h) for w in (24, 40, 64, 96) for h in (32, 48, 80)]
    files = make_set(src, n, sizes)
    from PIL import Image
    pool = []
    for i, f in enumerate(files):
        img = Image.open(f)
        b = io.BytesIO()
        if i % 250 == 3:
            img.save(b, "PNG")
        elif i % 200 == 5:
            img.convert("CMYK").save(b, "JPEG", quality=90)
        elif i % 100 == 7:
            img.convert("L").save(b, "JPEG", quality=90)
        else:
            b.write(open(f, "rb").read())
        pool.append(b.getvalue())
    shutil.rmtree(src)
    return pool


def unique(data, i):
    """data made unique by a JPEG comment naming i after its SOI; a PNG gets
    the same text after its IEND chunk, which decoders ignore."""
    tag = b"copy %d" % i
    if data[:2] == b"\xff\xd8":
        return data[:2] + b"\xff\xfe" + (len(tag) + 2).to_bytes(2, "big") + tag + data[2:]
    return data + tag


def add(t, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0
    t.addfile(info, io.BytesIO(data))


def make_ilsvrc(d, n, pool):
    """An ILSVRC2012-shaped pair of tars in d of n images in all (1 in 26 of
    them val) and its LOC_val_solution.csv and classes.txt. Returns (train
    tar, val tar, csv, classes)."""
    os.makedirs(d, exist_ok=True)
    wnids = [f"n{1440764 + 1000 * c:08d}" for c in range(1000)]
    nval = n // 26
    ntrain = n - nval
    rng = random.Random(5)
    k = 0
    train = f"{d}/ILSVRC2012_img_train.tar"
    with tarfile.open(train, "w", format=tarfile.USTAR_FORMAT) as t:
        for c, w in enumerate(wnids):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w", format=tarfile.USTAR_FORMAT) as ct:
                for j in range(ntrain // 1000 + (c < ntrain % 1000)):
                    add(ct, f"{w}_{j}.JPEG", unique(pool[rng.randrange(len(pool))], k))
                    k += 1
            add(t, f"{w}.tar", inner.getvalue())
    val = f"{d}/ILSVRC2012_img_val.tar"
    csv = f"{d}/LOC_val_solution.csv"
    with tarfile.open(val, "w", format=tarfile.USTAR_FORMAT) as t, open(csv, "w") as f:
        f.write("ImageId,PredictionString\n")
        for j in range(1, nval + 1):
            add(t, f"ILSVRC2012_val_{j:08d}.JPEG", unique(pool[rng.randrange(len(pool))], k))
            k += 1
            f.write(f"ILSVRC2012_val_{j:08d},{wnids[j % 1000]} 0 0 10 10 \n")
    classes = f"{d}/classes.txt"
    with open(classes, "w") as f:
        f.writelines(f"{w} class {c}\n" for c, w in enumerate(wnids))
    return train, val, csv, classes


def consumers(b, build, shards, encoded):
    """Rows of the set's readers: (name, wall seconds, peak RSS MB, False).
    encoded: the set holds JPEGs, read through the train view at 224."""
    rows = []
    view = ["1", "train", "224"] if encoded else []
    lview = ", view='train', size=224" if encoded else ""
    for name, argv in (("sp-verify", [f"{b}/sp-verify", "-q", shards]),
                       ("sp-inspect", [f"{b}/sp-inspect", shards]),
                       ("sp-train, to its first step", [f"{b}/sp-train", shards, "-v", "-m", "mlp", "-e", "1",
                                                        "--steps-per-epoch", "1", "--eval-steps", "1", "-b", "64"]),
                       ("C reader, open + epoch", [f"{build}/bench/reader_bench", shards, "train", "256",
                                                  "shuffle", "2"] + view),
                       ("Loader, open + epoch", ["/usr/bin/python3", "-c",
                                                 "import sys, shardpipe; l = shardpipe.Loader(sys.argv[1], "
                                                 f"batch_size=256, seed=1{lview}); print(sum(len(y) for _, y in l))",
                                                 shards])):
        out, err = f"{shards}.out", f"{shards}.err"
        wall, ((_, rss),) = run_pipeline([argv], stdout=out, stderr=err)
        rows.append((name, wall, rss, False))
        if name.startswith("sp-train"):
            # the model's own bytes, as sp-train counts them at its start (weights,
            # gradients, Adam's two moments, a batch's activations): the rest of
            # its RSS is the reader's, the libraries' and the process's
            said = open(err).read()
            m = re.search(r"([0-9]+) MB for batches of", said)
            if not m:
                sys.exit(f"scale: sp-train -v did not say its model's size:\n{said}")
            model = int(m.group(1)) * 1e6 / 2**20
            rows.append(("  sp-train's model (its own count)", None, model, False))
            rows.append(("  sp-train less its model", None, rss - model, False))
        else:
            sys.stderr.write(open(err).read())
        os.remove(err)
        if name.startswith("C reader"):  # its epoch by its own clock; the rest is the start and the open
            epoch = float(open(out).read().split()[2])
            rows.append(("  C reader, epoch alone", epoch, 0, False))
            rows.append(("  C reader, start and open", wall - epoch, 0, False))
        os.remove(out)
    return rows


def stage_rows(names, wall, res):
    return [(name, cpu, rss, True) for name, (cpu, rss) in zip(names, res)] + [("  whole pipeline, wall", wall, 0, True)]


def run_path(path, n, b, build, work, pool):
    """Rows for path at size n: (stage, seconds, peak RSS MB, per record?)."""
    d = f"{work}/{path}-{n}"
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if path == "idx":
        files = make_idx(f"{work}/idx-data-{n}", n)
        names = ["sp-unpack (IDX)", "sp-decode", "sp-shard"]
        wall, res = run_pipeline([[f"{b}/sp-unpack", "-q", "--dataset", "fashion-mnist"] + files,
                                  [f"{b}/sp-decode", "-q"], [f"{b}/sp-shard", "-q", "-o", f"{d}/S"]])
        return stage_rows(names, wall, res) + consumers(b, build, f"{d}/S", False)
    data = f"{work}/ilsvrc-data-{n}"
    if not os.path.exists(f"{data}/classes.txt"):
        make_ilsvrc(data, n, pool())
    train, val, csv, classes = (f"{data}/{f}" for f in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar",
                                                        "LOC_val_solution.csv", "classes.txt"))
    unpack = [f"{b}/sp-unpack", "-q", train, val]
    decode = [f"{b}/sp-decode", "-q", "--classes", classes, "--labels", csv]
    if path == "ilsvrc-224":
        decode += ["--resize", "224"]
    else:
        decode += ["--encoded"]
    if path != "parts":
        wall, res = run_pipeline([unpack, decode, [f"{b}/sp-shard", "-q", "-o", f"{d}/S"]])
        return stage_rows(["sp-unpack (tars)", "sp-decode " + decode[-1], "sp-shard"], wall, res) + \
            consumers(b, build, f"{d}/S", path != "ilsvrc-224")
    # parts: one sp-unpack | sp-decode --part I/64 | sp-shard --part I/64 per part, as Slurm runs them
    worst = {}
    t = time.perf_counter()
    for i in range(PARTS):
        _, res = run_pipeline([unpack, decode + ["--part", f"{i}/{PARTS}"],
                               [f"{b}/sp-shard", "-q", "--part", f"{i}/{PARTS}", "-o", f"{d}/p{i}"]])
        for name, (cpu, rss) in zip(("sp-unpack, 64 parts summed", "sp-decode --part, 64 summed",
                                   "sp-shard --part, 64 summed"), res):
            c, r = worst.get(name, (0.0, 0.0))
            worst[name] = (c + cpu, max(r, rss))
    wall = time.perf_counter() - t
    mwall, ((mcpu, mrss),) = run_pipeline([[f"{b}/sp-shard", "-q", "--merge", "-o", f"{d}/S"]
                                           + [f"{d}/p{i}" for i in range(PARTS)]])
    rows = [(name, cpu, rss, True) for name, (cpu, rss) in worst.items()]
    rows += [("  64 parts one after another, wall", wall, 0, True), ("sp-shard --merge, wall", mwall, mrss, True)]
    return rows + consumers(b, build, f"{d}/S", path != "ilsvrc-224")


ILSVRC_IMAGES = 1281167 + 50000  # ILSVRC2012's train and val images


def photos(b, build, work, n):
    """The conversion throughput on real photographs: n ImageNet-sized crops
    of photographs (benchlib.make_set) in an ILSVRC-shaped train tar of 10
    class tars, through sp-decode --resize 224 and --encoded, in CPU seconds
    a stage; the floor, bare libjpeg-turbo (bench/tj_decode) on the same
    files, full size and at --resize 224's DCT scale; and the hours the real
    ILSVRC2012 would take on 1, 16 and 256 cores (parts: each part's sp-unpack
    reads the whole tars). Prints its own tables."""
    d = f"{work}/photos"
    os.makedirs(f"{d}/jpeg", exist_ok=True)
    files = sorted(glob.glob(f"{d}/jpeg/*.JPEG"))
    if len(files) != n:
        files = make_set(f"{d}/jpeg", n)
    train = f"{d}/ILSVRC2012_img_train.tar"
    with tarfile.open(train, "w", format=tarfile.USTAR_FORMAT) as t:
        for c in range(10):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w", format=tarfile.USTAR_FORMAT) as ct:
                for f in files[c::10]:
                    add(ct, f"n{c:08d}_{os.path.basename(f)}", open(f, "rb").read())
            add(t, f"n{c:08d}.tar", inner.getvalue())
    classes = f"{d}/classes.txt"
    with open(classes, "w") as f:
        f.writelines(f"n{i:08d} class {i}\n" for i in range(10))
    mean_kb = sum(os.path.getsize(f) for f in files) / n / 1024
    rows = {}
    for name, opt in (("--resize 224", ["--resize", "224"]), ("--encoded", ["--encoded"])):
        shutil.rmtree(f"{d}/S", ignore_errors=True)
        _, res = run_pipeline([[f"{b}/sp-unpack", "-q", train], [f"{b}/sp-decode", "-q", "--classes", classes] + opt,
                               [f"{b}/sp-shard", "-q", "-o", f"{d}/S"]])
        rows[name] = [cpu / n for cpu, _ in res]
    floor = {}
    for name, opt in (("full", []), ("DCT scale of --resize 224", ["-d", "224"])):
        # CPU seconds, as the stages' (the cores are shared); less those of reading the files
        _, ((one, _),) = run_pipeline([[f"{build}/bench/tj_decode", "1"] + opt + files])
        _, ((four, _),) = run_pipeline([[f"{build}/bench/tj_decode", "5"] + opt + files])
        floor[name] = (four - one) / (4 * n)
    shutil.rmtree(f"{d}/S", ignore_errors=True)
    print(f"conversion of {n} photographs ({mean_kb:.0f} KB on average), CPU ms per image a stage; images/s per core")
    print(f"{'':14} {'sp-unpack':>9} {'sp-decode':>9} {'sp-shard':>9} {'all':>9} {'img/s/core':>10} "
          f"{'1 core h':>9} {'16 cores h':>10} {'256 cores h':>11}")
    for name, (u, dec, sh) in rows.items():
        total = u + dec + sh
        # a part's sp-unpack reads every image; its sp-decode and sp-shard only its share
        hours = [(ILSVRC_IMAGES * (u + (dec + sh) / cores) if cores > 1 else ILSVRC_IMAGES * total) / 3600
                 for cores in (1, 16, 256)]
        print(f"{name:14} {u * 1e3:9.2f} {dec * 1e3:9.2f} {sh * 1e3:9.2f} {total * 1e3:9.2f} {1 / total:10.0f} "
              + "".join(f" {h:9.2f}" if i == 0 else f" {h:10.2f}" if i == 1 else f" {h:11.2f}"
                        for i, h in enumerate(hours)))
    for name, secs in floor.items():
        print(f"floor: libjpeg-turbo decode, {name:26} {secs * 1e3:9.2f} ms {1 / secs:10.0f} img/s/core")
    print(f"(projection: {ILSVRC_IMAGES} images; on N > 1 cores N parts (--part I/N), each on one core, "
          "each sp-unpack reading all the tars)")


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    b = build + "/bin"
    sizes = [int(s) for s in os.environ.get("SCALE_SIZES", "10000,100000").split(",")]
    paths = os.environ.get("SCALE_PATHS", "idx,ilsvrc-224,ilsvrc-encoded,parts,photos").split(",")
    os.environ["PYTHONPATH"] = os.path.join(os.path.dirname(here), "python")
    os.environ.setdefault("SHARDPIPE_READER_LIB", f"{build}/lib/libshardpipe-reader.so.0")
    os.environ.setdefault("HDF5_PLUGIN_PATH", f"{build}/hdf5-plugin")
    if not glob.glob(FMNIST + "/*.gz"):
        sys.exit(f"scale: no .gz files in {FMNIST} (apt-get install dataset-fashion-mnist)")
    keep = "SCALE_DIR" in os.environ
    work = os.environ.get("SCALE_DIR") or tempfile.mkdtemp(prefix="sp-scale-")
    os.makedirs(work, exist_ok=True)
    cache = []

    def pool():
        if not cache:
            cache.append(jpeg_pool(work))
        return cache[0]

    if "photos" in paths:
        photos(b, build, work, int(os.environ.get("SCALE_PHOTOS", "1000")))
    table = {}
    for path in (p for p in paths if p != "photos"):
        for n in sizes:
            for name, secs, rss, per_record in run_path(path, n, b, build, work, pool):
                table.setdefault((path, name), {})[n] = (secs, rss, per_record)
            print(f"scale: {path} at {n} records done", file=sys.stderr, flush=True)
            shutil.rmtree(f"{work}/{path}-{n}", ignore_errors=True)
    if not keep:
        shutil.rmtree(work)
    if not table:
        return
    head = f"{'path':15} {'stage':36}" + "".join(f" {f'{n} recs':>20}" for n in sizes)
    print(head + f" {'time, RSS: largest size /':>28}")
    print(f"{'':52}" + "".join(f" {'us/rec':>9} {'RSS MB':>10}" for _ in sizes)
          + f" {'smallest':>13} {'previous':>14}")
    for (path, name), by in table.items():
        cells, per = [], []
        for n in sizes:
            secs, rss, per_record = by.get(n, (None, 0, True))
            if secs is None and not rss:
                cells.append(f" {'-':>9} {'-':>10}")
                continue
            if secs is None:  # a row of memory alone
                per.append((0, rss))
                cells.append(f" {'':>9} {rss:10.1f}")
                continue
            v = secs / n * 1e6 if per_record else secs
            per.append((v, rss))
            cells.append(f" {v:9.2f} {rss:10.1f}" if per_record else f" {v:8.3f}s {rss:10.1f}")
        ratios = ""
        for a in (per[:1], per[-2:-1]) if len(per) > 1 else ():
            t = f"{per[-1][0] / a[0][0]:.2f}x" if a[0][0] else "-"
            m = f"{per[-1][1] / a[0][1]:.2f}x" if a[0][1] else "-"
            ratios += f" {t:>6} {m:>6}"
        print(f"{path:15} {name:36}" + "".join(cells) + ratios)
    print("(stages of a pipeline: CPU microseconds (user + system) per record; 'whole pipeline' and the "
          "readers' rows: wall; the readers' rows in seconds; RSS: peak, /usr/bin/time %M; sp-train's model: "
          "the MB sp-train -v counts for it, and its RSS less those)")


if __name__ == "__main__":
    main()
