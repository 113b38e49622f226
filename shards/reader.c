/* libshardpipe-reader (include/shardpipe/reader.h) over the shard reader. */
#define _POSIX_C_SOURCE 200809L
#include "shardpipe/reader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shards/manifest.h"
#include "shards/shard.h"

#define SPR_API __attribute__((visibility("default")))

/* HDF5 (Debian's serial build) is not thread-safe: every call goes through this. */
static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct spr_shard {
    char path[4096];
    uint64_t count, first;
} spr_shard;

struct spr_set {
    spr_shard *shards;
    size_t nshards;
    uint64_t count;
    uint32_t h, w, c;
    int dtype;
    size_t record_bytes;
    json_t *classes;
    double mean[4], std[4];
    int nnorm, applied;
    sp_shard *open; /* the shard random access last used */
    size_t open_index;
    char error[1024];
};

static void set_error(spr_set *s, const sp_err *err) { snprintf(s->error, sizeof s->error, "%s", err->msg); }

SPR_API spr_set *spr_open(const char *dir, const char *split, char *errbuf, size_t err_len)
{
    sp_err err = {0};
    spr_set *s = calloc(1, sizeof *s);
    json_t *m = NULL;
    if (!s) {
        sp_fail(&err, SP_EXIT_SYSTEM, "out of memory");
        goto fail;
    }
    pthread_mutex_lock(&h5_lock); /* sp_manifest_load opens every shard to hold it to its entry */
    int init = sp_h5_init(&err);
    if (!init)
        m = sp_manifest_load(dir, &err);
    pthread_mutex_unlock(&h5_lock);
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
        snprintf(sh->path, sizeof sh->path, "%.2000s/%.2000s", dir, json_string_value(json_object_get(e, "file")));
        sh->count = (uint64_t)json_integer_value(json_object_get(e, "records"));
        sh->first = s->count;
        s->count += sh->count;
    }
    if (!s->nshards) {
        sp_fail(&err, SP_EXIT_DATA, "%s: no shards of split %s", dir, split);
        goto fail;
    }
    s->classes = json_incref(json_object_get(m, "classes"));
    /* shape, dtype and normalization from the first shard; the others are checked as they open */
    pthread_mutex_lock(&h5_lock);
    sp_shard *first = sp_shard_open_nokeys(s->shards[0].path, &err);
    if (first) {
        sp_shard_shape(first, &s->h, &s->w, &s->c, &s->dtype);
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
        sp_shard_close(first);
    }
    pthread_mutex_unlock(&h5_lock);
    if (!first)
        goto fail;
    s->record_bytes = (size_t)s->h * s->w * s->c * (size_t)sp_dtype_size(s->dtype);
    json_decref(m);
    return s;
fail:
    if (errbuf && err_len)
        snprintf(errbuf, err_len, "%s", err.msg);
    json_decref(m);
    spr_close(s);
    return NULL;
}

SPR_API void spr_close(spr_set *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&h5_lock);
    sp_shard_close(s->open);
    pthread_mutex_unlock(&h5_lock);
    json_decref(s->classes);
    free(s->shards);
    free(s);
}

SPR_API const char *spr_error(const spr_set *s) { return s->error; }
SPR_API uint64_t spr_count(const spr_set *s) { return s->count; }
SPR_API int spr_dtype(const spr_set *s) { return s->dtype; }
SPR_API size_t spr_record_bytes(const spr_set *s) { return s->record_bytes; }
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
    sp_shard *sh = sp_shard_open_nokeys(s->shards[i].path, err);
    if (!sh)
        return NULL;
    uint32_t h, w, c;
    int dtype;
    sp_shard_shape(sh, &h, &w, &c, &dtype);
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
    if (index >= s->count) {
        snprintf(s->error, sizeof s->error, "record %llu out of range (%llu records)", (unsigned long long)index,
                 (unsigned long long)s->count);
        return -1;
    }
    size_t i = shard_of(s, index);
    int rc = 0;
    pthread_mutex_lock(&h5_lock);
    if (!s->open || s->open_index != i) {
        sp_shard_close(s->open);
        s->open = open_shard(s, i, &err);
        s->open_index = i;
    }
    if (!s->open || sp_shard_read(s->open, index - s->shards[i].first, 1, pixels, label, NULL, NULL, &err))
        rc = -1;
    pthread_mutex_unlock(&h5_lock);
    if (rc)
        set_error(s, &err);
    return rc;
}

