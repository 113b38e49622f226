/* The part hash of --part I/N (see sp_part.h). */
#include "common/sp_part.h"

#include <stdint.h>

#include "common/sp_xxh.h"

int sp_part_of(const char *key, size_t key_len, int parts)
{
    return parts > 0 ? (int)(sp_xxh3_seeded(key, key_len, 0x53505041525453ull) % (uint64_t)parts) : 0;
}
