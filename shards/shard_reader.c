/* Reading one HDF5 shard: open with its checks, records by index range, each record's checksum verified. */
#define _GNU_SOURCE /* F_DUPFD_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* ZSTD_d_forceIgnoreChecksum: an "experimental" parameter, in the shared
 * library since zstd 1.4.7 */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "common/sp_xxh.h"
#include "formats/h5zstd.h"
#include "shards/remote.h"
#include "shards/shard.h"

struct sp_shard_scratch {
    uint8_t *raw; /* a compressed chunk, raw_cap bytes */
    size_t raw_cap;
    ZSTD_DCtx *dctx;
};

/* A per-record column (labels, labels2, checksums) of an open shard. When its
 * chunks hold at most SP_SHARD_COLUMN_DIRECT_MAX rows, of the native type,
 * stored as they are or as one zstd frame each (sp-shard writes them so),
 * they are read raw and the chunk the handle is in is kept decompressed here;
 * else (rows 0) every read goes through HDF5 and its chunk cache. */
/* Where chunk i of a dataset lies in the file (sp_shard_detach). */
typedef struct {
    uint64_t addr;
    uint32_t size, mask; /* stored bytes; the filters skipped (bit 0: zstd) */
} chunk_loc;

typedef struct {
    hid_t ds;
    const char *name;
    hid_t type;       /* the native type of a row's values */
    size_t row_bytes;
    unsigned cols;    /* values a row: 1, or 3 for an encoded shard's shapes [n, 3] */
    uint64_t rows;    /* rows per chunk, read directly; 0: through HDF5 */
    int zstd;         /* 1: each chunk is a zstd frame; 0: stored as it is */
    uint8_t *kept;    /* chunk `at`, rows x row_bytes bytes */
    int64_t at;       /* -1: none */
    chunk_loc *loc;   /* once detached: the places of chunks loc_c0.. (loc_n of them) */
    uint64_t loc_c0, loc_n;
    int present;      /* opened (labels2 is optional) */
} shard_column;

struct sp_shard {
    char path[4096];
    hid_t file, images;
    shard_column labels, labels2, checksums;
    int pin; /* a remote shard's cache lock, held while open (shards/remote.h); -1 for a local one */
    uint64_t n;
    uint32_t h, w, c;
    int dtype, split;
    int verify;            /* 1: sp_shard_read checks pixels against /checksums (the default) */
    uint64_t *sums;        /* scratch for those checks when the caller wants no checksums */
    size_t sums_cap;
    char **keys; /* keys_n pointers into keybuf: the keys of records keys_first.. */
    char *keybuf;
    uint64_t keys_first, keys_n;
    hid_t keys_ds; /* the keys dataset, kept open once read (its chunk cache with it) */
    json_t *meta;
    /* Direct reading of the images, when they are chunked by records and
     * compressed by zstd alone (as sp-shard writes them): each chunk is read
     * raw and decompressed straight into the caller's buffer, with no
     * allocation per chunk. HDF5's filter pipeline would allocate and fault in
     * a fresh output buffer for every chunk, then copy it once more; that
     * cost 25% of the reader's throughput on 224x224 photos. */
    int direct;
    uint64_t chunk_n;      /* records per chunk */
    size_t record_bytes;
    sp_shard_scratch own;  /* a compressed chunk and the decompressor, unless */
    sp_shard_scratch *sc;  /* another's are lent (sp_shard_set_scratch); NULL: own */
    uint8_t *part;         /* the last chunk read in part (a read range's ends) */
    int64_t part_chunk;    /* its index, or -1 */
    /* encoded shards (kind SP_KIND_ENCODED): images is the /encoded byte
     * array; offsets (n+1), shapes (n x 3) and codecs (n) are loaded at open
     * and checked there (offsets rising from 0 to the array's length, sides
     * 1..65536, one channel count, codecs known) */
    int kind;
    uint64_t enc_len;
    uint64_t *offsets;
    uint32_t *shapes;
    uint8_t *codecs;
    /* or, opened for a reader's lane (sp_shard_open_lane) on the layout
     * sp-shard writes: the index read a chunk at a time as records are read,
     * each range checked as it is read (offsets rising within the bytes) */
    int windowed;
    shard_column offs, shps, cods;
    uint64_t *idx_scratch; /* n+1 offsets of a read */
    size_t idx_cap;        /* bytes */
    uint8_t *meta_scratch; /* shapes and codecs of a read, checked when the caller wants neither */
    size_t meta_cap;
    uint64_t bytes_read; /* images bytes read from the file: compressed chunks, encoded bytes, or rows */
    /* detached (sp_shard_detach): HDF5's ids closed, chunks read by pread */
    int fd;              /* -1: attached */
    struct stat det_st;  /* the file's, once detached (sp_shard_take_buffers compares them) */
    chunk_loc *img_loc;  /* the images' chunks, or the encoded bytes' chunks img_c0.. */
    uint64_t img_c0, img_nc;
    uint64_t det_first, det_n; /* the records whose chunks are placed (sp_shard_covers) */
    uint64_t enc_chunk;  /* an encoded shard's bytes a chunk */
};

sp_shard_scratch *sp_shard_scratch_new(void) { return calloc(1, sizeof(sp_shard_scratch)); }

/* The buffers of sc, not sc itself (a shard's own are in it). */
static void scratch_clear(sp_shard_scratch *sc)
{
    free(sc->raw);
    ZSTD_freeDCtx(sc->dctx);
    *sc = (sp_shard_scratch){0};
}

/* sc's compressed-chunk buffer grown to size bytes, its decompressor made. */
static int scratch_reserve(sp_shard_scratch *sc, size_t size, sp_err *err)
{
    if (sp_grow((void **)&sc->raw, &sc->raw_cap, size))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (!sc->dctx) {
        if (!(sc->dctx = ZSTD_createDCtx()))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        /* the per-record XXH3 checks name the damaged record; the frame's own
         * XXH64 (when the writer stored one) would only name the chunk */
        ZSTD_DCtx_setParameter(sc->dctx, ZSTD_d_forceIgnoreChecksum, ZSTD_d_ignoreChecksum);
    }
    return 0;
}

void sp_shard_scratch_free(sp_shard_scratch *sc)
{
    if (sc)
        scratch_clear(sc);
    free(sc);
}

void sp_shard_set_scratch(sp_shard *s, sp_shard_scratch *sc)
{
    if (sc && sc != &s->own)
        scratch_clear(&s->own);
    s->sc = sc;
}

static int h5fail(sp_err *err, const char *path, const char *what)
{
    char m[256];
    return sp_fail(err, SP_EXIT_DATA, "%s: %s: %s", path, what, sp_h5_error(m, sizeof m));
}

