/* CIFAR-10's MATLAB version (cifar-10-matlab.tar.gz): data_batch_1..5.mat and
 * test_batch.mat hold "data", a uint8 matrix of N x 3072 (each row planar
 * 32x32 R, G, B; stored column-major, as MAT files are) and "labels", uint8
 * N x 1; batches.meta.mat holds "label_names", a cell array of 10 strings.
 * Read through formats/matv5.h. */
#ifndef SP_CIFAR_MAT_H
#define SP_CIFAR_MAT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"

enum { SP_CIFAR_MAT_BATCH = 1, SP_CIFAR_MAT_META = 2 };

typedef struct sp_cifar_mat {
    sp_buf data;   /* N x 3072, column-major (owned) */
    sp_buf labels; /* N (owned) */
    long n;
    int split;     /* enum sp_split, from the name */
} sp_cifar_mat;

/* What a member name says: SP_CIFAR_MAT_BATCH, SP_CIFAR_MAT_META or 0. */
int sp_cifar_mat_classify(const char *key);
/* Reads a batch file and checks its shapes and labels (0..9); 0, or -1 with
 * err naming the file. Close with sp_cifar_mat_close. */
int sp_cifar_mat_open(sp_cifar_mat *b, const uint8_t *data, size_t len, const char *key, sp_err *err);
void sp_cifar_mat_close(sp_cifar_mat *b);
/* Record i's pixels as 32x32x3 HWC into out (3072 bytes), its label;
 * *label2 is -1. */
void sp_cifar_mat_record(const sp_cifar_mat *b, long i, uint8_t *out, int32_t *label, int32_t *label2);
/* The meta file's 10 class names as a new JSON array in *classes; 0, or -1
 * with err naming the file. */
int sp_cifar_mat_names(const uint8_t *data, size_t len, const char *key, json_t **classes, sp_err *err);

#endif
