/* The unpack stage: archives (libarchive, nested and compressed) to one blob record per regular file, with bomb limits. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_BLOCKSIZE_MAX */
#include <zstd.h>

#define PEEK 512
#define CHUNK (256u << 10)

void sp_unpack_opts_default(sp_unpack_opts *o)
{
    memset(o, 0, sizeof *o);
    o->recurse = 1;
    o->max_buffered = 4ull << 30;
    o->max_ratio = 100;
    o->max_ratio_floor = 64ull << 20;
    o->max_empty = 100000;
}

/* Where libarchive's bytes come from. */
enum { SRC_FD, SRC_RECORD, SRC_ENTRY };
typedef struct src {
    int kind;
    int fd;                 /* SRC_FD */
    sp_reader *reader;      /* SRC_RECORD: the current record's payload */
    struct archive *outer;  /* SRC_ENTRY: the current entry's data */
    const uint8_t *pre;     /* served first: bytes already taken from the source */
    size_t pre_len;
    int pre_done;
    uint8_t *buf;
    sp_err *err;            /* set when the failure is ours, not libarchive's */
    int failed;
    uint64_t served;        /* bytes handed to libarchive: the compressed side */
    uint64_t produced;      /* bytes of members read out of it */
    uint64_t empty;         /* empty members seen */
    int64_t file_size;      /* SRC_FD of a regular file: its size (streamed, not buffered); else -1 */
    struct src *parent;     /* SRC_ENTRY: the source of outer, whose expansion the bytes read here count to */
    struct ctx *c;          /* SRC_ENTRY: for that count */
    sp_unpack_stats *stats; /* SRC_FD: in_bytes counts what is read */
    const char *key;        /* SRC_ENTRY: the nested archive's key, for messages */
} src;

typedef struct ctx {
    sp_stage *out;
    const sp_unpack_opts *opts;
    sp_unpack_stats *stats;
    sp_record tmpl; /* split and labels given to every member */
    const char *input; /* input name for messages */
    const char *plain_key; /* the key of a plain (not archive) input at depth 0, or NULL: its base */
} ctx;

static la_ssize_t src_read_raw(struct archive *a, void *p, const void **out);
static int count_out(struct ctx *c, struct archive *a, src *s, const char *key, size_t n, sp_err *err);
static la_ssize_t src_read(struct archive *a, void *p, const void **out)
{
    la_ssize_t n = src_read_raw(a, p, out);
    src *s = p;
    if (n > 0) {
        s->served += (uint64_t)n;
        if (s->kind == SRC_FD)
            s->stats->in_bytes += (uint64_t)n;
    }
    return n;
}

static la_ssize_t src_read_raw(struct archive *a, void *p, const void **out)
{
    src *s = p;
    if (!s->pre_done) {
        s->pre_done = 1;
        if (s->pre_len) {
            *out = s->pre;
            return (la_ssize_t)s->pre_len;
        }
    }
    *out = s->buf;
    ssize_t n;
    switch (s->kind) {
    case SRC_FD:
        n = read(s->fd, s->buf, CHUNK);
        while (n < 0 && errno == EINTR)
            n = read(s->fd, s->buf, CHUNK);
        if (n < 0) {
            archive_set_error(a, errno, "read failed: %s", strerror(errno));
            return -1;
        }
        return n;
    case SRC_RECORD:
        n = sp_reader_read(s->reader, s->buf, CHUNK, s->err);
        if (n < 0) {
            s->failed = 1;
            archive_set_error(a, EIO, "%s", s->err->msg);
            return -1;
        }
        return n;
    default:
        n = archive_read_data(s->outer, s->buf, CHUNK);
        if (n < 0) {
            archive_set_error(a, EIO, "%s", archive_error_string(s->outer));
            return -1;
        }
        /* a nested archive's bytes are the outer one's output: a bomb that
         * expands into a plain tar inside a compressed one is still counted */
        if (n > 0 && count_out(s->c, s->outer, s->parent, s->key, (size_t)n, s->err)) {
            s->failed = 1;
            archive_set_error(a, EIO, "%s", s->err->msg);
            return -1;
        }
        return n;
    }
}