static char *attr_string(hid_t loc, const char *name)
{
    if (H5Aexists(loc, name) <= 0)
        return NULL;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    char *out = NULL;
    if (H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5Tget_cset(ft));
        char *v = NULL;
        if (H5Aread(a, t, &v) >= 0 && v) {
            out = strdup(v);
            H5free_memory(v);
        }
        H5Tclose(t);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

int sp_shard_attr_int(const sp_shard *s, const char *name, long long *out, sp_err *err)
{
    if (H5Aexists(s->file, name) <= 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: attribute %s missing", s->path, name);
    hid_t a = H5Aopen(s->file, name, H5P_DEFAULT);
    long long v = 0;
    herr_t rc = H5Aread(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
    if (rc < 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: attribute %s is not an integer", s->path, name);
    *out = v;
    return 0;
}

static int dtype_of(hid_t t)
{
    if (H5Tequal(t, H5T_NATIVE_UINT8) > 0)
        return SP_DTYPE_U8;
    if (H5Tequal(t, H5T_NATIVE_FLOAT) > 0)
        return SP_DTYPE_F32;
    if (H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 2)
        return SP_DTYPE_F16;
    return SP_DTYPE_NONE;
}

/* Reads the keys of records [first, first+n) into s->keys and s->keybuf,
 * in place of those held before (see sp_shard_load_keys). */
static int read_keys(sp_shard *s, uint64_t first, uint64_t n, sp_err *err)
{
    free(s->keys);
    free(s->keybuf);
    s->keys = NULL, s->keybuf = NULL, s->keys_first = s->keys_n = 0;
    if (first > s->n || n > s->n - first)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: keys of records %llu..%llu out of range", s->path,
                       (unsigned long long)first, (unsigned long long)(first + n));
    if (s->fd >= 0)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: keys of records %llu..%llu: the shard is read without HDF5 "
                       "(sp_shard_detach)", s->path, (unsigned long long)first, (unsigned long long)(first + n));
    if (s->keys_ds < 0 && (s->keys_ds = H5Dopen2(s->file, "keys", H5P_DEFAULT)) < 0)
        return h5fail(err, s->path, "no keys dataset");
    hid_t ds = s->keys_ds;
    hid_t space = H5Dget_space(ds);
    hsize_t all = 0, start = first, count = n;
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd == 1)
        H5Sget_simple_extent_dims(space, &all, NULL);
    int rc = 0;
    if (nd != 1 || all != s->n) {
        rc = sp_fail(err, SP_EXIT_DATA, "%s: keys has %llu entries, images %llu", s->path,
                     (unsigned long long)all, (unsigned long long)s->n);
    } else {
        char **raw = calloc(n ? n : 1, sizeof *raw);
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        hid_t ms = H5Screate_simple(1, &count, NULL);
        H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, NULL, &count, NULL);
        if (!raw || (n && H5Dread(ds, t, ms, space, H5P_DEFAULT, raw) < 0)) {
            rc = raw ? h5fail(err, s->path, "cannot read keys") : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        } else {
            size_t total = 0;
            for (hsize_t i = 0; i < n; i++)
                total += (raw[i] ? strlen(raw[i]) : 0) + 1;
            s->keybuf = malloc(total ? total : 1);
            s->keys = malloc((n ? n : 1) * sizeof *s->keys);
            if (!s->keybuf || !s->keys) {
                rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
            } else {
                char *p = s->keybuf;
                for (hsize_t i = 0; i < n; i++) {
                    size_t k = raw[i] ? strlen(raw[i]) : 0;
                    memcpy(p, raw[i] ? raw[i] : "", k + 1);
                    s->keys[i] = p;
                    p += k + 1;
                }
                s->keys_first = first, s->keys_n = n;
            }
            if (n)
                H5Dvlen_reclaim(t, ms, H5P_DEFAULT, raw);
        }
        H5Sclose(ms);
        H5Tclose(t);
        free(raw);
    }
    H5Sclose(space);
    if (rc) {
        free(s->keys);
        free(s->keybuf);
        s->keys = NULL, s->keybuf = NULL, s->keys_first = s->keys_n = 0;
    }
    return rc;
}

int sp_shard_load_keys(sp_shard *s, uint64_t first, uint64_t n, sp_err *err) { return read_keys(s, first, n, err); }

/* A column not yet opened: rows of `cols` values of the native type t, row_bytes bytes. */
static shard_column new_column(const char *name, hid_t t, size_t row_bytes, unsigned cols)
{
    return (shard_column){.ds = H5I_INVALID_HID, .name = name, .type = t, .row_bytes = row_bytes, .cols = cols, .at = -1};
}

/* Opens column c (its name, type and cols set) and checks it holds `want`
 * rows (the records, or one more for offsets) of c->cols values; sets its
 * direct reading up when its layout allows (shard_column). */
static int open_column_rows(sp_shard *s, shard_column *c, uint64_t want, sp_err *err)
{
    if ((c->ds = H5Dopen2(s->file, c->name, H5P_DEFAULT)) < 0)
        return h5fail(err, s->path, c->name);
    c->present = 1;
    int rank = c->cols > 1 ? 2 : 1;
    hid_t space = H5Dget_space(c->ds);
    hsize_t d[2] = {0, 0};
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd == rank)
        H5Sget_simple_extent_dims(space, d, NULL);
    H5Sclose(space);
    if (nd != rank || d[0] != want || (rank == 2 && d[1] != c->cols))
        return sp_fail(err, SP_EXIT_DATA, "%s: %s has %llu entries, images %llu", s->path, c->name,
                       (unsigned long long)d[0], (unsigned long long)s->n);
    hid_t dcpl = H5Dget_create_plist(c->ds), ft = H5Dget_type(c->ds);
    hsize_t cd[2] = {0, 0}, rows = 0;
    unsigned flags, cdv[4], config;
    size_t ncd = 4;
    char fname[64];
    int nf = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 2, cd) == rank &&
                     (rank == 1 || cd[1] == c->cols)
                 ? H5Pget_nfilters(dcpl) : -1;
    rows = nf >= 0 ? cd[0] : 0;
    if (rows > 0 && rows <= SP_SHARD_COLUMN_DIRECT_MAX && ft >= 0 && H5Tequal(ft, c->type) > 0 &&
        (nf == 0 || (nf == 1 && H5Pget_filter2(dcpl, 0, &flags, &ncd, cdv, sizeof fname, fname, &config) ==
                                    SP_H5Z_ZSTD))) {
        c->rows = rows;
        c->zstd = nf == 1;
    }
    if (ft >= 0)
        H5Tclose(ft);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    return 0;
}

static int open_column(sp_shard *s, shard_column *c, sp_err *err) { return open_column_rows(s, c, s->n, err); }

/* unfinished_split < 0: a committed shard, checked by its attributes; else a
 * writer's finished but uncommitted shard of that split, which has none yet. */
/* Sets s->direct when the images can be read chunk by chunk (see sp_shard). */
static void setup_direct(sp_shard *s)
{
    hid_t dcpl = H5Dget_create_plist(s->images), ft = H5Dget_type(s->images);
    hsize_t cd[4];
    unsigned flags, cdv[4], config;
    size_t ncd = 4;
    char name[64];
    if (dcpl >= 0 && ft >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 4, cd) == 4 &&
        cd[0] > 0 && cd[1] == s->h && cd[2] == s->w && cd[3] == s->c && H5Pget_nfilters(dcpl) == 1 &&
        H5Pget_filter2(dcpl, 0, &flags, &ncd, cdv, sizeof name, name, &config) == SP_H5Z_ZSTD &&
        H5Tequal(ft, sp_h5_pixel_type(s->dtype)) > 0 &&
        cd[0] <= (SP_SHARD_MAX_CHUNK_BYTES / ((size_t)s->h * s->w * s->c * H5Tget_size(ft)))) {
        s->direct = 1;
        s->chunk_n = cd[0];
        s->record_bytes = (size_t)s->h * s->w * s->c * H5Tget_size(ft);
    }
    if (ft >= 0)
        H5Tclose(ft);
    if (dcpl >= 0)
        H5Pclose(dcpl);
}

/* Reads the 1-D or [n, 3] dataset name of n rows of type t into a new buffer
 * of bytes bytes at *out. 0 or -1 naming the shard. */
