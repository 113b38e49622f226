/* libshardpipe-reader's mix of several sets (include/shardpipe/reader.h,
 * "Mixing sets"): each set read by its own canonical-order iterators
 * (shards/order.h), one slot of P records at a time. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shards/order.h"
#include "shardpipe/reader.h"

#define SPR_API __attribute__((visibility("default")))

/* At most this many slots are walked to find the epoch's end or a resume
 * point (weights far apart over large sets would walk for hours). */
#define MIX_MAX_WALK (1ull << 32)

typedef struct mix_src {
    spr_set *set;   /* the caller's */
    double w;       /* weight / the weights' sum */
    int repeat;     /* SPR_MIX_REPEAT */
    uint64_t count; /* the set's records */
    uint64_t pass_slots; /* slots a pass: ceil(count / P) */
    uint64_t used;  /* slots taken so far */
    spr_iter *it;   /* the pass under way, or NULL */
    uint64_t pass;  /* it's pass */
    uint64_t bytes_done; /* bytes read by its earlier passes' iterators */
} mix_src;

struct spr_mix {
    mix_src *src;
    uint32_t n;
    spr_iter_options o; /* each pass's, but for seed and skip_records */
    uint32_t partitions, per_rank; /* P, and P / nparts: a rank's records of a slot */
    uint64_t slots_step;           /* M = B / P */
    uint64_t steps, step;          /* the epoch's, and consumed */
    /* the step spr_mix_next gave last (spr_mix_layout): */
    uint64_t *pos;     /* each of this rank's records' place in the global batch (batch of them) */
    uint32_t *ranks;   /* each rank's records (nparts of them) */
    uint64_t global;   /* every rank's records */
    uint32_t got;      /* this rank's */
    uint32_t batch;    /* a rank's records a step at most (opts' batch) */
    size_t rb;
    int errcode;
    char error[1024];
};