static int is_nested(const uint8_t *p, size_t n)
{
    if (n >= 262 && !memcmp(p + 257, "ustar", 5))
        return 1;                                              /* tar */
    if (n >= 3 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 8)  /* gzip */
        return 1;
    if (n >= 4 && !memcmp(p, "BZh", 3) && p[3] >= '1' && p[3] <= '9')
        return 1;                                              /* bzip2 */
    if (n >= 6 && !memcmp(p, "\xfd" "7zXZ\0", 6))              /* xz */
        return 1;
    if (n >= 4 && !memcmp(p, "\x28\xb5\x2f\xfd", 4))           /* zstd */
        return 1;
    if (n >= 4 && !memcmp(p, "PK\x03\x04", 4))                 /* zip */
        return 1;
    return 0;
}

/* is_nested, or any other archive or compression an input given by name may
 * be: cpio, lz4, compress (.Z). Anything else is one plain file, even when
 * libarchive would take it for something (a run of zero bytes reads as an
 * empty tar, and a file of zeros would vanish without a trace). */
static int is_archive(const uint8_t *p, size_t n)
{
    return is_nested(p, n) || (n >= 6 && (!memcmp(p, "070707", 6) || !memcmp(p, "070701", 6) ||
                                          !memcmp(p, "070702", 6))) ||
           (n >= 2 && ((p[0] == 0xc7 && p[1] == 0x71) || (p[0] == 0x71 && p[1] == 0xc7))) ||
           (n >= 4 && !memcmp(p, "\x04\x22\x4d\x18", 4)) || (n >= 2 && p[0] == 0x1f && p[1] == 0x9d);
}

/* Key of a compressed single file: its name less the compression suffix. */
static void strip_compression_suffix(char *key)
{
    static const char *const sfx[] = {".gz", ".tgz", ".bz2", ".xz", ".zst", ".lz4", ".Z"};
    size_t n = strlen(key);
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        size_t k = strlen(sfx[i]);
        if (n > k && !strcmp(key + n - k, sfx[i]) && key[n - k - 1] != '/') {
            if (!strcmp(sfx[i], ".tgz"))
                strcpy(key + n - k, ".tar");
            else
                key[n - k] = 0;
            return;
        }
    }
}

