/* cache_egress URL SPLIT EPOCHS SEED BATCH [PARTITIONS [PAUSE_MS]]: reads
 * EPOCHS epochs of SPLIT of the set at URL through libshardpipe-reader
 * (epoch e shuffled with seed SEED + e, its iterator told the next epoch's
 * seed SEED + e + 1 but in the last epoch, in PARTITIONS partitions, default
 * 1: one stream, one shard open at a time; each partition read holds a shard
 * of its own in the cache), pausing PAUSE_MS milliseconds after each batch
 * (default 0: a consumer's work), the cache and its limit from the
 * environment (SHARDPIPE_CACHE, SHARDPIPE_CACHE_LIMIT,
 * SHARDPIPE_CACHE_EVICTION), and prints the cache's own counters after each
 * epoch, one line each:
 *   epoch E records R downloads D bytes B hits H evictions V waits W first F
 * (D, B and W count from the start; W: opens of a shard not yet in the
 * cache; F: those of them in the epoch's first batch, which opens the
 * shards of its first window). Exit 0, or 1 with the reader's message. For
 * tests/tools/test_cache_eviction.sh and bench/bench_egress.py. */
#define _GNU_SOURCE
#include <shardpipe/reader.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "shards/cache.h"

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 8) {
        fprintf(stderr, "usage: cache_egress URL SPLIT EPOCHS SEED BATCH [PARTITIONS [PAUSE_MS]]\n");
        return 2;
    }
    int epochs = atoi(argv[3]);
    uint64_t seed = strtoull(argv[4], NULL, 10);
    uint32_t batch = (uint32_t)atoi(argv[5]), partitions = argc >= 7 ? (uint32_t)atoi(argv[6]) : 1;
    long pause_ms = argc == 8 ? atol(argv[7]) : 0;
    struct timespec pause = {pause_ms / 1000, pause_ms % 1000 * 1000000L};
    char err[1024];
    spr_set *s = spr_open(argv[1], argv[2], err, sizeof err);
    if (!s) {
        fprintf(stderr, "cache_egress: %s\n", err);
        return 1;
    }
    size_t rb = spr_record_bytes(s);
    void *px = malloc(rb * batch);
    int rc = px ? 0 : 1;
    for (int e = 0; e < epochs && !rc; e++) {
        /* the last epoch has no next one: nothing of it is prefetched */
        spr_iter_options o = {.batch = batch, .seed = seed + (uint64_t)e,
                              .flags = SPR_SHUFFLE | (e + 1 < epochs ? SPR_NEXT_SEED : 0),
                              .partitions = partitions, .next_seed = seed + (uint64_t)e + 1};
        sp_cache_stats st;
        sp_cache_get_stats(&st);
        uint64_t waits0 = st.waits, first = 0;
        spr_iter *it = spr_iter_open(s, &o, sizeof o);
        uint64_t records = 0;
        int n;
        while (it && (n = spr_iter_next(it, px, NULL, NULL)) > 0) {
            if (!records) {
                sp_cache_get_stats(&st);
                first = st.waits - waits0;
            }
            records += (uint64_t)n;
            if (pause_ms)
                nanosleep(&pause, NULL);
        }
        if (!it || n < 0) {
            fprintf(stderr, "cache_egress: %s\n", it ? spr_iter_error(it) : spr_error(s));
            rc = 1;
        }
        spr_iter_free(it);
        sp_cache_get_stats(&st);
        printf("epoch %d records %llu downloads %llu bytes %llu hits %llu evictions %llu waits %llu first %llu\n", e,
               (unsigned long long)records, (unsigned long long)st.downloads, (unsigned long long)st.download_bytes,
               (unsigned long long)st.hits, (unsigned long long)st.evictions, (unsigned long long)st.waits, (unsigned long long)first);
    }
    free(px);
    spr_close(s);
    return rc;
}