static int load_column(sp_shard *s, const char *name, hid_t t, hsize_t n, int cols, size_t bytes, void **out,
                       sp_err *err)
{
    hid_t ds = H5Dopen2(s->file, name, H5P_DEFAULT);
    if (ds < 0)
        return h5fail(err, s->path, name);
    hid_t space = H5Dget_space(ds);
    hsize_t d[2] = {0, 0};
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd == (cols > 1 ? 2 : 1))
        H5Sget_simple_extent_dims(space, d, NULL);
    H5Sclose(space);
    int rc = 0;
    if (nd != (cols > 1 ? 2 : 1) || d[0] != n || (cols > 1 && d[1] != (hsize_t)cols)) {
        rc = sp_fail(err, SP_EXIT_DATA, "%s: %s is not %llu%s entries", s->path, name, (unsigned long long)n,
                     cols > 1 ? " x 3" : "");
    } else if (!(*out = malloc(bytes ? bytes : 1))) {
        rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    } else if (n && H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
        rc = h5fail(err, s->path, name);
    }
    H5Dclose(ds);
    return rc;
}

/* Opens an encoded shard's byte array and loads and checks its offsets,
 * shapes and codecs (see sp_shard); sets n, the largest h and w, and c. */
static int read_column(sp_shard *s, shard_column *c, uint64_t first, uint64_t n, void *out, sp_err *err);

/* An encoded shard's index (offsets, shapes, codecs) set up to be read a
 * chunk at a time: 0 when it is (the first and last offsets checked, the
 * shard's largest H and W and its C from its shape attribute), 1 when its
 * layout is not sp-shard's (the caller loads it whole; the columns closed
 * again), -1 with err. */
static int open_index_windowed(sp_shard *s, uint64_t len, sp_err *err)
{
    shard_column *cols[] = {&s->offs, &s->shps, &s->cods};
    int direct = 1;
    for (size_t i = 0; i < 3; i++) {
        if (open_column_rows(s, cols[i], s->n + (i == 0), err))
            return -1;
        direct = direct && cols[i]->rows;
    }
    hid_t a = direct && H5Aexists(s->file, "shape") > 0 ? H5Aopen(s->file, "shape", H5P_DEFAULT) : H5I_INVALID_HID;
    int32_t shape[3] = {0, 0, 0};
    hid_t sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    direct = a >= 0 && sp >= 0 && H5Sget_simple_extent_npoints(sp) == 3 && H5Aread(a, H5T_NATIVE_INT32, shape) >= 0;
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    if (!direct) {
        for (size_t i = 0; i < 3; i++) {
            H5Dclose(cols[i]->ds);
            cols[i]->ds = H5I_INVALID_HID, cols[i]->present = 0, cols[i]->rows = 0;
        }
        return 1;
    }
    uint64_t ends[2];
    if (read_column(s, &s->offs, 0, 1, ends, err) || read_column(s, &s->offs, s->n, 1, ends + 1, err))
        return -1;
    if (ends[0] != 0 || ends[1] != len)
        return sp_fail(err, SP_EXIT_DATA, "%s: offsets run from %llu to %llu, encoded holds %llu bytes", s->path,
                       (unsigned long long)ends[0], (unsigned long long)ends[1], (unsigned long long)len);
    if (shape[0] < 1 || shape[1] < 1 || shape[0] > 65536 || shape[1] > 65536 || shape[2] < 1 || shape[2] > 16)
        return sp_fail(err, SP_EXIT_DATA, "%s: shape attribute %dx%dx%d out of bounds", s->path, shape[0], shape[1],
                       shape[2]);
    s->h = (uint32_t)shape[0], s->w = (uint32_t)shape[1], s->c = (uint32_t)shape[2];
    if (!s->n)
        s->h = s->w = 1;
    s->dtype = SP_DTYPE_U8;
    s->windowed = 1;
    return 0;
}

static int open_encoded(sp_shard *s, int lane, sp_err *err)
{
    s->kind = SP_KIND_ENCODED;
    s->images = H5Dopen2(s->file, "encoded", H5P_DEFAULT);
    if (s->images < 0)
        return h5fail(err, s->path, "no encoded dataset");
    hid_t space = H5Dget_space(s->images), t = H5Dget_type(s->images);
    hsize_t len = 0;
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd == 1)
        H5Sget_simple_extent_dims(space, &len, NULL);
    int u8 = H5Tequal(t, H5T_NATIVE_UINT8) > 0;
    H5Sclose(space);
    H5Tclose(t);
    if (nd != 1 || !u8)
        return sp_fail(err, SP_EXIT_DATA, "%s: encoded is not a byte array", s->path);
    s->enc_len = len;
    hid_t od = H5Dopen2(s->file, "offsets", H5P_DEFAULT);
    if (od < 0)
        return h5fail(err, s->path, "no offsets dataset");
    space = H5Dget_space(od);
    hsize_t n1 = 0;
    if (H5Sget_simple_extent_ndims(space) == 1)
        H5Sget_simple_extent_dims(space, &n1, NULL);
    H5Sclose(space);
    H5Dclose(od);
    if (n1 < 1 || n1 - 1 > SP_SHARD_MAX_RECORDS)
        return sp_fail(err, SP_EXIT_DATA, "%s: offsets has %llu entries (records + 1, at most %llu records)", s->path,
                       (unsigned long long)n1, (unsigned long long)SP_SHARD_MAX_RECORDS);
    s->n = n1 - 1;
    if (lane) {
        int w = open_index_windowed(s, len, err);
        if (w <= 0)
            return w;
    }
    if (load_column(s, "offsets", H5T_NATIVE_UINT64, n1, 1, n1 * 8, (void **)&s->offsets, err) ||
        load_column(s, "shapes", H5T_NATIVE_UINT32, s->n, 3, s->n * 12, (void **)&s->shapes, err) ||
        load_column(s, "codecs", H5T_NATIVE_UINT8, s->n, 1, s->n, (void **)&s->codecs, err))
        return -1;
    if (s->offsets[0] != 0 || s->offsets[s->n] != len)
        return sp_fail(err, SP_EXIT_DATA, "%s: offsets run from %llu to %llu, encoded holds %llu bytes", s->path,
                       (unsigned long long)s->offsets[0], (unsigned long long)s->offsets[s->n],
                       (unsigned long long)len);
    s->h = s->w = 0;
    s->c = s->n ? s->shapes[2] : 3;
    for (uint64_t i = 0; i < s->n; i++) {
        const uint32_t *hwc = s->shapes + 3 * i;
        if (s->offsets[i + 1] <= s->offsets[i])
            return sp_fail(err, SP_EXIT_DATA, "%s: record %llu: offsets do not rise (%llu to %llu)", s->path,
                           (unsigned long long)i, (unsigned long long)s->offsets[i],
                           (unsigned long long)s->offsets[i + 1]);
        if (!hwc[0] || !hwc[1] || hwc[0] > 65536 || hwc[1] > 65536 || hwc[2] != s->c || !s->c || s->c > 16)
            return sp_fail(err, SP_EXIT_DATA, "%s: record %llu: decoded shape %ux%ux%u out of bounds", s->path,
                           (unsigned long long)i, hwc[0], hwc[1], hwc[2]);
        if (s->codecs[i] != SP_CODEC_JPEG && s->codecs[i] != SP_CODEC_PNG)
            return sp_fail(err, SP_EXIT_DATA, "%s: record %llu: unknown codec %u", s->path, (unsigned long long)i,
                           s->codecs[i]);
        if (hwc[0] > s->h)
            s->h = hwc[0];
        if (hwc[1] > s->w)
            s->w = hwc[1];
    }
    if (!s->n)
        s->h = s->w = 1;
    s->dtype = SP_DTYPE_U8;
    return 0;
}

