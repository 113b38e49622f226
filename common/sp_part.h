/* Which part of a --part I/N split a record belongs to, by its key alone. */
#ifndef SP_PART_H
#define SP_PART_H

#include <stddef.h>

/* The part (0 .. parts-1) a record key falls in: XXH3 of the key with a fixed
 * seed, modulo parts; 0 when parts <= 0. Independent of the shuffle seed and of
 * the input order, so sp-decode --part and sp-shard --part agree. */
int sp_part_of(const char *key, size_t key_len, int parts);

#endif
