/* A test helper around pipeline/views.h: the train view's boxes, and train and eval views of files, for the Python checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/views.h"

static void usage(void)
{
    fprintf(stderr, "usage: view_dump boxes W H SEED EPOCH N          (lines: record x y w h flip fallback)\n"
                    "       view_dump train SIZE SEED EPOCH FLAGS OUTDIR FILE...\n"
                    "       view_dump eval SIZE OUTDIR FILE...\n"
                    "train and eval write OUTDIR/<index>.rgb (SIZE x SIZE x 3) for the index-th FILE, the record\n"
                    "number of its train view; train prints the boxes as boxes does\n");
    exit(2);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(len > 0 ? (size_t)len : 1);
    *n = p ? fread(p, 1, (size_t)len, f) : 0;
    fclose(f);
    return p;
}

static int dump(const char *dir, int index, const uint8_t *out, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%d.rgb", dir, index);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(out, 1, n, f) != n || fclose(f)) {
        perror(path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    if (!strcmp(argv[1], "boxes")) {
        if (argc != 7)
            usage();
        uint32_t w = (uint32_t)strtoul(argv[2], NULL, 10), h = (uint32_t)strtoul(argv[3], NULL, 10);
        uint64_t seed = strtoull(argv[4], NULL, 10), epoch = strtoull(argv[5], NULL, 10);
        long n = strtol(argv[6], NULL, 10);
        for (long r = 0; r < n; r++) {
            sp_view_box b;
            sp_view_train_box(w, h, seed, epoch, (uint64_t)r, NULL, &b);
            printf("%ld %d %d %d %d %d %d\n", r, b.x, b.y, b.w, b.h, b.flip, b.fallback);
        }
        return 0;
    }
    int train = !strcmp(argv[1], "train");
    if (!train && strcmp(argv[1], "eval"))
        usage();
    int first = train ? 7 : 4;
    if (argc < first)
        usage();
    uint32_t size = (uint32_t)strtoul(argv[2], NULL, 10);
    uint64_t seed = train ? strtoull(argv[3], NULL, 10) : 0, epoch = train ? strtoull(argv[4], NULL, 10) : 0;
    unsigned flags = train ? (unsigned)strtoul(argv[5], NULL, 10) : 0;
    const char *dir = argv[first - 1];
    size_t n_out = (size_t)size * size * 3;
    uint8_t *out = malloc(n_out);
    sp_view_scratch s = {0};
    int status = 0;
    for (int i = first; i < argc; i++) {
        size_t n = 0;
        uint8_t *bytes = slurp(argv[i], &n);
        if (!bytes) {
            perror(argv[i]);
            return 3;
        }
        sp_err err = {0};
        sp_view_box b;
        int rc = train ? sp_view_train_ex(bytes, n, size, seed, epoch, (uint64_t)(i - first), flags, out, &b, &s, &err)
                       : sp_view_eval(bytes, n, size, out, &s, &err);
        free(bytes);
        if (rc) {
            fprintf(stderr, "view_dump: %s: %s\n", argv[i], err.msg);
            status = 1;
            continue;
        }
        if (train)
            printf("%d %d %d %d %d %d %d\n", i - first, b.x, b.y, b.w, b.h, b.flip, b.fallback);
        if (dump(dir, i - first, out, n_out))
            return 3;
    }
    sp_view_scratch_free(&s);
    free(out);
    return status;
}