/* ---------------- iteration ---------------- */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct batch {
    uint8_t *pixels;
    int32_t *labels, *labels2;
    uint64_t *indices;
    uint32_t n;
    int status; /* records (> 0), 0 at the end, -1 error */
} batch;

/* A run of records of one shard that belongs to this iterator's part. */
typedef struct segment {
    size_t shard;
    uint64_t start, count;
} segment;

struct spr_iter {
    spr_set *s;
    uint32_t batch_size, window;
    int flags;
    uint64_t rng;
    segment *segs; /* this part's share of the epoch, in stream order */
    size_t nsegs, seg;
    uint64_t seg_pos, records, skip;
    sp_shard *cur;    /* the shard of segs[seg], open while it is read */
    uint8_t *win;     /* window records */
    int32_t *win_labels, *win_labels2;
    uint64_t *win_idx;
    uint32_t *perm;
    uint32_t win_n, win_pos;
    sp_err err;
    /* prefetch */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch ready;
    int have_ready, stop, started;
};

/* Fills the window with the next records of the part's stream (win_n of
 * them, 0 at the end) and draws its permutation; dry = 1 only advances
 * (same records, same random draws) without reading, for a resume. 0 or -1. */
static int refill(spr_iter *it, int dry)
{
    spr_set *s = it->s;
    it->win_n = it->win_pos = 0;
    while (it->win_n < it->window && it->seg < it->nsegs) {
        segment *g = &it->segs[it->seg];
        uint64_t left = g->count - it->seg_pos, k = it->window - it->win_n;
        if (k > left)
            k = left;
        if (!dry) {
            pthread_mutex_lock(&h5_lock);
            if (!it->cur)
                it->cur = open_shard(s, g->shard, &it->err);
            int rc = !it->cur ? -1
                              : sp_shard_read(it->cur, g->start + it->seg_pos, k,
                                              it->win + (size_t)it->win_n * s->record_bytes,
                                              it->win_labels + it->win_n, it->win_labels2 + it->win_n, NULL,
                                              &it->err);
            if (rc == 0 && it->seg_pos + k == g->count) {
                sp_shard_close(it->cur);
                it->cur = NULL;
            }
            pthread_mutex_unlock(&h5_lock);
            if (rc)
                return -1;
            for (uint64_t j = 0; j < k; j++)
                it->win_idx[it->win_n + j] = s->shards[g->shard].first + g->start + it->seg_pos + j;
        }
        it->seg_pos += k;
        it->win_n += (uint32_t)k;
        if (it->seg_pos == g->count)
            it->seg++, it->seg_pos = 0;
    }
    for (uint32_t i = 0; i < it->win_n; i++)
        it->perm[i] = i;
    if (it->flags & SPR_SHUFFLE)
        for (uint32_t i = it->win_n; i > 1; i--) {
            uint32_t j = (uint32_t)(splitmix(&it->rng) % i);
            uint32_t t = it->perm[i - 1];
            it->perm[i - 1] = it->perm[j];
            it->perm[j] = t;
        }
    return 0;
}

/* Skips the first it->skip records of the part's epoch: whole windows dry,
 * then the window the resume starts in, read, from the right place. */
static int skip_start(spr_iter *it)
{
    uint64_t skip = it->skip;
    it->skip = 0;
    while (skip >= it->window) {
        if (refill(it, 1))
            return -1;
        if (it->win_n == 0)
            return 0;
        skip -= it->win_n;
    }
    it->win_n = it->win_pos = 0; /* nothing of the dry windows was read: the next refill reads */
    if (skip) {
        if (refill(it, 0))
            return -1;
        it->win_pos = (uint32_t)(skip < it->win_n ? skip : it->win_n);
    }
    return 0;
}