/* HDF5's metadata cache of an open shard, held to SHARD_MDC_MAX bytes (its
 * default grows to 32 MiB a file). A shard's own metadata (the chunk
 * indexes, the attributes) is tens of KiB; what fills the cache is the global
 * heap collections that hold the keys, which stay cached after they are read,
 * so a reader going through a shard's keys batch by batch would hold them
 * all. The cache may still overshoot by one entry bigger than it. 1 MiB:
 * sp-verify's time is the same as with 2 (the keys are read in order), and a
 * set of 10^4 records, whose keys never fill the cache, is no longer 2 MB
 * under every larger one. */
#define SHARD_MDC_MAX ((size_t)1 << 20)
static void bound_metadata_cache(hid_t file)
{
    H5AC_cache_config_t mdc;
    memset(&mdc, 0, sizeof mdc);
    mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    if (H5Fget_mdc_config(file, &mdc) < 0)
        return;
    mdc.set_initial_size = 1;
    mdc.initial_size = SHARD_MDC_MAX / 2;
    mdc.min_size = SHARD_MDC_MAX / 2;
    mdc.max_size = SHARD_MDC_MAX;
    H5Fset_mdc_config(file, &mdc); /* best effort: a refusal leaves HDF5's default */
}

static sp_shard *shard_open(const char *path, int keys, int unfinished_split, sp_err *err);
sp_shard *sp_shard_open(const char *path, sp_err *err) { return shard_open(path, 1, -1, err); }
sp_shard *sp_shard_open_nokeys(const char *path, sp_err *err) { return shard_open(path, 0, -1, err); }
sp_shard *sp_shard_open_lane(const char *path, sp_err *err) { return shard_open(path, 2, -1, err); }
sp_shard *sp_shard_open_unfinished(const char *path, int split, sp_err *err)
{
    return shard_open(path, 1, split, err);
}

/* keys: 1 loads them, 0 does not, 2 neither and an encoded index windowed */
static sp_shard *shard_open(const char *path, int keys, int unfinished_split, sp_err *err)
{
    int lane = keys == 2;
    keys = keys == 1;
    if (sp_h5_init(err))
        return NULL;
    sp_shard *s = calloc(1, sizeof *s);
    if (!s) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    s->images = s->keys_ds = H5I_INVALID_HID;
    s->labels = new_column("labels", H5T_NATIVE_INT32, 4, 1);
    s->labels2 = new_column("labels2", H5T_NATIVE_INT32, 4, 1);
    s->checksums = new_column("checksums", H5T_NATIVE_UINT64, 8, 1);
    s->offs = new_column("offsets", H5T_NATIVE_UINT64, 8, 1);
    s->shps = new_column("shapes", H5T_NATIVE_UINT32, 12, 3);
    s->cods = new_column("codecs", H5T_NATIVE_UINT8, 1, 1);
    s->file = H5I_INVALID_HID;
    s->pin = -1;
    s->fd = -1;
    /* a shard of a set at a URL opens from the cache, verified, once there */
    char local[4300];
    int remote = sp_remote_shard(path, local, sizeof local, &s->pin, err);
    if (remote < 0)
        goto fail;
    s->file = H5Fopen(remote ? local : path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (s->file < 0) {
        h5fail(err, path, "cannot open as HDF5");
        goto fail;
    }
    bound_metadata_cache(s->file);
    char *fmt = unfinished_split < 0 ? attr_string(s->file, "format") : NULL;
    int ok = unfinished_split >= 0 || (fmt && !strcmp(fmt, SP_SHARD_FORMAT));
    free(fmt);
    if (!ok) {
        sp_fail(err, SP_EXIT_DATA, "%s: not a shardpipe shard (format attribute)", path);
        goto fail;
    }
    if (H5Lexists(s->file, "encoded", H5P_DEFAULT) > 0) {
        if (open_encoded(s, lane, err))
            goto fail;
        goto columns;
    }
    s->kind = SP_KIND_PIXELS;
    s->images = H5Dopen2(s->file, "images", H5P_DEFAULT);
    if (s->images < 0) {
        h5fail(err, path, "no images dataset");
        goto fail;
    }
    hid_t space = H5Dget_space(s->images);
    hsize_t d[4] = {0};
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd == 4)
        H5Sget_simple_extent_dims(space, d, NULL);
    H5Sclose(space);
    hid_t t = H5Dget_type(s->images);
    s->dtype = dtype_of(t);
    H5Tclose(t);
    if (nd != 4 || !d[1] || !d[2] || !d[3] || d[1] > 65536 || d[2] > 65536 || d[3] > 16 || !s->dtype) {
        sp_fail(err, SP_EXIT_DATA, "%s: images is not an [N,H,W,C] array of uint8/float16/float32", path);
        goto fail;
    }
    if (d[0] > SP_SHARD_MAX_RECORDS) {
        sp_fail(err, SP_EXIT_DATA, "%s: images claims %llu records, over the limit of %llu", path,
                (unsigned long long)d[0], (unsigned long long)SP_SHARD_MAX_RECORDS);
        goto fail;
    }
    s->n = d[0], s->h = (uint32_t)d[1], s->w = (uint32_t)d[2], s->c = (uint32_t)d[3];
    setup_direct(s);
columns:
    s->verify = 1;
    s->part_chunk = -1;
    if (unfinished_split >= 0) {
        s->split = unfinished_split;
    } else {
        char *split = attr_string(s->file, "split");
        s->split = split ? sp_split_from_name(split) : -1;
        free(split);
    }
    if (s->split < 0) {
        sp_fail(err, SP_EXIT_DATA, "%s: missing or unknown split attribute", path);
        goto fail;
    }
    if (open_column(s, &s->labels, err) || open_column(s, &s->checksums, err) ||
        (H5Lexists(s->file, "labels2", H5P_DEFAULT) > 0 && open_column(s, &s->labels2, err)))
        goto fail;
    if (keys && read_keys(s, 0, s->n, err))
        goto fail;
    char *meta = attr_string(s->file, "meta");
    if (meta) {
        s->meta = json_loads(meta, 0, NULL);
        free(meta);
    }
    return s;
fail:
    sp_shard_close(s);
    return NULL;
}

