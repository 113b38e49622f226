/* The load-time views timed in process on one thread: JPEG files held in memory, each round a new epoch's train
 * views (or the eval views) of every file; prints the best round's images per second of the thread's CPU time.
 * usage: view_bench train|eval SIZE ROUNDS FLAGS FILE...   prints "IMAGES_PER_S BEST_ROUND_S" */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline/views.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* per core: the thread's CPU time, not a shared machine's waits */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 6 || (strcmp(argv[1], "train") && strcmp(argv[1], "eval"))) {
        fprintf(stderr, "usage: view_bench train|eval SIZE ROUNDS FLAGS FILE...\n");
        return 2;
    }
    int train = !strcmp(argv[1], "train");
    uint32_t size = (uint32_t)atoi(argv[2]);
    int rounds = atoi(argv[3]);
    unsigned flags = (unsigned)atoi(argv[4]);
    int n = argc - 5;
    uint8_t **data = calloc((size_t)n, sizeof *data);
    size_t *len = calloc((size_t)n, sizeof *len);
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(argv[i + 5], "rb");
        if (!f) {
            perror(argv[i + 5]);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        len[i] = (size_t)ftell(f);
        rewind(f);
        data[i] = malloc(len[i]);
        if (fread(data[i], 1, len[i], f) != len[i])
            return 1;
        fclose(f);
    }
    uint8_t *out = malloc((size_t)size * size * 3);
    sp_view_scratch s = {0};
    double best = 1e30;
    unsigned checksum = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int i = 0; i < n; i++) {
            sp_err err = {0};
            int rc = train ? sp_view_train_ex(data[i], len[i], size, 1, (uint64_t)r, (uint64_t)i, flags, out, NULL, &s,
                                              &err)
                           : sp_view_eval(data[i], len[i], size, out, &s, &err);
            if (rc) {
                fprintf(stderr, "view_bench: %s: %s\n", argv[i + 5], err.msg);
                return 1;
            }
            checksum += out[(size_t)(i % (int)size) * 3];
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    printf("%.1f %.4f %u\n", n / best, best, checksum);
    sp_view_scratch_free(&s);
    return 0;
}