/* The next batch into out; returns its size, 0 at the end, -1. */
static int produce(spr_iter *it, uint8_t *pixels, int32_t *labels, int32_t *labels2, uint64_t *indices)
{
    size_t rb = it->s->record_bytes;
    uint32_t n = 0;
    if (it->skip && skip_start(it))
        return -1;
    while (n < it->batch_size) {
        if (it->win_pos == it->win_n) {
            if (refill(it, 0))
                return -1;
            if (it->win_n == 0)
                break;
        }
        uint32_t r = it->perm[it->win_pos++];
        memcpy(pixels + (size_t)n * rb, it->win + (size_t)r * rb, rb);
        labels[n] = it->win_labels[r];
        if (labels2)
            labels2[n] = it->win_labels2[r];
        if (indices)
            indices[n] = it->win_idx[r];
        n++;
    }
    return (int)n;
}

static void *prefetcher(void *arg)
{
    spr_iter *it = arg;
    for (;;) {
        pthread_mutex_lock(&it->mu);
        while (it->have_ready && !it->stop)
            pthread_cond_wait(&it->cv, &it->mu);
        if (it->stop) {
            pthread_mutex_unlock(&it->mu);
            break;
        }
        pthread_mutex_unlock(&it->mu);
        int st = produce(it, it->ready.pixels, it->ready.labels, it->ready.labels2, it->ready.indices);
        pthread_mutex_lock(&it->mu);
        it->ready.status = st;
        it->have_ready = 1;
        pthread_cond_broadcast(&it->cv);
        pthread_mutex_unlock(&it->mu);
        if (st <= 0)
            break;
    }
    return NULL;
}

SPR_API spr_iter *spr_iter_new(spr_set *s, uint32_t batch_size, uint64_t seed, int flags, uint32_t window)
{
    return spr_iter_new_part(s, batch_size, seed, flags, window, 0, 1, 0);
}

