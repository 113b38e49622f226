/* A user of libshardpipe-reader, built in the test through pkg-config:
 * prints one line per record, "label xxh3-of-pixels", in index order
 * (spr_read) or in the order of one epoch of the iterator.
 * usage: reader_dump DIR SPLIT index
 *        reader_dump DIR SPLIT iter BATCH SEED shuffle|plain prefetch|direct [PART NPARTS SKIP]
 * (iter with PART NPARTS SKIP: that part of the epoch, after SKIP records,
 * each line then ending in the record's index in the set) */
#include <shardpipe/reader.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    char err[1024];
    spr_set *s = spr_open(argv[1], argv[2], err, sizeof err);
    if (!s) {
        fprintf(stderr, "reader_dump: %s\n", err);
        return 1;
    }
    size_t rb = spr_record_bytes(s);
    uint32_t h, w, c;
    spr_shape(s, &h, &w, &c);
    double mean[4], std[4];
    int applied, nnorm = spr_normalization(s, mean, std, &applied);
    fprintf(stderr, "%llu records %ux%ux%u dtype %d classes %d (%s) norm %d\n", (unsigned long long)spr_count(s),
            h, w, c, spr_dtype(s), spr_num_classes(s), spr_class_name(s, 0), nnorm);
    int rc = 0;
    if (!strcmp(argv[3], "index")) {
        uint8_t *px = malloc(rb);
        for (uint64_t i = 0; i < spr_count(s) && !rc; i++) {
            int32_t label;
            if (spr_read(s, i, px, &label)) {
                fprintf(stderr, "reader_dump: %s\n", spr_error(s));
                rc = 1;
            } else {
                printf("%d %016llx\n", label, (unsigned long long)XXH3_64bits(px, rb));
            }
        }
        free(px);
    } else {
        uint32_t batch = (uint32_t)atoi(argv[4]);
        int flags = (!strcmp(argv[6], "shuffle") ? SPR_SHUFFLE : 0) | (!strcmp(argv[7], "prefetch") ? SPR_PREFETCH : 0);
        int parted = argc == 11;
        spr_iter *it = parted ? spr_iter_new_part(s, batch, strtoull(argv[5], NULL, 10), flags, 0,
                                                  (uint32_t)atoi(argv[8]), (uint32_t)atoi(argv[9]),
                                                  strtoull(argv[10], NULL, 10))
                              : spr_iter_new(s, batch, strtoull(argv[5], NULL, 10), flags, 0);
        if (!it) {
            fprintf(stderr, "reader_dump: %s\n", spr_error(s));
            spr_close(s);
            return 1;
        }
        uint8_t *px = malloc(rb * batch);
        int32_t *labels = malloc(sizeof *labels * batch);
        uint64_t *indices = malloc(sizeof *indices * batch);
        uint32_t n;
        int st;
        while ((st = spr_iter_next_indexed(it, px, labels, indices, &n)) > 0)
            for (uint32_t i = 0; i < n; i++) {
                printf("%d %016llx", labels[i], (unsigned long long)XXH3_64bits(px + i * rb, rb));
                if (parted)
                    printf(" %llu", (unsigned long long)indices[i]);
                printf("\n");
            }
        if (st < 0) {
            fprintf(stderr, "reader_dump: %s\n", spr_error(s));
            rc = 1;
        }
        spr_iter_free(it);
        free(px);
        free(labels);
        free(indices);
    }
    spr_close(s);
    return rc;
}
