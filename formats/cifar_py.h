/* CIFAR-10/100 python versions (cifar-10-python.tar.gz, cifar-100-python.tar.gz,
 * as keras.datasets and torchvision.datasets download them): each file is a
 * pickle (formats/pickle.h) of a dict.
 *   batch files (CIFAR-10: data_batch_1..5, test_batch; CIFAR-100: train,
 *   test under a cifar-100 directory): "data", a uint8 array N x 3072 of
 *   planar 32x32 R, G, B; "labels" (CIFAR-10) or "fine_labels" and
 *   "coarse_labels" (CIFAR-100), lists of N integers; "filenames" and
 *   "batch_label", not used.
 *   meta files (batches.meta; CIFAR-100's meta): "label_names", or
 *   "fine_label_names" and "coarse_label_names", lists of strings. */
#ifndef SP_CIFAR_PY_H
#define SP_CIFAR_PY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"
#include "formats/pickle.h"

enum { SP_CIFAR_PY_BATCH = 1, SP_CIFAR_PY_META = 2 };

typedef struct sp_cifar_py {
    sp_pickle *pk;
    int variant;           /* 10 or 100 */
    int split;             /* enum sp_split, from the name */
    long n;                /* records */
    const uint8_t *pixels; /* n x 3072, planar, into the caller's data */
    const sp_pk *labels;   /* n integers: CIFAR-10's, or CIFAR-100's fine */
    const sp_pk *labels2;  /* CIFAR-100's coarse, or NULL */
} sp_cifar_py;

/* What a member is: SP_CIFAR_PY_BATCH, SP_CIFAR_PY_META or 0. By name
 * (CIFAR-100's train, test and meta under a cifar-100 folder), or with data
 * (may be NULL: the name alone) CIFAR-100's names when data is a pickle. */
int sp_cifar_py_classify(const char *key, const uint8_t *data, size_t len);
/* 0 if a batch file of len bytes may hold at most SP_CIFAR_MAX_RECORDS
 * records; else -1 with err naming the file and the limit. Checked before
 * the file is read. */
int sp_cifar_py_size_ok(uint64_t len, const char *name, sp_err *err);
/* Reads the batch in data (kept by the caller while b is used) and checks
 * its shape and every label; 0, or -1 with err naming the file and the
 * key or record. Close with sp_cifar_py_close. */
int sp_cifar_py_open(sp_cifar_py *b, const uint8_t *data, size_t len, const char *key, sp_err *err);
void sp_cifar_py_close(sp_cifar_py *b);
/* Record i's pixels as 32x32x3 HWC into out (3072 bytes); labels into
 * *label (fine for CIFAR-100) and *label2 (coarse, or -1). */
void sp_cifar_py_record(const sp_cifar_py *b, long i, uint8_t *out, int32_t *label, int32_t *label2);
/* A meta file's class names: *classes (CIFAR-10's 10, or CIFAR-100's 100
 * fine), *classes2 (CIFAR-100's 20 coarse, or NULL), new references, and
 * *variant. 0, or -1 with err naming the file and the key. */
int sp_cifar_py_names(const uint8_t *data, size_t len, const char *key, json_t **classes, json_t **classes2,
                      int *variant, sp_err *err);

#endif