SPR_API spr_iter *spr_iter_new_part(spr_set *s, uint32_t batch_size, uint64_t seed, int flags, uint32_t window,
                                    uint32_t part, uint32_t nparts, uint64_t skip_records)
{
    if (nparts == 0 || part >= nparts) {
        snprintf(s->error, sizeof s->error, "part %u of %u: out of range", part, nparts);
        return NULL;
    }
    if (batch_size == 0)
        batch_size = 1;
    if (window == 0) { /* 16 batches, but not over 32 MiB of records: the shards are
                        * shuffled when written, and a bigger window costs its page
                        * faults at every epoch */
        uint64_t cap = (32ull << 20) / (s->record_bytes ? s->record_bytes : 1);
        window = 16 * batch_size;
        if (window > cap)
            window = (uint32_t)cap;
    }
    if (window < batch_size)
        window = batch_size;
    spr_iter *it = calloc(1, sizeof *it);
    if (!it) {
        snprintf(s->error, sizeof s->error, "out of memory");
        return NULL;
    }
    it->s = s;
    it->batch_size = batch_size;
    it->window = window;
    it->flags = flags;
    it->rng = seed;
    size_t *order = malloc(s->nshards * sizeof *order);
    it->segs = malloc(s->nshards * sizeof *it->segs);
    it->win = malloc((size_t)window * s->record_bytes);
    it->win_labels = malloc((size_t)window * sizeof *it->win_labels);
    it->win_labels2 = malloc((size_t)window * sizeof *it->win_labels2);
    it->win_idx = malloc((size_t)window * sizeof *it->win_idx);
    it->perm = malloc((size_t)window * sizeof *it->perm);
    it->ready.pixels = malloc((size_t)batch_size * s->record_bytes);
    it->ready.labels = malloc((size_t)batch_size * sizeof *it->ready.labels);
    it->ready.labels2 = malloc((size_t)batch_size * sizeof *it->ready.labels2);
    it->ready.indices = malloc((size_t)batch_size * sizeof *it->ready.indices);
    pthread_mutex_init(&it->mu, NULL);
    pthread_cond_init(&it->cv, NULL);
    if (!order || !it->segs || !it->win || !it->win_labels || !it->win_labels2 || !it->win_idx || !it->perm ||
        !it->ready.pixels || !it->ready.labels || !it->ready.labels2 || !it->ready.indices) {
        snprintf(s->error, sizeof s->error, "out of memory for a window of %u records", window);
        free(order);
        spr_iter_free(it);
        return NULL;
    }
    for (size_t i = 0; i < s->nshards; i++)
        order[i] = i;
    if (flags & SPR_SHUFFLE)
        for (size_t i = s->nshards; i > 1; i--) {
            size_t j = (size_t)(splitmix(&it->rng) % i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
    /* The epoch's stream is the shards in that order; part p takes records
     * [lo, hi) of it, the parts' sizes differing by at most one. */
    uint64_t per = s->count / nparts, extra = s->count % nparts;
    uint64_t lo = part * per + (part < extra ? part : extra);
    uint64_t hi = lo + per + (part < extra ? 1 : 0), at = 0;
    for (size_t i = 0; i < s->nshards; i++) {
        uint64_t n = s->shards[order[i]].count, a = lo > at ? lo : at, b = hi < at + n ? hi : at + n;
        if (a < b)
            it->segs[it->nsegs++] = (segment){order[i], a - at, b - a};
        at += n;
    }
    free(order);
    it->records = hi - lo;
    it->skip = skip_records;
    if ((flags & SPR_PREFETCH) && pthread_create(&it->thread, NULL, prefetcher, it) == 0)
        it->started = 1;
    return it;
}

SPR_API uint64_t spr_iter_records(const spr_iter *it) { return it->records; }

SPR_API int spr_iter_next(spr_iter *it, void *pixels, int32_t *labels, uint32_t *n)
{
    return spr_iter_next_indexed(it, pixels, labels, NULL, n);
}

SPR_API int spr_iter_next_indexed(spr_iter *it, void *pixels, int32_t *labels, uint64_t *indices, uint32_t *n)
{
    return spr_iter_next_full(it, pixels, labels, NULL, indices, n);
}

SPR_API int spr_iter_next_full(spr_iter *it, void *pixels, int32_t *labels, int32_t *labels2, uint64_t *indices,
                               uint32_t *n)
{
    int st;
    if (!it->started) {
        st = produce(it, pixels, labels, labels2, indices);
    } else {
        pthread_mutex_lock(&it->mu);
        while (!it->have_ready)
            pthread_cond_wait(&it->cv, &it->mu);
        st = it->ready.status;
        if (st > 0) {
            memcpy(pixels, it->ready.pixels, (size_t)st * it->s->record_bytes);
            memcpy(labels, it->ready.labels, (size_t)st * sizeof *labels);
            if (labels2)
                memcpy(labels2, it->ready.labels2, (size_t)st * sizeof *labels2);
            if (indices)
                memcpy(indices, it->ready.indices, (size_t)st * sizeof *indices);
            it->have_ready = 0; /* the thread reads the next one now */
            pthread_cond_broadcast(&it->cv);
        }
        pthread_mutex_unlock(&it->mu);
    }
    if (st < 0)
        set_error(it->s, &it->err);
    if (n)
        *n = st > 0 ? (uint32_t)st : 0;
    return st;
}

SPR_API void spr_iter_free(spr_iter *it)
{
    if (!it)
        return;
    if (it->started) {
        pthread_mutex_lock(&it->mu);
        it->stop = 1;
        pthread_cond_broadcast(&it->cv);
        pthread_mutex_unlock(&it->mu);
        pthread_join(it->thread, NULL);
    }
    pthread_mutex_lock(&h5_lock);
    sp_shard_close(it->cur);
    pthread_mutex_unlock(&h5_lock);
    pthread_mutex_destroy(&it->mu);
    pthread_cond_destroy(&it->cv);
    free(it->segs);
    free(it->win);
    free(it->win_idx);
    free(it->win_labels2);
    free(it->win_labels);
    free(it->perm);
    free(it->ready.pixels);
    free(it->ready.labels);
    free(it->ready.indices);
    free(it->ready.labels2);
    free(it);
}

SPR_API int spr_normalize(spr_set *s, const void *pixels, uint64_t n, float *out)
{
    if (s->dtype != SPR_UINT8 || s->c > 4) {
        snprintf(s->error, sizeof s->error, "spr_normalize: the records are not uint8 of at most 4 channels");
        return -1;
    }
    float table[4][256];
    for (uint32_t c = 0; c < s->c; c++)
        for (int v = 0; v < 256; v++) {
            double x = v / 255.0;
            table[c][v] = (float)((int)c < s->nnorm ? (x - s->mean[c]) / s->std[c] : x);
        }
    size_t hw = (size_t)s->h * s->w, nc = s->c;
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
