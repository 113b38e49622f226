#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/sp_xxh.h"

/* in sp_xxh_avx2.c, built with -mavx2 */
uint64_t sp_xxh3_avx2(const void *p, size_t n);
void sp_xxh3_update_avx2(XXH3_state_t *s, const void *p, size_t n);

/* Found once at start-up, before any thread runs. */
static int use_avx2;
__attribute__((constructor)) static void find_avx2(void)
{
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2") != 0;
}

static int avx2(void) { return use_avx2; }

uint64_t sp_xxh3(const void *p, size_t n) { return avx2() ? sp_xxh3_avx2(p, n) : XXH3_64bits(p, n); }
uint64_t sp_xxh3_seeded(const void *p, size_t n, uint64_t seed) { return XXH3_64bits_withSeed(p, n, seed); }
void sp_xxh3_reset(XXH3_state_t *s) { XXH3_64bits_reset(s); }

void sp_xxh3_update(XXH3_state_t *s, const void *p, size_t n)
{
    if (avx2())
        sp_xxh3_update_avx2(s, p, n);
    else
        XXH3_64bits_update(s, p, n);
}

uint64_t sp_xxh3_digest(const XXH3_state_t *s) { return XXH3_64bits_digest(s); }
