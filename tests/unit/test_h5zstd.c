/* The zstd HDF5 filter: chunks written and read back through HDF5, frames
 * without a content size (as streaming writers make them), frames with and
 * without the content checksum, and corrupt input. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "check.h"
#include "formats/h5zstd.h"
#include "shards/shard.h"

static size_t run_filter(unsigned flags, const void *in, size_t n, void **out)
{
    void *buf = malloc(n);
    memcpy(buf, in, n);
    size_t size = n;
    unsigned level = 3;
    size_t r = sp_h5z_zstd_class.filter(flags, 1, &level, n, &size, &buf);
    *out = buf;
    return r;
}

int main(void)
{
    sp_err err = {0};
    CHECK(sp_h5_init(&err) == 0, "%s", err.msg);
    enum { N = 100000 };
    uint8_t *data = malloc(N);
    for (int i = 0; i < N; i++)
        data[i] = (uint8_t)(((unsigned)i * (unsigned)i) >> 5);

    void *z, *back;
    size_t zn = run_filter(0, data, N, &z);
    CHECK(zn > 0 && zn < N, "compressed to %zu", zn);
    size_t bn = run_filter(H5Z_FLAG_REVERSE, z, zn, &back);
    CHECK(bn == N && !memcmp(back, data, N), "round trip through the filter");
    free(back);

    /* the frame carries zstd's content checksum: a changed byte anywhere in it
     * is refused (the last 4 bytes are the checksum itself) */
    CHECK(((const uint8_t *)z)[4] & 0x04, "frame descriptor 0x%02x has no checksum flag", ((const uint8_t *)z)[4]);
    for (size_t at = 6; at < zn; at += zn / 7) {
        uint8_t *bad = malloc(zn);
        memcpy(bad, z, zn);
        bad[at] ^= 0x10;
        size_t got = run_filter(H5Z_FLAG_REVERSE, bad, zn, &back);
        CHECK(got == 0, "a frame changed at byte %zu of %zu decoded (%zu bytes)", at, zn, got);
        free(back);
        free(bad);
    }
    /* a frame written without a checksum (shards from before it) still decodes */
    {
        uint8_t *old = malloc(ZSTD_compressBound(N));
        size_t on = ZSTD_compress(old, ZSTD_compressBound(N), data, N, 3);
        CHECK(!ZSTD_isError(on) && !(old[4] & 0x04), "plain frame");
        bn = run_filter(H5Z_FLAG_REVERSE, old, on, &back);
        CHECK(bn == N && !memcmp(back, data, N), "frame without a checksum");
        free(back);
        free(old);
    }

    /* truncated frame: the filter fails (returns 0), never returns short data */
    CHECK(run_filter(H5Z_FLAG_REVERSE, z, zn / 2, &back) == 0, "truncated frame accepted");
    free(back);
    free(z);

    /* a frame with no content size, as ZSTD_compressStream2 writes one */
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t cap = ZSTD_compressBound(N);
    uint8_t *sz = malloc(cap);
    ZSTD_outBuffer o = {sz, cap, 0};
    ZSTD_inBuffer in = {data, N, 0};
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    size_t left = ZSTD_compressStream2(cc, &o, &in, ZSTD_e_end);
    CHECK(left == 0 && ZSTD_getFrameContentSize(sz, o.pos) == ZSTD_CONTENTSIZE_UNKNOWN, "streamed frame");
    bn = run_filter(H5Z_FLAG_REVERSE, sz, o.pos, &back);
    CHECK(bn == N && !memcmp(back, data, N), "frame without content size");
    free(back);
    ZSTD_freeCCtx(cc);
    free(sz);

    /* through HDF5: a chunked dataset with the filter, read back */
    char path[] = "/tmp/sp-h5zstd-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[1] = {N}, chunk[1] = {N / 4};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    unsigned level = 5;
    H5Pset_filter(dcpl, SP_H5Z_ZSTD, H5Z_FLAG_MANDATORY, 1, &level);
    hid_t ds = H5Dcreate2(f, "d", H5T_NATIVE_UINT8, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(ds >= 0 && H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, "write");
    CHECK(H5Dget_storage_size(ds) < N, "stored %llu bytes", (unsigned long long)H5Dget_storage_size(ds));
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ds = H5Dopen2(f, "d", H5P_DEFAULT);
    uint8_t *rd = calloc(1, N);
    CHECK(H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, rd) >= 0 && !memcmp(rd, data, N),
          "read back through HDF5");
    hid_t plist = H5Dget_create_plist(ds);
    unsigned flags, cd[4];
    size_t ncd = 4;
    H5Z_filter_t id = H5Pget_filter2(plist, 0, &flags, &ncd, cd, 0, NULL, NULL);
    CHECK(id == 32015 && ncd == 1 && cd[0] == 5, "filter id %d, level %u", (int)id, cd[0]);
    H5Pclose(plist);
    H5Dclose(ds);
    H5Fclose(f);
    unlink(path);
    free(rd);
    free(data);
    return CHECK_DONE("test_h5zstd");
}
