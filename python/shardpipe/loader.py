"""Loader: ready batches of one split filled by libshardpipe-reader's threads, split by rank, resumable; load_data."""
import ctypes
import os
import queue
import sys
import threading

import numpy as np

from ._clib import SPR_ERR_CORRUPT, SPR_ERR_DATA, SPR_ERR_USAGE, SPR_NEXT_SEED, IterOptions, ReaderArgumentError, ReaderError, lib
from ._h5 import CorruptShardError

__all__ = ["Loader", "Mix", "load_data", "default_rank_world", "default_partitions", "epoch_seed", "Reader"]

_DTYPES = {1: np.uint8, 2: np.float16, 3: np.float32}
SPR_SHUFFLE = 1
SPR_ENCODED = 1
VIEWS = {"train": 1, "eval": 2}


MAX_BATCH = 1 << 24  # SPR_MAX_BATCH
MAX_WORLD = 1 << 31


def check_int(name, value, lo, hi):
    """value as an int in lo..hi; ValueError (TypeError for a non-integer,
    a bool or a float included) naming the argument otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__} {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name}={value}: not in {lo}..{hi}")
    return int(value)


def is_url(directory):
    """Whether directory names a shard set at a URL (the C reader fetches it)."""
    return str(directory).startswith(("http://", "https://", "file://", "s3://"))


def cache_size(value):
    """cache_limit= as bytes: None or 0 (the environment's, else none), an int,
    or a string as --cache-limit takes it ("512M", "2G"; powers of 1024)."""
    if value is None:
        return 0
    if isinstance(value, str):
        units = {"k": 10, "m": 20, "g": 30, "t": 40}
        v = value.strip()
        shift = units.get(v[-1:].lower(), 0)
        digits = v[:-1] if shift else v
        if not digits.isdigit():
            raise ValueError(f"cache_limit={value!r}: not a size (1000, 64k, 256M, 2G)")
        value = int(digits) << shift
    return check_int("cache_limit", value, 0, (1 << 64) - 1)


def check_flag(name, value):
    """value as a bool: a bool (numpy's too) or the integers 0 and 1; TypeError otherwise."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, not {type(value).__name__} {value!r}")


def check_range(name, value, lo, hi):
    """A (min, max) pair of numbers with lo < min <= max <= hi, or None."""
    if value is None:
        return None
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of numbers (min, max), not {value!r}") from None
    if not (lo < a <= b <= hi):
        raise ValueError(f"{name}={value!r}: needs {lo} < min <= max <= {hi}")
    return a, b


def default_rank_world(rank=None, world_size=None):
    """(rank, world_size): the arguments when given; else torch.distributed's
    when torch is imported and a process group is initialised; else RANK and
    WORLD_SIZE from the environment; else (0, 1). Never imports torch."""
    if rank is None or world_size is None:
        r, w = 0, 1
        torch = sys.modules.get("torch")
        dist = getattr(torch, "distributed", None) if torch is not None else None
        if dist is not None and dist.is_available() and dist.is_initialized():
            r, w = dist.get_rank(), dist.get_world_size()
        elif "WORLD_SIZE" in os.environ:
            r, w = int(os.environ.get("RANK", "0")), int(os.environ["WORLD_SIZE"])
        rank = r if rank is None else rank
        world_size = w if world_size is None else world_size
    world_size = check_int("world_size", world_size, 1, MAX_WORLD)
    rank = check_int("rank", rank, 0, MAX_WORLD)
    if rank >= world_size:
        raise ValueError(f"rank {rank} of world_size {world_size}: out of range")
    return rank, world_size


def default_partitions(global_batch, shuffle, world_size):
    """The C reader's default partition count: with shuffle the global batch's
    largest divisor up to 64, without it the world size."""
    if not shuffle:
        return world_size
    return next(p for p in range(64, 0, -1) if global_batch % p == 0)

def epoch_seed(seed, epoch):
    """The 64-bit seed the C reader gets for (seed, epoch): every epoch its own order."""
    return (int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9 + 1) % (1 << 64)


class _Buffers:
    """Output arrays handed out again once nobody holds them: a fresh large
    array costs a page fault a page (the kernel zeroes it) at every batch.
    An array is free when only this pool refers to it (CPython's reference
    count: any view, slice or torch tensor of it still held keeps it out of
    reuse). Keeps at most `keep` arrays of each shape and dtype."""

    def __init__(self, keep=4):
        self.keep, self.arrays = keep, {}
        self._lock = threading.Lock()  # two iterations' threads may take from one pool

    def get(self, shape, dtype):
        with self._lock:
            pool = self.arrays.setdefault((shape, np.dtype(dtype)), [])
            for i in range(len(pool)):
                if sys.getrefcount(pool[i]) == 2:  # the list's reference and the call's argument
                    return pool[i]
            a = np.empty(shape, dtype)
            if len(pool) < self.keep:
                pool.append(a)
            return a


class _Ahead:
    """The items of a generator made in a thread of its own, one item ahead of
    the caller: while the caller works on batch k, the thread makes batch
    k+1 (the reader's copy out of its windows, the labels' conversion, the
    normalization, the tensors), so that taking a batch costs the caller a
    queue's hand-over, not that work. The generator must not refer to the
    Loader (a Loader in a reference cycle with its iterator stays
    collectable). An exception in the thread is raised in the caller at the
    item it stopped; close() stops the thread and closes the generator (in
    the thread, which owns it), waiting for the item under way.

    One ahead, not two: the thread asks the generator for the next item only
    once the caller has taken the last, so that at most three batches exist at
    a time (the one the caller still holds while it asks for the next, the one
    handed over, the one being made), not four (a fourth made while one waits
    in the queue): 38.5 MB less with batches of 256 at 224x224x3."""

    def __init__(self, gen):
        self._pid = os.getpid()
        self._q, self._stop = queue.Queue(maxsize=1), threading.Event()
        self._taken = threading.Event()  # the caller took the last item: make the next
        self._taken.set()
        self._thread = threading.Thread(target=self._run, args=(gen,), name="shardpipe-loader", daemon=True)
        self._thread.start()

    def _put(self, item):
        """item into the queue unless stopped: False once close() was called."""
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def _wait_taken(self):
        """Until the caller took the last item: False once close() was called.
        An empty queue says so too (only this thread puts), should the
        caller's set() have been lost to an interrupt right after its get()."""
        while not self._stop.is_set():
            if self._taken.wait(0.1) or self._q.empty():
                self._taken.clear()
                return True
        return False

    def _run(self, gen):
        try:
            while self._wait_taken():
                try:
                    item = next(gen)
                except StopIteration:
                    self._put((False, None))
                    return
                if not self._put((True, item)):
                    return
        except BaseException as e:  # handed to the caller, raised there
            self._put((False, e))
        finally:
            gen.close()

    def __iter__(self):
        return self

    def __next__(self):
        if self._pid != os.getpid():  # as the C reader's iterator says it
            raise ReaderArgumentError(f"this iterator was opened in process {self._pid}, before a fork(): its "
                                      "threads are not in this one; open a new iterator here")
        if self._stop.is_set() or (not self._thread.is_alive() and self._q.empty()):
            raise StopIteration
        more, item = self._q.get()
        self._taken.set()
        if more:
            return item
        self._stop.set()
        if item is not None:
            raise item
        raise StopIteration

    def close(self):
        self._stop.set()
        if self._pid != os.getpid():  # a forked child: the thread is the parent's
            return
        if threading.current_thread() is self._thread:
            # closed by a collection that ran on the thread itself (the cycle
            # collector runs where it is triggered): it stops at its next put
            # and closes the generator there
            return
        while self._thread.is_alive():
            try:
                self._q.get(timeout=0.1)
            except queue.Empty:
                pass
        self._thread.join()


class Reader:
    """One split opened through libshardpipe-reader (one handle per process:
    reopened after a fork). shape (H, W, C), dtype, count, classes, and the
    normalization the shards record (mean, std in x/255 units, or None)."""

    def __init__(self, directory, split="train", cache=None, cache_limit=None):
        self.directory, self.split = os.fspath(directory), split
        self.cache = os.fspath(cache) if cache is not None else None
        self.cache_limit = cache_size(cache_limit)
        self._pid, self._set = None, None
        s = self.handle()
        L = lib()
        h, w, c = ctypes.c_uint32(), ctypes.c_uint32(), ctypes.c_uint32()
        L.spr_shape(s, h, w, c)
        self.shape = (h.value, w.value, c.value)
        self.dtype = np.dtype(_DTYPES[L.spr_dtype(s)])
        self.count = int(L.spr_count(s))
        self.encoded = L.spr_kind(s) == SPR_ENCODED
        self.record_bytes = int(L.spr_record_bytes(s))
        self.classes = [L.spr_class_name(s, i).decode() for i in range(L.spr_num_classes(s))]
        mean, std, applied = (ctypes.c_double * 4)(), (ctypes.c_double * 4)(), ctypes.c_int()
        k = L.spr_normalization(s, mean, std, applied)
        self.mean = np.array(mean[:k]) if k else None
        self.std = np.array(std[:k]) if k else None
        self.applied = bool(applied.value)

    def handle(self):
        if self._pid != os.getpid():
            err = ctypes.create_string_buffer(1024)
            cache = self.cache.encode() if self.cache is not None else None
            s = lib().spr_open_cached(self.directory.encode(), self.split.encode(), cache, self.cache_limit, err,
                                      len(err), None)
            if not s:
                raise ReaderError(err.value.decode(errors="replace"))
            self._set, self._pid = s, os.getpid()
        return self._set

    def error(self, what):
        """The reader's last failure as an exception: CorruptShardError when
        the shards are damaged (by the reader's error code, not its words),
        ValueError for an argument it refused, else ReaderError."""
        L = lib()
        msg, code = L.spr_error(self._set).decode(errors="replace"), L.spr_errcode(self._set)
        kind = CorruptShardError if code == SPR_ERR_CORRUPT else ReaderArgumentError if code == SPR_ERR_USAGE \
            else ReaderError
        return kind(f"{what}: {msg}")

    def read(self, index):
        """Record index (manifest order) as stored: (image HWC, label)."""
        image = np.empty(self.shape, self.dtype)
        label = ctypes.c_int32()
        if lib().spr_read(self.handle(), int(index), image.ctypes.data, ctypes.byref(label)):
            raise self.error(f"{self.directory} {self.split}")
        return image, label.value

    def options(self, batch_size, seed, shuffle, threads, part, nparts, skip_records=0, window_records=0, view=None,
                size=0, scale=None, ratio=None, max_pixels=0, partitions=0, next_seed=None):
        """spr_iter_options of iterate()'s arguments, each checked (ValueError, TypeError naming it)."""
        batch_size = check_int("batch_size", batch_size, 1, MAX_BATCH)
        nparts = check_int("nparts", nparts, 1, (1 << 32) - 1)
        part = check_int("part", part, 0, nparts - 1)
        threads = check_int("threads", threads, 0, 64)
        window_records = check_int("window_records", window_records, 0, (1 << 32) - 1)
        skip_records = check_int("skip_records", skip_records, 0, (1 << 64) - 1)
        max_pixels = check_int("max_pixels", max_pixels, 0, (1 << 64) - 1)
        scale = check_range("scale", scale, 0, 1)
        ratio = check_range("ratio", ratio, 0, 1e6)
        if self.encoded and view not in VIEWS:
            raise ValueError(f"{self.directory}: the shards hold encoded images: read them through a view "
                             "('train' or 'eval') and a size")
        flags = (SPR_SHUFFLE if shuffle else 0) | (SPR_NEXT_SEED if next_seed is not None else 0)
        o = IterOptions(batch=batch_size, seed=seed, flags=flags, next_seed=next_seed or 0,
                        window_records=window_records, part=part, nparts=nparts, skip_records=skip_records,
                        threads=threads, view=VIEWS[view] if self.encoded else 0, size=size,
                        max_pixels=max_pixels, partitions=check_int("partitions", partitions, 0, (1 << 32) - 1))
        if scale or ratio:
            (o.scale_min, o.scale_max), (o.ratio_min, o.ratio_max) = scale or (0.08, 1.0), ratio or (3 / 4, 4 / 3)
        return o

    def iterate(self, batch_size, seed, shuffle, threads, part, nparts, skip_records=0, window_records=0,
                 buffers=None, view=None, size=0, scale=None, ratio=None, max_pixels=0, partitions=0, counter=None,
                 next_seed=None):
        """Batches (images n x H x W x C as stored, labels int32, labels2 int32
        (-1 where the set has none), indices uint64)
        of part `part` of `nparts` (rank of world: one batch a global step of
        nparts x batch_size records) of the epoch the C reader gives for seed
        in `partitions` partitions (0: the reader's default), after
        skip_records of the part's records, read by `threads` reader threads
        (0: in this thread). counter, a list when given, gets [0] set to the
        bytes of images the reader has read, after every batch. The images array comes from `buffers` (a _Buffers: reused once
        nobody holds it), else fresh; the other three are fresh. An encoded
        set's images are decoded through view ("train" or "eval") at size x
        size x 3; scale and ratio ((min, max) pairs, None: torchvision's) are
        the train view's RandomResizedCrop ranges, max_pixels the largest
        source image it decodes (0: the set's own limit). next_seed, when
        given, is the seed of the epoch read after this one (the same
        arguments otherwise, from its start): a set at a URL prefetches that
        epoch's first shards as this one ends."""
        L = lib()
        o = self.options(batch_size, seed, shuffle, threads, part, nparts, skip_records, window_records, view, size,
                         scale, ratio, max_pixels, partitions, next_seed)
        batch_size = o.batch
        it = L.spr_iter_open(self.handle(), ctypes.byref(o), ctypes.sizeof(o))
        if not it:
            raise self.error(f"{self.directory} {self.split}")
        try:
            n = ctypes.c_uint32()
            shape = (batch_size,) + (self.view_shape(size) if self.encoded else self.shape)
            while True:
                px = buffers.get(shape, self.dtype) if buffers else np.empty(shape, self.dtype)
                labels = np.empty(batch_size, np.int32)
                labels2 = np.empty(batch_size, np.int32)
                idx = np.empty(batch_size, np.uint64)
                st = L.spr_iter_next_full(it, px.ctypes.data, labels.ctypes.data, labels2.ctypes.data,
                                          idx.ctypes.data, n)
                if st < 0:
                    raise self.error(f"{self.directory} {self.split}")
                if counter is not None:
                    counter[0] = int(L.spr_iter_bytes_read(it))
                if st == 0:
                    return
                yield px[:st], labels[:st], labels2[:st], idx[:st]
        finally:
            L.spr_iter_free(it)

    def view_shape(self, size):
        """An encoded set's images as a view gives them."""
        return (size, size, 3)

    def part_records(self, part, nparts):
        """Records part `part` of `nparts` gets in every epoch."""
        per, extra = divmod(self.count, nparts)
        return per + (1 if part < extra else 0)

    def plan(self, global_batch, partitions, rank, world):
        """The canonical order's numbers (shards/order.h) for rank of world:
        (per_step, the records of each of the rank's partitions). ValueError
        when partitions does not divide global_batch or world does not divide
        partitions."""
        if global_batch % partitions:
            raise ValueError(f"{partitions} partitions: they must divide the global batch ({global_batch})")
        if partitions % world:
            raise ValueError(f"world size {world}: it must divide the {partitions} partitions of the global batch "
                             f"{global_batch} (allowed world sizes: the divisors of {partitions})")
        lanes = partitions // world
        return global_batch // partitions, [self.part_records(q, partitions) for q in range(rank * lanes,
                                                                                            (rank + 1) * lanes)]


    def keys(self):
        """Every record's key, in manifest order (through h5py: read before any iterator starts)."""
        if is_url(self.directory):
            raise ValueError(f"{self.directory}: the records' keys are read from a local set only (sp-cat URL "
                             "lists them)")
        from ._h5 import _add_plugin_dir, load_manifest
        import h5py
        _add_plugin_dir(None)
        files = [s["file"] for s in load_manifest(self.directory)["shards"] if s["split"] == self.split]
        out = []
        for f in files:
            with h5py.File(os.path.join(self.directory, f), "r") as h:
                out.extend(k.decode() for k in h["keys"][:])
        return np.array(out, dtype=object)

    def __getstate__(self):  # the C handle does not travel to other processes
        state = dict(self.__dict__)
        state["_set"], state["_pid"] = None, None
        return state

    def __del__(self):
        if getattr(self, "_set", None) and self._pid == os.getpid() and lib is not None:
            lib().spr_close(self._set)
            self._set = None


