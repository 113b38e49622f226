/* One pass over the test split in index order: the count, then record 0's
 * label and the sum of its pixel bytes; an epoch through the iterator must
 * deliver the same count. */
#include <shardpipe/reader.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv)
{
    char err[512];
    spr_set *s = argc == 2 ? spr_open(argv[1], "test", err, sizeof err) : NULL;
    if (!s) { fprintf(stderr, "reader: %s\n", argc == 2 ? err : "usage"); return 1; }
    size_t rb = spr_record_bytes(s);
    unsigned char *px = malloc(rb * 64);
    int32_t labels[64], label;
    if (!px || spr_read(s, 0, px, &label)) { fprintf(stderr, "reader: %s\n", spr_error(s)); return 1; }
    unsigned long sum = 0;
    for (size_t i = 0; i < rb; i++) sum += px[i];
    spr_iter *it = spr_iter_new(s, 64, 0, SPR_PREFETCH, 0);
    uint32_t n;
    unsigned long long seen = 0;
    int st;
    while (it && (st = spr_iter_next(it, px, labels, &n)) > 0) seen += n;
    if (!it || st < 0) { fprintf(stderr, "reader: %s\n", spr_error(s)); return 1; }
    printf("%llu %llu %d %lu\n", (unsigned long long)spr_count(s), seen, label, sum);
    spr_iter_free(it);
    spr_close(s);
    free(px);
    return 0;
}
