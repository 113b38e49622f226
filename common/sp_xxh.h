/* XXH3-64 (seed 0), the checksum of the record stream and the shards, with
 * the fastest vector code the CPU has: AVX2 where it is there (chosen once,
 * at run time), SSE2 otherwise. Every variant gives the same values. */
#ifndef SP_XXH_H
#define SP_XXH_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

uint64_t sp_xxh3(const void *p, size_t n);
/* XXH3-64 with a seed (for the shuffle order, not for checksums). */
uint64_t sp_xxh3_seeded(const void *p, size_t n, uint64_t seed);
void sp_xxh3_reset(XXH3_state_t *s);
void sp_xxh3_update(XXH3_state_t *s, const void *p, size_t n);
uint64_t sp_xxh3_digest(const XXH3_state_t *s);

#endif