/* Why an entry must not be written, or NULL when it is a safe regular file. */
static const char *entry_problem(struct archive_entry *e, const char *path)
{
    if (archive_entry_hardlink(e))
        return "hard link, not followed";
    switch (archive_entry_filetype(e)) {
    case AE_IFREG: break;
    case AE_IFLNK: return "symbolic link, not followed";
    case AE_IFCHR: case AE_IFBLK: return "device file";
    case AE_IFIFO: return "fifo";
    case AE_IFSOCK: return "socket";
    default: return "not a regular file";
    }
    if (path[0] == '/')
        return "absolute path";
    for (const char *s = path; *s;) {
        const char *e2 = strchr(s, '/');
        size_t n = e2 ? (size_t)(e2 - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return "path with '..'";
        if (!e2)
            break;
        s = e2 + 1;
    }
    return NULL;
}

/* Joins prefix and an archive path into key, dropping "./" and empty parts. */
static int join_key(char *key, size_t n, const char *prefix, const char *path)
{
    size_t len = (size_t)snprintf(key, n, "%s", prefix);
    for (const char *s = path; *s;) {
        const char *e = strchr(s, '/');
        size_t k = e ? (size_t)(e - s) : strlen(s);
        if (k && !(k == 1 && s[0] == '.')) {
            if (len + 1 + k >= n)
                return -1;
            key[len++] = '/';
            memcpy(key + len, s, k);
            len += k;
            key[len] = 0;
        }
        if (!e)
            break;
        s = e + 1;
    }
    return 0;
}

static void report(ctx *c, const char *key, const char *why)
{
    c->stats->skipped++;
    if (c->opts->report)
        c->opts->report(c->opts->report_ctx, key, why);
}

static int unpack_archive(ctx *c, src *s, const char *prefix, int depth, sp_err *err);

static int fail_archive(struct archive *a, src *s, const char *what, sp_err *err)
{
    if (s->failed)
        return sp_fail_context(err, "%s", what);
    return sp_fail(err, SP_EXIT_DATA, "%s: %s", what, archive_error_string(a) ? archive_error_string(a) : "archive error");
}

/* Counts n more bytes out of archive a; -1 once a compressed source expands
 * past the limit (a decompression bomb). */
static int count_out(struct ctx *c, struct archive *a, src *s, const char *key, size_t n, sp_err *err)
{
    s->produced += n;
    uint64_t r = c->opts->max_ratio;
    if (r && archive_filter_count(a) > 1 && s->produced > c->opts->max_ratio_floor &&
        s->produced / r > s->served)
        return sp_fail(err, SP_EXIT_DATA,
                       "%s: expands more than %llu to 1 (%llu bytes from %llu compressed): a decompression bomb, refused",
                       key, (unsigned long long)r, (unsigned long long)s->produced, (unsigned long long)s->served);
    return 0;
}

/* Writes the current entry of a as one blob record. peek holds its first
 * bytes, already read. size < 0: unknown, buffered. */
static int emit_entry(ctx *c, struct archive *a, src *s, const char *key, const uint8_t *peek,
                      size_t peek_len, int64_t size, sp_err *err)
{
    sp_record rec;
    if (sp_record_init(&rec, SP_KIND_BLOB, key, err))
        return -1;
    rec.split = c->tmpl.split;
    rec.label = c->tmpl.label;
    rec.label2 = c->tmpl.label2;
    uint8_t *buf = s->buf + CHUNK; /* second half of the source's buffer */
    if (size >= 0) {
        rec.payload_len = (uint64_t)size;
        if (sp_writer_begin(c->out->w, &rec, err) || sp_writer_append(c->out->w, peek, peek_len, err))
            return -1;
        for (;;) {
            la_ssize_t n = archive_read_data(a, buf, CHUNK);
            if (n < 0)
                return fail_archive(a, s, key, err);
            if (n == 0)
                break;
            if (count_out(c, a, s, key, (size_t)n, err))
                return -1;
            if (sp_writer_append(c->out->w, buf, (size_t)n, err))
                return sp_fail_context(err, "%s", c->input);
        }
        if (sp_writer_end(c->out->w, err))
            return -1;
    } else {
        sp_buf all = {0};
        int rc = sp_buf_append(&all, peek, peek_len);
        for (la_ssize_t n = 1; rc == 0 && n > 0;) {
            n = archive_read_data(a, buf, CHUNK);
            if (n < 0) {
                sp_buf_free(&all);
                return fail_archive(a, s, key, err);
            }
            if (count_out(c, a, s, key, (size_t)n, err)) {
                sp_buf_free(&all);
                return -1;
            }
            if (all.len + (size_t)n > c->opts->max_buffered) {
                sp_buf_free(&all);
                return sp_fail(err, SP_EXIT_DATA, "%s: member of unknown size is over %llu bytes", key,
                               (unsigned long long)c->opts->max_buffered);
            }
            rc = sp_buf_append(&all, buf, (size_t)n);
        }
        if (rc) {
            sp_buf_free(&all);
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        }
        rc = sp_writer_record(c->out->w, &rec, all.data, all.len, err);
        sp_buf_free(&all);
        if (rc)
            return -1;
    }
    c->stats->files++;
    c->stats->bytes += rec.payload_len;
    if (c->opts->progress)
        c->opts->progress(c->opts->progress_ctx, c->stats->files, c->stats->bytes);
    return 0;
}

static int unpack_member(ctx *c, struct archive *a, src *s, struct archive_entry *e, const char *key,
                         int may_recurse, int depth, sp_err *err)
{
    uint8_t peek[PEEK];
    size_t got = 0;
    while (got < PEEK) {
        la_ssize_t n = archive_read_data(a, peek + got, PEEK - got);
        if (n < 0)
            return fail_archive(a, s, key, err);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (may_recurse && c->opts->recurse && is_nested(peek, got)) {
        if (depth >= SP_UNPACK_MAX_DEPTH)
            return sp_fail(err, SP_EXIT_DATA, "%s: archives nested more than %d deep", key, SP_UNPACK_MAX_DEPTH);
        src child = {.kind = SRC_ENTRY, .outer = a, .pre = peek, .pre_len = got, .err = err, .file_size = -1,
                     .parent = s, .c = c, .key = key};
        if (count_out(c, a, s, key, got, err)) /* the peeked bytes, served to the child first */
            return -1;
        child.buf = malloc(2 * CHUNK);
        if (!child.buf)
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        int rc = unpack_archive(c, &child, key, depth + 1, err);
        free(child.buf);
        return rc;
    }
    int64_t size = archive_entry_size_is_set(e) && archive_format(a) != ARCHIVE_FORMAT_RAW
                       ? archive_entry_size(e) : -1;
    if (archive_format(a) == ARCHIVE_FORMAT_RAW && archive_filter_count(a) == 1 && s->file_size >= 0)
        size = s->file_size; /* a plain file given by name: its size is known, so it is streamed */
    if (got == 0 && c->opts->max_empty && ++s->empty > c->opts->max_empty)
        return sp_fail(err, SP_EXIT_DATA, "%s: more than %llu empty members in one archive, refused", key,
                       (unsigned long long)c->opts->max_empty);
    return emit_entry(c, a, s, key, peek, got, size, err);
}

static int unpack_archive(ctx *c, src *s, const char *prefix, int depth, sp_err *err)
{
    struct archive *a = archive_read_new();
    if (!a)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (depth > 0 || s->kind != SRC_FD || is_archive(s->pre, s->pre_len)) {
        archive_read_support_filter_all(a);
        archive_read_support_format_tar(a);
        archive_read_support_format_gnutar(a);
        archive_read_support_format_zip_streamable(a);
        archive_read_support_format_cpio(a);
    }
    archive_read_support_format_raw(a);
    int rc = 0;
    if (archive_read_open(a, s, NULL, src_read, NULL) != ARCHIVE_OK) {
        rc = fail_archive(a, s, prefix, err);
        archive_read_free(a);
        return rc;
    }
    struct archive_entry *e;
    char key[SP_KEY_MAX + 1];
    uint64_t headers = 0;
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) {
            /* a nested or compressed archive of no members: reported, so data
             * that only looks like an empty tar (a run of zeros) is not lost unseen */
            if (headers == 0 && (depth > 0 || archive_filter_count(a) > 1))
                report(c, prefix, "an archive with no members (or zeros that read as one)");
            break;
        }
        headers++;
        if (r < ARCHIVE_WARN) {
            rc = fail_archive(a, s, prefix, err);
            break;
        }
        int raw = archive_format(a) == ARCHIVE_FORMAT_RAW;
        int may_recurse = 1;
        if (raw) {
            /* a single (possibly compressed) file: no member name of its own */
            snprintf(key, sizeof key, "%s", prefix);
            int compressed = archive_filter_count(a) > 1;
            if (compressed)
                strip_compression_suffix(key);
            may_recurse = compressed; /* plain data is never re-opened */
        } else {
            const char *path = archive_entry_pathname_utf8(e);
            if (!path)
                path = archive_entry_pathname(e);
            if (!path) {
                report(c, prefix, "entry without a name");
                continue;
            }
            if (archive_entry_filetype(e) == AE_IFDIR)
                continue;
            if (join_key(key, sizeof key, prefix, path)) {
                report(c, prefix, "member path too long");
                continue;
            }
            const char *why = entry_problem(e, path);
            if (why) {
                char name[SP_KEY_MAX + 64];
                snprintf(name, sizeof name, "%s: %s", prefix, path); /* the path as stored */
                report(c, name, why);
                continue;
            }
        }
        if (unpack_member(c, a, s, e, key, may_recurse, depth, err)) {
            rc = -1;
            break;
        }
    }
    archive_read_free(a);
    return rc;
}

