/* The MAT v5 reader (ImageNet devkit's meta.mat) on arbitrary bytes. */
#include "formats/matv5.h"
#include "fuzz.h"

static int pair(void *ctx, double num, const char *str)
{
    (void)ctx, (void)num, (void)str;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_err err;
    sp_mat_struct_pairs(data, size, "synsets", "ILSVRC2012_ID", "WNID", pair, NULL, &err);
    return 0;
}
