/* libshardpipe-reader (include/shardpipe/reader.h) over the shard reader. */
#define _POSIX_C_SOURCE 200809L
#include "shardpipe/reader.h"

#include <hdf5.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/recstream.h"
#include "pipeline/views.h"
#include "shards/manifest.h"
#include "shards/order.h"
#include "shards/remote.h"
#include "shards/shard.h"

#define SPR_API __attribute__((visibility("default")))

/* HDF5 calls go through h5_enter/h5_leave: a mutex where the HDF5 library
 * is not built thread-safe, nothing where it is (Debian's is: its own global
 * lock then serializes the HDF5 calls, while the zstd decompression and the
 * checksums of sp_shard_read, outside HDF5, run on every filler thread). */
static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;
static int h5_threadsafe; /* set by the first spr_open, before any iterator thread */

/* The fork gate: every HDF5 call of the library's threads is counted in
 * (h5_enter) and out (h5_leave); pthread_atfork's prepare handler closes the
 * gate and waits until no thread is inside HDF5, so a child never inherits
 * HDF5's global lock (or h5_lock) held by a thread it does not have. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static unsigned gate_inside;
static int gate_forking;
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;

static void gate_prepare(void)
{
    pthread_mutex_lock(&gate_mu); /* held across fork() */
    gate_forking = 1;
    while (gate_inside)
        pthread_cond_wait(&gate_cv, &gate_mu);
}

