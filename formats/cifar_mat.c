/* CIFAR-10's MATLAB version: batch and meta .mat files checked and read (see cifar_mat.h). */
#include "formats/cifar_mat.h"

#include <string.h>

#include "formats/cifar.h"
#include "formats/matv5.h"
#include "formats/recstream.h"

int sp_cifar_mat_classify(const char *key)
{
    const char *base = sp_basename(key);
    if (!strncmp(base, "data_batch_", 11) && base[11] >= '1' && base[11] <= '5' && !strcmp(base + 12, ".mat"))
        return SP_CIFAR_MAT_BATCH;
    if (!strcmp(base, "test_batch.mat"))
        return SP_CIFAR_MAT_BATCH;
    return !strcmp(base, "batches.meta.mat") ? SP_CIFAR_MAT_META : 0;
}

int sp_cifar_mat_open(sp_cifar_mat *b, const uint8_t *data, size_t len, const char *key, sp_err *err)
{
    memset(b, 0, sizeof *b);
    b->split = !strncmp(sp_basename(key), "test", 4) ? SP_SPLIT_TEST : SP_SPLIT_TRAIN;
    uint32_t rows, cols, lrows, lcols;
    if (sp_mat_u8_matrix(data, len, "data", &b->data, &rows, &cols, err) ||
        sp_mat_u8_matrix(data, len, "labels", &b->labels, &lrows, &lcols, err)) {
        sp_fail_context(err, "%s", key);
        sp_cifar_mat_close(b);
        return -1;
    }
    int rc = 0;
    if (cols != SP_CIFAR_PIXELS || rows > SP_CIFAR_MAX_RECORDS)
        rc = sp_fail(err, SP_EXIT_DATA, "%s: data is %u x %u, not N x %d (N up to %d)", key, rows, cols,
                     SP_CIFAR_PIXELS, SP_CIFAR_MAX_RECORDS);
    else if (lrows != rows || lcols != 1)
        rc = sp_fail(err, SP_EXIT_DATA, "%s: labels are %u x %u for %u images", key, lrows, lcols, rows);
    for (uint32_t i = 0; !rc && i < rows; i++)
        if (b->labels.data[i] >= 10)
            rc = sp_fail(err, SP_EXIT_DATA, "%s: record %u: label %u out of range (CIFAR-10 has 10 classes)", key, i,
                         b->labels.data[i]);
    if (rc) {
        sp_cifar_mat_close(b);
        return -1;
    }
    b->n = rows;
    return 0;
}

void sp_cifar_mat_close(sp_cifar_mat *b)
{
    sp_buf_free(&b->data);
    sp_buf_free(&b->labels);
}

void sp_cifar_mat_record(const sp_cifar_mat *b, long i, uint8_t *out, int32_t *label, int32_t *label2)
{
    uint8_t planes[SP_CIFAR_PIXELS];
    for (size_t j = 0; j < SP_CIFAR_PIXELS; j++)
        planes[j] = b->data.data[j * (size_t)b->n + (size_t)i];
    sp_cifar_planar_to_hwc(planes, out);
    *label = b->labels.data[i];
    *label2 = -1;
}

static int add_name(void *ctx, const char *s)
{
    return json_array_append_new(ctx, json_string(s)) ? -1 : 0;
}

int sp_cifar_mat_names(const uint8_t *data, size_t len, const char *key, json_t **classes, sp_err *err)
{
    *classes = json_array();
    if (!*classes)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    long n = sp_mat_cell_strings(data, len, "label_names", add_name, *classes, err);
    if (n != 10) {
        if (n >= 0)
            sp_fail(err, SP_EXIT_DATA, "%s: %ld class names, CIFAR-10 has 10", key, n);
        else
            sp_fail_context(err, "%s", key);
        json_decref(*classes);
        *classes = NULL;
        return -1;
    }
    return 0;
}
