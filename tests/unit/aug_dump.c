/* A test helper around nn/data.h: one batch of a split as the trainer sees it, augmented and not, with the
 * augmentation's draws, for the torchvision comparison (tests/tools/test_pad_crop_flip.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/data.h"
#include "nn/train.h"

static int write_all(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
        perror(path);
        return -1;
    }
    return 0;
}

/* usage: aug_dump SHARDS SPLIT AUGMENT PAD SEED N OUTDIR
 * Writes into OUTDIR, for the first N records of SPLIT in manifest order:
 * aug.f32 (N, C, H, W) with AUGMENT drawn from SEED, plain.f32 the same
 * records unaugmented, draws.i32 (N, 3: top, left, flip) the draws replayed
 * from a pass started alike, and norm.f32 (2, C: scale, shift: value = raw *
 * scale + shift). Prints "C H W". */
int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: aug_dump SHARDS SPLIT AUGMENT PAD SEED N OUTDIR\n");
        return 2;
    }
    int augment = nn_augment_from_name(argv[3]), n = atoi(argv[6]);
    uint64_t seed = strtoull(argv[5], NULL, 10);
    if (augment < 0 || n < 1) {
        fprintf(stderr, "aug_dump: bad augment or N\n");
        return 2;
    }
    nn_data d[3];
    sp_err err = {0};
    for (int i = 0; i < 3; i++) {
        if (nn_data_open(&d[i], argv[1], argv[2], (uint32_t)n, &err)) {
            fprintf(stderr, "aug_dump: %s\n", err.msg);
            return 1;
        }
        d[i].pad = atoi(argv[4]);
    }
    size_t in = (size_t)d[0].c * d[0].h * d[0].w;
    float *aug = malloc((size_t)n * in * sizeof *aug), *plain = malloc((size_t)n * in * sizeof *plain);
    int32_t *labels = malloc((size_t)n * sizeof *labels), *draws = malloc((size_t)n * 3 * sizeof *draws);
    if (!aug || !plain || !labels || !draws)
        return 1;
    if (nn_data_start(&d[0], seed, 0, augment, &err) || nn_data_next(&d[0], aug, labels, &err) != n ||
        nn_data_start(&d[1], seed, 0, NN_AUG_NONE, &err) || nn_data_next(&d[1], plain, labels, &err) != n ||
        nn_data_start(&d[2], seed, 0, augment, &err)) {
        fprintf(stderr, "aug_dump: %s\n", err.code ? err.msg : "the split is shorter than N");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        nn_aug_draw a;
        nn_data_draw(&d[2], &a);
        draws[3 * i] = (int32_t)a.top, draws[3 * i + 1] = (int32_t)a.left, draws[3 * i + 2] = a.flip;
    }
    float norm[8];
    for (uint32_t c = 0; c < d[0].c; c++)
        norm[c] = d[0].scale[c], norm[d[0].c + c] = d[0].shift[c];
    int rc = write_all(argv[7], "aug.f32", aug, (size_t)n * in * sizeof *aug) ||
             write_all(argv[7], "plain.f32", plain, (size_t)n * in * sizeof *plain) ||
             write_all(argv[7], "draws.i32", draws, (size_t)n * 3 * sizeof *draws) ||
             write_all(argv[7], "norm.f32", norm, 2 * d[0].c * sizeof *norm);
    printf("%u %u %u\n", d[0].c, d[0].h, d[0].w);
    for (int i = 0; i < 3; i++)
        nn_data_close(&d[i]);
    free(aug), free(plain), free(labels), free(draws);
    return rc ? 1 : 0;
}