POLICIES = {"stop": 0, "repeat": 1}  # SPR_MIX_STOP, SPR_MIX_REPEAT


class Mix:
    """Several splits mixed by weight through libshardpipe-reader's spr_mix
    (docs/elastic-order.md, "Mixing sets"): sets is a list of (DIR_OR_URL,
    weight) or (DIR_OR_URL, weight, "repeat" | "stop") (default "stop").
    readers, weights and policies in the list's order; the sets' records must
    be of one shape and dtype."""

    def __init__(self, sets, split="train", cache=None, cache_limit=None):
        if not sets:
            raise ValueError("a mix needs at least one set: [(DIR_OR_URL, weight), ...]")
        self.readers, self.weights, self.policies = [], [], []
        for i, entry in enumerate(sets):
            if not isinstance(entry, (list, tuple)) or len(entry) not in (2, 3):
                raise TypeError(f"set {i}: (DIR_OR_URL, weight) or (DIR_OR_URL, weight, 'repeat' | 'stop'), not "
                                f"{entry!r}")
            weight = entry[1]
            if isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer, np.floating)) or \
                    not 0 < float(weight) < float("inf"):
                raise ValueError(f"set {i} ({entry[0]}): weight {weight!r}: a number above 0")
            policy = entry[2] if len(entry) == 3 else "stop"
            if policy not in POLICIES:
                raise ValueError(f"set {i} ({entry[0]}): policy {policy!r}: 'repeat' or 'stop'")
            self.readers.append(Reader(entry[0], split, cache, cache_limit))
            self.weights.append(float(weight))
            self.policies.append(policy)

    def describe(self):
        """What the order depends on, set by set: [{"records", "weight", "policy"}, ...]."""
        return [{"records": r.count, "weight": w, "policy": p}
                for r, w, p in zip(self.readers, self.weights, self.policies)]

    def open(self, options, skip_steps=0, epoch_steps=0):
        """An spr_mix handle (free it with spr_mix_free); the reader's refusal as ValueError (ReaderError for
        the other failures), naming the set's directory."""
        n = len(self.readers)
        sets = (ctypes.c_void_p * n)(*[r.handle() for r in self.readers])
        weights = (ctypes.c_double * n)(*self.weights)
        policies = (ctypes.c_int * n)(*[POLICIES[p] for p in self.policies])
        err, code = ctypes.create_string_buffer(1024), ctypes.c_int()
        m = lib().spr_mix_open(sets, weights, policies, n, ctypes.byref(options), ctypes.sizeof(options),
                               skip_steps, epoch_steps, err, len(err), ctypes.byref(code))
        if not m:
            msg = err.value.decode(errors="replace")
            if msg.startswith("set ") and msg[4:].split(":")[0].isdigit():
                i = int(msg[4:].split(":")[0])
                msg = f"set {i} ({self.readers[i].directory}){msg[4 + len(str(i)):]}"
            raise (ReaderArgumentError if code.value in (SPR_ERR_USAGE, SPR_ERR_DATA) else ReaderError)(f"mix: {msg}")
        return m

    def iterate(self, options, skip_steps, epoch_steps, buffers=None, counter=None):
        """Global steps skip_steps... of the mix as this rank's batches: (images, labels, labels2, indices,
        sources), one a step (possibly empty on a rank whose partitions of the step ran out)."""
        L, r0 = lib(), self.readers[0]
        m = self.open(options, skip_steps, epoch_steps)
        try:
            b, n = options.batch, ctypes.c_uint32()
            shape = (b,) + (r0.view_shape(options.size) if r0.encoded else r0.shape)
            while True:
                px = buffers.get(shape, r0.dtype) if buffers else np.empty(shape, r0.dtype)
                labels, labels2 = np.empty(b, np.int32), np.empty(b, np.int32)
                idx, src = np.empty(b, np.uint64), np.empty(b, np.int32)
                st = L.spr_mix_next(m, px.ctypes.data, labels.ctypes.data, labels2.ctypes.data, idx.ctypes.data,
                                    src.ctypes.data, n)
                if st < 0:
                    code = L.spr_mix_errcode(m)
                    kind = CorruptShardError if code == SPR_ERR_CORRUPT else ReaderError
                    raise kind(f"mix: {L.spr_mix_error(m).decode(errors='replace')}")
                if counter is not None:
                    counter[0] = int(L.spr_mix_bytes_read(m))
                if st == 0:
                    return
                k = n.value
                yield px[:k], labels[:k], labels2[:k], idx[:k], src[:k]
        finally:
            L.spr_mix_free(m)


