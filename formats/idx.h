/* IDX files (the MNIST family's format): a big-endian header
 *   0x00 0x00 type ndim  dim[0]:u32be ... dim[ndim-1]:u32be
 * followed by prod(dim) elements. Only unsigned bytes (type 0x08) are
 * image/label data; other element types are reported as unsupported. */
#ifndef SP_IDX_H
#define SP_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"

#define SP_IDX_MAX_DIMS 4

typedef struct sp_idx {
    uint8_t type;  /* element type code, 0x08 = uint8 */
    uint8_t ndim;  /* 1 (labels) to SP_IDX_MAX_DIMS */
    uint32_t dims[SP_IDX_MAX_DIMS];
    const uint8_t *data; /* points into the parsed buffer, prod(dims) bytes */
    uint64_t count;      /* dims[0]: number of items */
    uint64_t item_bytes; /* product of dims[1..] (1 for labels) */
} sp_idx;

/* 1 if buf looks like the start of an IDX file (magic and a sane ndim). */
int sp_idx_sniff(const uint8_t *buf, size_t len);
/* Parses and checks a whole IDX file held in buf: uint8 elements, 1 to 4
 * dimensions, none zero except the count, and a file size that matches the
 * header exactly. name is used in messages. */
int sp_idx_parse(const uint8_t *buf, size_t len, const char *name, sp_idx *out, sp_err *err);
/* The same checks from the header alone, for a file read as a stream: buf
 * holds the file's first have bytes (at least the header when the file is an
 * IDX file), len is the whole file's size. out->data is NULL. */
int sp_idx_parse_header(const uint8_t *buf, size_t have, uint64_t len, const char *name, sp_idx *out,
                        sp_err *err);
/* Bytes of a parsed file's header: 4 + 4 * ndim. */
static inline size_t sp_idx_header_bytes(const sp_idx *idx) { return 4u + 4u * idx->ndim; }

#endif
