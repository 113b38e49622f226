/* WebDataset naming: sample keys and extensions of tar members, and the reversible escaping of record keys. */
#include "pipeline/wds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/sp_atomic.h"
#include "common/sp_draw.h"
#include "pipeline/labels.h"

void sp_wds_name_of(const char *stream_key, sp_wds_name *n)
{
    const char *base = strrchr(stream_key, '/');
    base = base ? base + 1 : stream_key;
    n->tar = stream_key;
    n->tar_len = 0;
    /* the innermost directory part that names an archive */
    for (const char *part = stream_key, *slash; part < base && (slash = strchr(part, '/')) != NULL;
         part = slash + 1)
        if (sp_labels_archive_name(part, (size_t)(slash - part)))
            n->tar_len = (size_t)(slash - stream_key);
    n->key = stream_key + (n->tar_len ? n->tar_len + 1 : 0);
    const char *dot = strchr(base, '.');
    n->key_len = (size_t)((dot ? dot : base + strlen(base)) - n->key);
    n->ext = dot ? dot + 1 : base + strlen(base);
}

static int plain(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int sp_wds_key_escape(const char *key, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        /* a '/' only between two non-empty parts: no absolute path, no empty part */
        int keep = plain(c) || (c == '/' && i > 0 && key[i - 1] != '/' && i + 1 < n);
        if (o + (keep ? 1 : 3) >= cap)
            return -1;
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= cap)
        return -1;
    out[o] = 0;
    return (int)o;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sp_wds_key_unescape(const char *key, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o + 1 >= cap)
            return -1;
        int hi, lo;
        if (key[i] == '%' && i + 2 < n && (hi = hexval(key[i + 1])) >= 0 &&
            (lo = hexval(key[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = key[i];
        }
    }
    if (o >= cap)
        return -1;
    out[o] = 0;
    return (int)o;
}

int sp_wds_parse_cls(const char *s, size_t n, char *why, size_t why_len)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t start = i;
    long long v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && v <= 0x7fffffff)
        v = v * 10 + (s[i++] - '0');
    size_t end = i;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
        i++;
    if (i < n && s[i] == '\n')
        i++;
    if (end == start || i != n || v > 0x7fffffff) {
        char shown[40];
        size_t k = 0;
        for (size_t j = 0; j < n && k + 4 < sizeof shown; j++)
            shown[k++] = s[j] >= 0x20 && s[j] < 0x7f ? s[j] : '?';
        shown[k] = 0;
        snprintf(why, why_len, "the .cls member is not a class index (a decimal integer 0..2147483647): \"%s%s\"",
                 shown, k < n ? "..." : "");
        return -1;
    }
    return (int)v;
}

/* ---------------- writing ---------------- */

struct sp_wds_writer {
    int fd;                 /* the one output, or -1 for pattern files */
    char what[256];
    char prefix[4096], suffix[4096];
    int width, zero;        /* of the pattern's %d */
    uint64_t max_bytes;
    struct archive *a;      /* the tar being written, or NULL */
    sp_atomic_file file;    /* its file (pattern mode) */
    char path[8300];        /* its name, for messages */
    uint64_t bytes;         /* its size so far (headers and padding counted) */
    uint64_t records;       /* in it */
    int ntars;
    sp_buf image;           /* a PNG of pixels */
    char *ekey;             /* the escaped key, 3 * SP_KEY_MAX + 1 bytes */
};

int sp_wds_pattern_check(const char *pattern, char *why, size_t why_len)
{
    const char *pc = strchr(pattern, '%');
    const char *p = pc ? pc + 1 : NULL;
    if (p && *p == '0')
        p++;
    int digits = 0;
    while (p && *p >= '0' && *p <= '9')
        p++, digits++;
    if (!pc || *p != 'd' || digits > 2 || strchr(p + 1, '%') || !*pattern) {
        snprintf(why, why_len, "not a file name with one %%d (out-%%05d.tar): %.200s", pattern);
        return -1;
    }
    return 0;
}

sp_wds_writer *sp_wds_writer_open(int fd, const char *what, const char *pattern, uint64_t max_bytes, sp_err *err)
{
    char why[300];
    if (fd < 0 && sp_wds_pattern_check(pattern, why, sizeof why)) {
        sp_fail(err, SP_EXIT_USAGE, "%s", why);
        return NULL;
    }
    sp_wds_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->ekey = malloc(3 * SP_KEY_MAX + 1))) {
        free(w);
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    w->fd = fd;
    w->file.fd = -1;
    w->max_bytes = max_bytes;
    snprintf(w->what, sizeof w->what, "%s", what ? what : "stdout");
    if (fd < 0) {
        const char *pc = strchr(pattern, '%');
        snprintf(w->prefix, sizeof w->prefix, "%.*s", (int)(pc - pattern), pattern);
        const char *p = pc + 1;
        w->zero = *p == '0';
        w->width = atoi(p);
        while (*p != 'd')
            p++;
        snprintf(w->suffix, sizeof w->suffix, "%s", p + 1);
    }
    return w;
}

/* Ends the current tar: its end blocks written, its file renamed into place. */
static int end_tar(sp_wds_writer *w, sp_err *err)
{
    if (!w->a)
        return 0;
    int rc = archive_write_close(w->a) == ARCHIVE_OK ? 0
             : sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", w->path, archive_error_string(w->a));
    archive_write_free(w->a);
    w->a = NULL;
    if (rc == 0 && w->fd < 0)
        rc = sp_atomic_commit(&w->file, err);
    if (rc == 0)
        w->ntars++;
    return rc;
}

