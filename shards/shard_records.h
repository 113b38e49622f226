/* The records of a shard or a shard set as stream records (sp_record), for
 * tools that print or pass them on. */
#ifndef SP_SHARD_RECORDS_H
#define SP_SHARD_RECORDS_H

#include "shards/shard.h"

/* Called once per record: rec holds the key, split, labels, shape, dtype,
 * payload_len (bytes of one record's pixels) and checksum (XXH3-64 of those
 * pixels as read back); pixels points to them, valid during the call only.
 * For an encoded shard rec is an encoded record (kind, codec, decoded shape)
 * and pixels points to its encoded bytes (payload_len of them).
 * A non-zero return stops the walk and is returned. */
typedef int (*sp_shard_record_fn)(void *ctx, const sp_record *rec, const uint8_t *pixels, sp_err *err);

/* Every record of the open shard s in order, read in batches of about
 * 16 MiB. 0, -1 with err, or fn's non-zero return. */
int sp_shard_each_record(sp_shard *s, sp_shard_record_fn fn, void *ctx, sp_err *err);

/* Every record of every shard listed in dir/manifest.json, in the
 * manifest's order. 0, -1 with err (naming the shard), or fn's return. */
int sp_shardset_each_record(const char *dir, sp_shard_record_fn fn, void *ctx, sp_err *err);

#endif
