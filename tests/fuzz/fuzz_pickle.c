/* The pickle reader, CIFAR's python version read through it, and .npy
 * files: the first byte picks a CIFAR batch (0), a meta file (1) or a .npy
 * file (2), the rest is the file. Whatever is accepted must convert in full. */
#include "formats/cifar.h"
#include "formats/cifar_py.h"
#include "formats/npy.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    sp_err err = {0};
    if (data[0] % 3 == 2) {
        sp_buf out = {0};
        sp_idx idx;
        volatile unsigned sum = 0;
        if (!sp_npy_as_idx(data + 1, size - 1, "fuzz.npy", &out, &idx, &err) && idx.count)
            sum += idx.data[idx.count * idx.item_bytes - 1];
        (void)sum;
        sp_buf_free(&out);
        return 0;
    }
    if (data[0] % 3 == 1) {
        json_t *a, *b;
        int variant;
        if (!sp_cifar_py_names(data + 1, size - 1, "fuzz", &a, &b, &variant, &err)) {
            json_decref(a);
            json_decref(b);
        }
        return 0;
    }
    sp_cifar_py batch;
    if (sp_cifar_py_open(&batch, data + 1, size - 1, "data_batch_1", &err))
        return 0;
    uint8_t px[SP_CIFAR_PIXELS];
    volatile unsigned sum = 0;
    for (long i = 0; i < batch.n; i++) {
        int32_t label, label2;
        sp_cifar_py_record(&batch, i, px, &label, &label2);
        sum += px[0] + px[SP_CIFAR_PIXELS - 1] + (unsigned)label + (unsigned)label2;
    }
    (void)sum;
    sp_cifar_py_close(&batch);
    return 0;
}