static int begin_tar(sp_wds_writer *w, sp_err *err)
{
    int fd = w->fd;
    if (fd < 0) {
        snprintf(w->path, sizeof w->path, w->zero ? "%s%0*d%s" : "%s%*d%s", w->prefix, w->width, w->ntars, w->suffix);
        if (sp_atomic_open(&w->file, w->path, err))
            return -1;
        fd = w->file.fd;
    } else {
        snprintf(w->path, sizeof w->path, "%s", w->what);
    }
    w->a = archive_write_new();
    if (!w->a)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK || archive_write_open_fd(w->a, fd) != ARCHIVE_OK)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", w->path, archive_error_string(w->a));
    w->bytes = 1024; /* the two zero blocks at the end */
    w->records = 0;
    return 0;
}

/* The bytes a member of this path and size takes in the tar (at most). */
static uint64_t member_bytes(size_t path_len, size_t len)
{
    uint64_t n = 512 + ((uint64_t)len + 511) / 512 * 512;
    if (path_len >= 100) /* a pax header may carry the path */
        n += 512 + ((uint64_t)path_len + 64 + 511) / 512 * 512;
    return n;
}

static int add_member(sp_wds_writer *w, const char *ext, const void *data, size_t len, sp_err *err)
{
    char path[3 * SP_KEY_MAX + 16];
    snprintf(path, sizeof path, "%s.%s", w->ekey, ext);
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_mtime(e, 0, 0);
    int rc = 0;
    if (archive_write_header(w->a, e) != ARCHIVE_OK ||
        (len && archive_write_data(w->a, data, len) != (la_ssize_t)len))
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: %s: %s", w->path, path, archive_error_string(w->a));
    archive_entry_free(e);
    w->bytes += member_bytes(strlen(path), len);
    return rc;
}

int sp_wds_writer_record(sp_wds_writer *w, const sp_record *rec, const uint8_t *payload, const json_t *classes,
                         const json_t *classes2, sp_err *err)
{
    const char *ext;
    const void *img = payload;
    size_t img_len = (size_t)rec->payload_len;
    if (rec->kind == SP_KIND_ENCODED && (rec->codec == SP_CODEC_JPEG || rec->codec == SP_CODEC_PNG)) {
        ext = rec->codec == SP_CODEC_JPEG ? "jpg" : "png";
    } else if (rec->kind == SP_KIND_PIXELS && rec->dtype == SP_DTYPE_U8 && rec->c >= 1 && rec->c <= 4) {
        if (sp_png_encode(rec->key, payload, (int)rec->w, (int)rec->h, (int)rec->c, &w->image, err))
            return -1;
        ext = "png", img = w->image.data, img_len = w->image.len;
    } else {
        return sp_fail(err, SP_EXIT_DATA, "%s: %s%s%s: a WebDataset tar holds JPEG or PNG images (uint8 pixels of 1 to "
                       "4 channels, or encoded records)", rec->key, sp_kind_record(rec->kind),
                       rec->kind == SP_KIND_PIXELS ? " of " : "", rec->kind == SP_KIND_PIXELS ? sp_dtype_name(rec->dtype) : "");
    }
    int klen = sp_wds_key_escape(rec->key, rec->key_len, w->ekey, 3 * SP_KEY_MAX + 1);
    if (klen < 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: the key cannot be escaped", rec->key);
    char cls[16] = "", ck[17];
    if (rec->label >= 0)
        snprintf(cls, sizeof cls, "%d", rec->label);
    snprintf(ck, sizeof ck, "%016llx", (unsigned long long)rec->checksum);
    json_t *j = json_object();
    const char *name = rec->label >= 0 ? json_string_value(json_array_get(classes, (size_t)rec->label)) : NULL;
    json_object_set_new(j, "key", json_string(rec->key));
    json_object_set_new(j, "label", rec->label >= 0 ? json_integer(rec->label) : json_null());
    json_object_set_new(j, "class", name ? json_string(name) : json_null());
    if (rec->label2 >= 0) {
        const char *name2 = json_string_value(json_array_get(classes2, (size_t)rec->label2));
        json_object_set_new(j, "label2", json_integer(rec->label2));
        json_object_set_new(j, "class2", name2 ? json_string(name2) : json_null());
    }
    json_object_set_new(j, "split", json_string(sp_split_name(rec->split)));
    json_object_set_new(j, "checksum", json_string(ck));
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    size_t tlen = strlen(text);
    uint64_t need = member_bytes((size_t)klen + 5, img_len) + member_bytes((size_t)klen + 5, tlen) +
                    (cls[0] ? member_bytes((size_t)klen + 5, strlen(cls)) : 0);
    int rc = 0;
    if (w->a && w->fd < 0 && w->records && w->bytes + need > w->max_bytes)
        rc = end_tar(w, err);
    if (rc == 0 && !w->a)
        rc = begin_tar(w, err);
    if (rc == 0)
        rc = add_member(w, ext, img, img_len, err);
    if (rc == 0 && cls[0])
        rc = add_member(w, "cls", cls, strlen(cls), err);
    if (rc == 0)
        rc = add_member(w, "json", text, tlen, err);
    free(text);
    w->records++;
    return rc;
}

int sp_wds_writer_finish(sp_wds_writer *w, int *ntars, sp_err *err)
{
    if (!w->a && w->ntars == 0 && begin_tar(w, err)) /* no record: still one (empty) tar */
        return -1;
    if (end_tar(w, err))
        return -1;
    *ntars = w->ntars;
    return 0;
}

void sp_wds_writer_free(sp_wds_writer *w)
{
    if (!w)
        return;
    if (w->a)
        archive_write_free(w->a);
    if (w->fd < 0)
        sp_atomic_abort(&w->file);
    sp_buf_free(&w->image);
    free(w->ekey);
    free(w);
}