void sp_shard_release_file(sp_shard *s)
{
    if (!s)
        return;
    hid_t *ds[] = {&s->images, &s->labels.ds, &s->labels2.ds, &s->checksums.ds, &s->keys_ds, &s->offs.ds,
                   &s->shps.ds, &s->cods.ds};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
        if (*ds[i] >= 0) {
            H5Dclose(*ds[i]);
            *ds[i] = H5I_INVALID_HID;
        }
    if (s->file >= 0) {
        H5Fclose(s->file);
        s->file = H5I_INVALID_HID;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    sp_remote_unpin(s->pin);
    s->pin = -1;
}

void sp_shard_close(sp_shard *s)
{
    if (!s)
        return;
    sp_shard_release_file(s);
    free(s->keys);
    free(s->keybuf);
    json_decref(s->meta);
    scratch_clear(&s->own);
    free(s->part);
    shard_column *cols[] = {&s->labels, &s->labels2, &s->checksums, &s->offs, &s->shps, &s->cods};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        free(cols[i]->loc), free(cols[i]->kept);
    free(s->idx_scratch);
    free(s->meta_scratch);
    free(s->img_loc);
    free(s->sums);
    free(s->offsets);
    free(s->shapes);
    free(s->codecs);
    free(s);
}

/* The places of chunks c0.. of ds, nchunks chunks of `rows` along its first
 * dimension, each whole within a file of fsize bytes (and of `exact` bytes
 * when not 0); NULL when one is missing, out of place or memory runs out. */
static chunk_loc *chunk_table(hid_t ds, uint64_t c0, uint64_t nchunks, uint64_t rows, uint64_t fsize, uint64_t exact)
{
    chunk_loc *t = malloc((nchunks ? nchunks : 1) * sizeof *t);
    for (uint64_t i = 0; t && i < nchunks; i++) {
        hsize_t off[4] = {(c0 + i) * rows, 0, 0, 0}, size = 0;
        haddr_t addr = HADDR_UNDEF;
        unsigned mask = 0;
        if (H5Dget_chunk_info_by_coord(ds, off, &mask, &addr, &size) < 0 || addr == HADDR_UNDEF || size == 0 ||
            size > UINT32_MAX || addr > fsize || size > fsize - addr || (exact && size != exact)) {
            free(t);
            return NULL;
        }
        t[i] = (chunk_loc){addr, (uint32_t)size, mask};
    }
    return t;
}

static const uint64_t *offsets_of(sp_shard *s, uint64_t first, uint64_t n, sp_err *err);

/* The most 64 KiB chunks of encoded bytes one detach places: about 4 MiB,
 * so that a lane's first window, whatever its stretch of the shard, costs a
 * few dozen lookups in HDF5's chunk index (a reader reopens the shard for
 * its next stretch: sp_shard_covers). */
#define DETACH_MAX_CHUNKS 64

int sp_shard_covers(const sp_shard *s, uint64_t first, uint64_t n)
{
    return s->fd < 0 || (first >= s->det_first && n <= s->det_n && first - s->det_first <= s->det_n - n);
}

int sp_shard_detach(sp_shard *s, uint64_t first, uint64_t n, uint64_t need)
{
    if (s->fd >= 0)
        return 0;
    int pixels = s->kind == SP_KIND_PIXELS;
    shard_column *cols[] = {&s->labels, &s->labels2, &s->checksums, &s->offs, &s->shps, &s->cods};
    enum { NCOLS = sizeof cols / sizeof cols[0] };
    if (s->file < 0 || (pixels && !s->direct))
        return 1;
    for (size_t i = 0; i < NCOLS; i++)
        if (cols[i]->present && !cols[i]->rows)
            return 1;
    hsize_t enc_chunk = 0;
    if (!pixels) { /* the encoded bytes: 1-D chunks, stored as they are */
        hid_t dcpl = H5Dget_create_plist(s->images);
        int ok = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 1, &enc_chunk) == 1 &&
                 enc_chunk > 0 && H5Pget_nfilters(dcpl) == 0;
        if (dcpl >= 0)
            H5Pclose(dcpl);
        if (!ok)
            return 1;
    }
    char name[4300];
    ssize_t len = H5Fget_name(s->file, name, sizeof name);
    int fd = len > 0 && (size_t)len < sizeof name ? open(name, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return 1;
    }
    uint64_t fsize = (uint64_t)st.st_size, c0 = 0, nc = (s->n + s->chunk_n - 1) / (s->chunk_n ? s->chunk_n : 1);
    if (pixels) {
        first = 0, n = s->n; /* a few hundred chunks of about 1 MiB: all placed */
    } else { /* the chunks of records [first, first + n)'s bytes only, at most DETACH_MAX_CHUNKS past `need` */
        sp_err e = {0};
        if (n > need + 16384) /* the offsets looked at: a few chunks of them */
            n = need + 16384;
        const uint64_t *o = first <= s->n && n <= s->n - first && need <= n ? offsets_of(s, first, n, &e) : NULL;
        if (!o) {
            close(fd);
            return 1;
        }
        c0 = o[0] / enc_chunk;
        uint64_t m = need;
        while (m < n && (o[m + 1] - 1) / enc_chunk - c0 < DETACH_MAX_CHUNKS)
            m++;
        n = m;
        nc = o[n] > o[0] ? (o[n] - 1) / enc_chunk - c0 + 1 : 0;
        /* up to 16384 offsets (128 KiB) looked at once, in each of a reader's
         * handles: not kept, the reads that follow need a turn's offsets only */
        free(s->idx_scratch);
        s->idx_scratch = NULL, s->idx_cap = 0;
    }
    chunk_loc *img = chunk_table(s->images, c0, nc, pixels ? s->chunk_n : enc_chunk, fsize, pixels ? 0 : enc_chunk);
    chunk_loc *loc[NCOLS] = {NULL};
    uint64_t k0[NCOLS] = {0}, nk[NCOLS] = {0};
    int ok = img != NULL;
    for (size_t i = 0; ok && i < NCOLS; i++) {
        uint64_t last = first + n + (cols[i] == &s->offs); /* offsets: one more than the records */
        if (!cols[i]->present || last == first)
            continue;
        k0[i] = first / cols[i]->rows, nk[i] = (last - 1) / cols[i]->rows - k0[i] + 1;
        ok = (loc[i] = chunk_table(cols[i]->ds, k0[i], nk[i], cols[i]->rows, fsize, 0)) != NULL;
    }
    if (!ok) {
        free(img);
        for (size_t i = 0; i < NCOLS; i++)
            free(loc[i]);
        close(fd);
        return 1;
    }
    s->fd = fd, s->det_st = st, s->img_loc = img, s->img_c0 = c0, s->img_nc = nc, s->enc_chunk = enc_chunk;
    s->det_first = first, s->det_n = n;
    if (s->images >= 0)
        H5Dclose(s->images);
    if (s->keys_ds >= 0)
        H5Dclose(s->keys_ds);
    for (size_t i = 0; i < NCOLS; i++) {
        if (cols[i]->ds >= 0)
            H5Dclose(cols[i]->ds);
        cols[i]->loc = loc[i], cols[i]->loc_c0 = k0[i], cols[i]->loc_n = nk[i], cols[i]->ds = H5I_INVALID_HID;
    }
    H5Fclose(s->file);
    s->file = s->images = s->keys_ds = H5I_INVALID_HID;
    return 0;
}

void sp_shard_take_buffers(sp_shard *to, sp_shard *from)
{
    if (!to || !from || strcmp(to->path, from->path) || to->n != from->n)
        return;
    /* the kept chunks only between two handles detached from one file: the
     * same inode, size and time (not a set rewritten in place between them) */
    const struct stat *a = &to->det_st, *b = &from->det_st;
    int same = to->fd >= 0 && b->st_ino && a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
               a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
               a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
    shard_column *dst[] = {&to->labels, &to->labels2, &to->checksums, &to->offs, &to->shps, &to->cods};
    shard_column *src[] = {&from->labels, &from->labels2, &from->checksums, &from->offs, &from->shps, &from->cods};
    for (size_t i = 0; same && i < sizeof dst / sizeof dst[0]; i++)
        if (!dst[i]->kept && src[i]->kept && dst[i]->rows == src[i]->rows && dst[i]->row_bytes == src[i]->row_bytes) {
            dst[i]->kept = src[i]->kept, dst[i]->at = src[i]->at; /* the same file's chunk: still valid */
            src[i]->kept = NULL, src[i]->at = -1;
        }
#define TAKE(buf, cap)                                                                                                 \
    if (!to->buf) {                                                                                                    \
        to->buf = from->buf, to->cap = from->cap;                                                                      \
        from->buf = NULL, from->cap = 0;                                                                               \
    }
    TAKE(idx_scratch, idx_cap)
    TAKE(meta_scratch, meta_cap)
    TAKE(sums, sums_cap)
#undef TAKE
}

uint64_t sp_shard_count(const sp_shard *s) { return s->n; }
int sp_shard_kind(const sp_shard *s) { return s->kind; }

/* The n+1 offsets of records [first, first+n] of an encoded shard (in the
 * encoded bytes): its loaded index, or, windowed, read into s->idx_scratch
 * and checked there (rising, within the bytes). NULL with err. s is const to
 * callers that only ask sizes: a windowed index's kept chunks are a cache,
 * whose reading changes nothing they see (see the casts below). */
