/* CIFAR-10/100 binary versions (https://www.cs.toronto.edu/~kriz/cifar.html).
 *
 * A batch file is a run of fixed-size records, no header:
 *   CIFAR-10:  label:u8 (0..9), then 1024 R, 1024 G, 1024 B bytes
 *   CIFAR-100: coarse:u8 (0..19), fine:u8 (0..99), then the same 3072 bytes
 * Planes are row-major 32x32. Files are known by name: data_batch_1..5.bin and
 * test_batch.bin (CIFAR-10, names in batches.meta.txt); train.bin and
 * test.bin under a cifar-100 directory (names in fine_label_names.txt and
 * coarse_label_names.txt). */
#ifndef SP_CIFAR_H
#define SP_CIFAR_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"

enum { SP_CIFAR_SIDE = 32, SP_CIFAR_PIXELS = 3 * 32 * 32 };
/* Records one batch file may hold: the largest real one (CIFAR-100's
 * train.bin) has 50,000. Checked from the size alone, before the file is
 * read (sp_cifar_size_ok), so a huge file named like a batch is refused
 * without being loaded. */
#define SP_CIFAR_MAX_RECORDS 100000

typedef struct sp_cifar_file {
    int variant;     /* 10 or 100 */
    int split;       /* enum sp_split */
    int label_bytes; /* 1 or 2 */
} sp_cifar_file;

/* What a member name says: a batch file (returns 1, fills f), a class names
 * file (returns 2 for CIFAR-10's, 3 for CIFAR-100 fine, 4 for coarse), or
 * nothing (0). */
int sp_cifar_classify(const char *key, sp_cifar_file *f);
/* 0 if a batch file of len bytes is within SP_CIFAR_MAX_RECORDS records;
 * else -1 with err naming the file and the limit. */
int sp_cifar_size_ok(const sp_cifar_file *f, uint64_t len, const char *name, sp_err *err);
/* Checks a batch file's size and every label; returns the record count or
 * -1 with err naming the file and the record. */
long sp_cifar_check(const sp_cifar_file *f, const uint8_t *data, size_t len, const char *name, sp_err *err);
/* Record i's pixels as 32x32x3 HWC into out (3072 bytes); labels into
 * *label (fine for CIFAR-100) and *label2 (coarse, or -1). */
void sp_cifar_record(const sp_cifar_file *f, const uint8_t *data, long i, uint8_t *out, int32_t *label,
                     int32_t *label2);
/* 3072 bytes of planar 32x32 R, G, B planes as HWC into out (3072 bytes). */
void sp_cifar_planar_to_hwc(const uint8_t *planes, uint8_t *out);

#endif
