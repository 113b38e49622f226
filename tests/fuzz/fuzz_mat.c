/* The MAT v5 reader on arbitrary bytes: the ImageNet devkit's struct array
 * (meta.mat), and CIFAR-10's MATLAB version through formats/cifar_mat.h. */
#include "formats/cifar.h"
#include "formats/cifar_mat.h"
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
    json_t *names;
    if (!sp_cifar_mat_names(data, size, "batches.meta.mat", &names, &err))
        json_decref(names);
    sp_cifar_mat b;
    if (!sp_cifar_mat_open(&b, data, size, "data_batch_1.mat", &err)) {
        uint8_t px[SP_CIFAR_PIXELS];
        int32_t label, label2;
        for (long i = 0; i < b.n; i++)
            sp_cifar_mat_record(&b, i, px, &label, &label2);
        sp_cifar_mat_close(&b);
    }
    return 0;
}
