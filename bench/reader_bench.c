/* Reads epochs of a shard split through libshardpipe-reader and prints
 * "RECORDS BYTES SECONDS" (pixel bytes delivered to the caller) of the
 * fastest one.
 * usage: reader_bench DIR SPLIT BATCH shuffle|plain THREADS [EPOCHS [train|eval SIZE]]
 * THREADS: the reader's threads (spr_iter_options.threads); "direct" is 0
 * and "prefetch" 1. EPOCHS (default 1): epochs in this process, each its
 * own iterator on the one open set, as a training loop runs them (the
 * later ones reuse the window buffers the set keeps). train|eval SIZE: the
 * view an encoded set is decoded through (spr_iter_options.view, .size). */
#define _POSIX_C_SOURCE 200809L
#include <shardpipe/reader.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7 && argc != 9)
        return 2;
    char err[1024];
    spr_set *s = spr_open(argv[1], argv[2], err, sizeof err);
    if (!s) {
        fprintf(stderr, "reader_bench: %s\n", err);
        return 1;
    }
    uint32_t batch = (uint32_t)atoi(argv[3]);
    int epochs = argc == 7 ? atoi(argv[6]) : 1;
    spr_iter_options o = {.batch = batch, .seed = 1, .flags = !strcmp(argv[4], "shuffle") ? SPR_SHUFFLE : 0};
    o.threads = !strcmp(argv[5], "direct") ? 0 : !strcmp(argv[5], "prefetch") ? 1 : (uint32_t)atoi(argv[5]);
    if (argc == 9) {
        o.view = !strcmp(argv[7], "train") ? SPR_VIEW_TRAIN : SPR_VIEW_EVAL;
        o.size = (uint32_t)atoi(argv[8]);
    }
    size_t rb = argc == 9 ? (size_t)o.size * o.size * 3 : spr_record_bytes(s);
    unsigned char *px = malloc(rb * batch);
    int32_t *labels = malloc(sizeof *labels * batch);
    unsigned long long records = 0;
    double best = 0;
    for (int e = 0; e < epochs; e++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        o.seed = 1 + (uint64_t)e;
        spr_iter *it = spr_iter_open(s, &o, sizeof o);
        if (!it) {
            fprintf(stderr, "reader_bench: %s\n", spr_error(s));
            goto fail;
        }
        uint32_t n;
        int st;
        volatile unsigned sink = 0;
        records = 0;
        while ((st = spr_iter_next(it, px, labels, &n)) > 0) {
            records += n;
            sink += px[0] + (unsigned)labels[0]; /* the caller touches the batch */
        }
        spr_iter_free(it);
        if (st < 0) {
            fprintf(stderr, "reader_bench: %s\n", spr_error(s));
            goto fail;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
        if (e == 0 || secs < best)
            best = secs;
    }
    printf("%llu %llu %.6f\n", records, records * (unsigned long long)rb, best);
    spr_close(s);
    free(px);
    free(labels);
    return 0;
fail:
    spr_close(s);
    free(px);
    free(labels);
    return 1;
}