__attribute__((format(printf, 3, 4))) static void fail(char *buf, size_t len, const char *fmt, ...)
{
    if (!buf || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Pass p of set i's seed: from (seed, i, p) alone. */
static uint64_t pass_seed(uint64_t seed, uint32_t i, uint64_t pass)
{
    return mix64(mix64(mix64(seed) ^ (i + 1ull)) ^ pass);
}

/* The set that takes slot t, given the slots each set took before it. */
static uint32_t pick(const mix_src *src, uint32_t n, uint64_t t, const uint64_t *used)
{
    uint32_t best = 0;
    double top = 0;
    for (uint32_t i = 0; i < n; i++) {
        double d = src[i].w * (double)(t + 1) - (double)used[i];
        if (i == 0 || d > top)
            best = i, top = d;
    }
    return best;
}

/* used[] after the first `slots` slots (from all zeros). */
static void walk(const spr_mix *m, uint64_t slots, uint64_t *used)
{
    memset(used, 0, m->n * sizeof *used);
    for (uint64_t t = 0; t < slots; t++)
        used[pick(m->src, m->n, t, used)]++;
}

/* The epoch's steps (see reader.h); -1 when it would take too long a walk. */
static int epoch_steps(spr_mix *m, uint64_t asked)
{
    int stops = 0;
    for (uint32_t i = 0; i < m->n; i++)
        stops |= !m->src[i].repeat;
    if (!stops && asked) {
        m->steps = asked;
        return 0;
    }
    uint64_t *used = calloc(m->n, sizeof *used);
    if (!used)
        return -1;
    uint32_t ended = 0;
    uint64_t t = 0, last = 0;
    for (;; t++) {
        if (t >= MIX_MAX_WALK) {
            free(used);
            return -1;
        }
        if (asked && t == asked * m->slots_step) {
            last = asked;
            break;
        }
        uint32_t i = pick(m->src, m->n, t, used);
        if (++used[i] == m->src[i].pass_slots) {
            uint64_t step = t / m->slots_step + 1;
            if (!m->src[i].repeat) { /* the first stop-set to end */
                last = step;
                break;
            }
            if (++ended == m->n) { /* every set a repeat-set: the slowest one's pass */
                last = step;
                break;
            }
        }
    }
    free(used);
    m->steps = last;
    return 0;
}

SPR_API uint32_t spr_mix_default_partitions(uint64_t global_batch)
{
    uint64_t top = global_batch / 8 < SP_ORDER_MAX_DEFAULT_PARTITIONS ? global_batch / 8 : SP_ORDER_MAX_DEFAULT_PARTITIONS;
    for (uint64_t p = top; p > 1; p--)
        if (global_batch % p == 0)
            return (uint32_t)p;
    return 1;
}

SPR_API spr_mix *spr_mix_open(spr_set *const *sets, const double *weights, const int *policies, uint32_t nsets,
                              const spr_iter_options *opts, size_t opts_size, uint64_t skip_steps,
                              uint64_t epoch_steps_asked, char *err, size_t err_len, int *code)
{
    spr_iter_options o = {0};
    if (code)
        *code = SPR_ERR_USAGE;
    if (!sets || !weights || !opts || opts_size > sizeof o) {
        fail(err, err_len, "spr_mix_open: %s", !opts || !sets || !weights ? "no sets, weights or options"
                                                                         : "options larger than this library's");
        return NULL;
    }
    if (nsets < 1 || nsets > SPR_MAX_MIX_SETS) {
        fail(err, err_len, "a mix of %u sets: not in 1..%d", nsets, SPR_MAX_MIX_SETS);
        return NULL;
    }
    memcpy(&o, opts, opts_size);
    if (o.nparts == 0)
        o.nparts = 1;
    if (o.skip_records) {
        fail(err, err_len, "a mix resumes by its steps (skip_steps), not skip_records");
        return NULL;
    }
    if (o.batch < 1 || o.batch > SPR_MAX_BATCH || o.part >= o.nparts) {
        fail(err, err_len, "batch %u, part %u of %u: out of range", o.batch, o.part, o.nparts);
        return NULL;
    }
    uint64_t global = (uint64_t)o.batch * o.nparts;
    uint32_t p = o.partitions ? o.partitions : (o.flags & SPR_SHUFFLE) ? spr_mix_default_partitions(global) : o.nparts;
    if (global % p) {
        fail(err, err_len, "%u partitions: they must divide the global batch %llu", p, (unsigned long long)global);
        return NULL;
    }
    if (p % o.nparts) {
        fail(err, err_len,
             "world size %u: it must divide the %u partitions of the global batch %llu (allowed world sizes: the "
             "divisors of %u)", o.nparts, p, (unsigned long long)global, p);
        return NULL;
    }
    double sum = 0;
    for (uint32_t i = 0; i < nsets; i++) {
        if (!sets[i]) {
            fail(err, err_len, "set %u: NULL", i);
            return NULL;
        }
        if (!(weights[i] > 0) || weights[i] > 1e300) {
            fail(err, err_len, "set %u: weight %g: it must be above 0 and finite", i, weights[i]);
            return NULL;
        }
        if (policies && policies[i] != SPR_MIX_STOP && policies[i] != SPR_MIX_REPEAT) {
            fail(err, err_len, "set %u: policy %d: SPR_MIX_STOP or SPR_MIX_REPEAT", i, policies[i]);
            return NULL;
        }
        sum += weights[i];
    }
    spr_mix *m = calloc(1, sizeof *m);
    if (!m || !(m->src = calloc(nsets, sizeof *m->src))) {
        free(m);
        fail(err, err_len, "out of memory");
        if (code)
            *code = SPR_ERR_SYSTEM;
        return NULL;
    }
    m->n = nsets;
    if (!(m->pos = malloc((size_t)o.batch * sizeof *m->pos)) || !(m->ranks = calloc(o.nparts, sizeof *m->ranks))) {
        spr_mix_free(m);
        fail(err, err_len, "out of memory");
        if (code)
            *code = SPR_ERR_SYSTEM;
        return NULL;
    }
    m->batch = o.batch;
    m->partitions = p, m->per_rank = p / o.nparts, m->slots_step = global / p;
    uint32_t h0 = 0, w0 = 0, c0 = 0;
    for (uint32_t i = 0; i < nsets; i++) {
        mix_src *s = &m->src[i];
        s->set = sets[i];
        s->w = weights[i] / sum;
        s->repeat = policies && policies[i] == SPR_MIX_REPEAT;
        s->count = spr_count(sets[i]);
        s->pass_slots = (s->count + p - 1) / p;
        uint32_t h, w, c;
        spr_shape(sets[i], &h, &w, &c);
        int enc = spr_kind(sets[i]) == SPR_ENCODED;
        if (enc) /* a view's records */
            h = w = o.size, c = 3;
        if (i == 0)
            h0 = h, w0 = w, c0 = c;
        else if (h != h0 || w != w0 || c != c0 || spr_dtype(sets[i]) != spr_dtype(sets[0]) ||
                 enc != (spr_kind(sets[0]) == SPR_ENCODED)) {
            static const char *const names[] = {"?", "uint8", "float16", "float32"};
            int d = spr_dtype(sets[i]), d0 = spr_dtype(sets[0]);
            fail(err, err_len,
                 "set %u: records of %ux%ux%u %s%s, set 0's are %ux%ux%u %s%s: a mix takes one shape and dtype", i,
                 h, w, c, names[d >= 1 && d <= 3 ? d : 0], enc ? " (encoded)" : "", h0, w0, c0,
                 names[d0 >= 1 && d0 <= 3 ? d0 : 0], spr_kind(sets[0]) == SPR_ENCODED ? " (encoded)" : "");
            if (code)
                *code = SPR_ERR_DATA;
            spr_mix_free(m);
            return NULL;
        }
    }
    /* each set's iterators: P records a step, one a partition; the window is the mix's */
    o.batch = m->per_rank;
    o.partitions = p;
    if (!o.window_records) { /* 16 global batches of the mix, at most 32 MiB of records */
        size_t rb = spr_kind(sets[0]) == SPR_ENCODED ? (size_t)o.size * o.size * 3 : spr_record_bytes(sets[0]);
        uint64_t cap = (32ull << 20) / (rb ? rb : 1), want = 16 * global;
        want = want < cap ? want : cap;
        o.window_records = (uint32_t)(want > p ? (want < UINT32_MAX ? want : UINT32_MAX) : p);
    }
    m->o = o;
    for (uint32_t i = 0; i < nsets; i++) { /* what a pass's iterator refuses, refused here */
        spr_iter_options t = o;
        t.threads = 0;
        t.seed = pass_seed(o.seed, i, 0); /* pass 0's order: a remote set's cache is told the shards it needs first */
        spr_iter *it = spr_iter_open(sets[i], &t, sizeof t);
        if (!it) {
            fail(err, err_len, "set %u: %s", i, spr_error(sets[i]));
            if (code)
                *code = spr_errcode(sets[i]);
            spr_mix_free(m);
            return NULL;
        }
        if (i == 0)
            m->rb = spr_iter_record_bytes(it);
        spr_iter_free(it);
    }
    if (epoch_steps(m, epoch_steps_asked)) {
        fail(err, err_len, "the weights are too far apart for these sets: the epoch's end lies beyond %llu slots",
             (unsigned long long)MIX_MAX_WALK);
        spr_mix_free(m);
        return NULL;
    }
    m->step = skip_steps < m->steps ? skip_steps : m->steps;
    if (m->step > MIX_MAX_WALK / m->slots_step) {
        fail(err, err_len, "a resume at step %llu: beyond %llu slots", (unsigned long long)m->step,
             (unsigned long long)MIX_MAX_WALK);
        spr_mix_free(m);
        return NULL;
    }
    uint64_t *used = calloc(nsets, sizeof *used);
    if (!used) {
        fail(err, err_len, "out of memory");
        if (code)
            *code = SPR_ERR_SYSTEM;
        spr_mix_free(m);
        return NULL;
    }
    walk(m, m->step * m->slots_step, used);
    for (uint32_t i = 0; i < nsets; i++)
        m->src[i].used = used[i];
    free(used);
    if (code)
        *code = SPR_ERR_NONE;
    return m;
}

/* Set i's iterator at its slot u: pass u / pass_slots, after u % pass_slots
 * of its slots. */
static int seek(spr_mix *m, uint32_t i, uint64_t u)
{
    mix_src *s = &m->src[i];
    uint64_t pass = u / s->pass_slots, within = u % s->pass_slots;
    if (s->it && s->pass == pass)
        return 0;
    if (s->it)
        s->bytes_done += spr_iter_bytes_read(s->it);
    spr_iter_free(s->it);
    spr_iter_options o = m->o;
    o.seed = pass_seed(m->o.seed, i, pass);
    o.skip_records = sp_order_ranks_consumed(s->count, m->partitions, 1, o.nparts, o.part, o.part + 1, within);
    if (!(s->it = spr_iter_open(s->set, &o, sizeof o))) {
        snprintf(m->error, sizeof m->error, "set %u: %s", i, spr_error(s->set));
        m->errcode = spr_errcode(s->set);
        return -1;
    }
    s->pass = pass;
    return 0;
}

/* Adds a slot (set s's slot `within` of its pass) to the layout of the step
 * under way, this rank's records of it going from index got of its batch:
 * the slot's records are its partitions' in order, so the ranks' in rank
 * order, and the slot's first global index is the step's records so far. */
static void slot_layout(spr_mix *m, const mix_src *s, uint64_t within, uint32_t got)
{
    uint32_t world = m->o.nparts, me = m->o.part;
    uint64_t first = m->global;
    for (uint32_t r = 0; r < world; r++) {
        uint64_t k = sp_order_ranks_step(s->count, m->partitions, 1, world, r, r + 1, within);
        if (r == me)
            for (uint64_t q = 0; q < k && got + q < m->batch; q++)
                m->pos[got + q] = first + q;
        m->ranks[r] += (uint32_t)k;
        first += k;
    }
    m->global = first;
}

SPR_API uint32_t spr_mix_layout(const spr_mix *m, uint64_t *positions, uint64_t *global, uint32_t *fewest)
{
    uint32_t least = m->ranks[0];
    for (uint32_t r = 1; r < m->o.nparts; r++)
        least = m->ranks[r] < least ? m->ranks[r] : least;
    if (positions)
        memcpy(positions, m->pos, m->got * sizeof *positions);
    if (global)
        *global = m->global;
    if (fewest)
        *fewest = least;
    return m->got;
}

SPR_API int spr_mix_next(spr_mix *m, void *pixels, int32_t *labels, int32_t *labels2, uint64_t *indices,
                         int32_t *sources, uint32_t *n)
{
    uint32_t got = 0;
    if (n)
        *n = 0;
    if (!pixels) {
        snprintf(m->error, sizeof m->error, "spr_mix_next: pixels is NULL");
        m->errcode = SPR_ERR_USAGE;
        return -1;
    }
    if (m->step >= m->steps)
        return 0;
    uint64_t *used = malloc(m->n * sizeof *used);
    if (!used) {
        snprintf(m->error, sizeof m->error, "out of memory");
        m->errcode = SPR_ERR_SYSTEM;
        return -1;
    }
    for (uint32_t i = 0; i < m->n; i++)
        used[i] = m->src[i].used;
    m->global = 0, m->got = 0;
    memset(m->ranks, 0, m->o.nparts * sizeof *m->ranks);
    for (uint64_t j = 0; j < m->slots_step; j++) {
        uint32_t i = pick(m->src, m->n, m->step * m->slots_step + j, used);
        uint64_t u = used[i]++;
        mix_src *s = &m->src[i];
        if (!s->repeat && u >= s->pass_slots) /* a stop-set that ran out: the epoch's last step */
            continue;
        slot_layout(m, s, u % s->pass_slots, got);
        if (seek(m, i, u)) {
            free(used);
            return -1;
        }
        uint32_t k = 0;
        if (spr_iter_next_full(s->it, (uint8_t *)pixels + (size_t)got * m->rb, labels ? labels + got : NULL,
                               labels2 ? labels2 + got : NULL, indices ? indices + got : NULL, &k) < 0) {
            snprintf(m->error, sizeof m->error, "set %u: %s", i, spr_iter_error(s->it));
            m->errcode = spr_iter_errcode(s->it);
            free(used);
            return -1;
        }
        for (uint32_t r = 0; sources && r < k; r++)
            sources[got + r] = (int32_t)i;
        got += k;
    }
    m->got = got;
    for (uint32_t i = 0; i < m->n; i++)
        m->src[i].used = used[i];
    free(used);
    m->step++;
    if (n)
        *n = got;
    return 1;
}

SPR_API uint64_t spr_mix_slots(const spr_mix *m, uint32_t i, uint64_t steps)
{
    if (i >= m->n)
        return 0;
    uint64_t *used = calloc(m->n, sizeof *used);
    if (!used)
        return 0;
    walk(m, steps * m->slots_step, used);
    uint64_t u = used[i];
    free(used);
    return u;
}

SPR_API uint64_t spr_mix_steps(const spr_mix *m) { return m->steps; }
SPR_API uint64_t spr_mix_step(const spr_mix *m) { return m->step; }
SPR_API uint32_t spr_mix_partitions(const spr_mix *m) { return m->partitions; }
SPR_API size_t spr_mix_record_bytes(const spr_mix *m) { return m->rb; }
SPR_API const char *spr_mix_error(const spr_mix *m) { return m->error; }
SPR_API int spr_mix_errcode(const spr_mix *m) { return m->errcode; }

SPR_API uint64_t spr_mix_bytes_read(const spr_mix *m)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < m->n; i++)
        sum += m->src[i].bytes_done + (m->src[i].it ? spr_iter_bytes_read(m->src[i].it) : 0);
    return sum;
}

SPR_API void spr_mix_free(spr_mix *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; m->src && i < m->n; i++)
        spr_iter_free(m->src[i].it);
    free(m->src);
    free(m->pos);
    free(m->ranks);
    free(m);
}
