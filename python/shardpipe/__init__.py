"""shardpipe: read shardpipe shard sets (HDF5 + zstd) from Python.

    import shardpipe
    loader = shardpipe.Loader("shards/fmnist", batch_size=256)   # batches from the C reader
    for images, labels in loader: ...
    (x_train, y_train), (x_test, y_test) = shardpipe.load_data("shards/fmnist")
    train = shardpipe.ShardDataset("shards/fmnist")                # map-style, through h5py
    ds = shardpipe.ShardIterableDataset("shards/fmnist")           # for DataLoader(num_workers=...)

Loader, Reader and load_data use libshardpipe-reader through ctypes (found in
this checkout's build/lib, else beside a `make install`, else by the dynamic
linker; $SHARDPIPE_READER_LIB overrides); ShardDataset uses h5py and the zstd
filter plugin. Importing the package needs neither torch nor the library;
ShardIterableDataset imports torch when first named.
"""
from ._clib import ReaderArgumentError, ReaderError
from ._h5 import CorruptShardError, FilterMissingError, ShardDataset, load_manifest
from .loader import Loader, Reader, default_rank_world, load_data

__all__ = ["Loader", "Reader", "load_data", "ShardDataset", "ShardIterableDataset", "load_manifest",
           "CorruptShardError", "FilterMissingError", "ReaderError", "ReaderArgumentError",
           "default_rank_world"]
__version__ = "0.1.0"


def __getattr__(name):  # torch only when the IterableDataset form is used
    if name == "ShardIterableDataset":
        from .torch_data import ShardIterableDataset
        return ShardIterableDataset
    raise AttributeError(f"module 'shardpipe' has no attribute {name!r}")
