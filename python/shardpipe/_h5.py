"""The map-style reader of shard sets through h5py (ShardDataset), the manifest check and the filter plugin search.

    import shardpipe
    train = shardpipe.ShardDataset("shards/imagenet", split="train")
    image, label = train[0]          # CHW float32, normalized; and an int
    loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True, num_workers=2)

A ShardDataset is a map-style dataset in PyTorch's sense (``__len__`` and
``__getitem__``), over the shards of one split listed in DIR/manifest.json.

Images: with ``normalize=True`` (the default) uint8 images are returned as
CHW float32, ``(x/255 - mean) / std`` with the mean and std the shards record
(``norm_mean``, ``norm_std`` attributes, set by sp-normalize), or just x/255
when they record none; float images already normalized (``norm_applied``) come
back as CHW float32 as they are. With ``normalize=False`` images come back as
stored, HWC. ``transform`` (optional) is applied to the image last.

Files are opened lazily in the process that reads them and reopened after a
fork, so the dataset is safe with DataLoader workers: each worker opens its
own files. Every image read is checked against the XXH3-64 the shard stores
for it in ``/checksums`` (the hash sp-verify checks, of the pixel bytes as
stored); a mismatch, or a chunk the decompressor cannot read, raises
``CorruptShardError`` naming the shard file and the record. Shards use the
HDF5 zstd filter 32015: the reader adds ``plugin_dir`` (default:
$HDF5_PLUGIN_PATH, else where ``make install`` put the plugin, else the
build/hdf5-plugin directory of this file's checkout) to h5py's plugin search
path, and fails at once (FilterMissingError) when the filter cannot be loaded.
"""
import bisect
import json
import os

import h5py
import numpy as np
import xxhash
from h5py import h5pl

from ._clib import pkg_config_libdir

__all__ = ["ShardDataset", "load_manifest", "CorruptShardError", "FilterMissingError"]

ZSTD_FILTER = 32015  # the HDF5 filter id of zstd, which every shard's images use

MAX_CLASSES = 1000000  # names in a manifest's class list, as the C reader allows


class CorruptShardError(ValueError):
    """A record whose stored bytes are damaged: the message names shard file and record."""


class FilterMissingError(RuntimeError):
    """h5py cannot load the zstd filter the shards need: the message says what to do."""


_plugin_dirs_added = set()


def _default_plugin_dir():
    """$HDF5_PLUGIN_PATH; else, installed by `make install`, the plugin
    directory its _install.py names, relative to the package; else this
    checkout's build/hdf5-plugin (the package is python/shardpipe); else the
    plugin directory of a `make install` to /usr/local."""
    here = os.path.dirname(os.path.abspath(__file__))
    if os.environ.get("HDF5_PLUGIN_PATH"):
        return os.environ["HDF5_PLUGIN_PATH"]
    try:
        from ._install import PLUGIN_DIR
        return os.path.normpath(os.path.join(here, PLUGIN_DIR))
    except ImportError:  # a checkout, or a pip install
        checkout = os.path.join(os.path.dirname(os.path.dirname(here)), "build", "hdf5-plugin")
        if os.path.isdir(checkout):
            return checkout
        libdir = pkg_config_libdir()
        installed = os.path.join(libdir, "hdf5", "plugin") if libdir else None
        return installed if installed and os.path.isdir(installed) else "/usr/local/lib/hdf5/plugin"


def _add_plugin_dir(plugin_dir):
    if plugin_dir is None:
        plugin_dir = _default_plugin_dir()
    for d in plugin_dir.split(os.pathsep):
        if d and d not in _plugin_dirs_added and os.path.isdir(d):
            # first in the search: HDF5 1.10 gives up at a missing directory
            # (Debian's default plugin directory is one) instead of going on
            h5pl.prepend(d.encode())
            _plugin_dirs_added.add(d)
    if not h5py.h5z.filter_avail(ZSTD_FILTER):
        raise FilterMissingError(
            f"h5py cannot load the HDF5 zstd filter ({ZSTD_FILTER}) the shards need: looked in {plugin_dir!r}; "
            "build it (make) or install it (make install), or set HDF5_PLUGIN_PATH (or plugin_dir=) to the "
            "directory holding libshardpipe-h5zstd.so / libh5zstd.so")


