/* The decode stage: blob records in, labelled and split pixel records out (IDX, CIFAR, JPEG, PNG), rejects counted. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/decode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "formats/cifar.h"
#include "formats/cifar_mat.h"
#include "formats/cifar_py.h"
#include "formats/idx.h"
#include "formats/npy.h"
#include "formats/jpeg_encode.h"
#include "pipeline/datasets.h"
#include "pipeline/labels.h"
#include "pipeline/wds.h"
#include "common/sp_part.h"
#include "common/sp_xxh.h"

/* An IDX file waiting for its partner (images for labels or the reverse).
 * Either is held in memory when it came as a whole payload (an IDX file by
 * content, not by name). Read as a stream, images are spilled to an unlinked
 * temporary file, and so are labels (one byte a record) over
 * IDX_LABELS_IN_MEMORY bytes, so that memory does not grow with either
 * file's size. */
typedef struct idx_pending {
    char key[SP_KEY_MAX + 1];
    char pair[SP_KEY_MAX + 1]; /* the name both partners share */
    int is_labels;
    int max_label; /* labels: the largest, -1 for none */
    sp_buf data;  /* the whole file, when held in memory */
    FILE *spill;  /* the items after the header, when spilled (owned) */
    sp_idx idx;   /* data points into data, or NULL when spilled */
    struct idx_pending *next;
} idx_pending;

/* Where an images file's items come from: memory, the stream (read as it
 * comes) or a spill file. */
typedef struct idx_src {
    const uint8_t *mem;
    sp_reader *r;
    FILE *f;
} idx_src;

#define IDX_CHUNK (1u << 20) /* bytes of items read from a stream or spill at a time */
/* The largest labels file (in bytes after its header: one a record) read as
 * a stream that is kept in memory; a larger one is spilled like images, so
 * that sp-decode's memory does not grow with the number of records. */
#define IDX_LABELS_IN_MEMORY (64u << 10)
#define IDX_LABELS_BUF 4096 /* bytes of spilled labels read back at a time */

/* Labels read in record order from memory or from their spill file. */
typedef struct idx_labels {
    const uint8_t *mem; /* all of them, or NULL: read from f */
    FILE *f;
    const char *key;    /* the labels file, for messages */
    uint64_t next;      /* index of the next label to read */
    size_t pos, len;    /* buf[pos..len) are labels next.. */
    uint8_t buf[IDX_LABELS_BUF];
} idx_labels;

struct sp_decoder {
    sp_decode_opts opts;
    sp_stage *out;
    json_t *meta;  /* output metadata before the recipe entry (owned) */
    json_t *own;   /* members the decoder learned (class names, dataset): they
                    * survive a new input metadata frame */
    int nclasses;  /* classes in meta, or 0 when the decoder names them */
    int numbered;  /* class names are "0".."n-1" made up here */
    idx_pending *pending;
    sp_decode_stats stats;
    sp_labels *labels;  /* loaded when the first image needs a label */
    int labels_ready;
    sp_image img;       /* pixel buffer reused from image to image */
    sp_resampler rs;    /* for opts.resize */
    sp_buf resized;
    sp_buf encoded;     /* a re-encoded image (opts.encoded) */
    sp_buf chunk;       /* IDX items read from a stream or a spill file */
    struct seen_file *seen; /* the dataset files decoded so far (copy_of) */
    struct streamed_idx *streamed; /* the IDX files read as streams, by pair, kind and checksum */
    size_t nstreamed, capstreamed;  /* capstreamed in bytes */
    size_t nseen, capseen;  /* capseen in bytes */
    struct wds_group *wds;  /* --labels-from wds: the key being read (owned) */
    uint64_t *wds_done;     /* hashes of the keys read before it, open addressing (0: empty) */
    size_t wds_ndone, wds_capdone; /* wds_capdone: slots, a power of two */
};

/* --labels-from wds: the members of one key read so far. id is the stream
 * key up to the end of the WebDataset key ("shards-000.tar/dir/a"): it names
 * the tar and the key. */
typedef struct wds_group {
    int open;
    char id[SP_KEY_MAX + 1];
    size_t tar_len;          /* id's first tar_len bytes name the tar (0: none) */
    const char *wkey;        /* the WebDataset key, in id */
    uint64_t members;
    char exts[120];          /* the members' extensions, for messages (cut short when long) */
    char image_ext[16];      /* "" until an image member comes */
    sp_buf image;            /* its bytes */
    int has_cls, has_json;
    sp_buf cls, json;        /* the .cls and .json members' bytes */
    int reason;              /* enum sp_reject of the first problem found, 0 none */
    char problem[300];
} wds_group;

/* A dataset file decoded: its sha256 and key. */
/* An IDX file read as a stream (never whole in memory, so not hashed by
 * copy_of): its pair name, kind and the XXH3-64 of its bytes, for a second
 * file of the same pair and kind (torchvision keeps MNIST's .gz beside what
 * it extracted) to be skipped as a copy, or refused. */
typedef struct streamed_idx {
    char pair[SP_KEY_MAX + 1], key[SP_KEY_MAX + 1];
    int is_labels;
    uint64_t sum;
} streamed_idx;

typedef struct seen_file {
    unsigned char sha[32];
    char key[SP_KEY_MAX + 1];
} seen_file;

void sp_decode_opts_default(sp_decode_opts *o)
{
    memset(o, 0, sizeof *o);
    o->default_split = SP_SPLIT_TRAIN;
    sp_image_opts_default(&o->image);
}

static void resize_region(void *ctx, uint32_t w, uint32_t h, int box[4])
{
    sp_resize_source_box(ctx, (int)w, (int)h, box);
}

sp_decoder *sp_decoder_create(const sp_decode_opts *opts, sp_stage *out, sp_err *err)
{
    sp_decoder *d = calloc(1, sizeof *d);
    if (!d) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    d->opts = *opts;
    d->out = out;
    d->own = json_object();
    const sp_resize_opts *rz = opts->resize;
    if (rz && !opts->image.min_w && !opts->image.min_h) {
        /* decode no smaller than what the resize keeps */
        int side = rz->mode == SP_RESIZE_CROP && rz->resize_to ? rz->resize_to : 0;
        d->opts.image.min_w = (uint32_t)(side ? side : rz->w);
        d->opts.image.min_h = (uint32_t)(side ? side : rz->h);
    }
    if (rz) { /* decode only what the resize reads */
        d->opts.image.region = resize_region;
        d->opts.image.region_ctx = (void *)rz;
    }
    return d;
}

static void pending_free(idx_pending *p)
{
    if (!p)
        return;
    if (p->spill)
        fclose(p->spill);
    sp_buf_free(&p->data);
    free(p);
}

void sp_decoder_free(sp_decoder *d)
{
    if (!d)
        return;
    while (d->pending) {
        idx_pending *n = d->pending->next;
        pending_free(d->pending);
        d->pending = n;
    }
    json_decref(d->meta);
    json_decref(d->own);
    sp_labels_free(d->labels);
    sp_image_free(&d->img);
    sp_resampler_free(&d->rs);
    sp_buf_free(&d->resized);
    sp_buf_free(&d->encoded);
    sp_buf_free(&d->chunk);
    free(d->seen);
    free(d->streamed);
    if (d->wds) {
        sp_buf_free(&d->wds->image);
        sp_buf_free(&d->wds->cls);
        sp_buf_free(&d->wds->json);
        free(d->wds);
    }
    free(d->wds_done);
    free(d);
}

const sp_decode_stats *sp_decoder_stats(const sp_decoder *d) { return &d->stats; }

/* 1 if a record with this key goes to another part (--part). */
static int other_part(sp_decoder *d, const sp_record *rec)
{
    if (!d->opts.parts || sp_part_of(rec->key, rec->key_len, d->opts.parts) == d->opts.part)
        return 0;
    d->stats.other_parts++;
    return 1;
}