def _normalizer(reader, buffers=None, mean=None, std=None):
    """A function of a batch (n x H x W x C as stored) to n x C x H x W float32:
    (x/255 - mean)/std with mean and std when given (per channel, x/255
    units), else the shards' (x/255 without them); floats stored already
    normalized are only transposed. Its outputs come from buffers (a
    _Buffers) when given."""
    if mean is not None:
        if reader.dtype != np.uint8:
            raise ValueError(f"{reader.directory}: mean= and std= normalize uint8 pixels; the shards hold "
                             f"{reader.dtype}")
        x = np.arange(256, dtype=np.float64)[:, None] / 255.0
        table = ((x - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)).astype(np.float32)  # 256 x C

        def norm_given(px):
            n, h, w, c = px.shape
            if c != table.shape[1]:
                raise ValueError(f"mean= and std= give {table.shape[1]} channels, the images have {c}")
            out = buffers.get((n, c, h, w), np.float32) if buffers else np.empty((n, c, h, w), np.float32)
            for k in range(c):
                np.take(table[:, k], px[..., k], out=out[:, k])
            return out
        return norm_given
    if reader.dtype == np.uint8:
        def norm(px):  # in C (spr_normalize_hw): one table lookup a value, the GIL released
            n, h, w, c = px.shape
            shape = (n, c, h, w)
            out = buffers.get(shape, np.float32) if buffers else np.empty(shape, np.float32)
            px = np.ascontiguousarray(px)
            if lib().spr_normalize_hw(reader.handle(), px.ctypes.data, n, h, w, out.ctypes.data):
                raise reader.error("normalize")
            return out
        return norm
    return lambda px: np.ascontiguousarray(px.astype(np.float32).transpose(0, 3, 1, 2))


