/* The peer for the decode benchmark: bare libjpeg-turbo (TurboJPEG API),
 * tjDecompress2 of each file to full-size RGB, from memory, one thread.
 * usage: tj_decode ROUNDS FILE...   prints "IMAGES SECONDS" */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
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
    int rounds = atoi(argv[1]), n = argc - 2;
    unsigned char **data = calloc((size_t)n, sizeof *data);
    unsigned long *len = calloc((size_t)n, sizeof *len);
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(argv[i + 2], "rb");
        if (!f) {
            perror(argv[i + 2]);
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
                return fprintf(stderr, "%s: %s\n", argv[i + 2], tjGetErrorStr2(tj)), 1;
            size_t need = (size_t)w * h * 3;
            if (need > cap)
                out = realloc(out, cap = need);
            if (tjDecompress2(tj, data[i], len[i], out, w, 0, h, TJPF_RGB, 0))
                return fprintf(stderr, "%s: %s\n", argv[i + 2], tjGetErrorStr2(tj)), 1;
            images++;
        }
    }
    printf("%ld %.6f\n", images, now() - t0);
    tjDestroy(tj);
    return 0;
}