int sp_decoder_input_meta(sp_decoder *d, const json_t *meta, sp_err *err)
{
    json_t *m = meta ? json_deep_copy(meta) : json_object();
    if (!m)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (d->opts.dataset)
        json_object_set_new(m, "dataset", json_string(d->opts.dataset));
    json_t *classes = json_object_get(m, "classes");
    d->numbered = 0;
    if (json_is_array(classes)) {
        d->nclasses = (int)json_array_size(classes);
    } else {
        /* a known dataset's manifest names its classes */
        const char *name = json_string_value(json_object_get(m, "dataset"));
        json_t *manifest = name ? sp_dataset_manifest(name, NULL) : NULL;
        json_t *names = json_object_get(manifest, "classes");
        if (json_is_array(names)) {
            json_object_set(m, "classes", names);
            d->nclasses = (int)json_array_size(names);
        } else {
            d->nclasses = 0; /* named "0".."n-1" as labels are seen */
            d->numbered = 1;
        }
        json_decref(manifest);
    }
    json_object_update(m, d->own);
    /* encoded images are decoded again at load: a limit above the readers'
     * default travels with the set, so they decode what was kept */
    if (d->opts.encoded && d->opts.image.max_pixels > SP_IMAGE_MAX_PIXELS)
        json_object_set_new(m, "max_pixels", json_integer((json_int_t)d->opts.image.max_pixels));
    if (json_object_get(d->own, "classes")) {
        d->nclasses = (int)json_array_size(json_object_get(d->own, "classes"));
        d->numbered = 0;
    }
    json_decref(d->meta);
    d->meta = m;
    return sp_stage_meta(d->out, m, err);
}

/* Sets a member the decoder learned, in the metadata and for later frames. */
static void learn(sp_decoder *d, const char *key, json_t *value)
{
    json_object_set(d->own, key, value);
    json_object_set_new(d->meta, key, value);
}

/* Makes sure labels up to max_label have names; fails if a known class
 * list is too short. */
static int ensure_classes(sp_decoder *d, int max_label, const char *key, sp_err *err)
{
    if (max_label < d->nclasses)
        return 0;
    if (!d->numbered)
        return sp_fail(err, SP_EXIT_DATA, "%s: label %d out of range: the dataset has %d classes", key,
                       max_label, d->nclasses);
    d->nclasses = max_label + 1 < 10 ? 10 : max_label + 1;
    json_object_set_new(d->meta, "classes", sp_numbered_classes(d->nclasses));
    return sp_stage_meta(d->out, d->meta, err);
}

static int split_from_name(const char *key)
{
    const char *base = sp_basename(key);
    if (strstr(base, "t10k") || strstr(base, "test"))
        return SP_SPLIT_TEST;
    if (strstr(base, "train"))
        return SP_SPLIT_TRAIN;
    return SP_SPLIT_NONE;
}

/* The name an images file and its labels file share: the key with the last
 * "images"/"labels" and "idxN" of its base name removed. */
static void pair_name(const char *key, char *out, size_t n)
{
    snprintf(out, n, "%s", key);
    char *base = (char *)sp_basename(out);
    const char *words[] = {"images", "labels", "idx1", "idx2", "idx3", "idx4"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        char *hit = NULL, *s = base;
        while ((s = strstr(s, words[i])) != NULL)
            hit = s++;
        if (hit)
            memmove(hit, hit + strlen(words[i]), strlen(hit + strlen(words[i])) + 1);
    }
}

/* Reads the next n bytes of key's payload from r into dst: 0, or -1 with err
 * set (a payload that ends first is an error naming key). */
static int idx_read(sp_reader *r, uint8_t *dst, size_t n, const char *key, sp_err *err)
{
    for (size_t got = 0; got < n;) {
        ssize_t k = sp_reader_read(r, dst + got, n - got, err);
        if (k < 0)
            return -1;
        if (k == 0)
            return sp_fail(err, SP_EXIT_DATA, "%s: IDX payload ends before its items", key);
        got += (size_t)k;
    }
    return 0;
}

/* The largest of max and the n bytes at p. */
static int max_byte(const uint8_t *p, size_t n, int max)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] > max)
            max = p[i];
    return max;
}

/* Reads the next label (the one of record l->next) into *out: 0, or -1 with
 * err set naming the labels file and the record when a spill file reads back
 * short or fails. */
static int idx_label_next(idx_labels *l, uint8_t *out, sp_err *err)
{
    if (!l->mem && l->pos == l->len) {
        l->pos = 0;
        l->len = fread(l->buf, 1, sizeof l->buf, l->f);
        if (!l->len)
            return sp_fail(err, SP_EXIT_SYSTEM, "%s: record %llu: cannot read back the spilled labels: %s", l->key,
                           (unsigned long long)l->next, ferror(l->f) ? strerror(errno) : "file cut short");
    }
    *out = l->mem ? l->mem[l->next] : l->buf[l->pos++];
    l->next++;
    return 0;
}

/* Reads the next n bytes of items from src: a pointer to them, valid until
 * the next call, or NULL with err set. */
static const uint8_t *idx_src_take(sp_decoder *d, idx_src *src, const char *key, size_t n, sp_err *err)
{
    if (src->mem) {
        const uint8_t *p = src->mem;
        src->mem += n;
        return p;
    }
    if (sp_buf_reserve(&d->chunk, n)) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    if (src->f) {
        if (fread(d->chunk.data, 1, n, src->f) != n) {
            sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot read back the spilled images: %s", key,
                    ferror(src->f) ? strerror(errno) : "file cut short");
            return NULL;
        }
        return d->chunk.data;
    }
    return idx_read(src->r, d->chunk.data, n, key, err) ? NULL : d->chunk.data;
}

/* Writes the pair's records, images read from src as they are written and
 * labels from memory or their spill file (read once, in order). img->idx is
 * the images file's parsed header. */
static int emit_idx_pair(sp_decoder *d, const idx_pending *img, idx_src *src, idx_pending *lab, sp_err *err)
{
    const sp_idx *im = &img->idx, *lb = &lab->idx;
    if (im->count != lb->count)
        return sp_fail(err, SP_EXIT_DATA, "%s has %llu images but %s has %llu labels", img->key,
                       (unsigned long long)im->count, lab->key, (unsigned long long)lb->count);
    int max_label = lb->data ? max_byte(lb->data, (size_t)lb->count, -1) : lab->max_label;
    idx_labels labels = {.mem = lb->data, .f = lab->spill, .key = lab->key};
    if (!d->numbered && max_label >= d->nclasses) { /* name the first one out of range, not the largest */
        uint8_t v;
        do
            if (idx_label_next(&labels, &v, err))
                return -1;
        while (v < d->nclasses);
        return sp_fail(err, SP_EXIT_DATA, "%s: record %llu: label %u out of range: the dataset has %d classes",
                       lab->key, (unsigned long long)labels.next - 1, v, d->nclasses);
    }
    if (ensure_classes(d, max_label, lab->key, err))
        return -1;
    sp_record rec;
    if (sp_record_init(&rec, SP_KIND_PIXELS, img->key, err))
        return -1;
    int split = split_from_name(img->key);
    rec.split = (uint8_t)(split == SP_SPLIT_NONE ? d->opts.default_split : split);
    rec.dtype = SP_DTYPE_U8;
    rec.h = im->dims[1];
    rec.w = im->dims[2];
    rec.c = im->ndim == 4 ? im->dims[3] : 1;
    size_t item = (size_t)im->item_bytes;
    uint64_t per = item < IDX_CHUNK ? IDX_CHUNK / item : 1; /* items a chunk */
    for (uint64_t i = 0; i < im->count; i += per) {
        uint64_t k = im->count - i < per ? im->count - i : per;
        const uint8_t *items = idx_src_take(d, src, img->key, (size_t)k * item, err);
        if (!items)
            return -1;
        for (uint64_t j = 0; j < k; j++) {
            int n = snprintf(rec.key, sizeof rec.key, "%s#%llu", img->key, (unsigned long long)(i + j));
            if (n < 0 || n > SP_KEY_MAX)
                return sp_fail(err, SP_EXIT_DATA, "%s: key too long", img->key);
            rec.key_len = (uint16_t)n;
            uint8_t label;
            if (idx_label_next(&labels, &label, err))
                return -1;
            rec.label = label;
            if (other_part(d, &rec))
                continue;
            if (sp_writer_record(d->out->w, &rec, items + j * item, item, err))
                return -1;
            d->stats.out++;
        }
    }
    return 0;
}

