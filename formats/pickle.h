/* A reader for the Python pickles that datasets ship as data (CIFAR's python
 * version): a pickle is read into a tree of plain values, and nothing in it
 * executes. What it accepts is exactly what a correct writer of such data
 * emits, at protocols 0 to 4 (Python 2's cPickle, Python 3's pickle):
 *   - None, booleans, integers (up to 64 bits), byte strings, unicode strings,
 *     tuples, lists and dicts, memo puts and gets, frames;
 *   - numpy arrays of uint8 ("u1"), as numpy pickles them:
 *     numpy.core.multiarray._reconstruct (or numpy._core's) called on
 *     numpy.ndarray, then BUILD with (version, shape, dtype, fortran, data),
 *     the dtype made by numpy.dtype("u1", ...) and its own BUILD;
 *   - _codecs.encode(str, "latin1") and bytes(), which Python 3 writes for a
 *     bytes object at protocols 0 to 2.
 * Any other global (os.system, ...) or opcode (NEWOBJ, FLOAT, ...) is refused
 * by name when it is read, before any object is made from it.
 *
 * Byte strings and UTF-8 strings point into the input where the pickle holds
 * them as they are (the 30 MB of a CIFAR batch is not copied): the input must
 * outlive the tree. Every length is checked against the limits and the bytes
 * left before anything is allocated. */
#ifndef SP_PICKLE_H
#define SP_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"

typedef enum {
    SP_PK_NONE,
    SP_PK_BOOL,  /* i is 0 or 1 */
    SP_PK_INT,   /* i */
    SP_PK_BYTES, /* s, len */
    SP_PK_STR,   /* s, len: UTF-8, not NUL-terminated */
    SP_PK_TUPLE, /* items, n */
    SP_PK_LIST,  /* items, n */
    SP_PK_DICT,  /* items, n: key, value, key, value... (n counts both) */
    SP_PK_ARRAY, /* a uint8 array: s, len (= product of shape), shape, ndim */
    SP_PK_INTERNAL /* globals, dtypes, marks: never in a finished tree */
} sp_pk_type;

enum { SP_PK_MAX_DIMS = 8 };

typedef struct sp_pk {
    sp_pk_type type;
    int sub; /* for SP_PK_INTERNAL: what it is (pickle.c) */
    int64_t i;
    const uint8_t *s;
    size_t len;
    struct sp_pk **items;
    size_t n, cap; /* cap: bytes allocated for items */
    uint64_t shape[SP_PK_MAX_DIMS];
    int ndim;
} sp_pk;

typedef struct sp_pickle_limits {
    uint64_t max_string; /* bytes in one string or array (default 256 MiB) */
    uint64_t max_objects; /* values made, memo entries (default 1 << 21) */
    uint64_t max_alloc;  /* bytes allocated for decoded strings (default 256 MiB) */
} sp_pickle_limits;

typedef struct sp_pickle sp_pickle;

void sp_pickle_limits_default(sp_pickle_limits *l);
/* 1 if data starts like a pickle of protocol 2 or later, or like a protocol 0
 * or 1 pickle of a dict ("(dp", "}"). */
int sp_pickle_sniff(const uint8_t *data, size_t len);
/* Reads the pickle in data (len bytes); name is for messages. Returns the
 * handle (free with sp_pickle_free) or NULL with err naming the file, the
 * offset and the reason: "truncated", a refused global or opcode, a limit. */
sp_pickle *sp_pickle_load(const uint8_t *data, size_t len, const sp_pickle_limits *lim, const char *name,
                          sp_err *err);
void sp_pickle_free(sp_pickle *p);
/* The value the pickle holds (owned by p). */
const sp_pk *sp_pickle_root(const sp_pickle *p);
/* The value of a dict's key given as a str or bytes key equal to key, or
 * NULL. */
const sp_pk *sp_pk_get(const sp_pk *dict, const char *key);

#endif
