/* sp-shard's global shuffle: records ordered by a hash of (seed, key) in memory, spilling sorted runs to disk. */
#define _POSIX_C_SOURCE 200809L
#include "shards/shuffle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sp_xxh.h"

/* A record in a block: this header, the key, then the payload. */
typedef struct packed {
    uint64_t payload_len, checksum;
    int32_t label, label2;
    uint32_t h, w, c;
    uint16_t key_len;
    uint8_t kind, split, dtype, codec;
} packed;

typedef struct entry {
    uint64_t hash;
    const uint8_t *rec; /* its packed header, in a block that never moves */
} entry;

/* Records are packed into blocks of a sixteenth of the limit, between 64 KiB
 * and 16 MiB (or one block for a bigger record): appending never moves what
 * is stored, so nothing is copied twice, and the oldest records can be spilled
 * a few blocks at a time. */
#define BLOCK_MIN (64u << 10)
#define BLOCK_MAX (16u << 20)
typedef struct block {
    uint8_t *data;
    size_t len, cap;
    size_t first; /* the entry of its first record (entries are in arrival order until the drain) */
} block;

/* While fewer runs than this are on disk, a spill writes the oldest quarter of
 * the memory, not all of it: a set up to 5 times --memory spills only what
 * does not fit (about its size less the limit), and the rest is merged from
 * memory. Past it a spill writes everything, so the runs (and their read
 * buffers at the merge) stay under 16 + set/limit. */
#define QUARTER_RUNS 16

struct sp_shuffler {
    char dir[4096];
    uint64_t seed;
    size_t limit, used; /* bytes held in blocks */
    size_t block_size;
    block *blocks;
    size_t nblocks, cap_blocks;
    entry *entries;
    size_t n, cap;
    uint64_t count, runs, spilled; /* records added, run files written, bytes written to them */
};

static void free_blocks(sp_shuffler *s)
{
    for (size_t i = 0; i < s->nblocks; i++)
        free(s->blocks[i].data);
    s->nblocks = 0;
    s->used = 0;
}

/* Room for need bytes of the record that will be entry s->n; returns where
 * they go, or NULL. */
static uint8_t *room(sp_shuffler *s, size_t need)
{
    block *b = s->nblocks ? &s->blocks[s->nblocks - 1] : NULL;
    if (!b || b->cap - b->len < need) {
        if (s->nblocks == s->cap_blocks) {
            size_t cap = s->cap_blocks ? 2 * s->cap_blocks : 16;
            block *nb = realloc(s->blocks, cap * sizeof *nb);
            if (!nb)
                return NULL;
            s->blocks = nb;
            s->cap_blocks = cap;
        }
        size_t cap = need > s->block_size ? need : s->block_size;
        uint8_t *data = malloc(cap);
        if (!data)
            return NULL;
        b = &s->blocks[s->nblocks++];
        *b = (block){data, 0, cap, s->n};
    }
    uint8_t *p = b->data + b->len;
    b->len += need;
    s->used += need;
    return p;
}

sp_shuffler *sp_shuffler_create(const char *tmpdir, uint64_t seed, size_t mem_limit, sp_err *err)
{
    sp_shuffler *s = calloc(1, sizeof *s);
    if (!s) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    snprintf(s->dir, sizeof s->dir, "%s", tmpdir);
    s->seed = seed;
    s->limit = mem_limit < (1u << 16) ? (1u << 16) : mem_limit;
    s->block_size = s->limit / 16 < BLOCK_MIN ? BLOCK_MIN : s->limit / 16 > BLOCK_MAX ? BLOCK_MAX : s->limit / 16;
    s->block_size &= ~(size_t)7;
    return s;
}

static void run_path(const sp_shuffler *s, uint64_t i, char *out, size_t n)
{
    snprintf(out, n, "%.4000s/.sp-tmp-run-%llu", s->dir, (unsigned long long)i);
}

void sp_shuffler_free(sp_shuffler *s)
{
    if (!s)
        return;
    char path[4200];
    for (uint64_t i = 0; i < s->runs; i++) {
        run_path(s, i, path, sizeof path);
        unlink(path);
    }
    free_blocks(s);
    free(s->blocks);
    free(s->entries);
    free(s);
}