/* Copies the rest of the current payload (an IDX file's items) to an
 * unlinked temporary file in $TMPDIR (default /tmp), rewound for reading;
 * what names the items in messages ("the labels"). *max, when not NULL, is
 * set to the largest byte copied (-1 for none). NULL with err set on
 * failure. */
static FILE *idx_spill(sp_reader *r, const char *key, const char *what, int *max, sp_err *err)
{
    const char *dir = getenv("TMPDIR");
    char path[4200];
    snprintf(path, sizeof path, "%.4000s/.sp-decode-idx-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w+b") : NULL;
    if (!f) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot spill %s: %s: %s", key, what, path, strerror(errno));
        if (fd >= 0) {
            unlink(path);
            close(fd);
        }
        return NULL;
    }
    unlink(path);
    uint8_t buf[1u << 16];
    ssize_t k;
    if (max)
        *max = -1;
    while ((k = sp_reader_read(r, buf, sizeof buf, err)) > 0) {
        if (max)
            *max = max_byte(buf, (size_t)k, *max);
        if (fwrite(buf, 1, (size_t)k, f) != (size_t)k) {
            sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot spill %s: %s: %s", key, what, path, strerror(errno));
            k = -1;
            break;
        }
    }
    if (k == 0 && (fflush(f) || fseeko(f, 0, SEEK_SET))) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot spill %s: %s: %s", key, what, path, strerror(errno));
        k = -1;
    }
    if (k < 0) {
        fclose(f);
        return NULL;
    }
    return f;
}

/* 1 if the base name has the IDX naming convention "-idxN-ubyte". */
static int idx_name(const char *key)
{
    const char *s = strstr(sp_basename(key), "-idx");
    return s && s[4] >= '1' && s[4] <= '9' && !strncmp(s + 5, "-ubyte", 6);
}

/* 1 if an IDX file's name says it holds labels (..-idx1-ubyte). */
static int idx_labels_name(const char *key)
{
    const char *s = strstr(sp_basename(key), "-idx");
    return s && s[4] == '1';
}

/* Pairs p (an IDX file whose header is parsed) with a pending partner, or
 * keeps it pending. Images not in memory (p->idx.data NULL) are read from r as
 * they are written when their labels came first, or spilled to wait. Takes
 * p. */
static int idx_pair(sp_decoder *d, sp_reader *r, idx_pending *p, sp_err *err)
{
    if (p->idx.ndim == 2 || (p->idx.ndim == 4 && p->idx.dims[3] > 4)) {
        int rc = sp_fail(err, SP_EXIT_DATA, "%s: IDX array of shape %d dimensions is neither images "
                         "(N x H x W [x C<=4]) nor labels (N)", p->key, p->idx.ndim);
        pending_free(p);
        return rc;
    }
    p->is_labels = p->idx.ndim == 1;
    if (!p->pair[0]) /* an IDX file; a .npy one comes with its pair name */
        pair_name(p->key, p->pair, sizeof p->pair);
    idx_pending **pp = &d->pending;
    for (; *pp; pp = &(*pp)->next) {
        idx_pending *q = *pp;
        if (strcmp(q->pair, p->pair))
            continue;
        if (q->is_labels == p->is_labels) {
            int rc = sp_fail(err, SP_EXIT_DATA, "%s and %s are both IDX %s files of one pair", q->key,
                             p->key, p->is_labels ? "labels" : "images");
            pending_free(p);
            return rc;
        }
        *pp = q->next;
        idx_pending *img = p->is_labels ? q : p, *lab = p->is_labels ? p : q;
        idx_src src = {.mem = img->idx.data, .r = r, .f = img->spill};
        int rc = emit_idx_pair(d, img, &src, lab, err);
        pending_free(q);
        pending_free(p);
        return rc;
    }
    if (!p->is_labels && !p->idx.data &&
        !(p->spill = idx_spill(r, p->key, "the images before their labels", NULL, err))) {
        pending_free(p);
        return -1;
    }
    p->next = d->pending;
    d->pending = p;
    return 0;
}