static const uint64_t *offsets_of(sp_shard *s, uint64_t first, uint64_t n, sp_err *err)
{
    if (!s->windowed)
        return s->offsets + first;
    if (sp_grow((void **)&s->idx_scratch, &s->idx_cap, (size_t)(n + 1) * sizeof *s->idx_scratch)) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    uint64_t *o = s->idx_scratch;
    if (read_column(s, &s->offs, first, n + 1, o, err))
        return NULL;
    for (uint64_t i = 0; i < n; i++)
        if (o[i + 1] <= o[i] || o[i + 1] > s->enc_len) {
            sp_fail(err, SP_EXIT_DATA, "%s: record %llu: offsets do not rise within the %llu encoded bytes (%llu to "
                    "%llu; corrupt shard)", s->path, (unsigned long long)(first + i), (unsigned long long)s->enc_len,
                    (unsigned long long)o[i], (unsigned long long)o[i + 1]);
            return NULL;
        }
    return o;
}

uint64_t sp_shard_encoded_size(const sp_shard *s, uint64_t first, uint64_t n)
{
    if (s->kind != SP_KIND_ENCODED || first > s->n || n > s->n - first)
        return 0;
    sp_err e = {0};
    const uint64_t *o = offsets_of((sp_shard *)s, first, n, &e); /* a damaged index: 0, and the read names it */
    return o ? o[n] - o[0] : 0;
}
uint64_t sp_shard_batch_records(const sp_shard *s, uint64_t first, uint64_t max_bytes)
{
    if (first >= s->n)
        return 0;
    uint64_t left = s->n - first, k = 1;
    if (s->kind != SP_KIND_ENCODED) {
        uint64_t item = (uint64_t)s->h * s->w * s->c * (uint64_t)sp_dtype_size(s->dtype);
        k = max_bytes / item;
        return k < 1 ? 1 : k < left ? k : left;
    }
    if (!s->windowed) {
        while (k < left && s->offsets[first + k + 1] - s->offsets[first] <= max_bytes)
            k++;
        return k;
    }
    sp_err e = {0}; /* windowed: by blocks of the index; a damaged one ends the batch (its read names it) */
    uint64_t base = 0;
    for (k = 0; k < left;) {
        uint64_t m = left - k < SP_SHARD_COLUMN_CHUNK ? left - k : SP_SHARD_COLUMN_CHUNK;
        const uint64_t *o = offsets_of((sp_shard *)s, first + k, m, &e);
        if (!o)
            return k ? k : 1;
        if (!k)
            base = o[0];
        for (uint64_t i = 0; i < m; i++)
            if (o[i + 1] - base > max_bytes)
                return k + i ? k + i : 1;
        k += m;
    }
    return k;
}

int sp_shard_batch_reserve(sp_shard_batch *b, const sp_shard *s, uint64_t first, uint64_t k, sp_err *err)
{
    uint64_t bytes = s->kind == SP_KIND_ENCODED
                         ? sp_shard_encoded_size(s, first, k)
                         : k * s->h * s->w * s->c * (uint64_t)sp_dtype_size(s->dtype);
    if (k > b->cap) { /* each array kept as it was when the next cannot grow */
        void *p;
        if (!(p = realloc(b->offsets, (k + 1) * sizeof *b->offsets)))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        b->offsets = p;
        if (!(p = realloc(b->shapes, 3 * k * sizeof *b->shapes)))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        b->shapes = p;
        if (!(p = realloc(b->labels, k * sizeof *b->labels)))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        b->labels = p;
        if (!(p = realloc(b->labels2, k * sizeof *b->labels2)))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        b->labels2 = p;
        if (!(p = realloc(b->checksums, k * sizeof *b->checksums)))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        b->checksums = p;
        b->cap = k;
    }
    if (sp_buf_reserve(&b->bytes, (size_t)bytes))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    return 0;
}

void sp_shard_batch_free(sp_shard_batch *b)
{
    sp_buf_free(&b->bytes);
    free(b->offsets);
    free(b->shapes);
    free(b->labels);
    free(b->labels2);
    free(b->checksums);
    *b = (sp_shard_batch){0};
}

void sp_shard_set_verify(sp_shard *s, int on) { s->verify = on; }
uint64_t sp_shard_bytes_read(const sp_shard *s) { return s->bytes_read; }
int sp_shard_split(const sp_shard *s) { return s->split; }
const char *sp_shard_key(const sp_shard *s, uint64_t i)
{
    return s->keys && i >= s->keys_first && i - s->keys_first < s->keys_n ? s->keys[i - s->keys_first] : NULL;
}
json_t *sp_shard_meta(const sp_shard *s) { return s->meta; }

void sp_shard_shape(const sp_shard *s, uint32_t *h, uint32_t *w, uint32_t *c, int *dtype)
{
    *h = s->h, *w = s->w, *c = s->c;
    if (dtype)
        *dtype = s->dtype;
}

static int read_rows(sp_shard *s, hid_t ds, int rank, hid_t t, uint64_t first, uint64_t n, void *out,
                     const char *name, sp_err *err)
{
    hsize_t start[4] = {first, 0, 0, 0}, count[4] = {n, s->h, s->w, s->c};
    hid_t fs = H5Dget_space(ds);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(rank, count, NULL);
    herr_t rc = H5Dread(ds, t, ms, fs, H5P_DEFAULT, out);
    H5Sclose(ms);
    H5Sclose(fs);
    if (rc < 0) {
        char m[256];
        return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: %s: %s (corrupt shard)", s->path,
                       (unsigned long long)first, (unsigned long long)(first + n - 1), name, sp_h5_error(m, sizeof m));
    }
    return 0;
}

/* The stored bytes of the chunk at loc into buf (loc.size bytes), its
 * filter mask into *mask (a detached shard's read): 0, or -1 with errno set
 * (EIO where the file ends first). */
static int read_at(const sp_shard *s, chunk_loc loc, uint8_t *buf, uint32_t *mask)
{
    size_t got = 0;
    while (got < loc.size) {
        ssize_t k = pread(s->fd, buf + got, loc.size - got, (off_t)(loc.addr + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return -1;
        }
        got += (size_t)k;
    }
    *mask = loc.mask;
    return 0;
}

/* Chunk k of column c into c->kept, unless there already. */
static int keep_column_chunk(sp_shard *s, shard_column *c, uint64_t k, sp_err *err)
{
    if (c->at == (int64_t)k)
        return 0;
    hsize_t off[2] = {k * c->rows, 0}, size = 0;
    size_t want = c->rows * c->row_bytes;
    uint32_t mask = 0;
    unsigned long long r0 = (unsigned long long)off[0], r1 = r0 + c->rows - 1;
    if (r1 >= s->n)
        r1 = s->n - 1;
    if (!c->kept && !(c->kept = malloc(want)))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    c->at = -1;
    if (c->loc && (k < c->loc_c0 || k - c->loc_c0 >= c->loc_n))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: records %llu..%llu: outside the records this handle was detached for "
                       "(sp_shard_covers)", s->path, r0, r1);
    if (c->loc)
        size = c->loc[k - c->loc_c0].size;
    else if (H5Dget_chunk_storage_size(c->ds, off, &size) < 0)
        size = 0;
    if (size == 0 || size > (c->zstd ? ZSTD_compressBound(want) : want))
        return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: %s chunk %llu missing or of %llu bytes (corrupt "
                       "shard)", s->path, r0, r1, c->name, (unsigned long long)k, (unsigned long long)size);
    sp_shard_scratch *sc = s->sc ? s->sc : &s->own;
    if (scratch_reserve(sc, (size_t)size, err))
        return -1;
    if (c->loc ? read_at(s, c->loc[k - c->loc_c0], sc->raw, &mask) < 0
               : H5Dread_chunk(c->ds, H5P_DEFAULT, off, &mask, sc->raw) < 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: cannot read %s chunk %llu%s%s", s->path, r0, r1,
                       c->name, (unsigned long long)k, c->loc ? ": " : "", c->loc ? strerror(errno) : "");
    if (!c->zstd || (mask & 1)) { /* stored as it is */
        if (size != want)
            return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: %s chunk %llu: %llu bytes, not %zu (corrupt "
                           "shard)", s->path, r0, r1, c->name, (unsigned long long)k, (unsigned long long)size, want);
        memcpy(c->kept, sc->raw, want);
    } else {
        size_t got = ZSTD_decompressDCtx(sc->dctx, c->kept, want, sc->raw, (size_t)size);
        if (ZSTD_isError(got) || got != want)
            return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: %s chunk %llu: %s (corrupt shard)", s->path,
                           r0, r1, c->name, (unsigned long long)k,
                           ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong decompressed size");
    }
    c->at = (int64_t)k;
    return 0;
}

