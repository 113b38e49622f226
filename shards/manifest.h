/* DIR/manifest.json: the commit point of a shard set.
 *
 *   {"format": "shardpipe-manifest", "format_version": 1,
 *    "dataset": ..., "classes": [...], "classes2": [...], "recipe": [...],
 *    "shards": [{"file", "split", "index", "records", "bytes", "sha256",
 *                "shape": [H, W, C], "dtype"}, ...],   (split order, then index)
 *    "splits": {"train": {"records", "shards", "bytes"}, ...},
 *    "total_records": N, "total_bytes": B}
 *
 * Written with sorted keys and 2-space indent, so equal sets give equal bytes.
 */
#ifndef SP_MANIFEST_H
#define SP_MANIFEST_H

#include <jansson.h>
#include <stdint.h>

#include "common/sp_common.h"

#define SP_MANIFEST_FORMAT "shardpipe-manifest"
#define SP_MANIFEST_VERSION 1

/* Writes dir/name atomically (sp_atomic_write), sorted keys, 2-space indent. */
int sp_write_json_atomic(const char *dir, const char *name, const json_t *j, sp_err *err);
/* Loads and checks the structure of dir/manifest.json (not the shards). */
json_t *sp_manifest_load(const char *dir, sp_err *err);

#endif