/* An IDX file held whole in memory (data, the record's payload). */
static int decode_idx(sp_decoder *d, sp_reader *r, const sp_record *rec, const uint8_t *data, sp_err *err)
{
    idx_pending *p = calloc(1, sizeof *p);
    if (!p || sp_buf_append(&p->data, data, (size_t)rec->payload_len)) {
        free(p);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    memcpy(p->key, rec->key, (size_t)rec->key_len + 1);
    if (sp_idx_parse(p->data.data, p->data.len, p->key, &p->idx, err)) {
        pending_free(p);
        return -1;
    }
    return idx_pair(d, r, p, err);
}

/* An IDX file by name, read as a stream: its header first, then labels into
 * memory (up to IDX_LABELS_IN_MEMORY bytes) or a spill file, images record by
 * record (or into a spill file until their labels come), so memory stays
 * bounded whatever the files' sizes. */
static int decode_idx_stream(sp_decoder *d, sp_reader *r, const sp_record *rec, sp_err *err)
{
    idx_pending *p = calloc(1, sizeof *p);
    if (!p)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    memcpy(p->key, rec->key, (size_t)rec->key_len + 1);
    uint8_t head[4 + 4 * SP_IDX_MAX_DIMS];
    size_t have = 0, want = 4;
    while (have < want && have < rec->payload_len) {
        ssize_t k = sp_reader_read(r, head + have, want - have, err);
        if (k <= 0) {
            pending_free(p);
            return k < 0 ? -1 : sp_fail(err, SP_EXIT_DATA, "%s: IDX header cut short", rec->key);
        }
        have += (size_t)k;
        if (have == 4 && head[3] >= 1 && head[3] <= SP_IDX_MAX_DIMS)
            want = 4u + 4u * head[3];
    }
    if (sp_idx_parse_header(head, have, rec->payload_len, p->key, &p->idx, err)) {
        pending_free(p);
        return -1;
    }
    if (p->idx.ndim == 1 && p->idx.count > IDX_LABELS_IN_MEMORY) { /* labels: count bytes, spilled */
        if (!(p->spill = idx_spill(r, p->key, "the labels", &p->max_label, err))) {
            pending_free(p);
            return -1;
        }
    } else if (p->idx.ndim == 1) { /* read straight into the one copy kept */
        if (sp_buf_reserve(&p->data, (size_t)p->idx.count + 1)) {
            pending_free(p);
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        }
        if (idx_read(r, p->data.data, (size_t)p->idx.count, p->key, err)) {
            pending_free(p);
            return -1;
        }
        p->data.len = (size_t)p->idx.count;
        p->idx.data = p->data.data;
    }
    if (idx_pair(d, r, p, err))
        return -1;
    sp_record done = *rec; /* the payload's checksum, kept to tell a copy of this file */
    if (sp_reader_drain(r, &done, err))
        return -1;
    if (d->nstreamed == d->capstreamed / sizeof *d->streamed &&
        sp_grow((void **)&d->streamed, &d->capstreamed, (d->nstreamed ? 2 * d->nstreamed : 8) * sizeof *d->streamed))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    streamed_idx *e = &d->streamed[d->nstreamed++];
    pair_name(done.key, e->pair, sizeof e->pair);
    snprintf(e->key, sizeof e->key, "%s", done.key);
    e->is_labels = idx_labels_name(done.key);
    e->sum = done.checksum;
    return 0;
}

/* key, a copy of the dataset file first, counted as skipped and reported; 1. */
static int skipped_copy(sp_decoder *d, const char *key, const char *first)
{
    d->stats.skipped++;
    if (d->opts.report) {
        char why[SP_KEY_MAX + 64];
        snprintf(why, sizeof why, "the same bytes as %s, read once", first);
        d->opts.report(d->opts.report_ctx, key, why);
    }
    return 1;
}

/* An IDX file by name whose pair and kind one read as a stream already had:
 * its bytes read whole and compared; the same (XXH3-64): skipped and
 * reported, 1; other bytes: an error naming both, -1; 0 when there is no
 * such earlier file. */
static int skip_streamed_copy(sp_decoder *d, sp_reader *r, sp_record *rec, sp_err *err)
{
    char pair[SP_KEY_MAX + 1];
    pair_name(rec->key, pair, sizeof pair);
    int labels = idx_labels_name(rec->key);
    for (size_t i = 0; i < d->nstreamed; i++) {
        const streamed_idx *e = &d->streamed[i];
        if (e->is_labels != labels || strcmp(e->pair, pair))
            continue;
        const uint8_t *data;
        if (sp_reader_payload(r, rec, &data, err))
            return -1;
        if (rec->checksum != e->sum)
            return sp_fail(err, SP_EXIT_DATA, "%s and %s are both IDX %s files of one pair, with other bytes",
                           e->key, rec->key, labels ? "labels" : "images");
        return skipped_copy(d, rec->key, e->key);
    }
    return 0;
}

/* A .npy file (a member of Keras' mnist.npz and the like): x_NAME.npy, the
 * images, pairs with y_NAME.npy, the labels, as IDX files do. */
static int decode_npy(sp_decoder *d, sp_reader *r, const sp_record *rec, const uint8_t *data, sp_err *err)
{
    idx_pending *p = calloc(1, sizeof *p);
    if (!p)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    memcpy(p->key, rec->key, (size_t)rec->key_len + 1);
    if (sp_npy_as_idx(data, (size_t)rec->payload_len, p->key, &p->data, &p->idx, err)) {
        pending_free(p);
        return -1;
    }
    snprintf(p->pair, sizeof p->pair, "%s", p->key);
    char *base = (char *)sp_basename(p->pair);
    if ((base[0] == 'x' || base[0] == 'y') && base[1] == '_')
        memmove(base, base + 2, strlen(base + 2) + 1);
    return idx_pair(d, r, p, err);
}

/* 1 if the base name ends in ".npy". */
static int npy_name(const char *key)
{
    const char *dot = strrchr(sp_basename(key), '.');
    return dot && !strcmp(dot, ".npy");
}

/* Names the dataset when the stream did not: files this decoder recognises
 * tell which one it is. */
static int name_dataset(sp_decoder *d, const char *name, sp_err *err)
{
    if (json_string_value(json_object_get(d->meta, "dataset")))
        return 0;
    learn(d, "dataset", json_string(name));
    return sp_stage_meta(d->out, d->meta, err);
}

static int cifar_names(sp_decoder *d, int which, json_t *names, sp_err *err);

/* Record i of a CIFAR source: 32x32x3 HWC pixels into out, its labels. */
typedef void (*cifar_rec_fn)(const void *src, long i, uint8_t *out, int32_t *label, int32_t *label2);

/* The n records of a CIFAR batch file (in) as pixel records "KEY#i". */
static int emit_cifar(sp_decoder *d, const sp_record *in, int variant, int split, long n, cifar_rec_fn fn,
                      const void *src, sp_err *err)
{
    if (name_dataset(d, variant == 10 ? "cifar10" : "cifar100", err))
        return -1;
    sp_record rec;
    if (sp_record_init(&rec, SP_KIND_PIXELS, in->key, err))
        return -1;
    rec.split = (uint8_t)split;
    rec.dtype = SP_DTYPE_U8;
    rec.h = rec.w = SP_CIFAR_SIDE;
    rec.c = 3;
    uint8_t px[SP_CIFAR_PIXELS];
    for (long i = 0; i < n; i++) {
        int k = snprintf(rec.key, sizeof rec.key, "%s#%ld", in->key, i);
        if (k < 0 || k > SP_KEY_MAX)
            return sp_fail(err, SP_EXIT_DATA, "%s: key too long", in->key);
        rec.key_len = (uint16_t)k;
        if (other_part(d, &rec))
            continue;
        fn(src, i, px, &rec.label, &rec.label2);
        if (sp_writer_record(d->out->w, &rec, px, sizeof px, err))
            return -1;
        d->stats.out++;
    }
    return 0;
}

typedef struct cifar_bin {
    const sp_cifar_file *f;
    const uint8_t *data;
} cifar_bin;

static void cifar_bin_record(const void *src, long i, uint8_t *out, int32_t *label, int32_t *label2)
{
    const cifar_bin *b = src;
    sp_cifar_record(b->f, b->data, i, out, label, label2);
}

static int decode_cifar(sp_decoder *d, const sp_record *in, const sp_cifar_file *f, const uint8_t *data,
                        sp_err *err)
{
    long n = sp_cifar_check(f, data, (size_t)in->payload_len, in->key, err);
    cifar_bin b = {f, data};
    return n < 0 ? -1 : emit_cifar(d, in, f->variant, f->split, n, cifar_bin_record, &b, err);
}

static void cifar_py_record(const void *src, long i, uint8_t *out, int32_t *label, int32_t *label2)
{
    sp_cifar_py_record(src, i, out, label, label2);
}

static void cifar_mat_record(const void *src, long i, uint8_t *out, int32_t *label, int32_t *label2)
{
    sp_cifar_mat_record(src, i, out, label, label2);
}

/* A CIFAR-10 MATLAB version file (see formats/cifar_mat.h): a batch or the
 * class names. */
static int decode_cifar_mat(sp_decoder *d, const sp_record *in, int kind, const uint8_t *data, sp_err *err)
{
    if (kind == SP_CIFAR_MAT_META) {
        json_t *classes;
        return sp_cifar_mat_names(data, (size_t)in->payload_len, in->key, &classes, err) ? -1
                                                                                         : cifar_names(d, 2, classes, err);
    }
    sp_cifar_mat b;
    if (sp_cifar_mat_open(&b, data, (size_t)in->payload_len, in->key, err))
        return -1;
    int rc = emit_cifar(d, in, 10, b.split, b.n, cifar_mat_record, &b, err);
    sp_cifar_mat_close(&b);
    return rc;
}

/* A CIFAR python version batch (a pickle; see formats/cifar_py.h). */
static int decode_cifar_py(sp_decoder *d, const sp_record *in, const uint8_t *data, sp_err *err)
{
    sp_cifar_py b;
    if (sp_cifar_py_open(&b, data, (size_t)in->payload_len, in->key, err))
        return -1;
    int rc = emit_cifar(d, in, b.variant, b.split, b.n, cifar_py_record, &b, err);
    sp_cifar_py_close(&b);
    return rc;
}

/* A CIFAR python version meta file: the class names. */
static int cifar_py_meta(sp_decoder *d, const sp_record *in, const uint8_t *data, sp_err *err)
{
    json_t *classes, *classes2;
    int variant;
    if (sp_cifar_py_names(data, (size_t)in->payload_len, in->key, &classes, &classes2, &variant, err))
        return -1;
    if (variant == 10)
        return cifar_names(d, 2, classes, err);
    if (cifar_names(d, 4, classes2, err)) {
        json_decref(classes);
        return -1;
    }
    return cifar_names(d, 3, classes, err);
}

/* A class names file, one name a line (blank lines ignored): classes, or
 * classes2 for CIFAR-100's coarse names. */
static int class_names(sp_decoder *d, const sp_record *in, int which, const uint8_t *data, sp_err *err)
{
    json_t *names = json_array();
    const char *p = (const char *)data, *end = p + in->payload_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *a = p, *b = e;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == '\r' || b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a && !sp_utf8_valid(a, (size_t)(b - a))) {
            json_decref(names);
            return sp_fail(err, SP_EXIT_DATA, "%s: class names are not valid UTF-8", in->key);
        }
        if (b > a)
            json_array_append_new(names, json_stringn(a, (size_t)(b - a)));
        p = e + 1;
    }
    int want = which == 2 ? 10 : which == 3 ? 100 : 20;
    if ((int)json_array_size(names) != want) {
        int got = (int)json_array_size(names);
        json_decref(names);
        return sp_fail(err, SP_EXIT_DATA, "%s: %d class names, CIFAR-%s has %d", in->key, got,
                       which == 2 ? "10" : "100", want);
    }
    return cifar_names(d, which, names, err);
}

