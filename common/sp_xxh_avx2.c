/* The AVX2 build of XXH3 (this file is compiled with -mavx2; sp_xxh.c calls
 * it only when the CPU has AVX2). */
#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t sp_xxh3_avx2(const void *p, size_t n);
void sp_xxh3_update_avx2(XXH3_state_t *s, const void *p, size_t n);

uint64_t sp_xxh3_avx2(const void *p, size_t n) { return XXH3_64bits(p, n); }
void sp_xxh3_update_avx2(XXH3_state_t *s, const void *p, size_t n) { XXH3_64bits_update(s, p, n); }
