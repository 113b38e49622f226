/* ImageNet labels: class lists, validation labels (CSV, TF text, devkit ground truth) and synset ID tables, with limits. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/labels.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "formats/matv5.h"
#include "formats/recstream.h"
#include "pipeline/embedded.h"

typedef struct wnid_class {
    uint32_t wnid; /* the 8 digits of nXXXXXXXX */
    int index;
} wnid_class;

struct sp_labels {
    wnid_class *by_wnid; /* sorted by wnid, for bsearch */
    int nclasses;
    json_t *wnids, *words;
    uint32_t *ids;    /* ILSVRC2012_ID -> wnid digits (0 = none), 1-based */
    size_t nids;
    uint32_t *val;    /* validation image number -> wnid digits, 1-based */
    size_t nval;
    /* image folders: plain class names */
    json_t *names;        /* the names in class order */
    int *by_name;         /* class indices sorted by name, for bsearch */
    size_t nnames, cap_names;
};

sp_labels *sp_labels_create(void) { return calloc(1, sizeof(sp_labels)); }

void sp_labels_free(sp_labels *l)
{
    if (!l)
        return;
    free(l->by_wnid);
    json_decref(l->wnids);
    json_decref(l->words);
    free(l->ids);
    free(l->val);
    json_decref(l->names);
    free(l->by_name);
    free(l);
}

