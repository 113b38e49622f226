/* The local cache of remote shard sets' shards: whole shards, named by their
 * sha256, bounded in bytes, shared by the processes and threads of one node.
 *
 *   ROOT/objects/SHA256HEX        a shard, present only once verified
 *   ROOT/objects/SHA256HEX.lock   its lock: shared while a reader holds it
 *                                 open (pinned), exclusive while it downloads
 *                                 or is evicted
 *   ROOT/objects/SHA256HEX.part   a download under way, sized to the shard's
 *                                 bytes up front (the space it takes counts)
 *   ROOT/manifests/KEY.json       the manifest last fetched from a set's URL
 *   ROOT/cache.lock               held while space is counted and made
 *
 * A file named by its hash is renamed into place only after its bytes hashed
 * to that name, so a process killed mid-download leaves a .part that no
 * reader trusts (the next download of that shard starts it over).
 * Eviction: when a shard does not fit under the limit, unpinned shards go,
 * the one whose next use lies furthest ahead first (Belady), as the caller's
 * next-use function tells (the reader's plan: the rest of this epoch's
 * order, and the next epoch's when the reader was told its seed). A shard
 * needed now waits while the room it lacks is held by downloads under way
 * (prefetches), rather than fail. Shards with no next use it knows of go
 * before any it knows, the
 * most recently used first: each shard is used once an epoch, so the one
 * just used is the one needed again last (in expectation, the next epoch's
 * order being a fresh permutation), and the shards kept across an epoch's
 * end are hits in the next. SHARDPIPE_CACHE_EVICTION=lru (for comparisons,
 * bench/cache_egress.c) evicts the least recently used instead, ignoring
 * next uses.
 */
#ifndef SP_CACHE_H
#define SP_CACHE_H

#include <stdint.h>

#include "common/sp_common.h"

/* The cache root: dir when not NULL, else $SHARDPIPE_CACHE, else
 * $XDG_CACHE_HOME/shardpipe, else $HOME/.cache/shardpipe; into out (n bytes).
 * 0, or -1 with SP_EXIT_SYSTEM when none can be named. */
int sp_cache_root(const char *dir, char *out, size_t n, sp_err *err);
/* A size as --cache-limit takes it ("512M", "2G", "1000"; powers of 1024);
 * 0 (no limit) for NULL or "". 0 or -1 with SP_EXIT_USAGE naming `what`. */
int sp_cache_parse_size(const char *what, const char *text, uint64_t *out, sp_err *err);

/* Tells how far ahead (in uses: smaller is sooner) the shard of sha256 hex
 * is needed next; UINT64_MAX when not at all. Called with no lock of the
 * caller's held. */
typedef uint64_t (*sp_cache_next_use)(void *ctx, const char *sha256);

/* Counters of one process's use of the cache (all sets). */
typedef struct sp_cache_stats {
    uint64_t downloads, download_bytes; /* shards fetched in full, and their bytes */
    uint64_t hits;                      /* shards found in place */
    uint64_t evictions, evicted_bytes;
    uint64_t waits;                     /* opens by a reader of a shard not in place yet: it waited for a
                                         * download (its own, or a prefetch under way) */
    uint64_t dropped;                   /* entries found with a size other than the manifest's, removed and
                                         * downloaded again */
} sp_cache_stats;
void sp_cache_get_stats(sp_cache_stats *st);
void sp_cache_count_download(uint64_t bytes);
void sp_cache_count_wait(void);

/* Pins the shard of sha (64 lowercase hex) of `bytes` under root: on return
 * 1 it is in place at path (n bytes) with exactly `bytes` bytes and *pin
 * holds its shared lock (release with sp_cache_unpin); on return 0 it is
 * absent, or was there with another size and has been removed (counted in
 * `dropped`), and *pin holds its exclusive lock: the caller downloads it
 * into the .part that sp_cache_reserve makes, then sp_cache_commit or
 * sp_cache_abort. -1 on failure (err). */
int sp_cache_pin(const char *root, const char *sha, uint64_t bytes, char *path, size_t n, int *pin, sp_err *err);
/* Makes room for `bytes` under limit (0: none) by eviction, waiting for
 * downloads under way when their parts hold the room it lacks, then creates
 * the .part of sha sized to bytes; the part's descriptor in *fd. `name` (the
 * shard's URL) is for messages. 0, or -1: the limit is below bytes, or every
 * other shard is pinned, or the disk is full (SP_EXIT_SYSTEM naming name). */
int sp_cache_reserve(const char *root, uint64_t limit, const char *sha, uint64_t bytes, const char *name,
                     sp_cache_next_use next, void *ctx, int *fd, sp_err *err);
/* The same for a prefetch of a shard needed `use` uses ahead: it evicts only
 * shards needed later than that (or not at all), and fails (SP_EXIT_SYSTEM,
 * "no room") rather than take the room of one needed sooner. */
int sp_cache_reserve_ahead(const char *root, uint64_t limit, const char *sha, uint64_t bytes, const char *name,
                           sp_cache_next_use next, void *ctx, uint64_t use, int *fd, sp_err *err);
/* 1 when the shard of sha is in place (a prefetch need not fetch it). */
int sp_cache_has(const char *root, const char *sha);
/* The .part of sha, verified, becomes the shard; *pin turns shared. 0 or -1. */
int sp_cache_commit(const char *root, const char *sha, int pin, sp_err *err);
/* Removes the .part of sha and releases pin. */
void sp_cache_abort(const char *root, const char *sha, int pin);
void sp_cache_unpin(int pin); /* accepts -1 */

#endif
