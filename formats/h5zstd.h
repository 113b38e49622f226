/* The HDF5 Zstandard filter, registered filter id 32015: the id and byte
 * format hdf5plugin and the HDF Group's registered-filter plugin use, so shards
 * open in h5py, h5dump and any HDF5 reader with that plugin.
 *
 * cd_values[0] (optional) is the compression level; chunks are stored as one
 * zstd frame with its content size. cd_values[1] (optional, ours) holds
 * flags for the compressor only: SP_H5Z_ZSTD_RAW_LITERALS stores literals
 * without Huffman coding, which decompresses about twice as fast for some
 * percent more bytes. Any zstd decoder reads the frames either way, and
 * other plugins ignore the flag. Decompression also accepts frames without
 * a content size (streamed), and refuses output over SP_H5Z_ZSTD_MAX_CHUNK.
 *
 * The same code is built into the tools (sp_h5z_zstd_register) and as a
 * plugin library (h5zstd_plugin.c) for HDF5_PLUGIN_PATH. */
#ifndef SP_H5ZSTD_H
#define SP_H5ZSTD_H

#include <hdf5.h>

#define SP_H5Z_ZSTD 32015
#define SP_H5Z_ZSTD_MAX_CHUNK (4ull << 30)
#define SP_H5Z_ZSTD_RAW_LITERALS 1u

extern const H5Z_class2_t sp_h5z_zstd_class;
/* Registers the filter with the HDF5 library; 0 or -1. */
int sp_h5z_zstd_register(void);

#endif