uint64_t sp_shuffler_count(const sp_shuffler *s) { return s->count; }
uint64_t sp_shuffler_runs(const sp_shuffler *s) { return s->runs; }
uint64_t sp_shuffler_spilled(const sp_shuffler *s) { return s->spilled; }

/* The order: hash, then key, then content. */
static int order(uint64_t ha, const char *ka, size_t la, uint64_t ca, uint64_t hb, const char *kb, size_t lb,
                 uint64_t cb)
{
    if (ha != hb)
        return ha < hb ? -1 : 1;
    int c = memcmp(ka, kb, la < lb ? la : lb);
    if (c || la != lb)
        return c ? c : la < lb ? -1 : 1;
    return ca < cb ? -1 : ca > cb;
}

static int cmp_entries(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    const packed *px = (const packed *)(const void *)x->rec, *py = (const packed *)(const void *)y->rec;
    return order(x->hash, (const char *)(px + 1), px->key_len, px->checksum, y->hash, (const char *)(py + 1),
                 py->key_len, py->checksum);
}

static void unpack(const uint8_t *at, sp_record *rec, const uint8_t **payload)
{
    const packed *p = (const packed *)(const void *)at;
    memset(rec, 0, offsetof(sp_record, key));
    rec->kind = p->kind, rec->split = p->split, rec->dtype = p->dtype, rec->codec = p->codec;
    rec->label = p->label, rec->label2 = p->label2;
    rec->h = p->h, rec->w = p->w, rec->c = p->c;
    rec->payload_len = p->payload_len;
    rec->checksum = p->checksum;
    rec->key_len = p->key_len;
    memcpy(rec->key, p + 1, p->key_len);
    rec->key[p->key_len] = 0;
    *payload = (const uint8_t *)(p + 1) + p->key_len;
}

/* Sorts the records of the oldest nb blocks and writes them as the next run
 * file, then frees those blocks; the younger records stay, in arrival order. */
static int spill(sp_shuffler *s, size_t nb, sp_err *err)
{
    size_t n = nb < s->nblocks ? s->blocks[nb].first : s->n;
    qsort(s->entries, n, sizeof *s->entries, cmp_entries);
    char path[4200];
    run_path(s, s->runs, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
    s->runs++;
    json_t *meta = json_object();
    sp_writer *w = sp_writer_open(fd, meta, err);
    int rc = w ? 0 : -1;
    sp_record rec;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const uint8_t *payload;
        unpack(s->entries[i].rec, &rec, &payload);
        rc = sp_writer_record(w, &rec, payload, (size_t)rec.payload_len, err);
    }
    if (rc == 0)
        rc = sp_writer_finish(w, err);
    sp_writer_free(w);
    json_decref(meta);
    if (close(fd) && rc == 0)
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
    for (size_t i = 0; i < nb; i++) {
        s->spilled += s->blocks[i].len;
        s->used -= s->blocks[i].len;
        free(s->blocks[i].data);
    }
    s->nblocks -= nb;
    memmove(s->blocks, s->blocks + nb, s->nblocks * sizeof *s->blocks);
    for (size_t i = 0; i < s->nblocks; i++)
        s->blocks[i].first -= n;
    s->n -= n;
    memmove(s->entries, s->entries + n, s->n * sizeof *s->entries);
    return rc;
}

int sp_shuffler_add(sp_shuffler *s, const sp_record *rec, const uint8_t *payload, sp_err *err)
{
    size_t need = sizeof(packed) + rec->key_len + (size_t)rec->payload_len;
    need = (need + 7) & ~(size_t)7; /* keep headers aligned */
    while (s->n && s->used + need > s->limit) {
        /* the fewest oldest blocks that free a quarter of the memory and room
         * for this record, in one run (all of them past QUARTER_RUNS runs, or
         * for a record over the limit) */
        size_t nb = s->nblocks;
        if (s->runs < QUARTER_RUNS && need <= s->limit) {
            size_t want = s->used / 4, over = s->used + need - s->limit, got = 0;
            if (over > want)
                want = over;
            for (nb = 0; nb < s->nblocks && got < want;)
                got += s->blocks[nb++].len;
        }
        if (spill(s, nb ? nb : 1, err))
            return -1;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 4096;
        entry *e = realloc(s->entries, cap * sizeof *e);
        if (!e)
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        s->entries = e;
        s->cap = cap;
    }
    uint8_t *at = room(s, need);
    if (!at)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    packed p = {rec->payload_len, rec->checksum, rec->label, rec->label2, rec->h, rec->w, rec->c, rec->key_len,
                rec->kind, rec->split, rec->dtype, rec->codec};
    memcpy(at, &p, sizeof p);
    memcpy(at + sizeof p, rec->key, rec->key_len);
    memcpy(at + sizeof p + rec->key_len, payload, (size_t)rec->payload_len);
    s->entries[s->n++] = (entry){sp_xxh3_seeded(rec->key, rec->key_len, s->seed), at};
    s->count++;
    return 0;
}