def load_manifest(directory):
    """DIR/manifest.json, checked for its format."""
    with open(os.path.join(directory, "manifest.json")) as f:
        m = json.load(f)
    if m.get("format") != "shardpipe-manifest" or m.get("format_version") != 1:
        raise ValueError(f"{directory}: not a shardpipe manifest (version 1)")
    for name in ("classes", "classes2"):
        names = m.get(name, [])
        if not isinstance(names, list) or len(names) > MAX_CLASSES or not all(isinstance(c, str) for c in names):
            raise ValueError(f"{directory}: {name} is not a list of at most {MAX_CLASSES} names")
    files = [s.get("file") for s in m.get("shards", [])]
    for f in files:
        if not isinstance(f, str) or not f or "/" in f or f.startswith("."):
            raise ValueError(f"{directory}: shard entry {f!r} is malformed")
    if len(set(files)) != len(files):
        twice = sorted({f for f in files if files.count(f) > 1})
        raise ValueError(f"{directory}: shard {twice[0]} is listed twice")
    return m


def _attr_str(h, name):
    v = h.attrs.get(name)
    return v.decode() if isinstance(v, bytes) else None if v is None else str(v)


def _check_entry(directory, entry, split, manifest):
    """Holds a shard file to its manifest entry, as the C reader does
    (shards/manifest.c): its own record count, split, shape, dtype and class
    names must be the manifest's. ValueError naming the file otherwise."""
    name = os.path.join(directory, entry["file"])
    records = entry.get("records")
    if not isinstance(records, int) or isinstance(records, bool) or records < 0:
        raise ValueError(f"{name}: the manifest's record count {records!r} is not a count")
    with h5py.File(name, "r") as h:
        count = int(h["images"].shape[0]) if "images" in h else None
        if count != records or int(h.attrs.get("record_count", -1)) != records:
            raise ValueError(f"{name}: {count} records, manifest says {records}")
        if _attr_str(h, "split") != split:
            raise ValueError(f"{name}: split {_attr_str(h, 'split')}, manifest says {split}")
        shape = [int(v) for v in h.attrs.get("shape", [])]
        if shape != list(entry.get("shape", [])):
            raise ValueError(f"{name}: shape {shape} differs from the manifest's {entry.get('shape')}")
        if _attr_str(h, "dtype") != entry.get("dtype"):
            raise ValueError(f"{name}: dtype {_attr_str(h, 'dtype')}, manifest says {entry.get('dtype')}")
        for k in ("classes", "classes2"):
            got = [c.decode() if isinstance(c, bytes) else str(c) for c in h.attrs.get(k, [])]
            if got != list(manifest.get(k, [])):
                raise ValueError(f"{name}: {k} differ from the manifest's ({len(got)} names in the shard, "
                                 f"{len(manifest.get(k, []))} in the manifest)")