/* Takes names (a reference, checked to have the count which needs: 2
 * CIFAR-10's, 3 CIFAR-100's fine, 4 its coarse) as the classes or classes2. */
static int cifar_names(sp_decoder *d, int which, json_t *names, sp_err *err)
{
    int want = which == 2 ? 10 : which == 3 ? 100 : 20;
    learn(d, which == 4 ? "classes2" : "classes", names);
    if (which != 4) {
        d->nclasses = want;
        d->numbered = 0;
    }
    return name_dataset(d, which == 2 ? "cifar10" : "cifar100", err) || sp_stage_meta(d->out, d->meta, err);
}

/* Loads the class list (and labels files) and announces the classes. */
static int load_labels(sp_decoder *d, sp_err *err)
{
    d->labels_ready = 1;
    d->labels = sp_labels_create();
    if (!d->labels)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (d->opts.labels_from_wds) { /* plain names from --classes; else numbered, or names as seen */
        if (!d->opts.classes)
            return 0;
        if (sp_labels_load_names(d->labels, d->opts.classes, err))
            return -1;
        learn(d, "classes", sp_labels_names(d->labels));
        d->nclasses = (int)json_array_size(json_object_get(d->meta, "classes"));
        d->numbered = 0;
        return sp_stage_meta(d->out, d->meta, err);
    }
    if (d->opts.labels_from_dirs) {
        const json_t *found = json_object_get(d->meta, "folder_classes");
        if (d->opts.classes ? sp_labels_load_names(d->labels, d->opts.classes, err)
                            : sp_labels_set_names(d->labels, json_is_array(found) ? found : NULL, err))
            return -1;
        learn(d, "classes", sp_labels_names(d->labels));
        d->nclasses = (int)json_array_size(json_object_get(d->meta, "classes"));
        d->numbered = 0;
        return sp_stage_meta(d->out, d->meta, err);
    }
    if (sp_labels_load_classes(d->labels, d->opts.classes, err) ||
        (d->opts.synset_ids && sp_labels_load_ids(d->labels, d->opts.synset_ids, err)) ||
        (d->opts.labels && sp_labels_load_val(d->labels, d->opts.labels, err)))
        return -1;
    /* classes are WNIDs: unique, where the words are not (two "crane"s) */
    learn(d, "classes", sp_labels_wnids(d->labels));
    learn(d, "class_descriptions", sp_labels_words(d->labels));
    d->nclasses = (int)json_array_size(json_object_get(d->meta, "classes"));
    d->numbered = 0;
    if (!d->opts.classes && name_dataset(d, "imagenet", err))
        return -1;
    return sp_stage_meta(d->out, d->meta, err);
}

/* The split an image's first key component names: the outer archive or
 * directory, "ILSVRC2012_img_train.tar" or "train/". */
static int image_split(const char *key)
{
    const char *slash = strchr(key, '/');
    size_t n = slash ? (size_t)(slash - key) : strlen(key);
    char first[256];
    snprintf(first, sizeof first, "%.*s", (int)(n < sizeof first ? n : sizeof first - 1), key);
    if (strstr(first, "train"))
        return SP_SPLIT_TRAIN;
    if (strstr(first, "val"))
        return SP_SPLIT_VAL;
    if (strstr(first, "test"))
        return SP_SPLIT_TEST;
    return SP_SPLIT_NONE;
}

static int reject(sp_decoder *d, const char *key, int reason, const char *detail, sp_err *err)
{
    d->stats.rejected[reason]++;
    d->stats.rejected_total++;
    if (d->opts.reject)
        d->opts.reject(d->opts.report_ctx, key, reason, detail);
    if (d->opts.strict)
        return sp_fail(err, SP_EXIT_DATA, "%s: rejected (%s): %s", key, sp_reject_name(reason), detail);
    return 0;
}

/* The decoded image d->img of in (data) as an encoded record: kept as
 * shipped or re-encoded (see sp_decode_opts.encoded). rec carries the key,
 * split and label. */
static int emit_encoded(sp_decoder *d, sp_record *rec, const sp_record *in, const uint8_t *data, sp_err *err)
{
    const sp_resize_opts *rz = d->opts.resize;
    int ow = (int)d->img.w, oh = (int)d->img.h;
    if (rz) /* from the size in the file: a DCT-scaled decode rounds its sides */
        sp_resize_out_size(rz, (int)d->img.src_w, (int)d->img.src_h, &ow, &oh);
    int full = d->img.w == d->img.src_w && d->img.h == d->img.src_h;
    rec->kind = SP_KIND_ENCODED;
    rec->dtype = SP_DTYPE_U8;
    rec->codec = SP_CODEC_JPEG;
    rec->c = 3;
    if (full && ow == (int)d->img.w && oh == (int)d->img.h && sp_jpeg_keepable(data, (size_t)in->payload_len)) {
        rec->w = d->img.w, rec->h = d->img.h;
        if (sp_writer_record(d->out->w, rec, data, (size_t)in->payload_len, err))
            return -1;
        d->stats.kept++;
        d->stats.out++;
        return 0;
    }
    if ((uint32_t)ow > SP_JPEG_MAX_SIDE || (uint32_t)oh > SP_JPEG_MAX_SIDE) { /* this image only: the run goes on */
        char why[160];
        snprintf(why, sizeof why, "%dx%d: a side over JPEG's %u pixels, so it cannot be re-encoded (--encoded)", ow,
                 oh, SP_JPEG_MAX_SIDE);
        return reject(d, in->key, SP_REJECT_TOO_LARGE, why, err);
    }
    const uint8_t *px = d->img.pixels;
    if (ow != (int)d->img.w || oh != (int)d->img.h) {
        if (sp_buf_reserve(&d->resized, (size_t)ow * (size_t)oh * 3) ||
            sp_resize_pixels(&d->rs, rz, d->img.pixels, (int)d->img.w, (int)d->img.h, 3, d->resized.data))
            return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot resize (out of memory)", in->key);
        px = d->resized.data;
    }
    int q = d->opts.jpeg_quality ? d->opts.jpeg_quality : SP_JPEG_QUALITY_DEFAULT;
    if (sp_jpeg_encode(px, (uint32_t)ow, (uint32_t)oh, q, &d->encoded, err))
        return -1;
    rec->w = (uint32_t)ow, rec->h = (uint32_t)oh;
    if (sp_writer_record(d->out->w, rec, d->encoded.data, d->encoded.len, err))
        return -1;
    d->stats.reencoded++;
    d->stats.out++;
    return 0;
}

/* The label and split of an image in a folder tree (--labels-from dirs):
 * a class not in a given list is no label; without a list of any kind,
 * classes are added as they are first seen and announced. */
static int folder_label(sp_decoder *d, const char *key, int *split, char *why, size_t why_len, sp_err *err)
{
    char cls[1024];
    if (sp_labels_folder_of(key, cls, sizeof cls, split, why, why_len))
        return -1;
    int grow = !d->opts.classes && !json_is_array(json_object_get(d->meta, "folder_classes")), added;
    int label = sp_labels_name_index(d->labels, cls, grow, &added, err);
    if (label == -2)
        return -2;
    if (added) {
        learn(d, "classes", sp_labels_names(d->labels));
        /* in the order first seen, which depends on the input's order: sp-shard sorts them at its commit */
        learn(d, "class_order", json_string("seen"));
        d->nclasses = label + 1;
        if (sp_stage_meta(d->out, d->meta, err))
            return -2;
    }
    if (label < 0)
        snprintf(why, why_len, "class directory %.200s is not in the class list", cls);
    return label;
}

static int decode_labelled(sp_decoder *d, const sp_record *in, const uint8_t *data, int split, int label,
                           const char *why, sp_err *err);

/* split, or val for --val-fraction's share of the train records (by a hash
 * of the key: stable across runs and input orders). */