/* Passes the input stream's metadata on when it changed since *serial. */
static int follow_meta(ctx *c, sp_reader *r, const json_t *overrides, uint64_t *serial, sp_err *err)
{
    if (sp_reader_meta_serial(r) == *serial)
        return 0;
    *serial = sp_reader_meta_serial(r);
    json_t *m = json_deep_copy(sp_reader_meta(r));
    if (!m)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (overrides)
        json_object_update(m, (json_t *)overrides);
    int rc = sp_stage_meta(c->out, m, err);
    json_decref(m);
    return rc;
}

static int unpack_records(ctx *c, sp_reader *r, const json_t *overrides, sp_err *err)
{
    uint64_t serial = 0;
    sp_record rec;
    src s = {.kind = SRC_RECORD, .reader = r, .err = err, .file_size = -1};
    s.buf = malloc(2 * CHUNK);
    if (!s.buf)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    int rc = follow_meta(c, r, overrides, &serial, err);
    while (rc == 0) {
        rc = sp_reader_next(r, &rec, err);
        if (rc <= 0 || (rc = follow_meta(c, r, overrides, &serial, err)))
            break;
        if (rec.kind != SP_KIND_BLOB || rec.payload_len == 0) {
            /* other records, and empty files, pass through as they are */
            const uint8_t *data;
            rc = sp_reader_payload(r, &rec, &data, err);
            if (!rc)
                rc = sp_writer_record(c->out->w, &rec, data, (size_t)rec.payload_len, err);
            if (!rc && rec.kind == SP_KIND_BLOB)
                c->stats->files++;
            continue;
        }
        c->tmpl = rec;
        s.pre_done = 1;
        s.failed = 0;
        if ((rc = unpack_archive(c, &s, rec.key, 1, err)))
            break;
        /* verify the blob's checksum, reading what libarchive left */
        rc = sp_reader_drain(r, NULL, err);
    }
    free(s.buf);
    return rc < 0 ? -1 : 0;
}

