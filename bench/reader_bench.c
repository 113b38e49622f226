/* Reads one epoch of a shard split through libshardpipe-reader and prints
 * "RECORDS BYTES SECONDS" (pixel bytes delivered to the caller).
 * usage: reader_bench DIR SPLIT BATCH shuffle|plain prefetch|direct */
#define _POSIX_C_SOURCE 200809L
#include <shardpipe/reader.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    char err[1024];
    spr_set *s = spr_open(argv[1], argv[2], err, sizeof err);
    if (!s) {
        fprintf(stderr, "reader_bench: %s\n", err);
        return 1;
    }
    uint32_t batch = (uint32_t)atoi(argv[3]);
    int flags = (!strcmp(argv[4], "shuffle") ? SPR_SHUFFLE : 0) | (!strcmp(argv[5], "prefetch") ? SPR_PREFETCH : 0);
    size_t rb = spr_record_bytes(s);
    unsigned char *px = malloc(rb * batch);
    int32_t *labels = malloc(sizeof *labels * batch);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    spr_iter *it = spr_iter_new(s, batch, 1, flags, 0);
    uint32_t n;
    unsigned long long records = 0;
    volatile unsigned sink = 0;
    while (spr_iter_next(it, px, labels, &n) > 0) {
        records += n;
        sink += px[0] + (unsigned)labels[0]; /* the caller touches the batch */
    }
    spr_iter_free(it);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%llu %llu %.6f\n", records, records * (unsigned long long)rb,
           (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9);
    spr_close(s);
    free(px);
    free(labels);
    return 0;
}
