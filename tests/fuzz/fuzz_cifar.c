/* CIFAR batch parser: the first byte picks CIFAR-10 or CIFAR-100, the rest is
 * the batch file. Whatever sp_cifar_check accepts must convert in full. */
#include "formats/cifar.h"
#include "formats/recstream.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    sp_cifar_file f = data[0] & 1 ? (sp_cifar_file){100, SP_SPLIT_TRAIN, 2} : (sp_cifar_file){10, SP_SPLIT_TEST, 1};
    sp_err err = {0};
    long n = sp_cifar_check(&f, data + 1, size - 1, "fuzz", &err);
    uint8_t px[SP_CIFAR_PIXELS];
    volatile unsigned sum = 0;
    for (long i = 0; i < n; i++) {
        int32_t label, label2;
        sp_cifar_record(&f, data + 1, i, px, &label, &label2);
        sum += px[0] + px[SP_CIFAR_PIXELS - 1] + (unsigned)label + (unsigned)label2;
    }
    (void)sum;
    return 0;
}