class Loader:
    """Ready batches (images, labels) of one split, read by libshardpipe-reader.

        loader = shardpipe.Loader("shards/fmnist", batch_size=256, seed=0)
        for epoch in range(10):
            loader.set_epoch(epoch)
            for images, labels in loader: ...

    images: n x H x W x C as stored (uint8 for most sets), or with
    normalize=True n x C x H x W float32, (x/255 - mean)/std from the shards
    (sp-normalize's, recorded for pixel and encoded sets alike), or from
    mean= and std= when given (per channel, x/255 units; they imply
    normalize=True);
    labels int64. as_torch=True gives torch tensors (torch imported then).
    return_label2=True adds the second labels (CIFAR-100's coarse ones, -1
    where the set has none) after the labels; return_keys=True adds the
    records' keys (a numpy object array) last.

    Order (docs/elastic-order.md): batch_size is this rank's share of a
    global batch of batch_size x world_size records. Every epoch (seed,
    epoch) is one stream, the shards in a seeded order, cut into
    `partitions` contiguous partitions (default: the global batch's largest
    divisor up to 64; the world size must divide it), each shuffled through
    its own windows (window_records, default 16 global batches, at most 32
    MiB, is the global window: each partition's is its share); each global
    step takes global batch / partitions records of every partition, and
    rank r reads its world_size-th of the partitions. So the records of each
    global step (every rank's batch at that step together) depend on seed,
    epoch, the global batch, partitions and the set only: not on
    world_size, rank or threads. drop_last=False: every record once per
    epoch across ranks; the last steps may be short, and a rank whose
    partitions ran out has one batch fewer (len() is this rank's count);
    drop_last=True: full steps only, the same count on every rank.
    shuffle=False keeps the shards' order: by default one partition a rank
    (its contiguous share, in order).
    Memory: threads + 1 windows in C, plus at most 4 batches kept for reuse
    here (and those the caller holds).

    Encoded sets (sp-decode --encoded: JPEGs as shipped or re-encoded) are
    decoded on the reader's threads through a view, size x size x 3 uint8:
    view="train" (the default for the train split) is torchvision's
    RandomResizedCrop(size) + horizontal flip, drawn from (seed, epoch,
    record): the same epoch gives the same crops; view="eval" (the default
    for other splits) is Resize(size / 0.875) + CenterCrop(size). Pixel
    sets ignore view and size.

    threads: the reader's threads, each decompressing whole windows ahead of
    the caller in parallel (default: the CPUs this process may use, at most
    4); 0 reads in the caller's thread. With threads, a thread of the
    Loader's own also makes each batch (copied out of the windows,
    normalized, labels converted, tensors made) while the caller works on
    the one before, so taking a batch is a hand-over. The batches are the
    same for every thread count. Batch arrays are reused once nobody holds
    them any more (at most 4 of each kind kept). After an epoch runs to its end the next __iter__ is the
    next epoch; set_epoch(e) chooses it. A set at a URL: the cache is told
    the order of epoch + 1 as well, and prefetches its first shards while
    this epoch ends. state_dict() after batch k holds the
    position in the canonical order (k global steps, and the samples they
    held); given to load_state_dict() of a fresh Loader of the same global
    batch, at any world size and rank, it makes the next __iter__ yield
    exactly that rank's part of global steps k+1... of that epoch.

    Mixing sets (docs/elastic-order.md, "Mixing sets"): directory may be a
    list [(DIR_OR_URL, weight), ...] or [(DIR_OR_URL, weight, "repeat" |
    "stop"), ...] (default "stop"): each global step draws from the sets by
    weight in slots of `partitions` records (default: the global batch's
    largest divisor up to 64 and up to a global batch / 8), each set in its
    own canonical order, every pass of a set in a new order. The epoch:
    epoch_steps global steps when given, but it ends with the step in which
    a stop-set runs out; without epoch_steps, at the first stop-set's end,
    or, all sets repeating, at the end of the pass of the set that takes
    longest. return_source=True adds each record's set index (int64) right
    after the labels (keys, when asked for, stay last); labels are in their
    own set's classes (set_classes). Every rank gets a batch at every step
    (len() is the same on every rank; a batch may be empty where a rank's
    partitions of the step ran out). The state (state_dict) records the
    global steps, and each set's records, weight and policy; it resumes at
    any world size of the same global batch. The sets' records must have
    one shape and dtype; drop_last is refused.

    directory may be a URL (http://, https://, s3://, file://): the shards are
    downloaded whole into cache (a directory; default $SHARDPIPE_CACHE, else
    $XDG_CACHE_HOME/shardpipe, else ~/.cache/shardpipe), each checked against
    the manifest's sha256 before it is read, the cache held under cache_limit
    bytes (an int or "512M"; default $SHARDPIPE_CACHE_LIMIT, else no limit).
    See docs/remote-sets.md.
    """

    STATE_VERSION = 3
    # what the order of an epoch depends on: a state_dict of other values is refused
    ORDER_KEYS = ("seed", "global_batch_size", "partitions", "shuffle", "window_records", "drop_last", "records")
    MIX_ORDER_KEYS = ("seed", "global_batch_size", "partitions", "shuffle", "window_records", "epoch_steps", "sets")

    def __init__(self, directory, split="train", batch_size=256, shuffle=True, seed=0, drop_last=False,
                 rank=None, world_size=None, normalize=False, as_torch=False, return_keys=False, threads=None,
                 window_records=0, return_label2=False, view=None, size=224, scale=None, ratio=None,
                 max_pixels=0, mean=None, std=None, cache=None, cache_limit=None, partitions=None,
                 return_source=False, epoch_steps=None):
        if threads is None:
            threads = min(4, len(os.sched_getaffinity(0)))
        self.batch_size = check_int("batch_size", batch_size, 1, MAX_BATCH)
        self.threads = check_int("threads", threads, 0, 64)
        self.window_records = check_int("window_records", window_records, 0, (1 << 32) - 1)
        self.seed = check_int("seed", seed, 0, (1 << 64) - 1)
        self.size = check_int("size", size, 1, 4096)
        self.max_pixels = check_int("max_pixels", max_pixels, 0, (1 << 64) - 1)
        self.scale, self.ratio = check_range("scale", scale, 0, 1), check_range("ratio", ratio, 0, 1e6)
        if view is None:
            view = "train" if split == "train" else "eval"
        if view not in VIEWS:
            raise ValueError(f"view 'train' or 'eval', not {view!r}")
        self.rank, self.world_size = default_rank_world(rank, world_size)
        self._mix = Mix(directory, split, cache, cache_limit) if isinstance(directory, (list, tuple)) else None
        self.reader = self._mix.readers[0] if self._mix else Reader(directory, split, cache, cache_limit)
        self.view = view
        self.shuffle, self.drop_last = check_flag("shuffle", shuffle), check_flag("drop_last", drop_last)
        self.return_source = check_flag("return_source", return_source)
        self.global_batch_size = self.batch_size * self.world_size
        if self._mix is None and epoch_steps is not None:
            raise ValueError("epoch_steps= is for a mix of sets ([(DIR, weight), ...])")
        self.epoch_steps = check_int("epoch_steps", epoch_steps or 0, 0, (1 << 63) - 1)
        if self._mix is not None:
            if self.drop_last:
                raise ValueError("drop_last=True: a mix's epoch ends as its sets' policies and epoch_steps say "
                                 "(docs/elastic-order.md)")
            self.partitions = (lib().spr_mix_default_partitions(self.global_batch_size) if self.shuffle
                               else self.world_size) if partitions is None else \
                check_int("partitions", partitions, 1, (1 << 32) - 1)
            self.reader.plan(self.global_batch_size, self.partitions, self.rank, self.world_size)  # its checks
            o = self._options(0)
            o.seed = epoch_seed(self.seed, 0)
            m = self._mix.open(o, 0, self.epoch_steps)  # the shapes' and the sets' checks, and the epoch's steps
            self._steps = int(lib().spr_mix_steps(m))
            lib().spr_mix_free(m)
            self.ORDER_KEYS = self.MIX_ORDER_KEYS
        else:
            self.partitions = default_partitions(self.global_batch_size, self.shuffle, self.world_size) \
                if partitions is None else check_int("partitions", partitions, 1, (1 << 32) - 1)
            self._per_step, self._lanes = self.reader.plan(self.global_batch_size, self.partitions, self.rank,
                                                           self.world_size)
        if (mean is None) != (std is None):
            raise ValueError("mean= and std= go together")
        if mean is not None:
            mean, std = [float(v) for v in mean], [float(v) for v in std]
            channels = 3 if self.reader.encoded else self.reader.shape[2]
            if len(mean) != channels or len(std) != channels or not all(v > 0 for v in std):
                raise ValueError(f"mean= and std= need {channels} values each (std above 0): {mean}, {std}")
            normalize = True
        self.mean, self.std = mean, std
        self.normalize, self.as_torch = normalize, as_torch
        if normalize and mean is None and self._mix is not None:
            stats = [(None if r.mean is None else list(r.mean), None if r.std is None else list(r.std), r.applied)
                     for r in self._mix.readers]
            if any(x != stats[0] for x in stats):
                raise ValueError("normalize=True over sets that record different normalizations: give mean= and "
                                 "std=")
        readers = self._mix.readers if self._mix else [self.reader]
        self._keys = [r.keys() for r in readers] if return_keys else None
        self.return_label2 = return_label2
        self._per_process()
        # epoch: the one the next __iter__ gives, from batch _start; _cur: (epoch, batches
        # handed out) of the iteration under way or broken off, None once an epoch ends
        self.epoch, self._start, self._cur = 0, 0, None

    def _per_process(self):
        """The batch pool and the normalizer: this process's own, never pickled."""
        self._buffers = _Buffers()
        self._bytes = [0]
        self._norm = _normalizer(self.reader, self._buffers, self.mean, self.std) if self.normalize else None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_buffers"], state["_norm"] = None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._per_process()

    @property
    def bytes_read(self):
        """Bytes of images the reader has read from the shards in this
        process's last iteration (compressed chunks as stored)."""
        return self._bytes[0]

    @property
    def classes(self):
        """The set's class names; of a mix, the list its sets share (ValueError when they differ: see
        set_classes)."""
        if self._mix is not None and any(r.classes != self.reader.classes for r in self._mix.readers):
            raise ValueError("the mixed sets have different class lists: each set's labels are its own "
                             "(set_classes[source])")
        return self.reader.classes

    @property
    def set_classes(self):
        """Each set's class names, in the order of the sets (one list for a single set)."""
        return [r.classes for r in (self._mix.readers if self._mix else [self.reader])]

    @property
    def sets(self):
        """A mix's sets as the state records them: [{"records", "weight", "policy"}, ...]."""
        return self._mix.describe() if self._mix is not None else None

    @property
    def records(self):
        """The records of the split: part of the state, so a state of another set is refused."""
        return self.reader.count

    def __len__(self):
        """This rank's batches in an epoch: one a global step while its partitions last (a mix: one every
        step, on every rank)."""
        if self._mix is not None:
            return self._steps
        if self.drop_last:
            return self.steps
        return -(-self._lanes[0] // self._per_step)

    @property
    def steps(self):
        """Global steps in an epoch (full ones only with drop_last)."""
        if self._mix is not None:
            return self._steps
        if self.drop_last:
            return (self.reader.count // self.partitions) // self._per_step
        return -(-self.reader.part_records(0, self.partitions) // self._per_step)

    def _consumed(self, steps, lanes):
        """Records of partitions of `lanes` records each that `steps` global steps hold."""
        return sum(min(n, steps * self._per_step) for n in lanes)

    def set_epoch(self, epoch):
        """The epoch the next __iter__ gives. From its first batch, except
        when it is the epoch a load_state_dict() resumes: then from the
        resume point (so a loop that calls set_epoch(e) before each epoch
        resumes where the state left off)."""
        epoch = check_int("epoch", epoch, 0, (1 << 63) - 1)
        if epoch != self.epoch:
            self.epoch, self._start = epoch, 0

    def state_dict(self):
        """Where the epoch stands in the canonical order: the epoch of the
        iteration under way (or broken off), the global steps it has gone
        through ("batches": this rank's batches handed out, one a step) and
        the samples those steps held (every rank's); after an epoch ran to
        its end, the next epoch and 0; before any iteration, what set_epoch
        or load_state_dict chose. Also every parameter the order depends on
        (not the rank nor the world size: any world of the same global batch
        resumes it)."""
        epoch, batches = self._cur if self._cur is not None else (self.epoch, self._start)
        state = {"version": self.STATE_VERSION, "epoch": epoch, "batches": batches}
        if self._mix is None:
            state["samples"] = self._consumed(batches, [self.reader.part_records(q, self.partitions)
                                                        for q in range(self.partitions)])
        state.update({k: getattr(self, k) for k in self.ORDER_KEYS})
        return state

    def load_state_dict(self, state):
        """The next __iter__ resumes state's epoch after its state["batches"]
        global steps, at this Loader's rank and world size. ValueError
        (TypeError for a wrong type) when the state is not one this Loader
        can resume: another order (seed, global batch, partitions, shuffle,
        window_records, drop_last, the set's size), a field out of range,
        steps beyond the epoch's, or a state of versions 1 and 2, whose
        order (a contiguous share a rank) is not this one."""
        if not isinstance(state, dict):
            raise TypeError(f"state_dict must be a dict, not {type(state).__name__}")
        version = state.get("version", 1)
        if version != self.STATE_VERSION:
            raise ValueError(f"state_dict version {version!r}: this Loader reads {self.STATE_VERSION} only (the "
                             "epoch's order changed with version 3: start that epoch over)")
        for k in ("epoch", "batches") + self.ORDER_KEYS:
            if k not in state:
                raise ValueError(f"state_dict lacks {k!r}")
        epoch = check_int("state_dict['epoch']", state["epoch"], 0, (1 << 63) - 1)
        batches = check_int("state_dict['batches']", state["batches"], 0, self.steps)
        for k in self.ORDER_KEYS:
            got = state[k]
            mine = getattr(self, k)
            if isinstance(mine, list):  # a mix's sets
                same = got == mine
            elif isinstance(mine, bool):
                same = isinstance(got, (bool, np.bool_)) and bool(got) == mine
            else:
                same = not isinstance(got, bool) and isinstance(got, (int, np.integer)) and got == mine
            if not same:
                raise ValueError(f"state_dict is of {k}={got!r}, this Loader has {mine!r}")
        if "samples" in state and self._mix is None:
            samples = self._consumed(batches, [self.reader.part_records(q, self.partitions)
                                               for q in range(self.partitions)])
            got = state["samples"]
            if isinstance(got, bool) or not isinstance(got, (int, np.integer)) or got != samples:
                raise ValueError(f"state_dict['samples']={got!r}: {batches} steps of this order hold {samples}")
        self.epoch, self._start = epoch, batches

    def _options(self, threads):
        """The reader's options of this Loader (the first set's checks, for a mix)."""
        return self.reader.options(self.batch_size, 0, self.shuffle, threads, self.rank, self.world_size, 0,
                                   self.window_records, self.view, self.size, self.scale, self.ratio, self.max_pixels,
                                   self.partitions)

    def _batches(self, epoch, start):
        """A generator of this rank's batches, as __iter__ yields them, from
        global step `start` of epoch. It refers to the reader, the mix and
        the pools, not to the Loader (see _Ahead)."""
        seed = epoch_seed(self.seed, epoch)
        if self._mix is not None:
            o = self._options(self.threads)
            o.seed = seed
            raw = self._mix.iterate(o, start, self.epoch_steps, self._buffers, self._bytes)
        else:
            raw = _with_source(self.reader.iterate(
                self.batch_size, seed, self.shuffle, self.threads, self.rank, self.world_size,
                self._consumed(start, self._lanes), self.window_records, self._buffers, self.view, self.size,
                self.scale, self.ratio, self.max_pixels, self.partitions, self._bytes,
                next_seed=epoch_seed(self.seed, epoch + 1)))
        return _finished(raw, self._norm, self.return_label2, self.return_source, self.as_torch, self._keys)

    def __iter__(self):
        start, total, epoch = self._start, len(self), self.epoch
        self._start, self._cur = 0, (epoch, start)
        batches = self._batches(epoch, start)
        if self.threads:  # made one batch ahead, in a thread of their own
            batches = _Ahead(batches)
        done = start
        try:
            for out in batches:
                if done >= total:
                    break
                done += 1
                self._cur = (epoch, done)
                yield out
        finally:
            batches.close()
        if done >= total and self._cur == (epoch, done):
            self._cur = None
            if self.epoch == epoch and self._start == 0:
                self.epoch = epoch + 1


def _with_source(batches):
    """A single set's (images, labels, labels2, indices) with sources, all 0."""
    for px, labels, labels2, idx in batches:
        yield px, labels, labels2, idx, np.zeros(len(idx), np.int32)


def _finished(batches, norm, label2, source, as_torch, keys):
    """The Loader's batches from the reader's (images, labels, labels2,
    indices, sources): images through norm (or as stored), labels (int64),
    then labels2 and sources when asked, as torch tensors when as_torch, and
    the keys (from keys, each set's key array) last when given."""
    for px, labels, labels2, idx, src in batches:
        out = (norm(px) if norm else px, labels.astype(np.int64))
        if label2:
            out = out + (labels2.astype(np.int64),)
        if source:
            out = out + (src.astype(np.int64),)
        if as_torch:
            import torch
            out = tuple(torch.from_numpy(a) for a in out)
        if keys is not None:
            out = out + (_keys_of(keys, idx, src),)
        yield out


def _keys_of(keys, idx, src):
    """The keys of records idx of sets src (keys: each set's key array)."""
    if len(keys) == 1:
        return keys[0][idx.astype(np.int64)]
    out = np.empty(len(idx), dtype=object)
    for i, k in enumerate(keys):
        at = src == i
        out[at] = k[idx[at].astype(np.int64)]
    return out


def load_data(directory, cache=None, cache_limit=None):
    """((x_train, y_train), (x_test, y_test)) as Keras' load_data returns them:
    uint8 images N x H x W (one channel) or N x H x W x C, labels uint8 (int32
    over 256 classes, or where a record has no label: -1 stays -1), in
    manifest order; the val split where there is no test."""
    import json
    if is_url(directory):  # the reader fetches the manifest: ask it for the test split
        try:
            Reader(directory, "test", cache, cache_limit)
            splits = {"test"}
        except ReaderError as e:
            if "no shards of split" not in str(e):
                raise
            splits = set()
    else:
        with open(os.path.join(directory, "manifest.json")) as f:
            splits = {s["split"] for s in json.load(f)["shards"]}
    out = []
    for split in ("train", "test" if "test" in splits else "val"):
        r = Reader(directory, split, cache, cache_limit)
        if r.encoded:
            raise ValueError(f"{directory}: the shards hold encoded images (JPEG bytes), which load_data does "
                             "not decode: use shardpipe.Loader(view=..., size=...)")
        xs, ys = [], []
        for px, labels, _, _ in r.iterate(4096, 0, False, 1, 0, 1):
            xs.append(px)
            ys.append(labels)
        x, y = np.concatenate(xs), np.concatenate(ys)
        if x.shape[-1] == 1:
            x = x[..., 0]
        small = len(r.classes) <= 256 and (y.size == 0 or y.min() >= 0)
        out.append((x, y.astype(np.uint8 if small else np.int32)))
    return tuple(out)
