/* The peer for the decode benchmarks: bare libjpeg-turbo (TurboJPEG API),
 * tjDecompress2 of each file to RGB, from memory, one thread; at full size,
 * or with -8 at 1/8 scale (the DCT-scaled decode draft mode uses), or with
 * -d SIZE at the smallest of 1/2, 1/4, 1/8 that keeps both sides at least
 * SIZE (full size when none does: sp-decode --resize SIZE's DCT scale).
 * usage: tj_decode ROUNDS [-8 | -d SIZE] FILE...   prints "IMAGES SECONDS" */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tj_decode ROUNDS FILE...\n");
        return 2;
    }
    int rounds = atoi(argv[1]), first = 2, eighth = 0, draft = 0;
    if (argc > 3 && !strcmp(argv[2], "-8"))
        eighth = 1, first = 3;
    else if (argc > 4 && !strcmp(argv[2], "-d"))
        draft = atoi(argv[3]), first = 4;
    int n = argc - first;
    unsigned char **data = calloc((size_t)n, sizeof *data);
    unsigned long *len = calloc((size_t)n, sizeof *len);
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(argv[i + first], "rb");
        if (!f) {
            perror(argv[i + first]);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        len[i] = (unsigned long)ftell(f);
        rewind(f);
        data[i] = malloc(len[i]);
        if (fread(data[i], 1, len[i], f) != len[i])
            return 1;
        fclose(f);
    }
    tjhandle tj = tjInitDecompress();
    unsigned char *out = NULL;
    size_t cap = 0;
    double t0 = now();
    long images = 0;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++) {
            int w, h, sub, cs;
            if (tjDecompressHeader3(tj, data[i], len[i], &w, &h, &sub, &cs))
                return fprintf(stderr, "%s: %s\n", argv[i + first], tjGetErrorStr2(tj)), 1;
            if (eighth)
                w = (w + 7) / 8, h = (h + 7) / 8;
            for (int d = 8; draft && d >= 2; d /= 2)
                if ((w + d - 1) / d >= draft && (h + d - 1) / d >= draft) {
                    w = (w + d - 1) / d, h = (h + d - 1) / d;
                    break;
                }
            size_t need = (size_t)w * h * 3;
            if (need > cap)
                out = realloc(out, cap = need);
            if (tjDecompress2(tj, data[i], len[i], out, w, 0, h, TJPF_RGB, 0))
                return fprintf(stderr, "%s: %s\n", argv[i + first], tjGetErrorStr2(tj)), 1;
            images++;
        }
    }
    printf("%ld %.6f\n", images, now() - t0);
    tjDestroy(tj);
    return 0;
}
