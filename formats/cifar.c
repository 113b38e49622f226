/* CIFAR-10/100 binary batches: which file is which, sizes checked, records of label byte(s) and planar pixels to HWC. */
#include "formats/cifar.h"

#include <string.h>

#include "formats/recstream.h"

int sp_cifar_classify(const char *key, sp_cifar_file *f)
{
    const char *base = sp_basename(key);
    int in100 = strstr(key, "cifar-100") != NULL;
    memset(f, 0, sizeof *f);
    if (!strcmp(base, "batches.meta.txt"))
        return 2;
    if (!strcmp(base, "fine_label_names.txt"))
        return 3;
    if (!strcmp(base, "coarse_label_names.txt"))
        return 4;
    if (!strncmp(base, "data_batch_", 11) && base[11] >= '1' && base[11] <= '5' && !strcmp(base + 12, ".bin")) {
        *f = (sp_cifar_file){10, SP_SPLIT_TRAIN, 1};
        return 1;
    }
    if (!strcmp(base, "test_batch.bin")) {
        *f = (sp_cifar_file){10, SP_SPLIT_TEST, 1};
        return 1;
    }
    if (in100 && (!strcmp(base, "train.bin") || !strcmp(base, "test.bin"))) {
        *f = (sp_cifar_file){100, base[1] == 'r' ? SP_SPLIT_TRAIN : SP_SPLIT_TEST, 2};
        return 1;
    }
    return 0;
}

int sp_cifar_size_ok(const sp_cifar_file *f, uint64_t len, const char *name, sp_err *err)
{
    uint64_t rec = (uint64_t)f->label_bytes + SP_CIFAR_PIXELS;
    if (len > rec * SP_CIFAR_MAX_RECORDS)
        return sp_fail(err, SP_EXIT_DATA, "%s: %llu bytes is over %d CIFAR-%d records, the limit of a batch file", name,
                       (unsigned long long)len, SP_CIFAR_MAX_RECORDS, f->variant);
    return 0;
}

long sp_cifar_check(const sp_cifar_file *f, const uint8_t *data, size_t len, const char *name, sp_err *err)
{
    size_t rec = (size_t)f->label_bytes + SP_CIFAR_PIXELS;
    if (sp_cifar_size_ok(f, len, name, err))
        return -1;
    if (len == 0 || len % rec)
        return sp_fail(err, SP_EXIT_DATA, "%s: %zu bytes is not a whole number of %zu-byte CIFAR-%d records", name,
                       len, rec, f->variant);
    long n = (long)(len / rec);
    for (long i = 0; i < n; i++) {
        const uint8_t *r = data + (size_t)i * rec;
        if (f->variant == 10 && r[0] >= 10)
            return sp_fail(err, SP_EXIT_DATA, "%s: record %ld: label %u out of range (CIFAR-10 has 10 classes)", name,
                           i, r[0]);
        if (f->variant == 100 && (r[0] >= 20 || r[1] >= 100))
            return sp_fail(err, SP_EXIT_DATA,
                           "%s: record %ld: labels coarse %u, fine %u out of range (CIFAR-100 has 20 and 100)", name, i,
                           r[0], r[1]);
    }
    return n;
}

void sp_cifar_record(const sp_cifar_file *f, const uint8_t *data, long i, uint8_t *out, int32_t *label,
                     int32_t *label2)
{
    const uint8_t *r = data + (size_t)i * ((size_t)f->label_bytes + SP_CIFAR_PIXELS);
    if (f->variant == 100) {
        *label2 = r[0];
        *label = r[1];
    } else {
        *label = r[0];
        *label2 = -1;
    }
    sp_cifar_planar_to_hwc(r + f->label_bytes, out);
}

void sp_cifar_planar_to_hwc(const uint8_t *planes, uint8_t *out)
{
    for (int p = 0; p < 1024; p++) {
        out[3 * p] = planes[p];
        out[3 * p + 1] = planes[1024 + p];
        out[3 * p + 2] = planes[2048 + p];
    }
}
