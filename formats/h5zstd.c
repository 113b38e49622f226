/* The HDF5 zstd filter (id 32015): compresses and decompresses chunks, frames with a content checksum. */
#include "formats/h5zstd.h"

#include <stdlib.h>
/* for ZSTD_c_literalCompressionMode: an "experimental" parameter, in the
 * shared library since zstd 1.4 under this number */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

static size_t zstd_decompress(size_t nbytes, size_t *buf_size, void **buf)
{
    unsigned long long n = ZSTD_getFrameContentSize(*buf, nbytes);
    if (n == ZSTD_CONTENTSIZE_ERROR)
        return 0;
    if (n != ZSTD_CONTENTSIZE_UNKNOWN) {
        if (n > SP_H5Z_ZSTD_MAX_CHUNK)
            return 0;
        void *out = malloc(n ? (size_t)n : 1);
        if (!out)
            return 0;
        size_t r = ZSTD_decompress(out, (size_t)n, *buf, nbytes);
        if (ZSTD_isError(r) || r != n) {
            free(out);
            return 0;
        }
        free(*buf);
        *buf = out;
        *buf_size = (size_t)n;
        return (size_t)n;
    }
    /* no content size in the frame: stream into a growing buffer */
    ZSTD_DStream *zs = ZSTD_createDStream();
    size_t cap = nbytes * 4 + 4096, len = 0;
    unsigned char *out = malloc(cap);
    ZSTD_inBuffer in = {*buf, nbytes, 0};
    size_t ret = 1;
    if (!zs || !out)
        goto fail;
    ZSTD_initDStream(zs);
    while (ret != 0) {
        if (len == cap) {
            if (cap * 2 > SP_H5Z_ZSTD_MAX_CHUNK)
                goto fail;
            unsigned char *o2 = realloc(out, cap * 2);
            if (!o2)
                goto fail;
            out = o2;
            cap *= 2;
        }
        ZSTD_outBuffer o = {out, cap, len};
        ret = ZSTD_decompressStream(zs, &o, &in);
        if (ZSTD_isError(ret))
            goto fail;
        if (ret != 0 && in.pos == in.size && o.pos < o.size)
            goto fail; /* input used up, room left, frame not complete: truncated */
        len = o.pos;
    }
    ZSTD_freeDStream(zs);
    free(*buf);
    *buf = out;
    *buf_size = cap;
    return len;
fail:
    ZSTD_freeDStream(zs);
    free(out);
    return 0;
}

static size_t zstd_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[],
                          size_t nbytes, size_t *buf_size, void **buf)
{
    if (flags & H5Z_FLAG_REVERSE)
        return zstd_decompress(nbytes, buf_size, buf);
    int level = cd_nelmts > 0 ? (int)cd_values[0] : ZSTD_CLEVEL_DEFAULT;
    if (level < 1 || level > ZSTD_maxCLevel())
        level = ZSTD_CLEVEL_DEFAULT;
    int raw_literals = cd_nelmts > 1 && (cd_values[1] & SP_H5Z_ZSTD_RAW_LITERALS);
    size_t cap = ZSTD_compressBound(nbytes);
    void *out = malloc(cap);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t n = 0;
    /* every frame carries the XXH64 of its content, so any zstd reader of the
     * shards (h5py through this filter, hdf5plugin, zstd itself) notices a
     * damaged chunk; frames written without one still decode */
    if (!out || !cc || ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)) ||
        (raw_literals &&
         ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_literalCompressionMode, ZSTD_ps_disable))) ||
        ZSTD_isError(n = ZSTD_compress2(cc, out, cap, *buf, nbytes))) {
        ZSTD_freeCCtx(cc);
        free(out);
        return 0;
    }
    ZSTD_freeCCtx(cc);
    free(*buf);
    *buf = out;
    *buf_size = cap;
    return n;
}

const H5Z_class2_t sp_h5z_zstd_class = {
    H5Z_CLASS_T_VERS,
    (H5Z_filter_t)SP_H5Z_ZSTD,
    1, /* encoder present */
    1, /* decoder present */
    "Zstandard compression: http://www.zstd.net",
    NULL,
    NULL,
    zstd_filter,
};

int sp_h5z_zstd_register(void)
{
    return H5Zregister(&sp_h5z_zstd_class) < 0 ? -1 : 0;
}
