/* A reader for the part of MATLAB MAT v5 that ImageNet's devkit meta.mat uses (struct arrays of strings and numbers). */
#include "formats/matv5.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum {
    miINT8 = 1, miUINT8 = 2, miINT16 = 3, miUINT16 = 4, miINT32 = 5, miUINT32 = 6, miSINGLE = 7,
    miDOUBLE = 9, miINT64 = 12, miUINT64 = 13, miMATRIX = 14, miCOMPRESSED = 15, miUTF8 = 16, miUTF16 = 17,
};
enum { mxCELL = 1, mxSTRUCT = 2, mxCHAR = 4, mxUINT8 = 9 };

/* One data element: its type and bytes, and where the next one starts. */
typedef struct elem {
    uint32_t type;
    const uint8_t *data;
    size_t len;
    size_t next; /* offset of the following element in the buffer */
} elem;

/* Reads the element at off in buf[0..len). 0 or -1. */
static int read_elem(const uint8_t *buf, size_t len, size_t off, elem *e)
{
    if (off + 8 > len)
        return -1;
    uint32_t t = sp_get_u32(buf + off), n = sp_get_u32(buf + off + 4);
    if (t >> 16) { /* small element: type and size packed, data in the next 4 bytes */
        e->type = t & 0xFFFF;
        e->len = t >> 16;
        if (e->len > 4)
            return -1;
        e->data = buf + off + 4;
        e->next = off + 8;
        return 0;
    }
    e->type = t;
    e->len = n;
    if (n > len - off - 8)
        return -1;
    e->data = buf + off + 8;
    /* compressed elements are not padded; the rest are, to 8 bytes */
    e->next = off + 8 + (t == miCOMPRESSED ? n : ((size_t)n + 7) / 8 * 8);
    if (e->next > len)
        e->next = len;
    return 0;
}

static double number_at(const elem *e, size_t i)
{
    const uint8_t *p = e->data;
    switch (e->type) {
    case miINT8: return (int8_t)p[i];
    case miUINT8: return p[i];
    case miINT16: return (int16_t)sp_get_u16(p + 2 * i);
    case miUINT16: return sp_get_u16(p + 2 * i);
    case miINT32: return (int32_t)sp_get_u32(p + 4 * i);
    case miUINT32: return sp_get_u32(p + 4 * i);
    case miINT64: return (double)(int64_t)sp_get_u64(p + 8 * i);
    case miUINT64: return (double)sp_get_u64(p + 8 * i);
    case miSINGLE: {
        uint32_t v = sp_get_u32(p + 4 * i);
        float f;
        memcpy(&f, &v, 4);
        return f;
    }
    case miDOUBLE: {
        uint64_t v = sp_get_u64(p + 8 * i);
        double d;
        memcpy(&d, &v, 8);
        return d;
    }
    default: return -1;
    }
}

static size_t type_size(uint32_t t)
{
    switch (t) {
    case miINT8: case miUINT8: case miUTF8: return 1;
    case miINT16: case miUINT16: case miUTF16: return 2;
    case miINT32: case miUINT32: case miSINGLE: return 4;
    case miINT64: case miUINT64: case miDOUBLE: return 8;
    default: return 0;
    }
}

/* The parts of a miMATRIX: class, element count, the data element after the
 * name (numeric/char arrays), or the struct layout. */
typedef struct matrix {
    int cls;
    size_t count;
    uint32_t dims[2]; /* the first two dimensions (rows, columns) */
    int ndims;
    char name[64];
    elem first;      /* the element after the name */
    size_t first_at; /* its offset within the matrix */
} matrix;

static int parse_matrix(const elem *m, matrix *x)
{
    elem flags, dims, name;
    if (read_elem(m->data, m->len, 0, &flags) || flags.len < 4 ||
        read_elem(m->data, m->len, flags.next, &dims) || read_elem(m->data, m->len, dims.next, &name))
        return -1;
    x->cls = flags.data[0];
    x->count = 1;
    x->ndims = 0;
    for (size_t i = 0; i + 4 <= dims.len; i += 4) {
        uint32_t v = sp_get_u32(dims.data + i);
        if (v && x->count > SIZE_MAX / v)
            return -1;
        x->count *= v;
        if (x->ndims < 2)
            x->dims[x->ndims] = v;
        x->ndims++;
    }
    size_t n = name.len < sizeof x->name - 1 ? name.len : sizeof x->name - 1;
    memcpy(x->name, name.data, n);
    x->name[n] = 0;
    x->first_at = name.next;
    if (name.next < m->len && read_elem(m->data, m->len, name.next, &x->first))
        return -1;
    if (name.next >= m->len)
        memset(&x->first, 0, sizeof x->first);
    return 0;
}

