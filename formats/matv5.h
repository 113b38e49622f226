/* Just enough of MATLAB's MAT-file version 5 to read ImageNet's devkit
 * (ILSVRC2012_devkit_t12/data/meta.mat): the struct array "synsets", whose
 * fields ILSVRC2012_ID (a number) and WNID (a string) give the ID table of
 * the devkit's validation ground truth; and CIFAR-10's MATLAB version:
 * uint8 matrices and a cell array of strings.
 *
 * Handles little-endian files, compressed (miCOMPRESSED, zlib) and plain
 * variables, numeric data stored in any MAT numeric type, and char data as
 * UTF-8, UTF-16 or 8-bit. Every size is checked against the bytes present
 * before it is used. */
#ifndef SP_MATV5_H
#define SP_MATV5_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"

/* 1 if data starts like a MAT v5 file. */
int sp_mat_sniff(const uint8_t *data, size_t len);

/* For each element of the struct array variable var, calls fn with the
 * numeric field num_field (as a double) and the string field str_field (as
 * a NUL-terminated string, at most 255 bytes). Elements missing either are
 * skipped. Returns the number of calls, or -1 with err set. */
long sp_mat_struct_pairs(const uint8_t *data, size_t len, const char *var, const char *num_field,
                         const char *str_field, int (*fn)(void *ctx, double num, const char *str), void *ctx,
                         sp_err *err);

/* The variable var, a two-dimensional uint8 matrix, copied into out
 * (column-major: element (r, c) at c * rows + r); 0, or -1 with err set. */
int sp_mat_u8_matrix(const uint8_t *data, size_t len, const char *var, sp_buf *out, uint32_t *rows,
                     uint32_t *cols, sp_err *err);
/* For each element of the cell array var, a string (ASCII, at most 255
 * bytes), calls fn. Returns the number of calls, or -1 with err set. */
long sp_mat_cell_strings(const uint8_t *data, size_t len, const char *var,
                         int (*fn)(void *ctx, const char *str), void *ctx, sp_err *err);

#endif