static int unpack_input(ctx *c, int fd, const uint8_t *pre, size_t pre_len, const char *name,
                        const char *base, const json_t *overrides, sp_err *err);

/* sp_unpack_fd; plain_key (may be NULL) keys the input when it is a plain
 * file rather than an archive or a stream. */
static int unpack_fd_keyed(int fd, const char *name, const char *base, const char *plain_key,
                           const json_t *overrides, sp_stage *out, const sp_unpack_opts *opts,
                           sp_unpack_stats *stats, sp_err *err)
{
    ctx c = {.out = out, .opts = opts, .stats = stats, .input = name, .plain_key = plain_key};
    sp_record_init(&c.tmpl, SP_KIND_BLOB, "x", NULL);
    /* enough to sniff a record stream: the magic, or for zstd data its first
     * block, which must be decompressed to see the magic inside */
    size_t cap = ZSTD_BLOCKSIZE_MAX + 64;
    uint8_t *pre = malloc(cap);
    if (!pre)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    ssize_t got = sp_read_full(fd, pre, PEEK);
    if (got == PEEK && !memcmp(pre, "\x28\xb5\x2f\xfd", 4)) {
        ssize_t more = sp_read_full(fd, pre + PEEK, cap - PEEK);
        got = more < 0 ? -1 : got + more;
    }
    if (got < 0) {
        free(pre);
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: read failed: %s", name, strerror(errno));
    }
    int rc = unpack_input(&c, fd, pre, (size_t)got, name, base, overrides, err);
    free(pre);
    return rc;
}

int sp_unpack_fd(int fd, const char *name, const char *base, const json_t *overrides, sp_stage *out,
                 const sp_unpack_opts *opts, sp_unpack_stats *stats, sp_err *err)
{
    return unpack_fd_keyed(fd, name, base, NULL, overrides, out, opts, stats, err);
}