/* A scalar number or a string from a field's miMATRIX. */
static int field_number(const elem *m, double *out)
{
    matrix x;
    if (m->len == 0 || parse_matrix(m, &x) || x.count < 1 || !type_size(x.first.type) ||
        x.first.len < type_size(x.first.type))
        return -1;
    *out = number_at(&x.first, 0);
    return 0;
}

static int field_string(const elem *m, char *out, size_t cap)
{
    matrix x;
    if (m->len == 0 || parse_matrix(m, &x) || x.cls != mxCHAR)
        return -1;
    size_t sz = type_size(x.first.type), n = sz ? x.first.len / sz : 0, k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        uint32_t c = sz == 1 ? x.first.data[i] : sz == 2 ? sp_get_u16(x.first.data + 2 * i) : 0;
        if (c == 0 || c > 0x7F)
            return -1; /* WNIDs are ASCII */
        out[k++] = (char)c;
    }
    out[k] = 0;
    return 0;
}

static long walk_struct(const elem *m, const char *num_field, const char *str_field,
                        int (*fn)(void *, double, const char *), void *ctx, sp_err *err)
{
    matrix x;
    elem namelen, names;
    if (parse_matrix(m, &x) || x.cls != mxSTRUCT)
        return sp_fail(err, SP_EXIT_DATA, "MAT file: the variable is not a struct array");
    namelen = x.first;
    if (namelen.len < 4 || read_elem(m->data, m->len, namelen.next, &names))
        return sp_fail(err, SP_EXIT_DATA, "MAT file: struct without field names");
    size_t flen = sp_get_u32(namelen.data);
    if (flen == 0 || flen > 64 || names.len % flen)
        return sp_fail(err, SP_EXIT_DATA, "MAT file: bad field name length");
    size_t nfields = names.len / flen;
    int inum = -1, istr = -1;
    for (size_t f = 0; f < nfields; f++) {
        char fname[65];
        memcpy(fname, names.data + f * flen, flen);
        fname[flen] = 0;
        if (!strcmp(fname, num_field))
            inum = (int)f;
        if (!strcmp(fname, str_field))
            istr = (int)f;
    }
    if (inum < 0 || istr < 0)
        return sp_fail(err, SP_EXIT_DATA, "MAT file: the struct has no %s or %s field", num_field, str_field);
    size_t off = names.next;
    long calls = 0;
    for (size_t i = 0; i < x.count; i++) {
        double num = 0;
        char str[256] = "";
        int have_num = 0, have_str = 0;
        for (size_t f = 0; f < nfields; f++) {
            elem fe;
            if (read_elem(m->data, m->len, off, &fe) || fe.type != miMATRIX)
                return sp_fail(err, SP_EXIT_DATA, "MAT file: struct element %zu is cut short", i);
            off = fe.next;
            if ((int)f == inum)
                have_num = field_number(&fe, &num) == 0;
            if ((int)f == istr)
                have_str = field_string(&fe, str, sizeof str) == 0;
        }
        if (have_num && have_str) {
            if (fn(ctx, num, str))
                return -1;
            calls++;
        }
    }
    return calls;
}

int sp_mat_sniff(const uint8_t *data, size_t len)
{
    return len >= 128 && !memcmp(data, "MATLAB 5.0 MAT-file", 19) && data[126] == 'I' && data[127] == 'M';
}

/* Finds the variable var: *m is its miMATRIX, inside *inflated (to free)
 * when it was compressed. 0, or -1 with err set. */