/* Rows [first, first+n) of column c into out (native rows). */
static int read_column(sp_shard *s, shard_column *c, uint64_t first, uint64_t n, void *out, sp_err *err)
{
    if (!c->rows) {
        char what[64];
        snprintf(what, sizeof what, "cannot read %s", c->name);
        return read_rows(s, c->ds, 1, c->type, first, n, out, what, err);
    }
    uint8_t *dst = out;
    for (uint64_t i = first; i < first + n;) {
        uint64_t k = i / c->rows, in = i - k * c->rows, take = c->rows - in;
        if (take > first + n - i)
            take = first + n - i;
        if (keep_column_chunk(s, c, k, err))
            return -1;
        memcpy(dst, c->kept + in * c->row_bytes, take * c->row_bytes);
        dst += take * c->row_bytes, i += take;
    }
    return 0;
}

/* Chunk c of the images, decompressed into out (chunk_n records). */
static int load_chunk(sp_shard *s, uint64_t c, uint8_t *out, sp_err *err)
{
    hsize_t off[4] = {c * s->chunk_n, 0, 0, 0}, size = 0;
    size_t want = s->chunk_n * s->record_bytes;
    uint32_t mask = 0;
    unsigned long long r0 = (unsigned long long)(c * s->chunk_n), r1 = r0 + s->chunk_n - 1;
    if (r1 >= s->n)
        r1 = s->n - 1;
    if (s->img_loc)
        size = s->img_loc[c].size;
    else if (H5Dget_chunk_storage_size(s->images, off, &size) < 0)
        size = 0;
    if (size == 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: images chunk %llu missing", s->path, r0, r1,
                       (unsigned long long)c);
    if (size > ZSTD_compressBound(want)) /* no zstd frame of `want` bytes is bigger: damage */
        return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: images chunk %llu claims %llu bytes", s->path,
                       r0, r1, (unsigned long long)c, (unsigned long long)size);
    sp_shard_scratch *sc = s->sc ? s->sc : &s->own;
    if (scratch_reserve(sc, (size_t)size, err))
        return -1;
    if (s->img_loc ? read_at(s, s->img_loc[c], sc->raw, &mask) < 0
                   : H5Dread_chunk(s->images, H5P_DEFAULT, off, &mask, sc->raw) < 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: cannot read images chunk %llu%s%s", s->path, r0,
                       r1, (unsigned long long)c, s->img_loc ? ": " : "", s->img_loc ? strerror(errno) : "");
    s->bytes_read += size;
    if (mask & 1) { /* the filter was skipped for this chunk: stored as it is */
        if (size != want)
            return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: images chunk %llu: %llu bytes, not %zu",
                           s->path, r0, r1, (unsigned long long)c, (unsigned long long)size, want);
        memcpy(out, sc->raw, want);
        return 0;
    }
    size_t got = ZSTD_decompressDCtx(sc->dctx, out, want, sc->raw, (size_t)size);
    if (ZSTD_isError(got) || got != want)
        return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: images chunk %llu: %s (corrupt shard)", s->path,
                       r0, r1, (unsigned long long)c,
                       ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong decompressed size");
    return 0;
}

/* Records [first, first+n) of the images into out, chunk by chunk: whole
 * chunks straight into out, the chunks at the range's ends through s->part,
 * which is kept, so a reader going through a shard in pieces decompresses
 * every chunk once. */
static int read_images_direct(sp_shard *s, uint64_t first, uint64_t n, uint8_t *out, sp_err *err)
{
    size_t rb = s->record_bytes;
    for (uint64_t c = first / s->chunk_n; c * s->chunk_n < first + n; c++) {
        uint64_t c0 = c * s->chunk_n;
        uint64_t lo = first > c0 ? first : c0, hi = first + n < c0 + s->chunk_n ? first + n : c0 + s->chunk_n;
        uint8_t *dst = out + (lo - first) * rb;
        if (lo == c0 && hi == c0 + s->chunk_n) {
            if (load_chunk(s, c, dst, err))
                return -1;
            continue;
        }
        if (s->part_chunk != (int64_t)c) {
            if (!s->part && !(s->part = malloc(s->chunk_n * rb)))
                return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
            s->part_chunk = -1;
            if (load_chunk(s, c, s->part, err))
                return -1;
            s->part_chunk = (int64_t)c;
        }
        memcpy(dst, s->part + (lo - c0) * rb, (hi - lo) * rb);
    }
    return 0;
}

/* The shard's scratch for n stored checksums, grown as needed; NULL with err when out of memory. */
static uint64_t *sums_scratch(sp_shard *s, uint64_t n, sp_err *err)
{
    if (n > s->sums_cap) {
        uint64_t *grown = realloc(s->sums, n * sizeof *grown);
        if (!grown) {
            sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
            return NULL;
        }
        s->sums = grown, s->sums_cap = n;
    }
    return s->sums;
}

int sp_shard_read(sp_shard *s, uint64_t first, uint64_t n, void *pixels, int32_t *labels, int32_t *labels2,
                  uint64_t *checksums, sp_err *err)
{
    if (first > s->n || n > s->n - first)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: records %llu..%llu out of range", s->path,
                       (unsigned long long)first, (unsigned long long)(first + n));
    if (n == 0)
        return 0;
    if (pixels && s->kind == SP_KIND_ENCODED)
        return sp_fail(err, SP_EXIT_DATA, "%s: an encoded shard: its images are read with sp_shard_read_encoded "
                       "and decoded", s->path);
    hid_t pt = sp_h5_pixel_type(s->dtype);
    if (pixels && (s->direct ? read_images_direct(s, first, n, pixels, err)
                              : read_rows(s, s->images, 4, pt, first, n, pixels, "cannot read images", err)))
        return -1;
    if (pixels && !s->direct) /* through HDF5's filters: counted as the rows it hands out */
        s->bytes_read += n * (uint64_t)s->h * s->w * s->c * (uint64_t)sp_dtype_size(s->dtype);
    if (labels && read_column(s, &s->labels, first, n, labels, err))
        return -1;
    if (labels2) {
        if (s->labels2.present) {
            if (read_column(s, &s->labels2, first, n, labels2, err))
                return -1;
        } else {
            for (uint64_t i = 0; i < n; i++)
                labels2[i] = SP_LABEL_NONE;
        }
    }
    uint64_t *sums = checksums;
    if (!sums && pixels && s->verify && !(sums = sums_scratch(s, n, err)))
        return -1;
    if (sums && read_column(s, &s->checksums, first, n, sums, err))
        return -1;
    if (pixels && s->verify) {
        size_t rb = (size_t)s->h * s->w * s->c * (size_t)sp_dtype_size(s->dtype);
        for (uint64_t i = 0; i < n; i++)
            if (sp_xxh3((const uint8_t *)pixels + i * rb, rb) != sums[i]) {
                const char *key = sp_shard_key(s, first + i);
                return sp_fail(err, SP_EXIT_DATA, "%s: record %llu%s%s%s: pixels do not match their checksum (corrupt shard)",
                               s->path, (unsigned long long)(first + i), key ? " (" : "", key ? key : "",
                               key ? ")" : "");
            }
    }
    return 0;
}

