/* numpy .npy files: the header dict parsed and checked, images and integer labels read as IDX arrays (see npy.h). */
#include "formats/npy.h"

#include <stdio.h>
#include <string.h>

enum { NPY_MAX_HEADER = 65536, NPY_MAX_DIMS = 4 };

typedef struct npy_header {
    char descr[16];
    int fortran;
    int ndim;
    uint64_t shape[NPY_MAX_DIMS];
    int have_descr, have_fortran, have_shape;
} npy_header;

int sp_npy_sniff(const uint8_t *data, size_t len) { return len >= 6 && !memcmp(data, "\x93NUMPY", 6); }

/* A tiny reader of the header's dict literal. */
typedef struct lex {
    const char *s, *end;
} lex;

static void skip_space(lex *x)
{
    while (x->s < x->end && (*x->s == ' ' || *x->s == '\n' || *x->s == '\t'))
        x->s++;
}

static int eat(lex *x, char c)
{
    skip_space(x);
    if (x->s < x->end && *x->s == c)
        return x->s++, 1;
    return 0;
}

/* A quoted string into out (at most n - 1 bytes); -1 if none or longer. */
static int quoted(lex *x, char *out, size_t n)
{
    skip_space(x);
    if (x->s >= x->end || (*x->s != '\'' && *x->s != '"'))
        return -1;
    char q = *x->s++;
    const char *e = memchr(x->s, q, (size_t)(x->end - x->s));
    if (!e || (size_t)(e - x->s) >= n)
        return -1;
    memcpy(out, x->s, (size_t)(e - x->s));
    out[e - x->s] = 0;
    x->s = e + 1;
    return 0;
}

static int word(lex *x, const char *w)
{
    skip_space(x);
    size_t n = strlen(w);
    if ((size_t)(x->end - x->s) >= n && !memcmp(x->s, w, n))
        return x->s += n, 1;
    return 0;
}

static int shape(lex *x, npy_header *h)
{
    if (!eat(x, '('))
        return -1;
    h->ndim = 0;
    while (!eat(x, ')')) {
        skip_space(x);
        uint64_t v = 0;
        int digits = 0;
        while (x->s < x->end && *x->s >= '0' && *x->s <= '9' && digits < 12)
            v = v * 10 + (uint64_t)(*x->s++ - '0'), digits++;
        if (!digits || h->ndim == NPY_MAX_DIMS || v > UINT32_MAX)
            return -1;
        h->shape[h->ndim++] = v;
        if (!eat(x, ',')) {
            if (!eat(x, ')'))
                return -1;
            break;
        }
    }
    return 0;
}

static int parse_header(const char *s, size_t n, npy_header *h)
{
    lex x = {s, s + n};
    memset(h, 0, sizeof *h);
    if (!eat(&x, '{'))
        return -1;
    while (!eat(&x, '}')) {
        char key[32];
        if (quoted(&x, key, sizeof key) || !eat(&x, ':'))
            return -1;
        if (!strcmp(key, "descr")) {
            if (quoted(&x, h->descr, sizeof h->descr))
                return -1;
            h->have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (word(&x, "True"))
                h->fortran = 1;
            else if (!word(&x, "False"))
                return -1;
            h->have_fortran = 1;
        } else if (!strcmp(key, "shape")) {
            if (shape(&x, h))
                return -1;
            h->have_shape = 1;
        } else {
            return -1;
        }
        if (!eat(&x, ',')) {
            if (!eat(&x, '}'))
                return -1;
            break;
        }
    }
    return h->have_descr && h->have_fortran && h->have_shape ? 0 : -1;
}

/* The integer dtype descr names: its width in bytes, its signedness and
 * byte order; 0, or -1 for anything else. */
static int int_dtype(const char *descr, int *bytes, int *is_signed, int *big)
{
    if (strlen(descr) != 3 || !strchr("<>|=", descr[0]) || !strchr("iu", descr[1]) ||
        !strchr("1248", descr[2]))
        return -1;
    *bytes = descr[2] - '0';
    *is_signed = descr[1] == 'i';
    *big = descr[0] == '>';
    return 0;
}

static int64_t element(const uint8_t *p, int bytes, int is_signed, int big)
{
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++)
        v |= (uint64_t)p[big ? bytes - 1 - k : k] << (8 * k);
    if (is_signed && bytes < 8 && (v >> (8 * bytes - 1)) & 1)
        v |= ~UINT64_C(0) << (8 * bytes);
    return (int64_t)v;
}