static int find_var(const uint8_t *data, size_t len, const char *var, elem *out, uint8_t **inflated_out, sp_err *err)
{
    *inflated_out = NULL;
    if (!sp_mat_sniff(data, len))
        return sp_fail(err, SP_EXIT_DATA, "not a little-endian MAT-file version 5");
    for (size_t off = 128; off < len;) {
        elem e;
        if (read_elem(data, len, off, &e))
            return sp_fail(err, SP_EXIT_DATA, "MAT file: element at byte %zu is cut short", off);
        off = e.next;
        uint8_t *inflated = NULL;
        elem m = e;
        if (e.type == miCOMPRESSED) {
            /* the variable's element, zlib-compressed; its size is in its tag */
            uint8_t tag[8];
            z_stream z = {0};
            if (inflateInit(&z) != Z_OK)
                return sp_fail(err, SP_EXIT_SYSTEM, "zlib: cannot initialise");
            z.next_in = (uint8_t *)e.data;
            z.avail_in = (uInt)e.len;
            z.next_out = tag;
            z.avail_out = 8;
            int zr = inflate(&z, Z_SYNC_FLUSH);
            uint32_t total = sp_get_u32(tag + 4);
            if ((zr != Z_OK && zr != Z_STREAM_END) || z.avail_out || total > (1u << 30)) {
                inflateEnd(&z);
                return sp_fail(err, SP_EXIT_DATA, "MAT file: bad compressed variable");
            }
            inflated = malloc((size_t)total + 8);
            if (!inflated) {
                inflateEnd(&z);
                return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
            }
            memcpy(inflated, tag, 8);
            z.next_out = inflated + 8;
            z.avail_out = total;
            zr = inflate(&z, Z_FINISH);
            inflateEnd(&z);
            if (zr != Z_STREAM_END || z.avail_out) {
                free(inflated);
                return sp_fail(err, SP_EXIT_DATA, "MAT file: compressed variable cut short");
            }
            if (read_elem(inflated, (size_t)total + 8, 0, &m)) {
                free(inflated);
                return sp_fail(err, SP_EXIT_DATA, "MAT file: bad compressed variable");
            }
        }
        matrix x;
        if (m.type == miMATRIX && parse_matrix(&m, &x) == 0 && !strcmp(x.name, var)) {
            *out = m;
            *inflated_out = inflated;
            return 0;
        }
        free(inflated);
    }
    return sp_fail(err, SP_EXIT_DATA, "MAT file: no variable named %s", var);
}

long sp_mat_struct_pairs(const uint8_t *data, size_t len, const char *var, const char *num_field,
                         const char *str_field, int (*fn)(void *ctx, double num, const char *str), void *ctx,
                         sp_err *err)
{
    elem m;
    uint8_t *inflated;
    if (find_var(data, len, var, &m, &inflated, err))
        return -1;
    long rc = walk_struct(&m, num_field, str_field, fn, ctx, err);
    free(inflated);
    return rc;
}

int sp_mat_u8_matrix(const uint8_t *data, size_t len, const char *var, sp_buf *out, uint32_t *rows,
                     uint32_t *cols, sp_err *err)
{
    elem m;
    uint8_t *inflated;
    matrix x;
    if (find_var(data, len, var, &m, &inflated, err))
        return -1;
    int rc = 0;
    if (parse_matrix(&m, &x) || x.cls != mxUINT8 || x.ndims != 2 || x.first.type != miUINT8 ||
        x.first.len != x.count)
        rc = sp_fail(err, SP_EXIT_DATA, "MAT file: %s is not a two-dimensional uint8 matrix", var);
    else if ((out->len = 0, sp_buf_append(out, x.first.data, x.first.len)))
        rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    else
        *rows = x.dims[0], *cols = x.dims[1];
    free(inflated);
    return rc;
}

long sp_mat_cell_strings(const uint8_t *data, size_t len, const char *var,
                         int (*fn)(void *ctx, const char *str), void *ctx, sp_err *err)
{
    elem m;
    uint8_t *inflated;
    matrix x;
    if (find_var(data, len, var, &m, &inflated, err))
        return -1;
    long calls = 0;
    if (parse_matrix(&m, &x) || x.cls != mxCELL) {
        calls = sp_fail(err, SP_EXIT_DATA, "MAT file: %s is not a cell array", var);
    } else {
        size_t off = x.first_at;
        for (size_t i = 0; i < x.count && calls >= 0; i++) {
            elem fe;
            char str[256];
            if (read_elem(m.data, m.len, off, &fe) || fe.type != miMATRIX ||
                field_string(&fe, str, sizeof str))
                calls = sp_fail(err, SP_EXIT_DATA, "MAT file: %s{%zu} is not an ASCII string", var, i + 1);
            else if (fn(ctx, str))
                calls = -1;
            else
                calls++, off = fe.next;
        }
    }
    free(inflated);
    return calls;
}