static int val_share(const sp_decoder *d, const char *key, size_t len, int split)
{
    if (d->opts.val_fraction > 0 && split == SP_SPLIT_TRAIN)
        /* the top 53 bits of a seeded hash as a fraction in [0, 1) */
        return (double)(sp_xxh3_seeded(key, len, 0x76616c2d66726163ull) >> 11) * 0x1p-53 < d->opts.val_fraction
                   ? SP_SPLIT_VAL
                   : SP_SPLIT_TRAIN;
    return split;
}

static int decode_image(sp_decoder *d, const sp_record *in, const uint8_t *data, sp_err *err)
{
    if (other_part(d, in))
        return 0; /* not decoded at all */
    if (!d->labels_ready && load_labels(d, err))
        return -1;
    char why[256];
    int split = in->kind == SP_KIND_ENCODED ? in->split : image_split(in->key);
    int label;
    if (in->kind == SP_KIND_ENCODED) { /* an encoded record (sp-decode --encoded's output) is labelled already */
        label = in->label;
        if (label < 0)
            snprintf(why, sizeof why, "the encoded record has no label");
    } else {
        label = d->opts.labels_from_dirs ? folder_label(d, in->key, &split, why, sizeof why, err)
                                         : sp_labels_lookup(d->labels, in->key, why, sizeof why);
        if (label == -2)
            return -1;
        if (split == SP_SPLIT_NONE)
            split = d->opts.default_split;
        split = val_share(d, in->key, in->key_len, split);
    }
    return decode_labelled(d, in, data, split, label, why, err);
}

/* The image data (in->payload_len bytes) of record in, its split and label
 * found (label -1: none, why says why), decoded and written as a pixel or
 * encoded record keyed in->key, or rejected. */
static int decode_labelled(sp_decoder *d, const sp_record *in, const uint8_t *data, int split, int label,
                           const char *why, sp_err *err)
{
    if (label < 0 && !d->opts.unlabeled)
        return reject(d, in->key, SP_REJECT_UNLABELED, why, err);
    sp_err derr = {0};
    int reason = sp_image_decode(data, (size_t)in->payload_len, &d->opts.image, &d->img, &derr);
    if (reason)
        return reject(d, in->key, reason, derr.msg, err);
    sp_record rec;
    if (sp_record_init(&rec, SP_KIND_PIXELS, in->key, err))
        return -1;
    rec.split = (uint8_t)split;
    rec.label = label;
    if (in->kind == SP_KIND_ENCODED)
        rec.label2 = in->label2;
    if (d->opts.encoded)
        return emit_encoded(d, &rec, in, data, err);
    rec.dtype = SP_DTYPE_U8;
    rec.h = d->img.h;
    rec.w = d->img.w;
    rec.c = 3;
    const uint8_t *px = d->img.pixels;
    const sp_resize_opts *rz = d->opts.resize;
    int ow = 0, oh = 0;
    if (rz) /* from the size in the file: a DCT-scaled decode rounds its sides */
        sp_resize_out_size(rz, (int)d->img.src_w, (int)d->img.src_h, &ow, &oh);
    if (rz && ((int)rec.w != ow || (int)rec.h != oh)) {
        size_t n = (size_t)ow * (size_t)oh * 3;
        if (sp_buf_reserve(&d->resized, n) ||
            sp_resize_pixels(&d->rs, rz, d->img.pixels, (int)rec.w, (int)rec.h, 3, d->resized.data))
            return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot resize (out of memory)", in->key);
        rec.w = (uint32_t)ow;
        rec.h = (uint32_t)oh;
        px = d->resized.data;
    }
    if (sp_writer_record(d->out->w, &rec, px, (size_t)rec.h * rec.w * 3, err))
        return -1;
    d->stats.out++;
    return 0;
}

/* 1 if the name ends like an image file's: JPEG, PNG, or a format rejected as unsupported. */
static int image_name(const char *key)
{
    const char *dot = strrchr(sp_basename(key), '.');
    static const char *const ext[] = {".jpeg", ".jpg", ".png", ".JPEG", ".JPG", ".PNG", ".bmp", ".BMP", ".tif",
                                      ".tiff", ".TIF", ".TIFF", ".webp", ".WEBP", ".gif", ".GIF"};
    for (size_t i = 0; dot && i < sizeof ext / sizeof ext[0]; i++)
        if (!strcmp(dot, ext[i]))
            return 1;
    return 0;
}

/* The key of an earlier dataset file with the same bytes as this one, or
 * NULL (this one is remembered): torchvision's and Keras' download folders
 * keep the archive beside what they extracted from it (MNIST/raw holds
 * train-images-idx3-ubyte and its .gz; data/ holds cifar-10-python.tar.gz and
 * cifar-10-batches-py/), and each file is read once. -1 in *fail when out of
 * memory. */
static const char *copy_of(sp_decoder *d, const sp_record *rec, const uint8_t *data, int *fail)
{
    unsigned char sha[32];
    unsigned int n = 0;
    *fail = 0;
    if (!EVP_Digest(data, (size_t)rec->payload_len, sha, &n, EVP_sha256(), NULL) || n != sizeof sha)
        return *fail = -1, NULL;
    for (size_t i = 0; i < d->nseen; i++)
        if (!memcmp(d->seen[i].sha, sha, sizeof sha))
            return d->seen[i].key;
    if (d->nseen == d->capseen / sizeof *d->seen &&
        sp_grow((void **)&d->seen, &d->capseen, (d->nseen ? 2 * d->nseen : 16) * sizeof *d->seen))
        return *fail = -1, NULL;
    seen_file *f = &d->seen[d->nseen++];
    memcpy(f->sha, sha, sizeof sha);
    memcpy(f->key, rec->key, (size_t)rec->key_len + 1);
    return NULL;
}

/* 1 if rec (its bytes read) is a dataset file a reader below takes: IDX,
 * .npy, CIFAR binary or python version. */
static int dataset_file(const sp_record *rec, const uint8_t *data)
{
    sp_cifar_file cf;
    size_t n = (size_t)rec->payload_len;
    return rec->kind == SP_KIND_BLOB &&
           (sp_idx_sniff(data, n) || idx_name(rec->key) || sp_npy_sniff(data, n) || npy_name(rec->key) ||
            sp_cifar_classify(rec->key, &cf) || sp_cifar_py_classify(rec->key, data, n) ||
            sp_cifar_mat_classify(rec->key));
}

/* Skips a dataset file that repeats an earlier one, reported: 1 skipped,
 * 0 not a copy, -1 on error. */
static int skip_copy(sp_decoder *d, const sp_record *rec, const uint8_t *data, sp_err *err)
{
    int fail;
    if (!dataset_file(rec, data))
        return 0;
    const char *first = copy_of(d, rec, data, &fail);
    if (fail)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot hash the file (out of memory)", rec->key);
    if (!first)
        return 0;
    return skipped_copy(d, rec->key, first);
}

/* ---------------- WebDataset tars (--labels-from wds) ---------------- */

/* 1 if the key id was read before (its hash is in the set); else adds it. -1 when out of memory. */
static int wds_seen(sp_decoder *d, const char *id, size_t n)
{
    uint64_t h = sp_xxh3_seeded(id, n, 0x7764732d6b657973ull) | 1; /* never 0, the empty slot */
    if (2 * (d->wds_ndone + 1) > d->wds_capdone) { /* at most half full */
        size_t cap = d->wds_capdone ? 2 * d->wds_capdone : 1024;
        uint64_t *t = calloc(cap, sizeof *t);
        if (!t)
            return -1;
        for (size_t i = 0; i < d->wds_capdone; i++)
            if (d->wds_done[i]) {
                size_t j = (size_t)(d->wds_done[i] >> 1) & (cap - 1);
                while (t[j])
                    j = (j + 1) & (cap - 1);
                t[j] = d->wds_done[i];
            }
        free(d->wds_done);
        d->wds_done = t;
        d->wds_capdone = cap;
    }
    size_t j = (size_t)(h >> 1) & (d->wds_capdone - 1);
    for (; d->wds_done[j]; j = (j + 1) & (d->wds_capdone - 1))
        if (d->wds_done[j] == h)
            return 1;
    d->wds_done[j] = h;
    d->wds_ndone++;
    return 0;
}

