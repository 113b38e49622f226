/* cache_egress URL SPLIT EPOCHS SEED BATCH [PARTITIONS]: reads EPOCHS epochs
 * of SPLIT of the set at URL through libshardpipe-reader (epoch e shuffled
 * with seed SEED + e, in PARTITIONS partitions, default 1: one stream, one
 * shard open at a time; each partition read holds a shard of its own in the
 * cache), the cache and its limit from the environment
 * (SHARDPIPE_CACHE, SHARDPIPE_CACHE_LIMIT, SHARDPIPE_CACHE_EVICTION), and
 * prints the cache's own counters after each epoch, one line each:
 *   epoch E records R downloads D bytes B hits H evictions V
 * (D and B count from the start). Exit 0, or 1 with the reader's message.
 * For tests/tools/test_cache_eviction.sh and bench/bench_egress.py. */
#include <shardpipe/reader.h>
#include <stdio.h>
#include <stdlib.h>

#include "shards/cache.h"

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: cache_egress URL SPLIT EPOCHS SEED BATCH [PARTITIONS]\n");
        return 2;
    }
    int epochs = atoi(argv[3]);
    uint64_t seed = strtoull(argv[4], NULL, 10);
    uint32_t batch = (uint32_t)atoi(argv[5]), partitions = argc == 7 ? (uint32_t)atoi(argv[6]) : 1;
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
        spr_iter_options o = {.batch = batch, .seed = seed + (uint64_t)e, .flags = SPR_SHUFFLE, .partitions = partitions};
        spr_iter *it = spr_iter_open(s, &o, sizeof o);
        uint64_t records = 0;
        int n;
        while (it && (n = spr_iter_next(it, px, NULL, NULL)) > 0)
            records += (uint64_t)n;
        if (!it || n < 0) {
            fprintf(stderr, "cache_egress: %s\n", it ? spr_iter_error(it) : spr_error(s));
            rc = 1;
        }
        spr_iter_free(it);
        sp_cache_stats st;
        sp_cache_get_stats(&st);
        printf("epoch %d records %llu downloads %llu bytes %llu hits %llu evictions %llu\n", e,
               (unsigned long long)records, (unsigned long long)st.downloads, (unsigned long long)st.download_bytes,
               (unsigned long long)st.hits, (unsigned long long)st.evictions);
    }
    free(px);
    spr_close(s);
    return rc;
}