class ShardDataset:
    """The records of one split of a shard set, in the order of the shards."""

    def __init__(self, directory, split="train", normalize=True, transform=None, plugin_dir=None,
                 max_open_files=8, chunk_cache_bytes=32 << 20):
        """max_open_files shard files stay open per process (the least recently
        used is closed beyond that), each with an HDF5 chunk cache of
        chunk_cache_bytes (h5py's default, 1 MiB, holds no 1 MiB image chunk,
        so every image would decompress its whole chunk): at most
        max_open_files x chunk_cache_bytes of decompressed chunks per process."""
        self.directory = directory
        self.split = split
        self.normalize = normalize
        self.transform = transform
        self.plugin_dir = plugin_dir
        self.max_open_files, self.chunk_cache_bytes = max(1, int(max_open_files)), int(chunk_cache_bytes)
        _add_plugin_dir(plugin_dir)
        m = load_manifest(directory)
        self.manifest = m
        self.classes = list(m.get("classes", []))
        entries = [s for s in m["shards"] if s.get("split") == split]
        self.files = [s["file"] for s in entries]
        if not self.files:
            raise ValueError(f"{directory}: no shards of split {split!r}")
        counts = [e["records"] for e in entries]
        self._ends = list(np.cumsum(counts, dtype=np.int64)) if counts else [0]
        self._pid = None
        self._handles = {}
        # normalization parameters from the first shard (all shards of a set share them)
        with h5py.File(os.path.join(directory, self.files[0]), "r") as h:
            if "encoded" in h:
                raise ValueError(f"{directory}: the shards hold encoded images (JPEG bytes), which ShardDataset "
                                 "does not decode: use shardpipe.Loader or ShardIterableDataset (view='train' "
                                 "or 'eval')")
            self.shape = tuple(int(v) for v in h.attrs["shape"])
            self.dtype = h["images"].dtype
            self.mean = np.asarray(h.attrs["norm_mean"], np.float64) if "norm_mean" in h.attrs else None
            self.std = np.asarray(h.attrs["norm_std"], np.float64) if "norm_std" in h.attrs else None
            self.applied = bool(h.attrs["norm_applied"]) if "norm_applied" in h.attrs else False
        for e in entries:
            _check_entry(directory, e, split, m)
        want = m.get("splits", {}).get(split, {}).get("records")
        if want != sum(counts):
            raise ValueError(f"{directory}: split {split} lists {want} records, its shards hold {sum(counts)}")
        if self.dtype == np.uint8 and self.mean is not None:
            # (x/255 - mean)/std as one table per channel: exact, and as fast as indexing
            x = np.arange(256, dtype=np.float64)[:, None] / 255.0
            self._table = ((x - self.mean) / self.std).astype(np.float32)  # (256, C)
        else:
            self._table = None

    def __len__(self):
        return int(self._ends[-1])

    def _file(self, k):
        if self._pid != os.getpid():  # a new process (a DataLoader worker): its own handles
            self._handles = {}
            self._pid = os.getpid()
        entry = self._handles.pop(k, None)
        if entry is None:
            if len(self._handles) >= self.max_open_files:  # the least recently used goes
                self._handles.pop(next(iter(self._handles)))[0].close()
            h = h5py.File(os.path.join(self.directory, self.files[k]), "r", rdcc_nbytes=self.chunk_cache_bytes,
                          rdcc_nslots=10007)
            # the small columns whole, once (a read of one row costs as much as of all)
            entry = (h, h["images"], h["keys"][:], h["checksums"][:], h["labels"][:])
        self._handles[k] = entry  # dicts keep insertion order: the last used is last
        return entry

    def locate(self, index):
        """(shard file, row) of a record."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        k = bisect.bisect_right(self._ends, index)
        return k, index - (self._ends[k - 1] if k else 0)

    def raw(self, index):
        """The record as stored: (image HWC, label, key)."""
        k, row = self.locate(index)
        h, images, keys, checksums, labels = self._file(k)
        where = f"{os.path.join(self.directory, self.files[k])}: record {row}"
        key = keys[row].decode()
        stored = int(checksums[row])
        try:
            image = images[row]
        except OSError as e:  # the filter refused the chunk: its frame checksum, or worse
            image = self._salvage(h, row, where, key, e)
        if xxhash.xxh3_64_intdigest(np.ascontiguousarray(image).tobytes()) != stored:
            raise CorruptShardError(f"{where} ({key}): pixels do not match their checksum (corrupt shard)")
        return image, int(labels[row]), key

    @staticmethod
    def _salvage(h, row, where, key, error):
        """The record's pixels from a chunk the filter refused: decompressed here
        without the frame's checksum, so the per-record checksum (checked by the
        caller) tells which records of the chunk are damaged."""
        import zstandard  # python3-zstandard, needed only here
        ds = h["images"]
        chunk_rows = ds.chunks[0] if ds.chunks else 0
        try:
            start = row - row % chunk_rows
            _, raw = ds.id.read_direct_chunk((start,) + (0,) * (ds.ndim - 1))
            frame = bytearray(raw)
            if len(frame) > 8 and frame[4] & 0x04:  # drop the content checksum
                frame[4] &= ~0x04
                frame = frame[:-4]
            rb = int(np.prod(ds.shape[1:])) * ds.dtype.itemsize
            data = zstandard.ZstdDecompressor().decompress(bytes(frame), max_output_size=chunk_rows * rb)
            return np.frombuffer(data[(row - start) * rb:(row - start + 1) * rb], ds.dtype).reshape(ds.shape[1:])
        except Exception:
            raise CorruptShardError(f"{where} ({key}): cannot read: {error} (corrupt shard)") from None

    def __getitem__(self, index):
        image, label, _ = self.raw(index)
        if self.normalize:
            if image.dtype == np.uint8:
                if self._table is not None:
                    image = self._table[image, np.arange(image.shape[-1])]
                else:
                    image = image.astype(np.float32) / np.float32(255)
            image = np.ascontiguousarray(np.asarray(image, np.float32).transpose(2, 0, 1))
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def __getstate__(self):  # open files do not travel to other processes
        state = dict(self.__dict__)
        state["_handles"] = {}
        state["_pid"] = None
        return state