/* The first problem of the group g, kept: it is rejected for it when it ends. */
static void wds_problem(wds_group *g, int reason, const char *fmt, const char *arg)
{
    if (g->reason)
        return;
    g->reason = reason;
    snprintf(g->problem, sizeof g->problem, fmt, arg);
}

/* The class index of the group's label member, or -1 with why set; -2 with
 * err set on a failure of the run. */
static int wds_label(sp_decoder *d, wds_group *g, char *why, size_t why_len, sp_err *err)
{
    const char *field = d->opts.wds_label && !strncmp(d->opts.wds_label, "json:", 5) ? d->opts.wds_label + 5 : NULL;
    int label;
    const char *name = NULL;
    json_t *j = NULL, *v = NULL; /* the .json member, and its field */
    if (!field) {
        label = sp_wds_parse_cls((const char *)g->cls.data, g->cls.len, why, why_len);
        if (label < 0)
            return -1;
    } else {
        json_error_t jerr;
        j = json_loadb((const char *)g->json.data, g->json.len, JSON_REJECT_DUPLICATES, &jerr);
        v = json_object_get(j, field);
        if (!j || !json_is_object(j)) {
            snprintf(why, why_len, "the .json member is not a JSON object%s%.120s", j ? "" : ": ", j ? "" : jerr.text);
            json_decref(j);
            return -1;
        }
        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 0x7fffffff) {
            label = (int)json_integer_value(v);
        } else if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= SP_WDS_MAX_NAME &&
                   !strchr(json_string_value(v), '/')) {
            name = json_string_value(v);
            label = -1;
        } else {
            snprintf(why, why_len, "the .json member's \"%.60s\" is %s, not a class index (0 or more) or class name "
                     "(1 to %u bytes, no '/')", field, v ? "another value" : "missing", SP_WDS_MAX_NAME);
            json_decref(j);
            return -1;
        }
    }
    if (name) {
        /* a class name: in --classes, or added as first seen when the classes are not numbered */
        int grow = !d->opts.classes && (d->numbered ? d->nclasses == 0 : !!json_object_get(d->own, "class_order")),
            added = 0;
        if (grow && d->nclasses >= (int)SP_WDS_MAX_CLASSES) {
            snprintf(why, why_len, "class %.100s would be class %u: over the limit (give --classes)", name,
                     SP_WDS_MAX_CLASSES);
            json_decref(j);
            return -1;
        }
        if (grow || d->opts.classes) {
            label = sp_labels_name_index(d->labels, name, grow, &added, err);
        } else { /* the set's own classes (a known dataset's, or numbered ones): by name */
            const json_t *names = json_object_get(d->meta, "classes");
            label = -1;
            for (size_t i = 0; label < 0 && i < json_array_size(names); i++)
                if (json_equal(json_array_get(names, i), v))
                    label = (int)i;
        }
        if (label == -2) {
            json_decref(j);
            return -2;
        }
        if (label < 0)
            snprintf(why, why_len, "class %.100s is not in the class list", name);
        if (label >= 0 && added) {
            learn(d, "classes", sp_labels_names(d->labels));
            learn(d, "class_order", json_string("seen")); /* sp-shard sorts them at its commit */
            d->nclasses = label + 1;
            d->numbered = 0;
            if (sp_stage_meta(d->out, d->meta, err)) {
                json_decref(j);
                return -2;
            }
        }
        json_decref(j);
        return label;
    }
    json_decref(j);
    if (d->numbered && !json_object_get(d->own, "class_order")) {
        if ((unsigned)label >= SP_WDS_MAX_CLASSES) {
            snprintf(why, why_len, "label %d: over the limit of %u numbered classes (give --classes)", label,
                     SP_WDS_MAX_CLASSES);
            return -1;
        }
        return ensure_classes(d, label, g->id, err) ? -2 : label;
    }
    if (label >= d->nclasses) {
        snprintf(why, why_len, "label %d out of range: %d classes%s", label, d->nclasses,
                 d->opts.classes ? "" : " (named by the json field: class names came first)");
        return -1;
    }
    return label;
}

/* The split the group's .json names ("split": "train", "val" or "test", as
 * sp-cat --tar writes it), or SP_SPLIT_NONE. */
static int wds_json_split(const wds_group *g)
{
    json_t *j = json_loadb((const char *)g->json.data, g->json.len, 0, NULL);
    const char *name = json_string_value(json_object_get(j, "split"));
    int split = name ? sp_split_from_name(name) : -1;
    json_decref(j);
    return split > SP_SPLIT_NONE ? split : SP_SPLIT_NONE;
}

/* Ends the open group: one record out, or one reject naming key and tar. */
static int wds_flush(sp_decoder *d, sp_err *err)
{
    wds_group *g = d->wds;
    if (!g || !g->open)
        return 0;
    g->open = 0;
    d->stats.grouped += g->members - 1;
    char where[600];
    snprintf(where, sizeof where, "WebDataset key %.250s of %.*s", g->wkey,
             g->tar_len ? (int)(g->tar_len > 250 ? 250 : g->tar_len) : 9, g->tar_len ? g->id : "the input");
    char why[1000];
    if (g->reason) {
        snprintf(why, sizeof why, "%s: %s", where, g->problem);
        return reject(d, g->id, g->reason, why, err);
    }
    const char *field = d->opts.wds_label && !strncmp(d->opts.wds_label, "json:", 5) ? d->opts.wds_label + 5 : NULL;
    if (!g->image_ext[0]) {
        snprintf(why, sizeof why, "%s: no image (.jpg, .jpeg, .png) among its %llu member%s (%s)", where,
                 (unsigned long long)g->members, g->members == 1 ? "" : "s", g->exts);
        return reject(d, g->id, SP_REJECT_NOT_IMAGE, why, err);
    }
    sp_record in;
    char key[SP_KEY_MAX + 1];
    if (sp_wds_key_unescape(g->wkey, strlen(g->wkey), key, sizeof key) < 0 || !key[0] ||
        sp_record_init(&in, SP_KIND_BLOB, key, NULL)) {
        snprintf(why, sizeof why, "%s: the key (its %%XX escapes undone) is not a record key (UTF-8, 1 to %d bytes)",
                 where, SP_KEY_MAX);
        return reject(d, g->id, SP_REJECT_CORRUPT, why, err);
    }
    in.payload_len = g->image.len;
    if (other_part(d, &in))
        return 0;
    if (!d->labels_ready && load_labels(d, err))
        return -1;
    char lwhy[300] = "";
    int label = -1;
    if (!(field ? g->has_json : g->has_cls))
        snprintf(lwhy, sizeof lwhy, field ? "no .json member (--wds-label json:%s)" : "no .cls member%s",
                 field ? field : "");
    else if ((label = wds_label(d, g, lwhy, sizeof lwhy, err)) == -2)
        return -1;
    if (label < 0)
        snprintf(why, sizeof why, "%s: %s", where, lwhy);
    int split = g->has_json ? wds_json_split(g) : SP_SPLIT_NONE;
    if (split == SP_SPLIT_NONE)
        split = image_split(g->id);
    split = val_share(d, in.key, in.key_len, split == SP_SPLIT_NONE ? d->opts.default_split : split);
    if (label < 0 && !d->opts.unlabeled)
        return reject(d, g->id, SP_REJECT_UNLABELED, why, err);
    return decode_labelled(d, &in, g->image.data, split, label, why, err);
}

/* 1 if the extension (the whole of it, any case) is one of names. */
static int ext_is(const char *ext, const char *const *names)
{
    for (; *names; names++)
        if (!strcasecmp(ext, *names))
            return 1;
    return 0;
}

/* One blob record of a WebDataset tar: joined to its key's group (the group
 * before it ended when the key changes). Holds the image and label bytes of
 * one group; other members are read and dropped. */