static void gate_parent(void)
{
    gate_forking = 0;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static void gate_child(void)
{ /* one thread, the forking one, nobody inside HDF5 */
    pthread_mutex_init(&gate_mu, NULL);
    pthread_cond_init(&gate_cv, NULL);
    gate_forking = 0, gate_inside = 0;
}

static void gate_install(void) { pthread_atfork(gate_prepare, gate_parent, gate_child); }

/* Through the gate (waits while a fork is under way), and back out. */
static void gate_in(void)
{
    pthread_mutex_lock(&gate_mu);
    while (gate_forking)
        pthread_cond_wait(&gate_cv, &gate_mu);
    gate_inside++;
    pthread_mutex_unlock(&gate_mu);
}

static void gate_out(void)
{
    pthread_mutex_lock(&gate_mu);
    if (--gate_inside == 0 && gate_forking)
        pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static void h5_enter(void)
{
    gate_in();
    if (!h5_threadsafe)
        pthread_mutex_lock(&h5_lock);
}

static void h5_leave(void)
{
    if (!h5_threadsafe)
        pthread_mutex_unlock(&h5_lock);
    gate_out();
}

#define SPARE_MAX 8

typedef struct spr_shard {
    char *path; /* DIR/FILE (owned) */
    uint64_t count, first;
    const json_t *entry; /* its manifest entry, borrowed from the set's manifest */
} spr_shard;

struct spr_set {
    spr_shard *shards;
    size_t nshards;
    uint64_t count;
    uint32_t h, w, c;
    int dtype;
    int kind;            /* SPR_PIXELS, or SPR_ENCODED: h, w the largest image of the first shard */
    size_t record_bytes; /* pixel sets: a stored record; encoded sets: 0 (an iterator's view decides) */
    json_t *classes;
    json_t *manifest; /* owned: the shards' entries, each checked as its shard first opens */
    double mean[4], std[4];
    int nnorm, applied;
    sp_shard *open; /* the shard random access last used */
    size_t open_index;
    uint64_t max_pixels; /* the largest source image a view decodes, as the set records it (0: none recorded) */
    pthread_mutex_t spare_mu; /* window buffers kept between iterators, and refs */
    uint8_t *spare[SPARE_MAX];
    size_t spare_bytes[SPARE_MAX];
    int refs;     /* the caller's (until spr_close) and one an iterator */
    int errcode;  /* SPR_ERR_* of error */
    char error[1024];
};

/* err's message as the set's error; data_code is what SP_EXIT_DATA means
 * where it happened (SPR_ERR_DATA, or SPR_ERR_CORRUPT while reading records). */
static void set_error(spr_set *s, const sp_err *err, int data_code)
{
    snprintf(s->error, sizeof s->error, "%s", err->msg);
    s->errcode = err->code == SP_EXIT_DATA ? data_code : err->code == SP_EXIT_USAGE ? SPR_ERR_USAGE : SPR_ERR_SYSTEM;
}

/* A usage error (an argument out of range) on s; returns -1. */
__attribute__((format(printf, 2, 3))) static int usage_error(spr_set *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
    s->errcode = SPR_ERR_USAGE;
    return -1;
}

static void set_free(spr_set *s);

/* Drops one reference; the last frees the set. */
static void set_unref(spr_set *s)
{
    pthread_mutex_lock(&s->spare_mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->spare_mu);
    if (!left)
        set_free(s);
}

SPR_API spr_set *spr_open(const char *dir, const char *split, char *errbuf, size_t err_len)
{
    return spr_open_ex(dir, split, errbuf, err_len, NULL);
}

SPR_API spr_set *spr_open_cached(const char *dir, const char *split, const char *cache, uint64_t cache_limit,
                                 char *errbuf, size_t err_len, int *code)
{
    sp_err err = {0};
    char local[4400];
    if (sp_remote_is_url(dir) && sp_remote_manifest_with(dir, cache, cache_limit, local, sizeof local, &err)) {
        if (errbuf && err_len)
            snprintf(errbuf, err_len, "%s", err.msg);
        if (code)
            *code = err.code == SP_EXIT_USAGE ? SPR_ERR_USAGE : err.code == SP_EXIT_DATA ? SPR_ERR_DATA : SPR_ERR_SYSTEM;
        return NULL;
    }
    return spr_open_ex(dir, split, errbuf, err_len, code);
}

SPR_API spr_set *spr_open_ex(const char *dir, const char *split, char *errbuf, size_t err_len, int *code)
{
    sp_err err = {0};
    spr_set *s = calloc(1, sizeof *s);
    json_t *m = NULL;
    if (!s) {
        sp_fail(&err, SP_EXIT_SYSTEM, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&s->spare_mu, NULL);
    s->refs = 1;
    pthread_once(&gate_once, gate_install);
    gate_in(); /* h5_lock whatever the HDF5 build: h5_threadsafe is not known yet */
    pthread_mutex_lock(&h5_lock);
    int init = sp_h5_init(&err);
    if (!init) {
        hbool_t safe = 0;
        if (H5is_library_threadsafe(&safe) >= 0 && safe)
            h5_threadsafe = 1;
        /* no shard opened here: each is held to its entry as it first opens */
        m = sp_manifest_load_lazy(dir, &err);
    }
    pthread_mutex_unlock(&h5_lock);
    gate_out();
    if (init || !m)
        goto fail;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(m, "shards"), i, e) {
        if (strcmp(json_string_value(json_object_get(e, "split")), split))
            continue;
        spr_shard *n = realloc(s->shards, (s->nshards + 1) * sizeof *n);
        if (!n) {
            sp_fail(&err, SP_EXIT_SYSTEM, "out of memory");
            goto fail;
        }
        s->shards = n;
        spr_shard *sh = &s->shards[s->nshards++];
        const char *file = json_string_value(json_object_get(e, "file"));
        size_t len = strlen(dir) + strlen(file) + 2;
        if (!(sh->path = malloc(len))) {
            sp_fail(&err, SP_EXIT_SYSTEM, "out of memory");
            goto fail;
        }
        snprintf(sh->path, len, "%s/%s", dir, file);
        sh->count = (uint64_t)json_integer_value(json_object_get(e, "records"));
        sh->entry = e;
        sh->first = s->count;
        s->count += sh->count;
    }
    if (!s->nshards) {
        sp_fail(&err, SP_EXIT_DATA, "%s: no shards of split %s", dir, split);
        goto fail;
    }
    s->classes = json_incref(json_object_get(m, "classes"));
    /* shape, dtype and normalization from the first shard; the others are checked as they open */
    h5_enter();
    sp_shard *first = sp_shard_open_lane(s->shards[0].path, &err); /* its metadata: no index loaded */
    if (first && sp_manifest_check_shard(s->shards[0].path, m, s->shards[0].entry, first, &err)) {
        sp_shard_close(first);
        first = NULL;
    }
    if (first) {
        sp_shard_shape(first, &s->h, &s->w, &s->c, &s->dtype);
        s->kind = sp_shard_kind(first) == SP_KIND_ENCODED ? SPR_ENCODED : SPR_PIXELS;
        json_t *norm = json_object_get(sp_shard_meta(first), "normalize");
        json_t *mean = json_object_get(norm, "mean"), *std = json_object_get(norm, "std");
        if (json_array_size(mean) && json_array_size(mean) == json_array_size(std) && json_array_size(mean) <= 4) {
            s->nnorm = (int)json_array_size(mean);
            for (int k = 0; k < s->nnorm; k++) {
                s->mean[k] = json_number_value(json_array_get(mean, (size_t)k));
                s->std[k] = json_number_value(json_array_get(std, (size_t)k));
            }
            s->applied = json_is_true(json_object_get(norm, "applied"));
        }
        json_t *limit = json_object_get(sp_shard_meta(first), "max_pixels");
        if (json_is_integer(limit) && json_integer_value(limit) > 0)
            s->max_pixels = (uint64_t)json_integer_value(limit);
        sp_shard_close(first);
    }
    h5_leave();
    if (!first)
        goto fail;
    if (s->kind == SPR_PIXELS)
        s->record_bytes = (size_t)s->h * s->w * s->c * (size_t)sp_dtype_size(s->dtype);
    s->manifest = m;
    if (code)
        *code = SPR_ERR_NONE;
    return s;
fail:
    if (errbuf && err_len)
        snprintf(errbuf, err_len, "%s", err.msg);
    if (code)
        *code = err.code == SP_EXIT_DATA ? SPR_ERR_DATA : err.code == SP_EXIT_USAGE ? SPR_ERR_USAGE : SPR_ERR_SYSTEM;
    json_decref(m);
    spr_close(s);
    return NULL;
}

SPR_API void spr_close(spr_set *s)
{
    if (s)
        set_unref(s);
}

static void set_free(spr_set *s)
{
    h5_enter();
    sp_shard_close(s->open);
    h5_leave();
    for (int i = 0; i < SPARE_MAX; i++)
        free(s->spare[i]);
    pthread_mutex_destroy(&s->spare_mu);
    json_decref(s->classes);
    for (size_t i = 0; i < s->nshards; i++)
        free(s->shards[i].path);
    json_decref(s->manifest);
    free(s->shards);
    free(s);
}

SPR_API const char *spr_error(const spr_set *s) { return s->error; }
SPR_API int spr_errcode(const spr_set *s) { return s->errcode; }
SPR_API uint64_t spr_count(const spr_set *s) { return s->count; }
SPR_API int spr_dtype(const spr_set *s) { return s->dtype; }
SPR_API size_t spr_record_bytes(const spr_set *s) { return s->record_bytes; }
SPR_API int spr_kind(const spr_set *s) { return s->kind; }
SPR_API int spr_num_classes(const spr_set *s) { return (int)json_array_size(s->classes); }

SPR_API void spr_shape(const spr_set *s, uint32_t *h, uint32_t *w, uint32_t *c)
{
    *h = s->h, *w = s->w, *c = s->c;
}

SPR_API const char *spr_class_name(const spr_set *s, int i)
{
    return i >= 0 ? json_string_value(json_array_get(s->classes, (size_t)i)) : NULL;
}

SPR_API int spr_normalization(const spr_set *s, double *mean, double *std, int *applied)
{
    for (int k = 0; k < s->nnorm; k++)
        mean[k] = s->mean[k], std[k] = s->std[k];
    if (applied)
        *applied = s->applied;
    return s->nnorm;
}

/* Opens shard i (checked against the set); the lock must be held. */
static sp_shard *open_shard(spr_set *s, size_t i, sp_err *err)
{
    sp_shard *sh = sp_shard_open_lane(s->shards[i].path, err);
    if (!sh)
        return NULL;
    if (sp_manifest_check_shard(s->shards[i].path, s->manifest, s->shards[i].entry, sh, err)) {
        sp_shard_close(sh);
        return NULL;
    }
    uint32_t h, w, c;
    int dtype;
    sp_shard_shape(sh, &h, &w, &c, &dtype);
    int kind = sp_shard_kind(sh) == SP_KIND_ENCODED ? SPR_ENCODED : SPR_PIXELS;
    if (kind != s->kind) {
        sp_fail(err, SP_EXIT_DATA, "%s: %s records, the first shard of the set holds %s ones", s->shards[i].path,
                kind == SPR_ENCODED ? "encoded" : "pixel", s->kind == SPR_ENCODED ? "encoded" : "pixel");
        sp_shard_close(sh);
        return NULL;
    }
    if (kind == SPR_ENCODED) /* each encoded shard's shape is its own largest image's */
        h = s->h, w = s->w;
    if (sp_shard_count(sh) != s->shards[i].count || h != s->h || w != s->w || c != s->c || dtype != s->dtype) {
        sp_fail(err, SP_EXIT_DATA, "%s: %llu records of %ux%ux%u, the manifest and the first shard say %llu of %ux%ux%u",
                s->shards[i].path, (unsigned long long)sp_shard_count(sh), h, w, c,
                (unsigned long long)s->shards[i].count, s->h, s->w, s->c);
        sp_shard_close(sh);
        return NULL;
    }
    return sh;
}

static size_t shard_of(const spr_set *s, uint64_t index)
{
    size_t lo = 0, hi = s->nshards;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (s->shards[mid].first <= index)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

SPR_API int spr_read(spr_set *s, uint64_t index, void *pixels, int32_t *label)
{
    sp_err err = {0};
    if (index >= s->count)
        return usage_error(s, "record %llu out of range (%llu records)", (unsigned long long)index,
                           (unsigned long long)s->count);
    if (s->kind == SPR_ENCODED)
        return usage_error(s,
                           "record %llu: the set holds encoded images: read them through an iterator with a view "
                           "(spr_iter_options.view)", (unsigned long long)index);
    if (!pixels)
        return usage_error(s, "spr_read: pixels is NULL");
    int32_t unwanted;
    size_t i = shard_of(s, index);
    int rc = 0;
    h5_enter();
    if (!s->open || s->open_index != i) {
        sp_shard_close(s->open);
        s->open = open_shard(s, i, &err);
        s->open_index = i;
    }
    if (!s->open || sp_shard_read(s->open, index - s->shards[i].first, 1, pixels, label ? label : &unwanted, NULL,
                                  NULL, &err))
        rc = -1;
    h5_leave();
    if (rc)
        set_error(s, &err, SPR_ERR_CORRUPT);
    return rc;
}

/* ---------------- iteration ---------------- */

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_FAILED };

/* Window j of every lane of the iterator (shards/order.h): lane l's
 * records at [l * window, l * window + n[l]) of the arrays, filled by a
 * filler, then handed out by the caller in the order of perm (lane l's
 * values index its own records, 0 .. n[l]). */
typedef struct slot {
    uint8_t *px; /* lanes x window x the iterator's record bytes */
    int32_t *labels, *labels2;
    uint64_t *idx;
    uint32_t *perm;
    uint32_t *n; /* lanes values */
    int state; /* SLOT_*; guarded by the iterator's mutex */
    sp_err err;
} slot;

/* A lane's open shard, shared by the fillers: its partly read chunk is kept
 * for the lane's next window, whichever filler reads it. Fillers take turns
 * on a lane in the order of the windows (next), so the lane reads its
 * partition forward and decompresses each chunk once, and the memory of the
 * kept chunks is one per lane, not one per lane and thread. */
typedef struct lane_handle {
    sp_shard *sh; /* NULL: none open */
    size_t shard;
    uint64_t next; /* the window whose turn it is; guarded by the iterator's mutex */
} lane_handle;

/* A thread's (or the caller's) scratch: the compressed chunk and zstd
 * decompressor lent to every lane's shard it reads (sp_shard_set_scratch),
 * and for encoded sets its read buffers and decoder scratch. */
typedef struct filler {
    struct spr_iter *it;
    sp_shard_scratch *chunk;
    uint8_t *bytes; /* encoded records as read */
    size_t bytes_cap;
    uint64_t *offsets, *sums; /* window + 1 and window entries */
    sp_view_scratch scratch;
} filler;

struct spr_iter {
    spr_set *s;
    size_t rb; /* bytes of a record as handed out: the stored record, or the view's size x size x 3 */
    int view;  /* SPR_VIEW_* */
    uint32_t size;
    uint32_t batch_size, window;
    int flags;
    uint64_t seed;
    sp_order ord;      /* this rank's lanes */
    lane_handle *lanes; /* ord.lanes of them */
    uint64_t nwindows; /* windows of the longest lane */
    uint64_t bytes_read; /* images bytes its fillers read (atomic) */
    slot *slots; /* window j is filled into slots[j % nslots] */
    uint32_t nslots;
    filler *fillers; /* nthreads of them, or one for the caller */
    pthread_t *threads;
    uint32_t nthreads, started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t next_fill; /* the next window a thread takes */
    uint64_t released;  /* windows before this one are handed out: their slots are free */
    uint64_t cur;       /* the window the caller hands out from */
    uint64_t step;      /* the next record handed out: step, lane, position in the lane's piece */
    uint32_t lane, pos;
    int have_cur, stop, failed, error_sticky;
    pid_t pid; /* the process that made it: its threads exist only there */
    sp_view_range range; /* the train view's crop ranges */
    uint64_t max_pixels;
    sp_err err;
};

/* Records [first, first + n) of open encoded shard `shard` (sh), decoded
 * through the iterator's view into the slot at `at` (n x it->rb), labels
 * into the slot's arrays at `at`. The bytes are read (and their checksums)
 * under the HDF5 lock, checked and decoded outside it. 0 or -1 with err
 * naming the shard and record. */
static int decode_records(spr_iter *it, filler *f, sp_shard *sh, size_t shard, uint64_t first, uint64_t n, slot *sl,
                          uint64_t at, sp_err *err)
{
    const char *path = it->s->shards[shard].path;
    uint64_t need = sp_shard_encoded_size(sh, first, n);
    if (need > f->bytes_cap) {
        uint8_t *grown = realloc(f->bytes, (size_t)need);
        if (!grown)
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory for %llu bytes of encoded images",
                           (unsigned long long)need);
        f->bytes = grown, f->bytes_cap = (size_t)need;
    }
    h5_enter();
    sp_shard_set_verify(sh, 0); /* checked below, outside the lock */
    int rc = sp_shard_read_encoded(sh, first, n, f->bytes, f->offsets, NULL, NULL, sl->labels + at,
                                   sl->labels2 + at, f->sums, err);
    h5_leave();
    if (rc || sp_shard_check_encoded(sh, first, n, f->offsets, f->bytes, f->sums, err))
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *b = f->bytes + f->offsets[i];
        size_t len = (size_t)(f->offsets[i + 1] - f->offsets[i]);
        uint8_t *out = sl->px + (at + i) * it->rb;
        uint64_t record = it->s->shards[shard].first + first + i; /* its index in the set */
        sp_err e = {0};
        int bad = it->view == SPR_VIEW_TRAIN ? sp_view_train(b, len, it->size, it->seed, 0, record, out, &f->scratch, &e)
                                             : sp_view_eval(b, len, it->size, out, &f->scratch, &e);
        if (bad)
            return sp_fail(err, e.code, "%s: record %llu: %s", path, (unsigned long long)(first + i), e.msg);
    }
    return 0;
}

