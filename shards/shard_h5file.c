/* The shard writer's HDF5 file driver: sec2 underneath, I/O errors kept as an errno (see shard_h5file.h). */
#define _POSIX_C_SOURCE 200809L
#include "shards/shard_h5file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* The driver's property: where the first errno goes. */
typedef struct keep_info {
    int *first_errno;
} keep_info;

/* An open file: the sec2 file it wraps. pub must come first (HDF5 fills it). */
typedef struct keep_file {
    H5FD_t pub;
    H5FD_t *inner;
    int *first_errno;
} keep_file;

static hid_t sec2_fapl = H5I_INVALID_HID;

/* Records errno (EIO when the failing call left none) as the file's first error. */
static void keep(const keep_file *f)
{
    int e = errno ? errno : EIO;
    if (f->first_errno && !*f->first_errno)
        *f->first_errno = e;
    H5Eclear2(H5E_DEFAULT);
}

static int failed(const keep_file *f) { return f->first_errno && *f->first_errno; }

static void *info_get(H5FD_t *file)
{
    keep_info *i = malloc(sizeof *i);
    if (i)
        i->first_errno = ((keep_file *)file)->first_errno;
    return i;
}

static void *info_copy(const void *info)
{
    keep_info *i = malloc(sizeof *i);
    if (i)
        *i = *(const keep_info *)info;
    return i;
}

static herr_t info_free(void *info)
{
    free(info);
    return 0;
}

static H5FD_t *keep_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr)
{
    const keep_info *info = H5Pget_driver_info(fapl);
    keep_file *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->first_errno = info ? info->first_errno : NULL;
    f->inner = H5FDopen(name, flags, sec2_fapl, maxaddr);
    if (!f->inner) {
        free(f);
        return NULL;
    }
    return &f->pub;
}

static herr_t keep_close(H5FD_t *file)
{
    keep_file *f = (keep_file *)file;
    errno = 0;
    if (H5FDclose(f->inner) < 0)
        keep(f);
    free(f);
    return 0;
}

static int keep_cmp(const H5FD_t *a, const H5FD_t *b)
{
    return H5FDcmp(((const keep_file *)a)->inner, ((const keep_file *)b)->inner);
}

/* sec2's features, so the files come out as sec2 writes them */
static herr_t keep_query(const H5FD_t *file, unsigned long *flags)
{
    if (file) {
        *flags = 0;
        return H5FDquery(((const keep_file *)file)->inner, flags) < 0 ? -1 : 0;
    }
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_POSIX_COMPAT_HANDLE | H5FD_FEAT_SUPPORTS_SWMR_IO |
             H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
    return 0;
}

static haddr_t keep_get_eoa(const H5FD_t *file, H5FD_mem_t type)
{
    return H5FDget_eoa(((const keep_file *)file)->inner, type);
}

static herr_t keep_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr)
{
    return H5FDset_eoa(((keep_file *)file)->inner, type, addr);
}

static haddr_t keep_get_eof(const H5FD_t *file, H5FD_mem_t type)
{
    return H5FDget_eof(((const keep_file *)file)->inner, type);
}

static herr_t keep_get_handle(H5FD_t *file, hid_t fapl, void **handle)
{
    (void)fapl;
    return H5FDget_vfd_handle(((keep_file *)file)->inner, sec2_fapl, handle);
}

/* After an error, reads give zeros: the file is only closed and removed. */
static herr_t keep_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf)
{
    keep_file *f = (keep_file *)file;
    if (!failed(f)) {
        errno = 0;
        if (H5FDread(f->inner, type, dxpl, addr, size, buf) >= 0)
            return 0;
        keep(f);
    }
    memset(buf, 0, size);
    return 0;
}

static herr_t keep_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, const void *buf)
{
    keep_file *f = (keep_file *)file;
    if (failed(f))
        return 0;
    errno = 0;
    if (H5FDwrite(f->inner, type, dxpl, addr, size, buf) < 0)
        keep(f);
    return 0;
}

static herr_t keep_truncate(H5FD_t *file, hid_t dxpl, hbool_t closing)
{
    keep_file *f = (keep_file *)file;
    if (failed(f))
        return 0;
    errno = 0;
    if (H5FDtruncate(f->inner, dxpl, closing) < 0)
        keep(f);
    return 0;
}

static herr_t keep_lock(H5FD_t *file, hbool_t rw) { return H5FDlock(((keep_file *)file)->inner, rw); }

static herr_t keep_unlock(H5FD_t *file)
{
    keep_file *f = (keep_file *)file;
    errno = 0;
    if (H5FDunlock(f->inner) < 0)
        keep(f);
    return 0;
}

static const H5FD_class_t keep_class = {
    .name = "shardpipe-keep-errno",
    .maxaddr = (haddr_t)(((uint64_t)1 << (8 * sizeof(off_t) - 1)) - 1),
    .fc_degree = H5F_CLOSE_WEAK,
    .fapl_size = sizeof(keep_info),
    .fapl_get = info_get,
    .fapl_copy = info_copy,
    .fapl_free = info_free,
    .open = keep_open,
    .close = keep_close,
    .cmp = keep_cmp,
    .query = keep_query,
    .get_eoa = keep_get_eoa,
    .set_eoa = keep_set_eoa,
    .get_eof = keep_get_eof,
    .get_handle = keep_get_handle,
    .read = keep_read,
    .write = keep_write,
    .truncate = keep_truncate,
    .lock = keep_lock,
    .unlock = keep_unlock,
    .fl_map = H5FD_FLMAP_DICHOTOMY,
};

hid_t sp_h5file_fapl(int *first_errno)
{
    static hid_t driver = H5I_INVALID_HID;
    if (sec2_fapl < 0) {
        sec2_fapl = H5Pcreate(H5P_FILE_ACCESS);
        if (sec2_fapl < 0 || H5Pset_fapl_sec2(sec2_fapl) < 0)
            return H5I_INVALID_HID;
    }
    if (driver < 0 && (driver = H5FDregister(&keep_class)) < 0)
        return H5I_INVALID_HID;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    keep_info info = {first_errno};
    if (fapl < 0 || H5Pset_driver(fapl, driver, &info) < 0) {
        if (fapl >= 0)
            H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}