int sp_npy_as_idx(const uint8_t *buf, size_t len, const char *name, sp_buf *out, sp_idx *idx, sp_err *err)
{
    if (!sp_npy_sniff(buf, len))
        return sp_fail(err, SP_EXIT_DATA, "%s: not a .npy file (no \\x93NUMPY magic)", name);
    if (len < 10 || (buf[6] >= 2 && len < 12))
        return sp_fail(err, SP_EXIT_DATA, "%s: truncated: %zu bytes, less than a .npy header", name, len);
    if (buf[6] < 1 || buf[6] > 3)
        return sp_fail(err, SP_EXIT_DATA, "%s: .npy version %u.%u (only 1 to 3)", name, buf[6], buf[7]);
    size_t at = buf[6] == 1 ? 10 : 12;
    uint64_t hlen = buf[6] == 1 ? (uint64_t)buf[8] | (uint64_t)buf[9] << 8
                                : (uint64_t)buf[8] | (uint64_t)buf[9] << 8 | (uint64_t)buf[10] << 16 |
                                      (uint64_t)buf[11] << 24;
    if (hlen > NPY_MAX_HEADER)
        return sp_fail(err, SP_EXIT_DATA, "%s: a .npy header of %llu bytes, over the limit of %d", name,
                       (unsigned long long)hlen, NPY_MAX_HEADER);
    if (hlen > len - at)
        return sp_fail(err, SP_EXIT_DATA, "%s: truncated: the .npy header needs %llu bytes, %zu left", name,
                       (unsigned long long)hlen, len - at);
    npy_header h;
    if (parse_header((const char *)buf + at, (size_t)hlen, &h))
        return sp_fail(err, SP_EXIT_DATA, "%s: a .npy header that is not numpy's dict of descr, fortran_order, shape",
                       name);
    at += (size_t)hlen;
    if (h.fortran)
        return sp_fail(err, SP_EXIT_DATA, "%s: an array in Fortran order (only C order)", name);
    int bytes, is_signed, big;
    if (int_dtype(h.descr, &bytes, &is_signed, &big))
        return sp_fail(err, SP_EXIT_DATA, "%s: dtype %s is not allowed (images are uint8, labels integers)", name,
                       h.descr);
    int labels = h.ndim == 1 || (h.ndim == 2 && h.shape[1] == 1);
    int images = (h.ndim == 3 || (h.ndim == 4 && h.shape[3] >= 1 && h.shape[3] <= 4)) && bytes == 1 && !is_signed;
    if (!labels && !images)
        return sp_fail(err, SP_EXIT_DATA, "%s: a %s array of %d dimensions is neither images (uint8, N x H x W [x C<=4]) "
                       "nor labels (integers, N or N x 1)", name, h.descr, h.ndim);
    uint64_t n = 1; /* elements: each dimension is under 2^32, the product checked as it grows */
    for (int i = 0; i < h.ndim; i++) {
        if (h.shape[i] && n > (UINT64_MAX / 8) / h.shape[i])
            return sp_fail(err, SP_EXIT_DATA, "%s: a .npy shape too large", name);
        n *= h.shape[i];
        if (i > 0 && !h.shape[i])
            return sp_fail(err, SP_EXIT_DATA, "%s: a .npy shape with a zero dimension", name);
    }
    if (n * (uint64_t)bytes > len - at)
        return sp_fail(err, SP_EXIT_DATA, "%s: truncated: the header's %llu elements of %s need %llu bytes, %zu left",
                       name, (unsigned long long)n, h.descr, (unsigned long long)(n * (uint64_t)bytes), len - at);
    if (n * (uint64_t)bytes < len - at)
        return sp_fail(err, SP_EXIT_DATA, "%s: %zu bytes after the array's %llu", name,
                       len - at - (size_t)(n * (uint64_t)bytes), (unsigned long long)(n * (uint64_t)bytes));
    out->len = 0;
    if (sp_buf_reserve(out, (size_t)n ? (size_t)n : 1))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: out of memory", name);
    memset(idx, 0, sizeof *idx);
    idx->type = 0x08;
    if (images) {
        memcpy(out->data, buf + at, (size_t)n);
        idx->ndim = (uint8_t)h.ndim;
        for (int i = 0; i < h.ndim; i++)
            idx->dims[i] = (uint32_t)h.shape[i];
    } else {
        for (uint64_t i = 0; i < n; i++) {
            int64_t v = element(buf + at + i * (uint64_t)bytes, bytes, is_signed, big);
            if (v < 0 || v > 255)
                return sp_fail(err, SP_EXIT_DATA, "%s: record %llu: label %lld out of range (0 to 255)", name,
                               (unsigned long long)i, (long long)v);
            out->data[i] = (uint8_t)v;
        }
        idx->ndim = 1;
        idx->dims[0] = (uint32_t)h.shape[0];
    }
    out->len = (size_t)n;
    idx->data = out->data;
    idx->count = h.shape[0];
    idx->item_bytes = idx->count ? n / idx->count : 0;
    if (!idx->count)
        idx->item_bytes = images ? h.shape[1] * h.shape[2] * (h.ndim == 4 ? h.shape[3] : 1) : 1;
    return 0;
}