/* fill_lane's reading of records [a, b) of lane l's partition (its window
 * j) through the lane's shard handle, during the lane's turn. */
static int fill_lane_turn(spr_iter *it, filler *f, slot *sl, uint64_t j, uint32_t l, uint64_t a, uint64_t b)
{
    spr_set *s = it->s;
    const sp_order *o = &it->ord;
    const sp_order_lane *ln = &o->lane[l];
    lane_handle *lh = &it->lanes[l];
    size_t rb = it->rb, base = (size_t)l * o->window;
    size_t k = ln->seg0, end = ln->seg0 + ln->nsegs;
    while (k + 1 < end && o->segs[k + 1].at <= a)
        k++;
    for (uint64_t pos = a; pos < b; k++) {
        const sp_order_seg *g = &o->segs[k];
        uint64_t off = pos - g->at, cnt = g->count - off < b - pos ? g->count - off : b - pos;
        size_t at = base + (size_t)(pos - a);
        int rc;
        h5_enter();
        if (!lh->sh || lh->shard != g->shard || !sp_shard_covers(lh->sh, g->start + off, cnt)) {
            /* the shard opened again for this stretch takes over the old
             * handle's buffers and kept chunks (sp_shard_take_buffers). The
             * old file is let go of first: a lane holds one open shard at a
             * time, as a remote set's cache counts on (its room, the pins) */
            sp_shard *old = lh->sh;
            if (old && lh->shard == g->shard) {
                sp_shard_release_file(old);
            } else {
                sp_shard_close(old);
                old = NULL;
            }
            if ((lh->sh = open_shard(s, g->shard, &sl->err))) {
                /* read by pread from here on: a lane's handle holds its chunk
                 * table, not HDF5's ~1 MB a file (sp_shard_detach; a layout it
                 * cannot take stays with HDF5) */
                sp_shard_detach(lh->sh, g->start + off, g->count - off, cnt);
                sp_shard_take_buffers(lh->sh, old);
            }
            lh->shard = g->shard;
            sp_shard_close(old);
        }
        h5_leave();
        sp_shard *sh = lh->sh;
        if (!sh)
            return -1;
        sp_shard_set_scratch(sh, f->chunk);
        uint64_t before = sp_shard_bytes_read(sh);
        if (s->kind == SPR_ENCODED) {
            rc = decode_records(it, f, sh, g->shard, g->start + off, cnt, sl, at, &sl->err);
        } else {
            h5_enter();
            rc = sp_shard_read(sh, g->start + off, cnt, sl->px + at * rb, sl->labels + at, sl->labels2 + at, NULL,
                               &sl->err);
            h5_leave();
        }
        __atomic_add_fetch(&it->bytes_read, sp_shard_bytes_read(sh) - before, __ATOMIC_RELAXED);
        if (rc)
            return -1;
        for (uint64_t i = 0; i < cnt; i++)
            sl->idx[at + i] = s->shards[g->shard].first + g->start + off + i;
        pos += cnt;
    }
    sl->n[l] = (uint32_t)(b - a);
    sp_order_perm(it->seed, it->flags & SPR_SHUFFLE, ln->partition, j, sl->perm + base, sl->n[l]);
    return 0;
}