/* A detached encoded shard's bytes [base, base + len) (records [first,
 * first + n)) into bytes, chunk by chunk (stored as they are). */
static int read_encoded_detached(sp_shard *s, uint64_t first, uint64_t n, uint64_t base, uint64_t len, uint8_t *bytes,
                                 sp_err *err)
{
    for (uint64_t at = base; at < base + len;) {
        uint64_t c = at / s->enc_chunk, in = at - c * s->enc_chunk, take = s->enc_chunk - in;
        if (take > base + len - at)
            take = base + len - at;
        if (c < s->img_c0 || c - s->img_c0 >= s->img_nc)
            return sp_fail(err, SP_EXIT_SYSTEM, "%s: records %llu..%llu: outside the records this handle was detached "
                           "for (sp_shard_detach)", s->path, (unsigned long long)first,
                           (unsigned long long)(first + n - 1));
        chunk_loc part = {s->img_loc[c - s->img_c0].addr + in, (uint32_t)take, 0};
        uint32_t mask;
        if (read_at(s, part, bytes + (at - base), &mask))
            return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: cannot read encoded chunk %llu: %s (corrupt "
                           "shard)", s->path, (unsigned long long)first, (unsigned long long)(first + n - 1),
                           (unsigned long long)c, strerror(errno));
        at += take;
    }
    s->bytes_read += len;
    return 0;
}

/* Shapes (n x 3) and codecs (n) of records [first, first+n) of an encoded
 * shard: its loaded index, or windowed, read and checked (sides 1..65536 and
 * the shard's channels; codecs known). 0 or -1 with err naming the record. */
static int read_shapes(sp_shard *s, uint64_t first, uint64_t n, uint32_t *shapes, sp_err *err)
{
    if (!s->windowed) {
        memcpy(shapes, s->shapes + 3 * first, (size_t)n * 12);
        return 0;
    }
    if (read_column(s, &s->shps, first, n, shapes, err))
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        const uint32_t *hwc = shapes + 3 * i;
        if (!hwc[0] || !hwc[1] || hwc[0] > s->h || hwc[1] > s->w || hwc[2] != s->c)
            return sp_fail(err, SP_EXIT_DATA, "%s: record %llu: decoded shape %ux%ux%u out of bounds (the shard's "
                           "%ux%ux%u; corrupt shard)", s->path, (unsigned long long)(first + i), hwc[0], hwc[1], hwc[2],
                           s->h, s->w, s->c);
    }
    return 0;
}

static int read_codecs(sp_shard *s, uint64_t first, uint64_t n, uint8_t *codecs, sp_err *err)
{
    if (!s->windowed) {
        memcpy(codecs, s->codecs + first, (size_t)n);
        return 0;
    }
    if (read_column(s, &s->cods, first, n, codecs, err))
        return -1;
    for (uint64_t i = 0; i < n; i++)
        if (codecs[i] != SP_CODEC_JPEG && codecs[i] != SP_CODEC_PNG)
            return sp_fail(err, SP_EXIT_DATA, "%s: record %llu: unknown codec %u (corrupt shard)", s->path,
                           (unsigned long long)(first + i), codecs[i]);
    return 0;
}

int sp_shard_read_encoded(sp_shard *s, uint64_t first, uint64_t n, uint8_t *bytes, uint64_t *offsets,
                          uint32_t *shapes, uint8_t *codecs, int32_t *labels, int32_t *labels2, uint64_t *checksums,
                          sp_err *err)
{
    if (s->kind != SP_KIND_ENCODED)
        return sp_fail(err, SP_EXIT_DATA, "%s: a pixel shard, not an encoded one", s->path);
    if (first > s->n || n > s->n - first)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: records %llu..%llu out of range", s->path,
                       (unsigned long long)first, (unsigned long long)(first + n));
    if (s->windowed && n && (!shapes || !codecs)) { /* every record read is checked, whatever the caller asks */
        if (sp_grow((void **)&s->meta_scratch, &s->meta_cap, (size_t)n * 13))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        if (!shapes && read_shapes(s, first, n, (uint32_t *)(void *)s->meta_scratch, err))
            return -1;
        if (!codecs && read_codecs(s, first, n, s->meta_scratch + (size_t)n * 12, err))
            return -1;
    }
    const uint64_t *o = offsets_of(s, first, n, err);
    if (!o || (shapes && read_shapes(s, first, n, shapes, err)) || (codecs && read_codecs(s, first, n, codecs, err)))
        return -1;
    uint64_t base = o[0], len = o[n] - base;
    /* relative offsets: the caller's, or (to check the bytes) the scratch's */
    uint64_t *rel = offsets;
    if (!rel && bytes && s->verify) {
        if (!s->windowed && sp_grow((void **)&s->idx_scratch, &s->idx_cap, (size_t)(n + 1) * sizeof *s->idx_scratch))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        rel = s->idx_scratch; /* windowed: o itself, made relative in place */
    }
    for (uint64_t i = 0; rel && i <= n; i++)
        rel[i] = o[i] - base;
    if (n == 0)
        return 0;
    if (bytes && s->img_loc) {
        if (read_encoded_detached(s, first, n, base, len, bytes, err))
            return -1;
    } else if (bytes) {
        hsize_t start = base, count = len;
        hid_t fs = H5Dget_space(s->images);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
        hid_t ms = H5Screate_simple(1, &count, NULL);
        herr_t rc = H5Dread(s->images, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, bytes);
        H5Sclose(ms);
        H5Sclose(fs);
        s->bytes_read += len;
        if (rc < 0) {
            char m[256];
            return sp_fail(err, SP_EXIT_DATA, "%s: records %llu..%llu: cannot read encoded: %s (corrupt shard)",
                           s->path, (unsigned long long)first, (unsigned long long)(first + n - 1),
                           sp_h5_error(m, sizeof m));
        }
    }
    /* labels, labels2 and checksums as sp_shard_read reads them (no pixels) */
    uint64_t *sums = checksums;
    if (!sums && bytes && s->verify && !(sums = sums_scratch(s, n, err)))
        return -1;
    if (sp_shard_read(s, first, n, NULL, labels, labels2, sums, err))
        return -1;
    if (bytes && s->verify)
        return sp_shard_check_encoded(s, first, n, rel, bytes, sums, err);
    return 0;
}

int sp_shard_check_encoded(const sp_shard *s, uint64_t first, uint64_t n, const uint64_t *offsets,
                           const uint8_t *bytes, const uint64_t *checksums, sp_err *err)
{
    if (s->kind != SP_KIND_ENCODED || first > s->n || n > s->n - first)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: records %llu..%llu: not an encoded shard's", s->path,
                       (unsigned long long)first, (unsigned long long)(first + n));
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a = offsets[i], b = offsets[i + 1];
        if (sp_xxh3(bytes + a, (size_t)(b - a)) != checksums[i]) {
            const char *key = sp_shard_key(s, first + i);
            return sp_fail(err, SP_EXIT_DATA,
                           "%s: record %llu%s%s%s: encoded bytes do not match their checksum (corrupt shard)",
                           s->path, (unsigned long long)(first + i), key ? " (" : "", key ? key : "",
                           key ? ")" : "");
        }
    }
    return 0;
}