/* "n" and 8 digits at s (followed by anything): the digits, else 0. */
static uint32_t parse_wnid(const char *s)
{
    if (s[0] != 'n')
        return 0;
    uint32_t v = 0;
    for (int i = 1; i <= 8; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    return isdigit((unsigned char)s[9]) ? 0 : v + 1; /* +1: a WNID of all zeros is still set */
}

static int cmp_wnid(const void *a, const void *b)
{
    uint32_t x = ((const wnid_class *)a)->wnid, y = ((const wnid_class *)b)->wnid;
    return x < y ? -1 : x > y;
}

/* Reads a whole file (or a built-in one, name starting "builtin:"). */
static char *slurp(const char *path, size_t *len, sp_err *err)
{
    if (!strncmp(path, "builtin:", 8)) {
        for (const sp_embedded_file *e = sp_embedded_manifests; e->name; e++)
            if (!strcmp(e->name, path + 8)) {
                char *c = malloc(e->len + 1);
                if (c) {
                    memcpy(c, e->data, e->len + 1);
                    *len = e->len;
                }
                return c;
            }
        sp_fail(err, SP_EXIT_SYSTEM, "built-in file %s missing", path + 8);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        sp_fail(err, SP_EXIT_DATA, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    sp_buf b = {0};
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > SP_LABELS_MAX_FILE)
            rc = sp_fail(err, SP_EXIT_DATA, "%s: over %u MiB, too big for a labels file", path,
                         (unsigned)(SP_LABELS_MAX_FILE >> 20));
        else if (sp_buf_append(&b, chunk, n))
            rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    if (rc == 0 && ferror(f)) /* a directory, an I/O error: not an empty file */
        rc = sp_fail(err, SP_EXIT_DATA, "%s: read error: %s", path, strerror(errno));
    fclose(f);
    if (rc == 0 && sp_buf_append(&b, "", 1))
        rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (rc) {
        sp_buf_free(&b);
        return NULL;
    }
    *len = b.len - 1;
    return (char *)b.data;
}

/* Calls line() for each line (CR/LF stripped, blank lines skipped) with its
 * 1-based number; stops at the first failure. */
/* Calls line() for each line of the text file path, len bytes read by slurp,
 * as below; a NUL byte in it is an error naming file and line. */
static int each_text_line(const char *path, char *text, size_t len,
                          int (*line)(void *ctx, char *s, size_t no, sp_err *err), void *ctx, sp_err *err);

static int each_line(char *text, int (*line)(void *ctx, char *s, size_t no, sp_err *err), void *ctx, sp_err *err)
{
    size_t no = 0;
    for (char *s = text, *next; s && *s; s = next) {
        next = strchr(s, '\n');
        if (next)
            *next++ = 0;
        no++;
        size_t k = strlen(s);
        while (k && (s[k - 1] == '\r' || s[k - 1] == ' ' || s[k - 1] == '\t'))
            s[--k] = 0;
        if (!*s)
            continue;
        if (line(ctx, s, no, err))
            return -1;
    }
    return 0;
}

static int each_text_line(const char *path, char *text, size_t len,
                          int (*line)(void *ctx, char *s, size_t no, sp_err *err), void *ctx, sp_err *err)
{
    const char *nul = memchr(text, 0, len);
    if (nul) {
        size_t no = 1;
        for (const char *q = text; q < nul; q++)
            no += *q == '\n';
        return sp_fail(err, SP_EXIT_DATA, "%s:%zu: NUL byte in a text file", path, no);
    }
    return each_line(text, line, ctx, err);
}

/* Calls line() for each line of the file path as each_line does, reading
 * it in blocks (the labels of ILSVRC2012's 50,000 validation images are a
 * file of megabytes; what is kept of it is 4 bytes an image). A file over
 * SP_LABELS_MAX_FILE bytes, a line over LABELS_MAX_LINE bytes (what a
 * newline never ends, /dev/zero) and a NUL byte are errors naming the file
 * (and the line), as in slurp and each_text_line. */
#define LABELS_MAX_LINE 65536
static int each_file_line(const char *path, int (*line)(void *ctx, char *s, size_t no, sp_err *err), void *ctx,
                          sp_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sp_fail(err, SP_EXIT_DATA, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(LABELS_MAX_LINE + 1);
    size_t have = 0, no = 0, total = 0;
    int rc = buf ? 0 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    while (!rc) {
        size_t k = fread(buf + have, 1, LABELS_MAX_LINE - have, f);
        have += k, total += k;
        if (total > SP_LABELS_MAX_FILE) {
            rc = sp_fail(err, SP_EXIT_DATA, "%s: over %u MiB, too big for a labels file", path,
                         (unsigned)(SP_LABELS_MAX_FILE >> 20));
            break;
        }
        int end = k == 0;
        if (end && ferror(f)) { /* a directory, an I/O error: not an empty file */
            rc = sp_fail(err, SP_EXIT_DATA, "%s: read error: %s", path, strerror(errno));
            break;
        }
        size_t start = 0;
        while (!rc && start < have) {
            char *nl = memchr(buf + start, '\n', have - start);
            if (!nl && !end)
                break;
            char *s = buf + start;
            size_t len = nl ? (size_t)(nl - s) : have - start;
            s[len] = 0;
            start += len + 1;
            no++;
            if (memchr(s, 0, len)) {
                rc = sp_fail(err, SP_EXIT_DATA, "%s:%zu: NUL byte in a text file", path, no);
                break;
            }
            while (len && (s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
                s[--len] = 0;
            if (len)
                rc = line(ctx, s, no, err);
        }
        if (rc || end)
            break;
        if (start == 0 && have == LABELS_MAX_LINE) {
            rc = sp_fail(err, SP_EXIT_DATA, "%s:%zu: a line over %u KiB", path, no + 1, LABELS_MAX_LINE >> 10);
            break;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
    }
    free(buf);
    fclose(f);
    return rc;
}

typedef struct load_ctx {
    sp_labels *l;
    const char *path;
    size_t cap;
} load_ctx;

static int class_line(void *p, char *s, size_t no, sp_err *err)
{
    load_ctx *c = p;
    uint32_t w = parse_wnid(s);
    if (!w || (s[9] && s[9] != ' ' && s[9] != '\t'))
        return sp_fail(err, SP_EXIT_DATA,
                       "%s:%zu: not a synset line (nXXXXXXXX words): %.60s (plain class names: --labels-from dirs)",
                       c->path, no, s);
    sp_labels *l = c->l;
    if ((size_t)l->nclasses == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        wnid_class *n = realloc(l->by_wnid, c->cap * sizeof *n);
        if (!n)
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        l->by_wnid = n;
    }
    l->by_wnid[l->nclasses] = (wnid_class){w, l->nclasses};
    l->nclasses++;
    const char *words = s + 9;
    while (*words == ' ' || *words == '\t')
        words++;
    json_array_append_new(l->wnids, json_stringn(s, 9));
    json_array_append_new(l->words, json_string(sp_utf8_valid(words, strlen(words)) ? words : ""));
    return 0;
}

int sp_labels_load_classes(sp_labels *l, const char *path, sp_err *err)
{
    const char *src = path ? path : "builtin:imagenet/classes.txt";
    size_t len;
    char *text = slurp(src, &len, err);
    if (!text)
        return -1;
    free(l->by_wnid);
    l->by_wnid = NULL;
    l->nclasses = 0;
    json_decref(l->wnids);
    json_decref(l->words);
    l->wnids = json_array();
    l->words = json_array();
    load_ctx c = {l, path ? path : "built-in ImageNet classes", 0};
    int rc = each_text_line(src, text, len, class_line, &c, err);
    free(text);
    if (rc)
        return -1;
    if (l->nclasses == 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: no classes", c.path);
    qsort(l->by_wnid, (size_t)l->nclasses, sizeof *l->by_wnid, cmp_wnid);
    for (int i = 1; i < l->nclasses; i++)
        if (l->by_wnid[i].wnid == l->by_wnid[i - 1].wnid)
            return sp_fail(err, SP_EXIT_DATA, "%s: n%08u is listed twice", c.path, l->by_wnid[i].wnid - 1);
    return 0;
}

json_t *sp_labels_wnids(const sp_labels *l) { return json_incref(l->wnids); }
json_t *sp_labels_words(const sp_labels *l) { return json_incref(l->words); }

static int grow(uint32_t **a, size_t *n, size_t want, sp_err *err)
{
    if (want < *n)
        return 0;
    size_t m = *n ? *n : 1024;
    while (m <= want)
        m *= 2;
    uint32_t *p = realloc(*a, m * sizeof *p);
    if (!p)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    memset(p + *n, 0, (m - *n) * sizeof *p);
    *a = p;
    *n = m;
    return 0;
}

static int id_line(void *p, char *s, size_t no, sp_err *err)
{
    load_ctx *c = p;
    uint32_t w = parse_wnid(s);
    char *end;
    long id = w ? strtol(s + 9, &end, 10) : 0;
    if (!w || id < 1 || id > 100000)
        return sp_fail(err, SP_EXIT_DATA, "%s:%zu: not a \"WNID ID\" line: %.60s", c->path, no, s);
    if (grow(&c->l->ids, &c->l->nids, (size_t)id, err))
        return -1;
    c->l->ids[id] = w;
    return 0;
}

static int mat_pair(void *p, double num, const char *str)
{
    load_ctx *c = p;
    uint32_t w = parse_wnid(str);
    /* IDs above 1000 are the hierarchy's inner nodes: kept, never looked up */
    if (!w || str[9] || num < 1 || num > 100000 || num != (double)(long)num)
        return 0;
    if (grow(&c->l->ids, &c->l->nids, (size_t)num, NULL))
        return -1;
    c->l->ids[(size_t)num] = w;
    return 0;
}

/* meta.mat out of the devkit archive (ILSVRC2012_devkit_t12.tar.gz). */
static char *devkit_meta(const char *path, size_t *len, sp_err *err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    struct archive_entry *e;
    char *out = NULL;
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        sp_fail(err, SP_EXIT_DATA, "%s: %s", path, archive_error_string(a));
        goto done;
    }
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        size_t n = name ? strlen(name) : 0;
        if (n < 13 || strcmp(name + n - 13, "data/meta.mat"))
            continue;
        la_int64_t size = archive_entry_size(e);
        if (size <= 0 || size > (64 << 20)) {
            sp_fail(err, SP_EXIT_DATA, "%s: %s has a size of %lld", path, name, (long long)size);
            goto done;
        }
        out = malloc((size_t)size);
        if (!out || archive_read_data(a, out, (size_t)size) != size) {
            free(out);
            out = NULL;
            sp_fail(err, SP_EXIT_DATA, "%s: cannot read %s", path, name);
            goto done;
        }
        *len = (size_t)size;
        goto done;
    }
    sp_fail(err, SP_EXIT_DATA, "%s: no data/meta.mat in the archive (is it the ILSVRC2012 devkit?)", path);
done:
    archive_read_free(a);
    return out;
}

int sp_labels_load_ids(sp_labels *l, const char *path, sp_err *err)
{
    size_t len;
    char *text = slurp(path, &len, err);
    if (!text)
        return -1;
    load_ctx c = {l, path, 0};
    const uint8_t *u = (const uint8_t *)text;
    int rc;
    if ((len >= 2 && u[0] == 0x1f && u[1] == 0x8b) || (len > 262 && !memcmp(u + 257, "ustar", 5))) {
        /* the devkit archive: its meta.mat has the table */
        free(text);
        text = devkit_meta(path, &len, err);
        if (!text)
            return -1;
        u = (const uint8_t *)text;
    }
    if (sp_mat_sniff(u, len)) {
        long n = sp_mat_struct_pairs(u, len, "synsets", "ILSVRC2012_ID", "WNID", mat_pair, &c, err);
        rc = n < 0 ? sp_fail_context(err, "%s", path) : 0;
    } else {
        rc = each_text_line(path, text, len, id_line, &c, err);
    }
    free(text);
    return rc;
}

enum { FORM_UNKNOWN, FORM_CSV, FORM_WNIDS, FORM_IDS };
typedef struct val_ctx {
    sp_labels *l;
    const char *path;
    int form;
    size_t image; /* next image number, for the line-per-image forms */
} val_ctx;

/* The number of "..._val_00012345" in s, or 0. */
static size_t val_number(const char *s)
{
    const char *v = strstr(s, "_val_");
    if (!v || !isdigit((unsigned char)v[5]))
        return 0;
    size_t n = 0; /* saturates past the limit instead of wrapping */
    for (const char *d = v + 5; isdigit((unsigned char)*d) && n <= SP_LABELS_MAX_VAL_IMAGE; d++)
        n = n * 10 + (size_t)(*d - '0');
    return n;
}

static int val_line(void *p, char *s, size_t no, sp_err *err)
{
    val_ctx *c = p;
    sp_labels *l = c->l;
    size_t image;
    uint32_t w;
    if (c->form == FORM_UNKNOWN) /* the file's first line tells its form */
        c->form = !strncmp(s, "ImageId", 7) || strchr(s, ',') ? FORM_CSV : parse_wnid(s) ? FORM_WNIDS : FORM_IDS;
    if (c->form == FORM_CSV) {
        if (!strncmp(s, "ImageId", 7))
            return 0;
        char *comma = strchr(s, ',');
        image = val_number(s);
        w = comma ? parse_wnid(comma + 1) : 0;
        if (!image || !w)
            return sp_fail(err, SP_EXIT_DATA, "%s:%zu: not \"ILSVRC2012_val_N,nXXXXXXXX ...\": %.60s", c->path, no, s);
    } else if (c->form == FORM_WNIDS) {
        image = ++c->image;
        w = parse_wnid(s);
        if (!w || s[9])
            return sp_fail(err, SP_EXIT_DATA, "%s:%zu: not a WNID: %.60s", c->path, no, s);
    } else {
        image = ++c->image;
        char *end;
        long id = strtol(s, &end, 10);
        if (*end || id < 1)
            return sp_fail(err, SP_EXIT_DATA, "%s:%zu: not an ILSVRC2012_ID: %.60s", c->path, no, s);
        if ((size_t)id >= l->nids || !l->ids[id])
            return sp_fail(err, SP_EXIT_DATA,
                           "%s:%zu: ILSVRC2012_ID %ld has no WNID (give the ID table with --synset-ids)", c->path, no,
                           id);
        w = l->ids[id];
    }
    if (image > SP_LABELS_MAX_VAL_IMAGE)
        return sp_fail(err, SP_EXIT_DATA, "%s:%zu: validation image number over the limit of %u", c->path, no,
                       (unsigned)SP_LABELS_MAX_VAL_IMAGE);
    if (grow(&l->val, &l->nval, image, err))
        return -1;
    l->val[image] = w;
    return 0;
}

int sp_labels_load_val(sp_labels *l, const char *path, sp_err *err)
{
    val_ctx c = {l, path, FORM_UNKNOWN, 0};
    return each_file_line(path, val_line, &c, err);
}

static int class_of(const sp_labels *l, uint32_t w)
{
    if (!l->nclasses) /* (bsearch must not be given a NULL table) */
        return -1;
    wnid_class key = {w, 0};
    const wnid_class *hit = bsearch(&key, l->by_wnid, (size_t)l->nclasses, sizeof key, cmp_wnid);
    return hit ? hit->index : -1;
}

int sp_labels_lookup(const sp_labels *l, const char *key, char *why, size_t why_len)
{
    const char *base = sp_basename(key);
    size_t image = val_number(base);
    uint32_t w = 0;
    if (image && l->nval) {
        w = image < l->nval ? l->val[image] : 0;
        if (!w) {
            snprintf(why, why_len, "validation image %zu has no label in the labels file", image);
            return -1;
        }
    } else {
        /* the file name, then the directories or tars around it, innermost first */
        w = parse_wnid(base);
        for (const char *s = base; !w && s > key;) {
            const char *start = s - 1;
            while (start > key && start[-1] != '/')
                start--;
            uint32_t c = parse_wnid(start);
            if (c && (start[9] == '/' || !strncmp(start + 9, ".tar/", 5)))
                w = c;
            s = start;
        }
        if (!w) {
            snprintf(why, why_len, image ? "no labels file for validation images (--labels)"
                                         : "no WNID in the key to label it by (class directories: --labels-from dirs)");
            return -1;
        }
    }
    int idx = class_of(l, w);
    if (idx < 0)
        snprintf(why, why_len, "n%08u is not in the class list", w - 1);
    return idx;
}

/* ---------------- image folders ---------------- */

static int split_dir(const char *s, size_t n)
{
    if (n == 5 && !memcmp(s, "train", 5))
        return SP_SPLIT_TRAIN;
    if (n == 3 && !memcmp(s, "val", 3))
        return SP_SPLIT_VAL;
    if (n == 4 && !memcmp(s, "test", 4))
        return SP_SPLIT_TEST;
    return SP_SPLIT_NONE;
}

int sp_labels_archive_name(const char *s, size_t n)
{
    static const char *const sfx[] = {".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".zip", ".cpio"};
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        size_t k = strlen(sfx[i]);
        if (n > k && !memcmp(s + n - k, sfx[i], k))
            return 1;
    }
    return 0;
}

int sp_labels_folder_of(const char *key, char *cls, size_t n, int *split, char *why, size_t why_len)
{
    /* the directory parts (every part but the last): the first split
     * directory names the split and the part after it the class; without
     * one, the first part that is not an archive's name is the class */
    const char *cls_start = NULL, *first = NULL;
    size_t cls_len = 0, first_len = 0;
    int after_split = 0;
    *split = SP_SPLIT_NONE;
    for (const char *part = key, *slash; (slash = strchr(part, '/')) != NULL; part = slash + 1) {
        size_t k = (size_t)(slash - part);
        if (!k)
            continue;
        if (after_split) {
            cls_start = part;
            cls_len = k;
            break;
        }
        int sp = *split == SP_SPLIT_NONE ? split_dir(part, k) : SP_SPLIT_NONE;
        if (sp != SP_SPLIT_NONE) {
            *split = sp;
            after_split = 1;
        } else if (!first && !sp_labels_archive_name(part, k)) {
            first = part;
            first_len = k;
        }
    }
    if (*split == SP_SPLIT_NONE) {
        cls_start = first;
        cls_len = first_len;
    }
    if (!cls_start) {
        snprintf(why, why_len, "no class directory in the key (CLASS/FILE or train/CLASS/FILE)");
        return -1;
    }
    if (cls_len >= n) {
        snprintf(why, why_len, "class directory name over %zu bytes", n - 1);
        return -1;
    }
    memcpy(cls, cls_start, cls_len);
    cls[cls_len] = 0;
    return 0;
}

static void names_reset(sp_labels *l)
{
    json_decref(l->names);
    l->names = json_array();
    l->nnames = 0;
}

/* Appends a name (not yet in the list) and keeps by_name sorted. */
static int names_add(sp_labels *l, const char *name, sp_err *err)
{
    if (l->nnames == l->cap_names) {
        size_t cap = l->cap_names ? 2 * l->cap_names : 64;
        int *p = realloc(l->by_name, cap * sizeof *p);
        if (!p)
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        l->by_name = p;
        l->cap_names = cap;
    }
    if (!l->names || json_array_append_new(l->names, json_string(name)))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    /* insertion into the sorted indices */
    size_t i = l->nnames;
    while (i > 0 && strcmp(json_string_value(json_array_get(l->names, (size_t)l->by_name[i - 1])), name) > 0) {
        l->by_name[i] = l->by_name[i - 1];
        i--;
    }
    l->by_name[i] = (int)l->nnames;
    l->nnames++;
    return 0;
}

static int name_find(const sp_labels *l, const char *name)
{
    size_t lo = 0, hi = l->nnames;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(json_string_value(json_array_get(l->names, (size_t)l->by_name[mid])), name);
        if (c == 0)
            return l->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

typedef struct names_ctx {
    sp_labels *l;
    const char *path;
} names_ctx;

static int name_line(void *p, char *s, size_t no, sp_err *err)
{
    names_ctx *c = p;
    if (!sp_utf8_valid(s, strlen(s)) || strchr(s, '/'))
        return sp_fail(err, SP_EXIT_DATA, "%s:%zu: not a class name (UTF-8, no '/'): %.60s", c->path, no, s);
    if (name_find(c->l, s) >= 0)
        return sp_fail(err, SP_EXIT_DATA, "%s:%zu: class %s is listed twice", c->path, no, s);
    return names_add(c->l, s, err);
}

int sp_labels_load_names(sp_labels *l, const char *path, sp_err *err)
{
    size_t len;
    char *text = slurp(path, &len, err);
    if (!text)
        return -1;
    names_reset(l);
    names_ctx c = {l, path};
    int rc = each_text_line(path, text, len, name_line, &c, err);
    free(text);
    if (rc == 0 && l->nnames == 0)
        rc = sp_fail(err, SP_EXIT_DATA, "%s: no classes", path);
    return rc;
}

int sp_labels_set_names(sp_labels *l, const json_t *names, sp_err *err)
{
    names_reset(l);
    for (size_t i = 0; i < json_array_size(names); i++) {
        const char *s = json_string_value(json_array_get(names, i));
        if (!s || name_find(l, s) >= 0)
            return sp_fail(err, SP_EXIT_DATA, "folder_classes: entry %zu is not a class name, or listed twice", i);
        if (names_add(l, s, err))
            return -1;
    }
    return 0;
}

json_t *sp_labels_names(const sp_labels *l) { return l->names ? json_incref(l->names) : json_array(); }

int sp_labels_name_index(sp_labels *l, const char *name, int grow, int *added, sp_err *err)
{
    *added = 0;
    int i = name_find(l, name);
    if (i >= 0 || !grow)
        return i;
    if (!l->names)
        names_reset(l);
    if (names_add(l, name, err))
        return -2;
    *added = 1;
    return (int)l->nnames - 1;
}