/* One run being merged: its reader and current record, or (r NULL) the
 * records still in memory, sorted, from entry next on. */
typedef struct run {
    int fd;
    sp_reader *r;
    size_t next;
    sp_record rec;
    const uint8_t *payload;
    uint64_t hash;
} run;

static int run_less(const run *a, const run *b)
{
    return order(a->hash, a->rec.key, a->rec.key_len, a->rec.checksum, b->hash, b->rec.key, b->rec.key_len,
                 b->rec.checksum) < 0;
}

/* Moves run i to its next record; 1 if it has one, 0 at its end, -1. */
static int advance(sp_shuffler *s, run *r, sp_err *err)
{
    if (!r->r) {
        if (r->next == s->n)
            return 0;
        r->hash = s->entries[r->next].hash;
        unpack(s->entries[r->next++].rec, &r->rec, &r->payload);
        return 1;
    }
    int got = sp_reader_next(r->r, &r->rec, err);
    if (got <= 0)
        return got;
    if (sp_reader_payload(r->r, &r->rec, &r->payload, err))
        return -1;
    r->hash = sp_xxh3_seeded(r->rec.key, r->rec.key_len, s->seed);
    return 1;
}

static void sift_down(run **heap, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && run_less(heap[l], heap[m]))
            m = l;
        if (l + 1 < n && run_less(heap[l + 1], heap[m]))
            m = l + 1;
        if (m == i)
            return;
        run *t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

int sp_shuffler_drain(sp_shuffler *s, int (*emit)(void *ctx, const sp_record *rec, const uint8_t *payload, sp_err *err),
                      void *ctx, sp_err *err)
{
    if (s->n) /* (qsort must not be given a NULL array, even of no entries) */
        qsort(s->entries, s->n, sizeof *s->entries, cmp_entries);
    if (s->runs == 0) { /* everything fit in memory */
        sp_record rec;
        for (size_t i = 0; i < s->n; i++) {
            const uint8_t *payload;
            unpack(s->entries[i].rec, &rec, &payload);
            if (emit(ctx, &rec, payload, err))
                return -1;
        }
        return 0;
    }
    /* the run files, then what is still in memory as one more run */
    run *runs = calloc(s->runs + 1, sizeof *runs);
    run **heap = calloc(s->runs + 1, sizeof *heap);
    size_t n = 0;
    int rc = runs && heap ? 0 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    for (uint64_t i = 0; rc == 0 && i < s->runs; i++) {
        char path[4200];
        run_path(s, i, path, sizeof path);
        runs[i].fd = open(path, O_RDONLY | O_CLOEXEC);
        if (runs[i].fd < 0) {
            rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
            break;
        }
        runs[i].r = sp_reader_open(runs[i].fd, path, NULL, err);
        int got = runs[i].r ? advance(s, &runs[i], err) : -1;
        if (got < 0)
            rc = -1;
        else if (got > 0)
            heap[n++] = &runs[i];
    }
    if (rc == 0) {
        runs[s->runs].fd = -1;
        if (advance(s, &runs[s->runs], err) > 0)
            heap[n++] = &runs[s->runs];
    }
    for (size_t i = n; rc == 0 && i-- > 0;)
        sift_down(heap, n, i);
    while (rc == 0 && n > 0) {
        run *top = heap[0];
        rc = emit(ctx, &top->rec, top->payload, err);
        if (rc)
            break;
        int got = advance(s, top, err);
        if (got < 0)
            rc = -1;
        else if (got == 0)
            heap[0] = heap[--n];
        sift_down(heap, n, 0);
    }
    for (uint64_t i = 0; runs && i < s->runs; i++) {
        sp_reader_free(runs[i].r);
        if (runs[i].fd > 0)
            close(runs[i].fd);
    }
    free(runs);
    free(heap);
    return rc;
}
