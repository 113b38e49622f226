/* numpy's .npy format (numpy/lib/format.py), as np.save and np.savez write
 * it: "\x93NUMPY", major and minor version, the header's length (2 bytes
 * little-endian in version 1, 4 in versions 2 and 3), then the header, a
 * Python dict literal {'descr': '<i8', 'fortran_order': False, 'shape': (N,
 * H, W), }, padded with spaces to a newline; then the array's bytes in C
 * order. Only what a dataset's images and labels are is read: uint8 arrays,
 * and integer arrays of any width and byte order for labels. */
#ifndef SP_NPY_H
#define SP_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"
#include "formats/idx.h"

/* 1 if data starts with the .npy magic. */
int sp_npy_sniff(const uint8_t *data, size_t len);

/* Reads the .npy file in buf (len bytes; name for messages) as the IDX
 * arrays the decoder pairs: a uint8 array of N x H x W or N x H x W x C
 * (C <= 4) is images; an integer array of N or N x 1 is labels, each checked
 * to be within 0..255 and stored as uint8. The data is copied into out
 * (owned by the caller), which *idx points into. 0, or -1 with err naming the
 * file and why: "truncated", a dtype or Fortran order refused by name, a
 * label out of range (the record). */
int sp_npy_as_idx(const uint8_t *buf, size_t len, const char *name, sp_buf *out, sp_idx *idx, sp_err *err);

#endif
