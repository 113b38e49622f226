/* DIR/manifest.json: the commit point of a shard set.
 *
 *   {"format": "shardpipe-manifest", "format_version": 1,
 *    "dataset": ..., "classes": [...], "classes2": [...], "recipe": [...],
 *    "shards": [{"file", "split", "index", "records", "bytes", "sha256",
 *                "shape": [H, W, C], "dtype", "kind"}, ...],   (split order, then index)
 *    "splits": {"train": {"records", "shards", "bytes"}, ...},
 *    "total_records": N, "total_bytes": B}
 *
 * "kind" is "encoded" for a shard of encoded records (shards/shard.h), whose
 * shape is its largest decoded image's; absent for pixel shards. One set
 * holds one kind. Each split's entry in "splits" carries its shards' kind and
 * (encoded) the largest of their shapes.
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
/* The same for a file at path (sp-train's and sp-eval's --json). */
int sp_write_json_file(const char *path, const json_t *j, sp_err *err);
/* Limits a manifest is held to before anything is sized from it. */
#define SP_MANIFEST_MAX_CLASSES 1000000 /* names in "classes" and in "classes2" */
#define SP_MANIFEST_MAX_SIDE 65536      /* H and W of a shard's shape */
#define SP_MANIFEST_MAX_CHANNELS 16     /* C */

typedef struct sp_shard sp_shard;

/* Loads dir/manifest.json and checks it on its own, without opening shards:
 * the format and version; class lists of strings within SP_MANIFEST_MAX_CLASSES;
 * every shard entry's file (a plain name), split, records, shape within the
 * limits above and dtype; no file listed twice. NULL with SP_EXIT_DATA (a
 * message naming the manifest and the entry) on the first failure. (The
 * totals are left to the caller: sp-verify reports them among its problems.) */
json_t *sp_manifest_read(const char *dir, sp_err *err);
/* sp_manifest_read; total_records and each split's records equal to their
 * shards' sums; then every listed shard opened (its header only) and held
 * to its entry by sp_manifest_check_shard, so a caller that goes on to read
 * the shards by their file names reads what the manifest describes. */
json_t *sp_manifest_load(const char *dir, sp_err *err);
/* sp_manifest_load without opening a shard (its cost does not grow with the
 * number of shards beyond reading the manifest): for a caller that holds each
 * shard to its entry with sp_manifest_check_shard when it first opens it. */
json_t *sp_manifest_load_lazy(const char *dir, sp_err *err);
/* 0 if the open shard s agrees with its manifest entry (records, shape, dtype,
 * kind, split) and carries the manifest's class lists; else -1 with SP_EXIT_DATA
 * naming the shard as `name` and what differs. */
int sp_manifest_check_shard(const char *name, const json_t *m, const json_t *entry, sp_shard *s, sp_err *err);

#endif
