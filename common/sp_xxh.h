/* XXH3-64, the checksum of the record stream, the shards and the checkpoints,
 * as libxxhash computes it: on x86-64 through libxxhash's own run-time
 * dispatch (xxh_x86dispatch.h: AVX2 where the CPU has it, SSE2 otherwise,
 * chosen inside libxxhash), elsewhere, or built with SP_NO_X86_SIMD, its
 * portable code. Every variant gives the same values (XXH3 is defined by its
 * algorithm, not its vectors), so streams and shards read the same anywhere.
 * Link with -lxxhash. */
#ifndef SP_XXH_H
#define SP_XXH_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

#if defined(__x86_64__) && !defined(SP_NO_X86_SIMD)
#define XXH_DISPATCH_DISABLE_REPLACE /* call the dispatching functions by name, below */
#include <xxh_x86dispatch.h>
#define SP_XXH3_64(p, n) XXH3_64bits_dispatch(p, n)
#define SP_XXH3_64_SEED(p, n, seed) XXH3_64bits_withSeed_dispatch(p, n, seed)
#define SP_XXH3_64_UPDATE(s, p, n) XXH3_64bits_update_dispatch(s, p, n)
#else
#define SP_XXH3_64(p, n) XXH3_64bits(p, n)
#define SP_XXH3_64_SEED(p, n, seed) XXH3_64bits_withSeed(p, n, seed)
#define SP_XXH3_64_UPDATE(s, p, n) XXH3_64bits_update(s, p, n)
#endif

/* XXH3-64 (seed 0) of n bytes at p (p may be NULL when n is 0). */
static inline uint64_t sp_xxh3(const void *p, size_t n) { return SP_XXH3_64(p, n); }
/* XXH3-64 with a seed (for the shuffle order and the part of a key, not for checksums). */
static inline uint64_t sp_xxh3_seeded(const void *p, size_t n, uint64_t seed) { return SP_XXH3_64_SEED(p, n, seed); }
/* Streaming XXH3-64 (seed 0) over a state from XXH3_createState: reset, then
 * update with the bytes in order, then digest; equal to sp_xxh3 of them all. */
static inline void sp_xxh3_reset(XXH3_state_t *s) { (void)XXH3_64bits_reset(s); }
static inline void sp_xxh3_update(XXH3_state_t *s, const void *p, size_t n) { (void)SP_XXH3_64_UPDATE(s, p, n); }
static inline uint64_t sp_xxh3_digest(const XXH3_state_t *s) { return XXH3_64bits_digest(s); }

#endif
