/* The canonical order (shards/order.h) without any shard: for world sizes
 * 1, 2, 4 and 8 over 1005 records in uneven shards, the records of every
 * global step are the same set, every record comes once, a rank's lanes are
 * its partitions, and sp_order_locate finds every position of a rank's
 * stream; world sizes that do not divide the partitions are refused. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "shards/order.h"

#define NSHARDS 13
#define GLOBAL 8

/* Positions in the epoch's stream (partition q's record i is stream record
 * q's first + i) of every record rank `rank` of `world` gets, step by step,
 * into pos (records of the rank) and each step's count into per_step. */
static void walk(const sp_order *o, uint64_t *firsts, uint64_t *pos, uint32_t *per_step)
{
    size_t k = 0;
    for (uint64_t s = 0; s < o->steps; s++) {
        per_step[s] = 0;
        for (uint32_t l = 0; l < o->lanes; l++) {
            uint32_t n = sp_order_piece(o, l, s);
            for (uint32_t i = 0; i < n; i++)
                pos[k++] = firsts[o->lane[l].partition] + s * o->per_step + i;
            per_step[s] += n;
        }
    }
}

int main(void)
{
    uint64_t counts[NSHARDS], total = 0;
    for (int i = 0; i < NSHARDS; i++)
        counts[i] = 50 + (uint64_t)(i * 37 % 61), total += counts[i];
    counts[0] += 1005 - total, total = 1005; /* odd */
    sp_err err = {0};
    sp_order all;
    CHECK(sp_order_plan(&all, counts, NSHARDS, 7, 1, GLOBAL, 0, 1, 0, 16 * GLOBAL, &err) == 0, "%s", err.msg);
    CHECK(all.partitions == 8 && all.per_step == 1 && all.window == 16 && all.steps == 126, "%u %u %u %llu",
          all.partitions, all.per_step, all.window, (unsigned long long)all.steps);
    uint64_t firsts[GLOBAL] = {0};
    for (uint32_t q = 1; q < all.partitions; q++)
        firsts[q] = firsts[q - 1] + all.lane[q - 1].records;
    uint64_t *pos = malloc(total * sizeof *pos);
    uint32_t ref[200], got[200];
    walk(&all, firsts, pos, ref);
    for (int world = 2; world <= 8; world *= 2) {
        uint32_t sum[200] = {0};
        char *seen = calloc(total, 1);
        for (int r = 0; r < world; r++) {
            sp_order o;
            CHECK(sp_order_plan(&o, counts, NSHARDS, 7, 1, GLOBAL / world, r, world, 0, 16 * GLOBAL, &err) == 0,
                  "%s", err.msg);
            CHECK(o.lanes == (uint32_t)(8 / world) && o.lane[0].partition == (uint32_t)(r * 8 / world), "rank %d of %d", r,
                  world);
            walk(&o, firsts, pos, got);
            for (uint64_t i = 0; i < o.records; i++) {
                CHECK(pos[i] < total && !seen[pos[i]], "world %d: stream record %llu twice", world,
                      (unsigned long long)pos[i]);
                seen[pos[i] < total ? pos[i] : 0] = 1;
            }
            for (uint64_t s = 0; s < o.steps; s++)
                sum[s] += got[s];
            /* every position of the rank's stream located: the step and lane it falls in */
            uint64_t at = 0;
            for (uint64_t s = 0; s < o.steps; s++)
                for (uint32_t l = 0; l < o.lanes; l++)
                    for (uint32_t i = 0; i < sp_order_piece(&o, l, s); i++, at++) {
                        uint64_t ls;
                        uint32_t ll, lp;
                        sp_order_locate(&o, at, &ls, &ll, &lp);
                        CHECK(ls == s && ll == l && lp == i, "world %d rank %d: record %llu at %llu/%u/%u", world, r,
                              (unsigned long long)at, (unsigned long long)ls, ll, lp);
                    }
            uint64_t ls;
            uint32_t ll, lp;
            sp_order_locate(&o, o.records, &ls, &ll, &lp);
            CHECK(ls == o.steps, "the end located at step %llu", (unsigned long long)ls);
            sp_order_free(&o);
        }
        for (uint64_t s = 0; s < all.steps; s++)
            CHECK(sum[s] == ref[s], "world %d: step %llu holds %u records, not %u", world, (unsigned long long)s,
                  sum[s], ref[s]);
        CHECK(memchr(seen, 0, total) == NULL, "world %d: a record never came", world);
        free(seen);
    }
    /* the set of each step: partitions' positions are fixed, so equal counts per step and equal
     * lanes mean equal sets; the windows' permutations depend on (seed, partition, window) only */
    uint32_t a[16], b[16];
    sp_order_perm(7, 1, 3, 2, a, 16);
    sp_order_perm(7, 1, 3, 2, b, 16);
    CHECK(!memcmp(a, b, sizeof a), "a window's permutation differs between draws");
    sp_order_perm(7, 1, 3, 3, b, 16);
    CHECK(memcmp(a, b, sizeof a), "two windows, one permutation");
    sp_order o;
    CHECK(sp_order_plan(&o, counts, NSHARDS, 7, 1, 128, 0, 3, 0, 0, &err) == -1 && err.code == SP_EXIT_USAGE &&
              strstr(err.msg, "world size 3"), "%s", err.msg);
    CHECK(sp_order_plan(&o, counts, NSHARDS, 7, 1, 16, 0, 1, 5, 0, &err) == -1 && strstr(err.msg, "5 partitions"),
          "%s", err.msg);
    sp_order_free(&all);
    free(pos);
    return CHECK_DONE("test_order");
}
