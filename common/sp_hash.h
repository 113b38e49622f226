/* Whole-file digests through OpenSSL's libcrypto. */
#ifndef SP_HASH_H
#define SP_HASH_H

#include <stdint.h>

#include "common/sp_common.h"

/* md5 and sha256 of the file at path as lowercase hex, in one pass; md5 or
 * sha256 may be NULL. size (may be NULL) gets the bytes read. progress (may
 * be NULL) hears about every 64 MiB: bytes hashed and the file's size. */
int sp_hash_file(const char *path, char md5[33], char sha256[65], uint64_t *size,
                 void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx, sp_err *err);

#endif