static int wds_member(sp_decoder *d, sp_reader *r, sp_record *rec, sp_err *err)
{
    if (!d->wds && !(d->wds = calloc(1, sizeof *d->wds)))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    wds_group *g = d->wds;
    sp_wds_name nm;
    sp_wds_name_of(rec->key, &nm);
    size_t idlen = (size_t)(nm.key + nm.key_len - rec->key);
    if (!g->open || strlen(g->id) != idlen || memcmp(g->id, rec->key, idlen)) {
        if (wds_flush(d, err))
            return -1;
        int seen = nm.key_len ? wds_seen(d, rec->key, idlen) : 0;
        if (seen < 0)
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        if (seen)
            return sp_fail(err, SP_EXIT_DATA,
                           "%s: WebDataset key %.*s of %.*s comes again after other keys: a key's members must be "
                           "adjacent in the tar (tar them sorted by name)",
                           rec->key, (int)nm.key_len, nm.key, nm.tar_len ? (int)nm.tar_len : 9,
                           nm.tar_len ? nm.tar : "the input");
        memcpy(g->id, rec->key, idlen);
        g->id[idlen] = 0;
        g->tar_len = nm.tar_len;
        g->wkey = g->id + (nm.key - rec->key);
        g->open = 1;
        g->members = 0;
        g->image_ext[0] = 0;
        g->exts[0] = 0;
        g->has_cls = g->has_json = 0;
        g->reason = 0;
        g->image.len = g->cls.len = g->json.len = 0;
        if (!nm.key_len)
            wds_problem(g, SP_REJECT_NOT_IMAGE, "a member with an empty key: %.200s", sp_basename(rec->key));
    }
    g->members++;
    size_t el = strlen(g->exts);
    if (el + 4 < sizeof g->exts)
        snprintf(g->exts + el, sizeof g->exts - el, "%s.%s", el ? ", " : "", nm.ext);
    static const char *const images[] = {"jpg", "jpeg", "png", NULL}, *const ppm[] = {"ppm", "pgm", "pnm", NULL};
    static const char *const cls[] = {"cls", NULL}, *const jsn[] = {"json", NULL};
    int is_image = ext_is(nm.ext, images), is_cls = ext_is(nm.ext, cls), is_json = ext_is(nm.ext, jsn);
    if (ext_is(nm.ext, ppm)) {
        wds_problem(g, SP_REJECT_UNSUPPORTED, "its image is a .%s: netpbm images are not read here (convert to PNG)",
                    nm.ext);
    } else if ((is_image && g->image_ext[0]) || (is_cls && g->has_cls) || (is_json && g->has_json)) {
        char what[80];
        snprintf(what, sizeof what, "two %s members (.%.16s and .%.16s)", is_image ? "image" : is_cls ? "cls" : "json",
                 is_image ? g->image_ext : is_cls ? "cls" : "json", nm.ext);
        wds_problem(g, SP_REJECT_CORRUPT, "%s", what);
    } else if (is_image || is_cls || is_json) {
        uint64_t max = is_image ? UINT64_MAX : is_json ? SP_WDS_MAX_JSON : SP_WDS_MAX_CLS;
        if (rec->payload_len > max) {
            char what[120];
            snprintf(what, sizeof what, "its .%.16s member has %llu bytes (at most %llu)", nm.ext,
                     (unsigned long long)rec->payload_len, (unsigned long long)max);
            wds_problem(g, SP_REJECT_TOO_LARGE, "%s", what);
            return sp_reader_drain(r, rec, err);
        }
        const uint8_t *data;
        if (sp_reader_payload(r, rec, &data, err))
            return -1;
        if (sp_buf_append(is_image ? &g->image : is_cls ? &g->cls : &g->json, data, (size_t)rec->payload_len))
            return sp_fail(err, SP_EXIT_SYSTEM, "%s: out of memory", rec->key);
        if (is_image)
            snprintf(g->image_ext, sizeof g->image_ext, "%s", nm.ext);
        else
            *(is_cls ? &g->has_cls : &g->has_json) = 1;
        return 0;
    }
    return sp_reader_drain(r, rec, err);
}

int sp_decoder_record(sp_decoder *d, sp_reader *r, sp_record *rec, sp_err *err)
{
    d->stats.in++;
    if (d->opts.labels_from_wds && rec->kind == SP_KIND_BLOB)
        return wds_member(d, r, rec, err);
    if (wds_flush(d, err))
        return -1;
    if (rec->kind == SP_KIND_PIXELS) {
        const uint8_t *data;
        if (sp_reader_payload(r, rec, &data, err) ||
            sp_writer_record(d->out->w, rec, data, (size_t)rec->payload_len, err))
            return -1;
        d->stats.out++;
        return 0;
    }
    if (rec->kind == SP_KIND_BLOB && idx_name(rec->key)) {
        int copy = skip_streamed_copy(d, r, rec, err);
        return copy ? (copy < 0 ? -1 : 0) : decode_idx_stream(d, r, rec, err);
    }
    sp_cifar_file cf0; /* a CIFAR batch by name: its size is checked before it is read */
    if (rec->kind == SP_KIND_BLOB && sp_cifar_classify(rec->key, &cf0) == 1 &&
        sp_cifar_size_ok(&cf0, rec->payload_len, rec->key, err))
        return -1;
    if (rec->kind == SP_KIND_BLOB && sp_cifar_py_classify(rec->key, NULL, 0) == SP_CIFAR_PY_BATCH &&
        sp_cifar_py_size_ok(rec->payload_len, rec->key, err))
        return -1;
    const uint8_t *data;
    if (sp_reader_payload(r, rec, &data, err))
        return -1;
    int copy = skip_copy(d, rec, data, err);
    if (copy)
        return copy < 0 ? -1 : 0;
    int cifar_py = rec->kind == SP_KIND_BLOB ? sp_cifar_py_classify(rec->key, data, (size_t)rec->payload_len) : 0;
    int cifar_mat = rec->kind == SP_KIND_BLOB ? sp_cifar_mat_classify(rec->key) : 0;
    if (cifar_mat)
        return decode_cifar_mat(d, rec, cifar_mat, data, err);
    if (cifar_py) /* CIFAR's python version: by name, its content checked by the reader */
        return cifar_py == SP_CIFAR_PY_BATCH ? decode_cifar_py(d, rec, data, err) : cifar_py_meta(d, rec, data, err);
    /* IDX by content (by name: read as a stream above, where a file named like
     * one (..-idx3-ubyte) that is not is an error rather than a silent skip) */
    if (rec->kind == SP_KIND_BLOB && sp_idx_sniff(data, (size_t)rec->payload_len))
        return decode_idx(d, r, rec, data, err);
    if (rec->kind == SP_KIND_BLOB && (sp_npy_sniff(data, (size_t)rec->payload_len) || npy_name(rec->key)))
        return decode_npy(d, r, rec, data, err);
    sp_cifar_file cf;
    int cifar = rec->kind == SP_KIND_BLOB ? sp_cifar_classify(rec->key, &cf) : 0;
    if (cifar == 1)
        return decode_cifar(d, rec, &cf, data, err);
    if (cifar > 1)
        return class_names(d, rec, cifar, data, err);
    /* images by content; a file named like one that is not is rejected */
    if ((rec->kind == SP_KIND_BLOB || rec->kind == SP_KIND_ENCODED) &&
        (sp_image_sniff(data, (size_t)rec->payload_len) || image_name(rec->key) ||
         sp_image_other_format(data, (size_t)rec->payload_len)))
        return decode_image(d, rec, data, err);
    d->stats.skipped++;
    if (d->opts.report)
        d->opts.report(d->opts.report_ctx, rec->key, "not a recognised dataset file or image");
    return 0;
}

int sp_decoder_finish(sp_decoder *d, sp_err *err)
{
    if (wds_flush(d, err))
        return -1;
    if (d->pending)
        return sp_fail(err, SP_EXIT_DATA, "%s: IDX %s file has no matching %s file in the input",
                       d->pending->key, d->pending->is_labels ? "labels" : "images",
                       d->pending->is_labels ? "images" : "labels");
    return 0;
}
