"""Reads shard datasets with no HDF5 filter plugin: raw chunks through h5py's read_direct_chunk, zstd frames decoded by python3-zstandard.

The reference checks read through this module so that a fault the project's
zstd filter (formats/h5zstd.c) makes alike in compress and decompress cannot
hide: the bytes on disk are decoded by another implementation. Importing it
empties HDF5's plugin search path for the process (H5PLremove) and fails if
the zstd filter is available anyway (already loaded).

read(ds) -> numpy array of ds's full shape and dtype. Raises ValueError for a
filter other than zstd (32015), a chunk that is missing, a frame that is not
zstd or that decodes to another size than the chunk's; contiguous and
unfiltered chunked datasets are read by h5py itself (no filter involved).
"""
import h5py
import numpy as np
import zstandard

ZSTD_FILTER_ID = 32015

while h5py.h5pl.size():  # no directory left to load a plugin from
    h5py.h5pl.remove(0)
if h5py.h5z.filter_avail(ZSTD_FILTER_ID):
    raise SystemExit("h5raw: the zstd filter is already loaded; the independent decoder would prove nothing")


def filters(ds):
    """The filter ids in ds's pipeline, in order."""
    dcpl = ds.id.get_create_plist()
    return [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]


def read(ds):
    ids = filters(ds)
    if not ids:
        return ds[...]
    if ids != [ZSTD_FILTER_ID]:
        raise ValueError(f"{ds.name}: filters {ids}; this reader knows only zstd ({ZSTD_FILTER_ID})")
    if ds.dtype.hasobject or h5py.check_vlen_dtype(ds.dtype) is not None:
        raise ValueError(f"{ds.name}: variable-length data cannot be read from raw chunks")
    out = np.empty(ds.shape, ds.dtype)
    chunk_shape = ds.chunks
    chunk_bytes = int(np.prod(chunk_shape)) * ds.dtype.itemsize
    per_dim = [-(-n // c) for n, c in zip(ds.shape, chunk_shape)]
    want_chunks = int(np.prod(per_dim)) if ds.size else 0
    dsid = ds.id
    have = dsid.get_num_chunks()
    if have != want_chunks:
        raise ValueError(f"{ds.name}: {have} chunks stored, the shape needs {want_chunks}")
    dctx = zstandard.ZstdDecompressor()
    for i in range(have):
        offset = dsid.get_chunk_info(i).chunk_offset
        mask, raw = dsid.read_direct_chunk(offset)
        if mask & 1:  # the filter was skipped for this chunk: stored as is
            data = raw
        else:
            try:
                data = dctx.decompress(raw, max_output_size=chunk_bytes)
            except zstandard.ZstdError as e:
                raise ValueError(f"{ds.name}: chunk at {offset}: {e}") from None
        if len(data) != chunk_bytes:
            raise ValueError(f"{ds.name}: chunk at {offset}: {len(data)} bytes, want {chunk_bytes}")
        chunk = np.frombuffer(data, ds.dtype).reshape(chunk_shape)
        where = tuple(slice(o, min(o + c, n)) for o, c, n in zip(offset, chunk_shape, ds.shape))
        out[where] = chunk[tuple(slice(0, s.stop - s.start) for s in where)]
    return out
