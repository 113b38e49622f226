/* sp-verify's checks: a shard set against its manifest, byte for byte and
 * record for record. */
#ifndef SP_VERIFY_H
#define SP_VERIFY_H

#include <stdint.h>

#include "common/sp_common.h"

typedef struct sp_verify_stats {
    uint64_t shards, records, bytes, problems;
} sp_verify_stats;

/* What the caller hears while a set is checked; any member may be NULL. */
typedef struct sp_verify_hooks {
    void (*report)(void *ctx, const char *problem); /* one line naming shard and record */
    void (*progress)(void *ctx, const sp_verify_stats *st); /* running totals, per batch */
    void *ctx;
} sp_verify_hooks;

/* Checks every shard listed in dir/manifest.json: present, size and sha256 as
 * listed, a readable shard whose split, record count, shape, dtype and class
 * lists agree with the manifest, every record's pixels matching its stored
 * checksum, labels within the class list (an empty list admits none), and,
 * before any shard is opened, the manifest's own limits and totals
 * (sp_manifest_read: failing those is -1). Each problem goes
 * to hooks->report. Returns 0 when all is well, 1 when problems were found,
 * -1 when the manifest itself cannot be read (err set). */
int sp_verify_dir(const char *dir, const sp_verify_hooks *hooks, sp_verify_stats *st, sp_err *err);
/* The same for a tool about to use the set: 0 when it verifies, else -1 with
 * err naming the first problem and, when that names no record, the first
 * problem that does (SP_EXIT_DATA), or why the manifest cannot be read. */
int sp_verify_or_fail(const char *dir, sp_err *err);

#endif
