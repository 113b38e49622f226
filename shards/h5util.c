/* HDF5 set-up (error printing off, the zstd filter registered), the error stack as one message, pixel dtypes as HDF5 types. */
#include <string.h>

#include "formats/h5zstd.h"
#include "shards/shard.h"

int sp_h5_init(sp_err *err)
{
    static int done;
    if (done)
        return 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (sp_h5z_zstd_register())
        return sp_fail(err, SP_EXIT_SYSTEM, "cannot register the HDF5 zstd filter");
    done = 1;
    return 0;
}

typedef struct {
    char *buf;
    size_t n;
} walk_ctx;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *p)
{
    walk_ctx *w = p;
    if (n == 0 && e->desc)
        snprintf(w->buf, w->n, "%s", e->desc);
    return 0;
}

const char *sp_h5_error(char *buf, size_t n)
{
    walk_ctx w = {buf, n};
    snprintf(buf, n, "HDF5 error");
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &w);
    return buf;
}

hid_t sp_h5_pixel_type(int dtype)
{
    static hid_t half = H5I_INVALID_HID;
    switch (dtype) {
    case SP_DTYPE_F32: return H5T_NATIVE_FLOAT;
    case SP_DTYPE_F16:
        if (half < 0) { /* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits */
            half = H5Tcopy(H5T_IEEE_F32LE);
            H5Tset_fields(half, 15, 10, 5, 0, 10);
            H5Tset_size(half, 2);
            H5Tset_ebias(half, 15);
            H5Tset_precision(half, 16);
        }
        return half;
    default: return H5T_NATIVE_UINT8;
    }
}
