/* The canonical order of an epoch (docs/elastic-order.md): which records a
 * rank of a world reads at each global step, independent of the world size.
 *
 * The epoch's stream is the shards in the seed's order (as listed without
 * shuffling). It is cut into P partitions, contiguous runs whose sizes
 * differ by at most one (the first N % P hold one more). A global step
 * takes b = B / P records from each partition (B the global batch), in the
 * partition's own order: its records in windows of `window` records (a
 * multiple of b), each window permuted by (seed, partition, window). Rank r
 * of W reads partitions r*P/W .. (r+1)*P/W - 1, its "lanes"; its local batch
 * at a step is the lanes' pieces of that step, lane by lane. A partition
 * that has run out gives nothing; the last steps may be short. */
#ifndef SP_ORDER_H
#define SP_ORDER_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"

#define SP_ORDER_MAX_DEFAULT_PARTITIONS 64

/* A run of one shard's records inside one lane. */
typedef struct sp_order_seg {
    size_t shard;       /* index in the set's shard list */
    uint64_t start, count; /* records [start, start + count) of that shard */
    uint64_t at;        /* the run's first record's position in its partition's stream */
} sp_order_seg;

typedef struct sp_order_lane {
    uint32_t partition;
    uint64_t records;  /* the partition's records in an epoch */
    size_t seg0, nsegs; /* its runs: segs[seg0 .. seg0 + nsegs) */
} sp_order_lane;

typedef struct sp_order {
    uint32_t partitions, lanes; /* P, and P / W of them this rank's */
    uint32_t per_step;          /* b: records a partition gives a step */
    uint32_t window;            /* a partition's shuffle window, a multiple of b */
    uint64_t records;           /* this rank's records in an epoch */
    uint64_t steps;             /* steps in which this rank gets at least one record */
    uint64_t windows;           /* windows of its longest lane */
    sp_order_lane *lane;        /* lanes of them (owned) */
    sp_order_seg *segs;         /* owned */
    size_t nsegs;
} sp_order;

/* The default partition count of a global batch: its largest divisor not
 * above SP_ORDER_MAX_DEFAULT_PARTITIONS. */
uint32_t sp_order_default_partitions(uint64_t global_batch);

/* Plans rank `rank` of `world` over shards of counts[0 .. nshards) for a
 * global batch of world x local_batch records, `partitions` partitions (0:
 * the default above), a global shuffle window of `window_records` (each
 * partition's is its 1/P, rounded down to a multiple of b, at least b);
 * shuffle = 0 keeps the shards in their listed order. 0, or -1 with err
 * (SP_EXIT_USAGE: a world size that does not divide the partitions, a
 * partition count that does not divide the global batch; SP_EXIT_SYSTEM:
 * out of memory). */
int sp_order_plan(sp_order *o, const uint64_t *counts, size_t nshards, uint64_t seed, int shuffle,
                  uint32_t local_batch, uint32_t rank, uint32_t world, uint32_t partitions, uint64_t window_records,
                  sp_err *err);
void sp_order_free(sp_order *o);

/* Records lane l gives step `step` (0 .. b). */
uint32_t sp_order_piece(const sp_order *o, uint32_t l, uint64_t step);
/* Where this rank's stream stands after `skip` of its records (at most
 * o->records): the step, and the lane and the position in its piece of the
 * next record (*step = o->steps at the end). */
void sp_order_locate(const sp_order *o, uint64_t skip, uint64_t *step, uint32_t *lane, uint32_t *pos);
/* perm[0 .. n) of window j of partition q: the identity without shuffle,
 * else drawn from (seed, q, j) alone, so any thread may draw it and a
 * resume draws it without the windows before. */
void sp_order_perm(uint64_t seed, int shuffle, uint32_t q, uint64_t j, uint32_t *perm, uint32_t n);

/* Without a plan, from the set's record count n alone: the records ranks
 * [r0, r1) of `world` get at global step `step`, and in global steps
 * [0, steps), with p partitions of b records a step (p % world == 0). */
uint64_t sp_order_ranks_step(uint64_t n, uint32_t p, uint32_t b, uint32_t world, uint32_t r0, uint32_t r1,
                             uint64_t step);
uint64_t sp_order_ranks_consumed(uint64_t n, uint32_t p, uint32_t b, uint32_t world, uint32_t r0, uint32_t r1,
                                 uint64_t steps);

#endif
