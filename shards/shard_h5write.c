/* The HDF5 mechanics of writing one shard: its datasets, its attributes, and closing it on every path. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "common/sp_atomic.h"
#include "formats/h5zstd.h"
#include "shards/shard_h5file.h"
#include "shards/writer_internal.h"

/* Fills err for a failed HDF5 call on path: the OS error when the file's I/O
 * failed (io_errno), else the innermost message of HDF5's error stack. */
static int h5fail(sp_err *err, const char *what, const char *path, int io_errno)
{
    char m[256];
    if (io_errno)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s: %s", path, what, strerror(io_errno));
    return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s: %s", path, what, sp_h5_error(m, sizeof m));
}

int sp_h5w_create(const sp_shard_opts *opts, open_shard *o, sp_err *err)
{
    shard *sh = o->sh;
    o->io_errno = 0;
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    hid_t fapl = sp_h5file_fapl(&o->io_errno);
    H5Pset_obj_track_times(fcpl, 0);
    o->file = fapl < 0 ? H5I_INVALID_HID : H5Fcreate(sh->tmp, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (o->file < 0)
        return h5fail(err, "cannot create", sh->tmp, o->io_errno);
    if (sh->kind == SP_KIND_ENCODED) {
        /* one byte array, chunked (ENCODED_CHUNK), not compressed: JPEG bytes
         * do not shrink, and the reader slices them straight out of the file */
        hsize_t dim = 0, maxd = H5S_UNLIMITED, chunk = ENCODED_CHUNK;
        hid_t space = H5Screate_simple(1, &dim, &maxd);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_obj_track_times(dcpl, 0);
        H5Pset_chunk(dcpl, 1, &chunk);
        o->images = H5Dcreate2(o->file, "encoded", H5T_NATIVE_UINT8, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Pclose(dcpl);
        H5Sclose(space);
        if (o->images < 0 || o->io_errno)
            return h5fail(err, "cannot create encoded", sh->tmp, o->io_errno);
        return 0;
    }
    hsize_t dims[4] = {0, sh->h, sh->w, sh->c};
    hsize_t maxd[4] = {H5S_UNLIMITED, sh->h, sh->w, sh->c};
    hsize_t chunk[4] = {o->chunk_n, sh->h, sh->w, sh->c};
    hid_t space = H5Screate_simple(4, dims, maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    H5Pset_chunk(dcpl, 4, chunk);
    unsigned zstd[2] = {(unsigned)opts->zstd_level, SP_H5Z_ZSTD_RAW_LITERALS};
    H5Pset_filter(dcpl, SP_H5Z_ZSTD, H5Z_FLAG_MANDATORY, opts->raw_literals ? 2 : 1, zstd);
    o->images = H5Dcreate2(o->file, "images", sp_h5_pixel_type(sh->dtype), space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    if (o->images < 0 || o->io_errno)
        return h5fail(err, "cannot create images", sh->tmp, o->io_errno);
    return 0;
}

int sp_h5w_flush_chunk(open_shard *o, sp_err *err)
{
    if (!o->in_chunk)
        return 0;
    hsize_t newsize[4] = {o->written + o->in_chunk, o->sh->h, o->sh->w, o->sh->c};
    if (H5Dset_extent(o->images, newsize) < 0)
        return h5fail(err, "cannot extend images", o->sh->tmp, o->io_errno);
    hid_t fspace = H5Dget_space(o->images);
    hsize_t start[4] = {o->written, 0, 0, 0};
    hsize_t count[4] = {o->in_chunk, o->sh->h, o->sh->w, o->sh->c};
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t mspace = H5Screate_simple(4, count, NULL);
    herr_t rc = H5Dwrite(o->images, sp_h5_pixel_type(o->sh->dtype), mspace, fspace, H5P_DEFAULT, o->chunk);
    H5Sclose(mspace);
    H5Sclose(fspace);
    if (rc < 0 || o->io_errno)
        return h5fail(err, "cannot write images", o->sh->tmp, o->io_errno);
    o->written += o->in_chunk;
    o->in_chunk = 0;
    return 0;
}

int sp_h5w_flush_encoded(open_shard *o, int all, sp_err *err)
{
    size_t n = all ? o->enc.len : o->enc.len / ENCODED_CHUNK * ENCODED_CHUNK;
    if (!n)
        return 0;
    hsize_t at = o->written, size = o->written + n, count = n;
    if (H5Dset_extent(o->images, &size) < 0)
        return h5fail(err, "cannot extend encoded", o->sh->tmp, o->io_errno);
    hid_t fspace = H5Dget_space(o->images);
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &at, NULL, &count, NULL);
    hid_t mspace = H5Screate_simple(1, &count, NULL);
    herr_t rc = H5Dwrite(o->images, H5T_NATIVE_UINT8, mspace, fspace, H5P_DEFAULT, o->enc.data);
    H5Sclose(mspace);
    H5Sclose(fspace);
    if (rc < 0 || o->io_errno)
        return h5fail(err, "cannot write encoded", o->sh->tmp, o->io_errno);
    o->written += n;
    memmove(o->enc.data, o->enc.data + n, o->enc.len - n);
    o->enc.len -= n;
    return 0;
}

/* The per-record columns of an encoded shard: offsets [N+1] uint64, shapes
 * [N, 3] uint32, codecs [N] uint8, zstd-compressed, in chunks of
 * SP_SHARD_COLUMN_CHUNK rows (a reader's lane keeps one of each). 0 or -1 (HDF5 failed). */
static int write_encoded_columns(const sp_shard_opts *opts, open_shard *o)
{
    uint64_t n = o->sh->n;
    unsigned level = (unsigned)opts->zstd_level;
    struct {
        const char *name;
        hid_t type;
        int rank;
        hsize_t dims[2];
        const void *data;
    } cols[] = {
        {"offsets", H5T_NATIVE_UINT64, 1, {n + 1, 0}, o->offsets.data},
        {"shapes", H5T_NATIVE_UINT32, 2, {n, 3}, o->shapes.data},
        {"codecs", H5T_NATIVE_UINT8, 1, {n, 0}, o->codecs.data},
    };
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        hsize_t chunk[2] = {cols[i].dims[0] < SP_SHARD_COLUMN_CHUNK ? cols[i].dims[0] : SP_SHARD_COLUMN_CHUNK,
                            cols[i].dims[1]};
        if (!chunk[0])
            chunk[0] = 1;
        hid_t space = H5Screate_simple(cols[i].rank, cols[i].dims, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_obj_track_times(dcpl, 0);
        H5Pset_chunk(dcpl, cols[i].rank, chunk);
        H5Pset_filter(dcpl, SP_H5Z_ZSTD, H5Z_FLAG_MANDATORY, 1, &level);
        hid_t ds = H5Dcreate2(o->file, cols[i].name, cols[i].type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        herr_t rc = ds < 0 ? -1 : n == 0 && i > 0 ? 0 : H5Dwrite(ds, cols[i].type, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                                                  cols[i].data);
        if (ds >= 0)
            H5Dclose(ds);
        H5Pclose(dcpl);
        H5Sclose(space);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* A 1-D dataset of n values of type t from data, in chunks of
 * SP_SHARD_COLUMN_CHUNK rows (n when fewer), zstd-compressed when compress. */
static int write_column(hid_t file, const char *name, hid_t t, uint64_t n, const void *data, int compress,
                        unsigned level)
{
    hsize_t dims[1] = {n}, chunk[1] = {n < SP_SHARD_COLUMN_CHUNK ? n : SP_SHARD_COLUMN_CHUNK};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    H5Pset_chunk(dcpl, 1, chunk);
    if (compress)
        H5Pset_filter(dcpl, SP_H5Z_ZSTD, H5Z_FLAG_MANDATORY, 1, &level);
    hid_t ds = H5Dcreate2(file, name, t, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0)
        H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

static hid_t vlen_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

void sp_h5w_discard(open_shard *o)
{
    if (o->images >= 0)
        H5Dclose(o->images);
    if (o->file >= 0)
        H5Fclose(o->file); /* cannot fail through the writer's driver: see shard_h5file.h */
    o->images = o->file = H5I_INVALID_HID;
}

int sp_h5w_finish(const sp_shard_opts *opts, open_shard *o, sp_err *err)
{
    shard *sh = o->sh;
    int rc = sh->kind == SP_KIND_ENCODED ? sp_h5w_flush_encoded(o, 1, err) : sp_h5w_flush_chunk(o, err);
    if (!rc && sh->kind == SP_KIND_ENCODED && write_encoded_columns(opts, o))
        rc = h5fail(err, "cannot write offsets", sh->tmp, o->io_errno);
    unsigned level = (unsigned)opts->zstd_level;
    if (!rc && (write_column(o->file, "labels", H5T_NATIVE_INT32, sh->n, o->labels.data, 1, level) ||
                (sh->has_label2 &&
                 write_column(o->file, "labels2", H5T_NATIVE_INT32, sh->n, o->labels2.data, 1, level)) ||
                write_column(o->file, "checksums", H5T_NATIVE_UINT64, sh->n, o->checksums.data, 0, level)))
        rc = h5fail(err, "cannot write labels", sh->tmp, o->io_errno);
    if (!rc) {
        const char **ptrs = malloc(sh->n * sizeof *ptrs);
        if (!ptrs) {
            rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        } else {
            const char *p = (const char *)o->keys.data;
            for (uint64_t i = 0; i < sh->n; i++) {
                ptrs[i] = p;
                p += strlen(p) + 1;
            }
            hid_t st = vlen_str_type();
            if (write_column(o->file, "keys", st, sh->n, ptrs, 0, level))
                rc = h5fail(err, "cannot write keys", sh->tmp, o->io_errno);
            H5Tclose(st);
            free(ptrs);
        }
    }
    H5Dclose(o->images);
    o->images = H5I_INVALID_HID;
    herr_t closed = H5Fclose(o->file);
    o->file = H5I_INVALID_HID;
    if (!rc && (closed < 0 || o->io_errno))
        rc = h5fail(err, "cannot write", sh->tmp, o->io_errno);
    return rc;
}

/* ---- the root attributes, written at the commit ---- */

static int attr_string(hid_t loc, const char *name, const char *value)
{
    hid_t t = vlen_str_type();
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, &value);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc < 0 ? -1 : 0;
}

static int attr_json(hid_t loc, const char *name, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s)
        return -1;
    int rc = attr_string(loc, name, s);
    free(s);
    return rc;
}

static int attr_ints(hid_t loc, const char *name, hid_t t, const void *v, hsize_t n)
{
    hid_t sp = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return rc < 0 ? -1 : 0;
}

static int attr_strings(hid_t loc, const char *name, const json_t *arr)
{
    hsize_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    const char **v = malloc(n * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        v[i] = json_string_value(json_array_get(arr, i));
        if (!v[i])
            v[i] = "";
    }
    hid_t t = vlen_str_type();
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    free(v);
    return rc < 0 ? -1 : 0;
}

/* norm_mean, norm_std, norm_applied from the stream's "normalize" member. */
static int attr_norm(hid_t f, const json_t *norm)
{
    json_t *mean = json_object_get(norm, "mean"), *std = json_object_get(norm, "std");
    size_t n = json_array_size(mean);
    if (!n || n != json_array_size(std) || n > 16)
        return 0;
    double m[16], s[16];
    for (size_t i = 0; i < n; i++) {
        m[i] = json_number_value(json_array_get(mean, i));
        s[i] = json_number_value(json_array_get(std, i));
    }
    int32_t applied = json_is_true(json_object_get(norm, "applied"));
    return attr_ints(f, "norm_mean", H5T_NATIVE_DOUBLE, m, n) || attr_ints(f, "norm_std", H5T_NATIVE_DOUBLE, s, n) ||
           attr_ints(f, "norm_applied", H5T_NATIVE_INT32, &applied, 0);
}

/* Rewrites f's /labels (n of them) as map[label]; -1 stays -1. 0 or -1. */
static int relabel(hid_t f, uint64_t n, const int32_t *map, int nmap)
{
    int32_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    hid_t ds = v ? H5Dopen2(f, "labels", H5P_DEFAULT) : H5I_INVALID_HID;
    int rc = ds < 0 || H5Dread(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0 ? -1 : 0;
    for (uint64_t i = 0; rc == 0 && i < n; i++)
        if (v[i] >= 0)
            v[i] = v[i] < nmap ? map[v[i]] : -1;
    if (rc == 0 && H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
        rc = -1;
    if (ds >= 0)
        H5Dclose(ds);
    free(v);
    return rc;
}

int sp_h5w_attributes(const shard *sh, const json_t *meta, const int32_t *map, int nmap, sp_err *err)
{
    int io_errno = 0;
    hid_t fapl = sp_h5file_fapl(&io_errno);
    hid_t f = fapl < 0 ? H5I_INVALID_HID : H5Fopen(sh->tmp, H5F_ACC_RDWR, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (f < 0)
        return h5fail(err, "cannot reopen", sh->tmp, io_errno);
    if (map && relabel(f, sh->n, map, nmap)) {
        H5Fclose(f);
        return h5fail(err, "cannot rewrite labels", sh->tmp, io_errno);
    }
    const char *dataset = json_string_value(json_object_get(meta, "dataset"));
    int32_t version = SP_SHARD_FORMAT_VERSION, index = sh->index;
    uint64_t count = sh->n;
    int32_t shape[3] = {(int32_t)sh->h, (int32_t)sh->w, (int32_t)sh->c};
    json_t *recipe = json_object_get(meta, "recipe");
    json_t *classes2 = json_object_get(meta, "classes2");
    json_t *no_recipe = json_array();
    int bad = attr_string(f, "format", SP_SHARD_FORMAT) ||
              attr_ints(f, "format_version", H5T_NATIVE_INT32, &version, 0) ||
              attr_string(f, "dataset", dataset ? dataset : "") ||
              attr_string(f, "split", sp_split_name(sh->split)) ||
              attr_ints(f, "shard_index", H5T_NATIVE_INT32, &index, 0) ||
              attr_ints(f, "record_count", H5T_NATIVE_UINT64, &count, 0) ||
              attr_ints(f, "shape", H5T_NATIVE_INT32, shape, 3) ||
              attr_string(f, "dtype", sp_dtype_name(sh->dtype)) ||
              attr_strings(f, "classes", json_object_get(meta, "classes")) ||
              (sh->has_label2 && attr_strings(f, "classes2", classes2)) ||
              attr_json(f, "recipe", recipe ? recipe : no_recipe) || attr_json(f, "meta", meta) ||
              attr_norm(f, json_object_get(meta, "normalize")) ||
              (sh->kind == SP_KIND_ENCODED && attr_string(f, "kind", sp_kind_name(sh->kind)));
    json_decref(no_recipe);
    herr_t closed = H5Fclose(f);
    if (bad || closed < 0 || io_errno)
        return h5fail(err, bad ? "cannot write attributes" : "cannot write", sh->tmp, io_errno);
    return 0;
}