/* Reads window j of lane l (its partition's records [j * window, ...)) into
 * sl through the lane's handle, in its turn (with threads, after window
 * j - 1 of the lane); 0 or -1 with sl->err. */
static int fill_lane(spr_iter *it, filler *f, slot *sl, uint64_t j, uint32_t l)
{
    const sp_order *o = &it->ord;
    const sp_order_lane *ln = &o->lane[l];
    uint64_t a = j * o->window, b = a + o->window < ln->records ? a + o->window : ln->records;
    lane_handle *lh = &it->lanes[l];
    sl->n[l] = 0;
    if (a >= b)
        return 0;
    if (it->nthreads) { /* the lane's turn for window j (the caller alone fills in order) */
        pthread_mutex_lock(&it->mu);
        while (lh->next != j && !it->stop && !it->failed)
            pthread_cond_wait(&it->cv, &it->mu);
        int go = lh->next == j;
        pthread_mutex_unlock(&it->mu);
        if (!go)
            return sp_fail(&sl->err, SP_EXIT_SYSTEM, "reading stopped before window %llu",
                           (unsigned long long)j);
    }
    int rc = fill_lane_turn(it, f, sl, j, l, a, b);
    if (it->nthreads) {
        pthread_mutex_lock(&it->mu);
        lh->next = j + 1;
        pthread_cond_broadcast(&it->cv);
        pthread_mutex_unlock(&it->mu);
    }
    return rc;
}