/* Unpacks fd, whose first pre_len bytes were already read into pre. */
static int unpack_input(ctx *c, int fd, const uint8_t *pre, size_t pre_len, const char *name,
                        const char *base, const json_t *overrides, sp_err *err)
{
    sp_stage *out = c->out;
    if (sp_stream_sniff(pre, pre_len)) {
        sp_reader *r = sp_reader_open_prefixed(fd, pre, pre_len, name, NULL, err);
        if (!r)
            return -1;
        int rc = unpack_records(c, r, overrides, err);
        sp_reader_free(r);
        return rc;
    }
    if (!out->w && sp_stage_meta(out, overrides, err))
        return -1;
    if (pre_len == 0) { /* an empty file is one empty blob */
        sp_record rec;
        const char *key = c->plain_key ? c->plain_key : base;
        if (sp_record_init(&rec, SP_KIND_BLOB, key, err) || sp_writer_record(out->w, &rec, "", 0, err))
            return -1;
        c->stats->files++;
        return 0;
    }
    if (c->plain_key && !is_archive(pre, pre_len))
        base = c->plain_key;
    src s = {.kind = SRC_FD, .fd = fd, .pre = pre, .pre_len = pre_len, .err = err, .file_size = -1,
             .stats = c->stats};
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) == (off_t)pre_len)
        s.file_size = (int64_t)st.st_size;
    s.buf = malloc(2 * CHUNK);
    if (!s.buf)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    int rc = unpack_archive(c, &s, base, 0, err);
    free(s.buf);
    return rc;
}

/* ---------------- named paths: files and directory trees ---------------- */

/* The key a plain file named by path keeps: path itself when it is relative
 * and has no ".." part ("./" and repeated slashes dropped), else its base
 * name. Returns -1 when it does not fit in n. */
static int path_key(char *key, size_t n, const char *path)
{
    int relative = path[0] != '/';
    for (const char *s = path; relative && *s;) {
        const char *e = strchr(s, '/');
        size_t k = e ? (size_t)(e - s) : strlen(s);
        if (k == 2 && s[0] == '.' && s[1] == '.')
            relative = 0;
        s = e ? e + 1 : s + k;
    }
    if (!relative)
        return snprintf(key, n, "%s", sp_basename(path)) < (int)n ? 0 : -1;
    if (join_key(key, n, "", path))
        return -1;
    memmove(key, key + 1, strlen(key)); /* join_key's leading '/' */
    return 0;
}

/* One directory's entries, sorted by name (byte order). */
typedef struct dir_list {
    char **names;
    size_t n;
} dir_list;

static void dir_list_free(dir_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->n = 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int list_dir(const char *path, dir_list *l, sp_err *err)
{
    memset(l, 0, sizeof *l);
    DIR *d = opendir(path);
    if (!d)
        return sp_fail(err, errno == ENOENT || errno == EACCES ? SP_EXIT_DATA : SP_EXIT_SYSTEM, "%s: %s", path,
                       strerror(errno));
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    for (errno = 0; rc == 0 && (e = readdir(d)) != NULL; errno = 0) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (l->n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(l->names, cap * sizeof *nn);
            if (!nn) {
                rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
                break;
            }
            l->names = nn;
        }
        if (!(l->names[l->n] = strdup(e->d_name)))
            rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        else
            l->n++;
    }
    if (rc == 0 && errno)
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot list: %s", path, strerror(errno));
    closedir(d);
    if (rc) {
        dir_list_free(l);
        return -1;
    }
    if (l->n)
        qsort(l->names, l->n, sizeof *l->names, cmp_names);
    return 0;
}

/* The directories on the way down from the top, to refuse a loop of
 * followed links. */
typedef struct walk_dir {
    dev_t dev;
    ino_t ino;
    const struct walk_dir *up;
} walk_dir;

static int walk(ctx *c, const char *path, const char *key, const walk_dir *up, int depth, sp_err *err);

/* Stats path/name for the walk: the entry itself, or with follow what a link
 * points at. Returns 0, or 1 when the entry was reported and is passed over. */
static int walk_stat(ctx *c, const char *path, const char *key, struct stat *st, sp_err *err)
{
    if (lstat(path, st))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
    if (S_ISLNK(st->st_mode)) {
        if (!c->opts->follow) {
            report(c, key, "symbolic link, not followed (--follow follows links)");
            return 1;
        }
        if (stat(path, st)) {
            report(c, key, errno == ENOENT ? "symbolic link to nothing" : strerror(errno));
            return 1;
        }
    }
    if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
        report(c, key, S_ISFIFO(st->st_mode) ? "fifo" : S_ISSOCK(st->st_mode) ? "socket" : "device file");
        return 1;
    }
    return 0;
}

