/* The canonical order of an epoch (shards/order.h). */
#include "shards/order.h"

#include <stdlib.h>

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Records partition q of p holds in a stream of n. */
static uint64_t partition_records(uint64_t n, uint32_t p, uint32_t q)
{
    return n / p + (q < n % p ? 1 : 0);
}

uint32_t sp_order_default_partitions(uint64_t global_batch)
{
    for (uint32_t p = SP_ORDER_MAX_DEFAULT_PARTITIONS; p > 1; p--)
        if (global_batch % p == 0)
            return p;
    return 1;
}

void sp_order_perm(uint64_t seed, int shuffle, uint32_t q, uint64_t j, uint32_t *perm, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    if (!shuffle)
        return;
    uint64_t x = seed ^ (0x5851F42D4C957F2Dull * ((uint64_t)q + 1)) ^ (0xD1B54A32D192ED03ull * (j + 1));
    for (uint32_t i = n; i > 1; i--) {
        uint32_t k = (uint32_t)(splitmix(&x) % i), t = perm[i - 1];
        perm[i - 1] = perm[k];
        perm[k] = t;
    }
}

void sp_order_free(sp_order *o)
{
    free(o->lane);
    free(o->segs);
    o->lane = NULL, o->segs = NULL;
}

int sp_order_plan(sp_order *o, const uint64_t *counts, size_t nshards, uint64_t seed, int shuffle,
                  uint32_t local_batch, uint32_t rank, uint32_t world, uint32_t partitions, uint64_t window_records,
                  sp_err *err)
{
    *o = (sp_order){0};
    uint64_t global = (uint64_t)local_batch * world;
    uint32_t p = partitions ? partitions : sp_order_default_partitions(global);
    if (global % p)
        return sp_fail(err, SP_EXIT_USAGE, "%u partitions: they must divide the global batch (%llu = %u ranks x %u)", p,
                       (unsigned long long)global, world, local_batch);
    if (p % world)
        return sp_fail(err, SP_EXIT_USAGE,
                       "world size %u: it must divide the %u partitions of the global batch %llu (allowed world "
                       "sizes: the divisors of %u)", world, p, (unsigned long long)global, p);
    o->partitions = p;
    o->lanes = p / world;
    o->per_step = (uint32_t)(global / p);
    uint64_t w = window_records / p / o->per_step * o->per_step;
    o->window = (uint32_t)(w > o->per_step ? (w < UINT32_MAX / 2 ? w : UINT32_MAX / 2 / o->per_step * o->per_step)
                                           : o->per_step);
    size_t *order = malloc((nshards ? nshards : 1) * sizeof *order);
    o->lane = calloc(o->lanes, sizeof *o->lane);
    /* a lane's runs: the shards it crosses, at most nshards + lanes in all */
    o->segs = malloc((nshards + o->lanes) * sizeof *o->segs);
    if (!order || !o->lane || !o->segs) {
        free(order);
        sp_order_free(o);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory for the order of %zu shards", nshards);
    }
    uint64_t n = 0, rng = seed;
    for (size_t i = 0; i < nshards; i++)
        order[i] = i, n += counts[i];
    if (shuffle)
        for (size_t i = nshards; i > 1; i--) {
            size_t j = (size_t)(splitmix(&rng) % i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
    uint64_t per = n / p, extra = n % p;
    for (uint32_t l = 0; l < o->lanes; l++) {
        uint32_t q = rank * o->lanes + l;
        uint64_t lo = q * per + (q < extra ? q : extra), hi = lo + partition_records(n, p, q), at = 0;
        sp_order_lane *ln = &o->lane[l];
        ln->partition = q, ln->records = hi - lo, ln->seg0 = o->nsegs;
        for (size_t i = 0; i < nshards; i++) {
            uint64_t c = counts[order[i]], a = lo > at ? lo : at, b = hi < at + c ? hi : at + c;
            if (a < b)
                o->segs[o->nsegs++] = (sp_order_seg){order[i], a - at, b - a, a - lo};
            at += c;
        }
        ln->nsegs = o->nsegs - ln->seg0;
        o->records += ln->records;
    }
    free(order);
    /* lane 0 is the longest (the first partitions hold the extra records) */
    o->steps = (o->lane[0].records + o->per_step - 1) / o->per_step;
    o->windows = (o->lane[0].records + o->window - 1) / o->window;
    return 0;
}

uint32_t sp_order_piece(const sp_order *o, uint32_t l, uint64_t step)
{
    uint64_t a = step * o->per_step, n = o->lane[l].records;
    return a >= n ? 0 : n - a < o->per_step ? (uint32_t)(n - a) : o->per_step;
}

void sp_order_locate(const sp_order *o, uint64_t skip, uint64_t *step, uint32_t *lane, uint32_t *pos)
{
    /* every lane gives b records a step until the last lane (the shortest) runs short */
    uint64_t full = o->lane[o->lanes - 1].records / o->per_step, per = (uint64_t)o->lanes * o->per_step;
    uint64_t s = skip / per < full ? skip / per : full;
    skip -= s * per;
    for (; s < o->steps; s++) {
        uint64_t in = 0;
        for (uint32_t l = 0; l < o->lanes; l++)
            in += sp_order_piece(o, l, s);
        if (skip < in)
            break;
        skip -= in;
    }
    *step = s, *lane = 0, *pos = 0;
    if (s == o->steps)
        return;
    for (uint32_t l = 0; l < o->lanes; l++) {
        uint32_t k = sp_order_piece(o, l, s);
        if (skip < k) {
            *lane = l, *pos = (uint32_t)skip;
            return;
        }
        skip -= k;
    }
}

uint64_t sp_order_ranks_step(uint64_t n, uint32_t p, uint32_t b, uint32_t world, uint32_t r0, uint32_t r1,
                             uint64_t step)
{
    uint64_t sum = 0, a = step * b;
    for (uint32_t q = r0 * (p / world); q < r1 * (p / world); q++) {
        uint64_t k = partition_records(n, p, q);
        sum += a >= k ? 0 : k - a < b ? k - a : b;
    }
    return sum;
}

uint64_t sp_order_ranks_consumed(uint64_t n, uint32_t p, uint32_t b, uint32_t world, uint32_t r0, uint32_t r1,
                                 uint64_t steps)
{
    uint64_t sum = 0, a = steps * b;
    for (uint32_t q = r0 * (p / world); q < r1 * (p / world); q++) {
        uint64_t k = partition_records(n, p, q);
        sum += a < k ? a : k;
    }
    return sum;
}