/* Reads window j of every lane into sl; 0 or -1 with sl->err. Runs without
 * the iterator's mutex: the slot is the filler's alone while it is
 * SLOT_FILLING. */
static int fill_window(spr_iter *it, filler *f, slot *sl, uint64_t j)
{
    for (uint32_t l = 0; l < it->ord.lanes; l++)
        if (fill_lane(it, f, sl, j, l))
            return -1;
    return 0;
}

static void *filler_main(void *arg)
{
    filler *f = arg;
    spr_iter *it = f->it;
    pthread_mutex_lock(&it->mu);
    for (;;) {
        while (!it->stop && !it->failed && it->next_fill < it->nwindows &&
               it->next_fill >= it->released + it->nslots)
            pthread_cond_wait(&it->cv, &it->mu);
        if (it->stop || it->failed || it->next_fill >= it->nwindows)
            break;
        uint64_t j = it->next_fill++;
        slot *sl = &it->slots[j % it->nslots];
        sl->state = SLOT_FILLING;
        pthread_mutex_unlock(&it->mu);
        int rc = fill_window(it, f, sl, j);
        pthread_mutex_lock(&it->mu);
        sl->state = rc ? SLOT_FAILED : SLOT_READY;
        if (rc)
            it->failed = 1;
        pthread_cond_broadcast(&it->cv);
    }
    pthread_mutex_unlock(&it->mu);
    return NULL;
}

/* Pixel buffers of finished iterators, kept by the set for the next one:
 * a fresh buffer costs a page fault a page at every epoch. */
static uint8_t *take_buffer(spr_set *s, size_t bytes)
{
    pthread_mutex_lock(&s->spare_mu);
    for (int i = 0; i < SPARE_MAX; i++)
        if (s->spare[i] && s->spare_bytes[i] == bytes) {
            uint8_t *b = s->spare[i];
            s->spare[i] = NULL;
            pthread_mutex_unlock(&s->spare_mu);
            return b;
        }
    pthread_mutex_unlock(&s->spare_mu);
    return malloc(bytes ? bytes : 1);
}

static void give_buffer(spr_set *s, uint8_t *b, size_t bytes)
{
    if (!b)
        return;
    pthread_mutex_lock(&s->spare_mu);
    int at = -1;
    for (int i = 0; i < SPARE_MAX && at < 0; i++)
        if (!s->spare[i])
            at = i;
    for (int i = 0; i < SPARE_MAX && at < 0; i++)
        if (s->spare_bytes[i] != bytes) { /* another iterator's size: the newest wins */
            free(s->spare[i]);
            at = i;
        }
    if (at >= 0)
        s->spare[at] = b, s->spare_bytes[at] = bytes, b = NULL;
    pthread_mutex_unlock(&s->spare_mu);
    free(b);
}

static void iter_release(spr_iter *it);

SPR_API spr_iter *spr_iter_new(spr_set *s, uint32_t batch_size, uint64_t seed, int flags, uint32_t window)
{
    return spr_iter_new_part(s, batch_size, seed, flags, window, 0, 1, 0);
}

SPR_API spr_iter *spr_iter_new_part(spr_set *s, uint32_t batch_size, uint64_t seed, int flags, uint32_t window,
                                    uint32_t part, uint32_t nparts, uint64_t skip_records)
{
    spr_iter_options o = {.batch = batch_size, .seed = seed, .flags = flags, .window_records = window,
                          .part = part, .nparts = nparts, .skip_records = skip_records,
                          .threads = (flags & SPR_PREFETCH) ? 1 : 0};
    return spr_iter_open(s, &o, sizeof o);
}

/* The train view's ranges from o (all 0: torchvision's); -1 on s when out of range. */
static int crop_range(spr_set *s, const spr_iter_options *o, sp_view_range *r)
{
    *r = sp_view_range_default();
    if (!o->scale_min && !o->scale_max && !o->ratio_min && !o->ratio_max)
        return 0;
    if (!(o->scale_min > 0 && o->scale_min <= o->scale_max && o->scale_max <= 1))
        return usage_error(s, "crop scale (%g, %g): needs 0 < min <= max <= 1", o->scale_min, o->scale_max);
    if (!(o->ratio_min > 0 && o->ratio_min <= o->ratio_max && o->ratio_max < 1e6))
        return usage_error(s, "crop ratio (%g, %g): needs 0 < min <= max", o->ratio_min, o->ratio_max);
    *r = (sp_view_range){o->scale_min, o->scale_max, o->ratio_min, o->ratio_max};
    return 0;
}

/* A set at a URL: tells the cache the order in which this rank's shards
 * will be opened, so that it evicts the one needed furthest ahead. Lanes are
 * filled window by window, every lane's window j before any window j + 1, so
 * a run of records is first needed at (its lane's window, its lane). Without
 * the plan (no memory), eviction goes by recency alone. */
typedef struct remote_use {
    uint64_t window, at; /* at: the run's place in its partition, for runs of one window */
    uint32_t lane;
    size_t shard;
} remote_use;