static int walk_file(ctx *c, const char *path, const char *key, sp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sp_fail(err, errno == EACCES ? SP_EXIT_DATA : SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
    int rc = unpack_fd_keyed(fd, path, key, key, NULL, c->out, c->opts, c->stats, err);
    close(fd);
    return rc;
}

/* Walks the directory at path, whose members' keys start with key ("" at
 * the top): its files first, then its subdirectories, each in byte order of
 * their names. */
static int walk(ctx *c, const char *path, const char *key, const walk_dir *up, int depth, sp_err *err)
{
    dir_list l;
    if (list_dir(path, &l, err))
        return -1;
    int rc = 0;
    size_t plen = strlen(path), klen = strlen(key);
    char *child = malloc(plen + 2 + NAME_MAX + 1), *ckey = malloc(SP_KEY_MAX + 1);
    unsigned char *is_dir = calloc(l.n ? l.n : 1, 1);
    struct stat *sts = calloc(l.n ? l.n : 1, sizeof *sts);
    if (!child || !ckey || !is_dir || !sts)
        rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    /* pass 1: the files; pass 2: the subdirectories */
    for (int pass = 1; rc == 0 && pass <= 2; pass++)
        for (size_t i = 0; rc == 0 && i < l.n; i++) {
            snprintf(child, plen + 2 + NAME_MAX + 1, "%s%s%s", path,
                     plen && path[plen - 1] == '/' ? "" : "/", l.names[i]);
            if (klen + 1 + strlen(l.names[i]) > SP_KEY_MAX) {
                if (pass == 1)
                    report(c, path, "path too long for a key");
                continue;
            }
            snprintf(ckey, SP_KEY_MAX + 1, "%s%s%s", key, klen ? "/" : "", l.names[i]);
            if (pass == 1) {
                int r = walk_stat(c, child, ckey, &sts[i], err);
                if (r < 0)
                    rc = -1;
                else if (r == 0 && S_ISDIR(sts[i].st_mode))
                    is_dir[i] = 1;
                else if (r == 0)
                    rc = walk_file(c, child, ckey, err);
                continue;
            }
            if (!is_dir[i])
                continue;
            const walk_dir *w;
            for (w = up; w && !(w->dev == sts[i].st_dev && w->ino == sts[i].st_ino); w = w->up)
                ;
            if (w) {
                report(c, ckey, "a link back to a directory above it, not followed again");
                continue;
            }
            if (depth >= SP_UNPACK_MAX_DIR_DEPTH)
                rc = sp_fail(err, SP_EXIT_DATA, "%s: directories nested more than %d deep", child,
                             SP_UNPACK_MAX_DIR_DEPTH);
            else {
                walk_dir here = {sts[i].st_dev, sts[i].st_ino, up};
                rc = walk(c, child, ckey, &here, depth + 1, err);
            }
        }
    free(child);
    free(ckey);
    free(is_dir);
    free(sts);
    dir_list_free(&l);
    return rc;
}

static int is_split_dir(const char *name)
{
    return !strcmp(name, "train") || !strcmp(name, "val") || !strcmp(name, "test");
}

/* Appends the names of the subdirectories of path (links to directories too
 * with follow) to names. */
static int add_subdirs(const char *path, int follow, json_t *names, sp_err *err)
{
    dir_list l;
    if (list_dir(path, &l, err))
        return -1;
    size_t plen = strlen(path);
    char *child = malloc(plen + 2 + NAME_MAX + 1);
    if (!child) {
        dir_list_free(&l);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    for (size_t i = 0; i < l.n; i++) {
        snprintf(child, plen + 2 + NAME_MAX + 1, "%s/%s", path, l.names[i]);
        struct stat st;
        if ((follow ? stat(child, &st) : lstat(child, &st)) == 0 && S_ISDIR(st.st_mode))
            json_array_append_new(names, json_string(l.names[i]));
    }
    free(child);
    dir_list_free(&l);
    return 0;
}

static int cmp_json_strings(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

int sp_unpack_tree_bytes(const char *dir, int follow, uint64_t *bytes, sp_err *err)
{
    dir_list l;
    if (list_dir(dir, &l, err))
        return -1;
    size_t dlen = strlen(dir);
    char *child = malloc(dlen + 2 + NAME_MAX + 1);
    int rc = child ? 0 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        snprintf(child, dlen + 2 + NAME_MAX + 1, "%s/%s", dir, l.names[i]);
        struct stat st;
        if ((follow ? stat(child, &st) : lstat(child, &st)) != 0)
            continue;
        if (S_ISREG(st.st_mode))
            *bytes += (uint64_t)st.st_size;
        else if (S_ISDIR(st.st_mode))
            rc = sp_unpack_tree_bytes(child, follow, bytes, err);
    }
    free(child);
    dir_list_free(&l);
    return rc;
}

json_t *sp_unpack_folder_classes(const char *dir, int follow, sp_err *err)
{
    dir_list top;
    if (list_dir(dir, &top, err))
        return NULL;
    json_t *names = json_array();
    int rc = names ? 0 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    int splits = 0;
    size_t dlen = strlen(dir);
    char *child = malloc(dlen + 2 + NAME_MAX + 1);
    if (!child)
        rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < top.n; i++) {
        snprintf(child, dlen + 2 + NAME_MAX + 1, "%s/%s", dir, top.names[i]);
        struct stat st;
        if (is_split_dir(top.names[i]) && (follow ? stat(child, &st) : lstat(child, &st)) == 0 &&
            S_ISDIR(st.st_mode)) {
            splits++;
            rc = add_subdirs(child, follow, names, err);
        }
    }
    if (rc == 0 && splits == 0)
        rc = add_subdirs(dir, follow, names, err);
    free(child);
    dir_list_free(&top);
    if (rc) {
        json_decref(names);
        return NULL;
    }
    /* sorted, each name once: the union over the split directories */
    size_t n = json_array_size(names);
    json_t **v = malloc((n ? n : 1) * sizeof *v);
    json_t *out = json_array();
    if (!v || !out) {
        free(v);
        json_decref(names);
        json_decref(out);
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(names, i);
    if (n)
        qsort(v, n, sizeof *v, cmp_json_strings);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(json_string_value(v[i]), json_string_value(v[i - 1])))
            json_array_append(out, v[i]);
    free(v);
    json_decref(names);
    return out;
}

int sp_unpack_path(const char *path, const char *stdin_name, const json_t *overrides, sp_stage *out,
                   const sp_unpack_opts *opts, sp_unpack_stats *stats, sp_err *err)
{
    ctx c = {.out = out, .opts = opts, .stats = stats, .input = path};
    if (!strcmp(path, "-"))
        return sp_unpack_fd(STDIN_FILENO, path, stdin_name, overrides, out, opts, stats, err);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* a tree: the stream says which class directories it has, then the
         * files follow, keyed by their paths under it */
        json_t *m = overrides ? json_deep_copy(overrides) : json_object();
        json_t *classes = sp_unpack_folder_classes(path, opts->follow, err);
        if (!m || !classes) {
            json_decref(m);
            json_decref(classes);
            return classes ? sp_fail(err, SP_EXIT_SYSTEM, "out of memory") : -1;
        }
        if (json_array_size(classes)) /* (a folder of files alone says nothing of classes) */
            json_object_set_new(m, "folder_classes", classes);
        else
            json_decref(classes);
        int rc = sp_stage_meta(out, m, err);
        json_decref(m);
        walk_dir top = {st.st_dev, st.st_ino, NULL};
        return rc ? -1 : walk(&c, path, "", &top, 0, err);
    }
    int fd = sp_open_input(path, err);
    if (fd < 0)
        return -1;
    char key[SP_KEY_MAX + 1];
    if (opts->keep_paths && path_key(key, sizeof key, path)) {
        close(fd);
        return sp_fail(err, SP_EXIT_DATA, "%s: path too long for a key", path);
    }
    int rc = unpack_fd_keyed(fd, path, sp_basename(path), opts->keep_paths ? key : NULL, overrides, out, opts, stats,
                             err);
    close(fd);
    return rc;
}