static int remote_use_cmp(const void *a, const void *b)
{
    const remote_use *x = a, *y = b;
    if (x->window != y->window)
        return x->window < y->window ? -1 : 1;
    if (x->lane != y->lane)
        return x->lane < y->lane ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* The uses of o's shards, in the order its lanes open them, into paths from
 * *n on (paths holds o->nsegs more); 0, or -1 out of memory. */
static int remote_uses(const spr_set *s, const sp_order *o, const char **paths, size_t *n)
{
    remote_use *uses = malloc((o->nsegs ? o->nsegs : 1) * sizeof *uses);
    if (!uses)
        return -1;
    size_t k = 0;
    for (uint32_t l = 0; l < o->lanes; l++)
        for (size_t i = o->lane[l].seg0; i < o->lane[l].seg0 + o->lane[l].nsegs; i++)
            uses[k++] = (remote_use){o->segs[i].at / o->window, o->segs[i].at, l, o->segs[i].shard};
    qsort(uses, k, sizeof *uses, remote_use_cmp);
    for (size_t i = 0; i < k; i++)
        paths[(*n)++] = s->shards[uses[i].shard].path;
    free(uses);
    return 0;
}

/* o's uses, then those of next (the next epoch's order; NULL: unknown),
 * handed to the cache as one plan whose position moves within o's. */
static void plan_remote_uses(const spr_set *s, const sp_order *o, const sp_order *next)
{
    size_t cap = o->nsegs + (next ? next->nsegs : 0), n = 0;
    const char **paths = malloc((cap ? cap : 1) * sizeof *paths);
    if (paths && !remote_uses(s, o, paths, &n)) {
        size_t now = n;
        if (next && remote_uses(s, next, paths, &n))
            n = now;
        sp_remote_plan(paths, n, now, &(sp_err){0});
    }
    free(paths);
}

SPR_API spr_iter *spr_iter_open(spr_set *s, const spr_iter_options *opts, size_t opts_size)
{
    spr_iter_options o = {0};
    if (!opts || opts_size > sizeof o) {
        usage_error(s, "spr_iter_open: %s", opts ? "options larger than this library's (a newer header)" : "no options");
        return NULL;
    }
    memcpy(&o, opts, opts_size);
    if (o.nparts == 0)
        o.nparts = 1;
    if (o.part >= o.nparts) {
        usage_error(s, "part %u of %u: out of range", o.part, o.nparts);
        return NULL;
    }
    if (o.threads > SPR_MAX_THREADS) {
        usage_error(s, "%u threads: at most %d", o.threads, SPR_MAX_THREADS);
        return NULL;
    }
    if (o.batch < 1 || o.batch > SPR_MAX_BATCH) {
        usage_error(s, "batch of %u records: not in 1..%u", o.batch, SPR_MAX_BATCH);
        return NULL;
    }
    sp_view_range range;
    if (crop_range(s, &o, &range))
        return NULL;
    size_t rb = s->record_bytes;
    uint64_t max_pixels = o.max_pixels;
    if (s->kind == SPR_ENCODED) {
        if (o.view != SPR_VIEW_TRAIN && o.view != SPR_VIEW_EVAL) {
            usage_error(s, "the set holds encoded images: choose a view (SPR_VIEW_TRAIN or SPR_VIEW_EVAL) and a size");
            return NULL;
        }
        if (o.size < 1 || o.size > SP_VIEW_MAX_SIZE) {
            usage_error(s, "view size %u: not in 1..%d", o.size, SP_VIEW_MAX_SIZE);
            return NULL;
        }
        if (max_pixels && s->max_pixels > max_pixels) {
            usage_error(s,
                        "the set keeps images of up to %llu pixels (sp-decode --max-pixels), over this reader's "
                        "limit of %llu: raise the limit (max_pixels) to read it",
                        (unsigned long long)s->max_pixels, (unsigned long long)max_pixels);
            return NULL;
        }
        if (!max_pixels)
            max_pixels = s->max_pixels;
        rb = (size_t)o.size * o.size * 3;
    } else if (o.view != SPR_VIEW_STORED) {
        usage_error(s, "the set holds pixels as stored: views are for encoded sets");
        return NULL;
    }
    uint32_t batch_size = o.batch;
    uint64_t global = (uint64_t)batch_size * o.nparts, window = o.window_records;
    if (window == 0) { /* 16 global batches, but not over 32 MiB of records: the shards are
                        * shuffled when written */
        uint64_t cap = (32ull << 20) / rb, want = 16ull * global;
        window = want < cap ? want : cap;
    }
    /* without shuffling, by default one partition a rank: its contiguous share in order */
    uint32_t partitions = o.partitions ? o.partitions : (o.flags & SPR_SHUFFLE) ? 0 : o.nparts;
    uint64_t *counts = malloc(s->nshards * sizeof *counts);
    spr_iter *it = calloc(1, sizeof *it);
    if (!it || !counts) {
        free(it), free(counts);
        snprintf(s->error, sizeof s->error, "out of memory"), s->errcode = SPR_ERR_SYSTEM;
        return NULL;
    }
    for (size_t i = 0; i < s->nshards; i++)
        counts[i] = s->shards[i].count;
    sp_err perr = {0};
    int planned = sp_order_plan(&it->ord, counts, s->nshards, o.seed, o.flags & SPR_SHUFFLE, batch_size, o.part,
                                o.nparts, partitions, window, &perr);
    free(counts);
    if (planned) {
        set_error(s, &perr, SPR_ERR_USAGE);
        free(it);
        return NULL;
    }
    /* a slot: every lane's window */
    uint64_t slot_records = (uint64_t)it->ord.lanes * it->ord.window;
    if (slot_records * (rb > 8 ? rb : 8) > SPR_MAX_WINDOW_BYTES) {
        usage_error(s, "a window of %llu records of %zu bytes: over %llu MiB (a batch, or window_records, too large)",
                    (unsigned long long)slot_records, rb, (unsigned long long)(SPR_MAX_WINDOW_BYTES >> 20));
        sp_order_free(&it->ord);
        free(it);
        return NULL;
    }
    size_t srec = (size_t)slot_records;
    uint32_t lanes = it->ord.lanes;
    pthread_mutex_lock(&s->spare_mu);
    s->refs++; /* dropped by spr_iter_free */
    pthread_mutex_unlock(&s->spare_mu);
    it->s = s;
    it->pid = getpid();
    it->range = range;
    it->max_pixels = max_pixels;
    it->rb = rb;
    it->view = o.view;
    it->size = o.size;
    it->batch_size = batch_size;
    it->window = (uint32_t)srec;
    it->flags = o.flags;
    it->seed = o.seed;
    it->nthreads = o.threads;
    it->nslots = o.threads + 1;
    pthread_mutex_init(&it->mu, NULL);
    pthread_cond_init(&it->cv, NULL);
    uint32_t nfill = o.threads ? o.threads : 1;
    it->slots = calloc(it->nslots, sizeof *it->slots);
    it->fillers = calloc(nfill, sizeof *it->fillers);
    it->threads = calloc(nfill, sizeof *it->threads);
    it->lanes = calloc(lanes, sizeof *it->lanes);
    int ok = it->slots && it->fillers && it->threads && it->lanes;
    for (uint32_t i = 0; ok && i < it->nslots; i++) {
        slot *sl = &it->slots[i];
        sl->px = take_buffer(s, srec * rb);
        sl->labels = malloc(srec * sizeof *sl->labels);
        sl->labels2 = malloc(srec * sizeof *sl->labels2);
        sl->idx = malloc(srec * sizeof *sl->idx);
        sl->perm = malloc(srec * sizeof *sl->perm);
        sl->n = calloc(lanes, sizeof *sl->n);
        ok = sl->px && sl->labels && sl->labels2 && sl->idx && sl->perm && sl->n;
    }
    for (uint32_t i = 0; ok && i < nfill; i++) {
        filler *f = &it->fillers[i];
        f->it = it;
        f->chunk = sp_shard_scratch_new();
        f->scratch.max_pixels = max_pixels;
        f->scratch.range = it->range;
        ok = f->chunk != NULL;
        if (ok && s->kind == SPR_ENCODED) {
            f->offsets = malloc((srec + 1) * sizeof *f->offsets);
            f->sums = malloc(srec * sizeof *f->sums);
            ok = f->offsets && f->sums;
        }
    }
    if (!ok) {
        snprintf(s->error, sizeof s->error, "out of memory for %u windows of %zu records", it->nslots, srec);
        s->errcode = SPR_ERR_SYSTEM;
        spr_iter_free(it);
        return NULL;
    }
    if (s->nshards && sp_remote_is_url(s->shards[0].path)) {
        /* the next epoch's order (SPR_NEXT_SEED) is the same plan for its seed */
        sp_order next = {0};
        uint64_t *c = (o.flags & SPR_NEXT_SEED) ? malloc(s->nshards * sizeof *c) : NULL;
        for (size_t i = 0; c && i < s->nshards; i++)
            c[i] = s->shards[i].count;
        int have = c && !sp_order_plan(&next, c, s->nshards, o.next_seed, o.flags & SPR_SHUFFLE, batch_size, o.part,
                                       o.nparts, partitions, window, &(sp_err){0});
        free(c);
        plan_remote_uses(s, &it->ord, have ? &next : NULL);
        sp_order_free(&next);
    }
    it->nwindows = it->ord.windows;
    /* a resume starts at the step and lane its skip falls in; the windows
     * before that step's are never read, their permutations never drawn */
    uint64_t skip = o.skip_records < it->ord.records ? o.skip_records : it->ord.records;
    sp_order_locate(&it->ord, skip, &it->step, &it->lane, &it->pos);
    it->cur = it->next_fill = it->released =
        it->step < it->ord.steps ? it->step * it->ord.per_step / it->ord.window : it->nwindows;
    for (uint32_t l = 0; l < lanes; l++)
        it->lanes[l].next = it->cur;
    for (uint32_t i = 0; i < o.threads; i++) {
        if (pthread_create(&it->threads[i], NULL, filler_main, &it->fillers[i])) {
            snprintf(s->error, sizeof s->error, "cannot start a reader thread");
            s->errcode = SPR_ERR_SYSTEM;
            spr_iter_free(it);
            return NULL;
        }
        it->started++;
    }
    return it;
}

SPR_API uint64_t spr_iter_records(const spr_iter *it) { return it->ord.records; }
SPR_API uint64_t spr_iter_steps(const spr_iter *it) { return it->ord.steps; }
SPR_API uint32_t spr_iter_partitions(const spr_iter *it) { return it->ord.partitions; }
SPR_API uint64_t spr_iter_bytes_read(const spr_iter *it) { return __atomic_load_n(&it->bytes_read, __ATOMIC_RELAXED); }
SPR_API const char *spr_iter_error(const spr_iter *it) { return it->s->error; }
SPR_API int spr_iter_errcode(const spr_iter *it) { return it->s->errcode; }

SPR_API int spr_iter_next(spr_iter *it, void *pixels, int32_t *labels, uint32_t *n)
{
    return spr_iter_next_indexed(it, pixels, labels, NULL, n);
}

SPR_API int spr_iter_next_indexed(spr_iter *it, void *pixels, int32_t *labels, uint64_t *indices, uint32_t *n)
{
    return spr_iter_next_full(it, pixels, labels, NULL, indices, n);
}

/* The slot of window it->cur ready to hand out (filled here when there are
 * no threads); NULL at the end of the part or on error (it->err). */
static slot *current_window(spr_iter *it)
{
    if (it->cur >= it->nwindows)
        return NULL;
    slot *sl = &it->slots[it->cur % it->nslots];
    if (!it->nthreads) {
        if (fill_window(it, &it->fillers[0], sl, it->cur)) {
            it->err = sl->err;
            return NULL;
        }
        return sl;
    }
    pthread_mutex_lock(&it->mu);
    while (sl->state != SLOT_READY && sl->state != SLOT_FAILED)
        pthread_cond_wait(&it->cv, &it->mu);
    pthread_mutex_unlock(&it->mu);
    if (sl->state == SLOT_FAILED) {
        it->err = sl->err;
        return NULL;
    }
    return sl;
}

/* Window it->cur is handed out: its slot goes back to the threads. */
static void release_window(spr_iter *it)
{
    slot *sl = &it->slots[it->cur % it->nslots];
    pthread_mutex_lock(&it->mu);
    sl->state = SLOT_FREE;
    it->released = ++it->cur;
    pthread_cond_broadcast(&it->cv);
    pthread_mutex_unlock(&it->mu);
}

SPR_API size_t spr_iter_record_bytes(const spr_iter *it) { return it->rb; }

SPR_API int spr_iter_next_full(spr_iter *it, void *pixels, int32_t *labels, int32_t *labels2, uint64_t *indices,
                               uint32_t *n)
{
    size_t rb = it->rb;
    uint32_t got = 0;
    int st = 0;
    if (it->pid != getpid()) {
        if (n)
            *n = 0;
        return usage_error(it->s, "this iterator was opened in process %ld, before a fork(): its reader threads are "
                           "not in this one; open a new iterator here", (long)it->pid);
    }
    if (!pixels) {
        if (n)
            *n = 0;
        return usage_error(it->s, "spr_iter_next: pixels is NULL");
    }
    if (it->error_sticky) {
        st = -1;
        goto out;
    }
    /* one call, one step's records (the rest of it after a resume inside it) */
    const sp_order *o = &it->ord;
    if (it->step < o->steps) {
        uint64_t j = it->step * o->per_step / o->window; /* the window of every lane's piece of this step */
        slot *sl = it->have_cur ? &it->slots[it->cur % it->nslots] : NULL;
        if (it->have_cur && it->cur != j) {
            release_window(it);
            it->have_cur = 0;
        }
        if (!it->have_cur) {
            it->cur = j;
            if (!(sl = current_window(it))) {
                it->error_sticky = 1;
                st = -1;
                goto out;
            }
            it->have_cur = 1;
        }
        for (uint32_t l = it->lane; l < o->lanes; l++) {
            uint32_t piece = sp_order_piece(o, l, it->step), first = (uint32_t)(it->step * o->per_step - j * o->window);
            size_t base = (size_t)l * o->window;
            for (uint32_t i = l == it->lane ? it->pos : 0; i < piece; i++, got++) {
                size_t r = base + sl->perm[base + first + i];
                memcpy((uint8_t *)pixels + (size_t)got * rb, sl->px + r * rb, rb);
                if (labels)
                    labels[got] = sl->labels[r];
                if (labels2)
                    labels2[got] = sl->labels2[r];
                if (indices)
                    indices[got] = sl->idx[r];
            }
        }
        it->step++, it->lane = 0, it->pos = 0;
    }
    st = (int)got;
out:
    if (st < 0)
        set_error(it->s, &it->err, SPR_ERR_CORRUPT);
    if (n)
        *n = st > 0 ? (uint32_t)st : 0;
    return st;
}

SPR_API void spr_iter_free(spr_iter *it)
{
    if (!it)
        return;
    if (it->pid != getpid()) {
        /* a forked child's copy: the threads, and whatever lock they held at
         * the fork, are the parent's; the memory is this process's own */
        iter_release(it);
        return;
    }
    pthread_mutex_lock(&it->mu);
    it->stop = 1;
    pthread_cond_broadcast(&it->cv);
    pthread_mutex_unlock(&it->mu);
    for (uint32_t i = 0; i < it->started; i++)
        pthread_join(it->threads[i], NULL);
    h5_enter();
    for (uint32_t l = 0; it->lanes && l < it->ord.lanes; l++)
        sp_shard_close(it->lanes[l].sh);
    h5_leave();
    pthread_mutex_destroy(&it->mu);
    pthread_cond_destroy(&it->cv);
    iter_release(it);
}

/* Frees it's memory and drops its reference to the set (its threads are
 * joined, or not this process's). */
static void iter_release(spr_iter *it)
{
    for (uint32_t i = 0; it->fillers && i < (it->nthreads ? it->nthreads : 1); i++) {
        filler *f = &it->fillers[i];
        sp_shard_scratch_free(f->chunk); /* after the lanes' shards closed, or in a forked child */
        free(f->bytes);
        free(f->offsets);
        free(f->sums);
        sp_view_scratch_free(&f->scratch);
    }
    for (uint32_t i = 0; it->slots && i < it->nslots; i++) {
        slot *sl = &it->slots[i];
        give_buffer(it->s, sl->px, (size_t)it->window * it->rb);
        free(sl->labels);
        free(sl->labels2);
        free(sl->idx);
        free(sl->perm);
        free(sl->n);
    }
    free(it->slots);
    free(it->lanes);
    free(it->fillers);
    free(it->threads);
    sp_order_free(&it->ord);
    spr_set *s = it->s;
    free(it);
    set_unref(s);
}

SPR_API int spr_normalize(spr_set *s, const void *pixels, uint64_t n, float *out)
{
    return spr_normalize_hw(s, pixels, n, s->h, s->w, out);
}

SPR_API int spr_normalize_hw(spr_set *s, const void *pixels, uint64_t n, uint32_t h, uint32_t w, float *out)
{
    uint32_t nc = s->kind == SPR_ENCODED ? 3 : s->c; /* a view's RGB, whatever the shards' shape says */
    if (s->dtype != SPR_UINT8 || nc > 4)
        return usage_error(s, "spr_normalize: the records are not uint8 of at most 4 channels");
    float table[4][256];
    for (uint32_t c = 0; c < nc; c++)
        for (int v = 0; v < 256; v++) {
            double x = v / 255.0;
            table[c][v] = (float)((int)c < s->nnorm ? (x - s->mean[c]) / s->std[c] : x);
        }
    size_t hw = (size_t)h * w;
    const uint8_t *px = pixels;
    for (uint64_t r = 0; r < n; r++, px += hw * nc, out += hw * nc)
        for (size_t c = 0; c < nc; c++) {
            const float *t = table[c];
            float *o = out + c * hw;
            for (size_t i = 0; i < hw; i++)
                o[i] = t[px[i * nc + c]];
        }
    return 0;
}
