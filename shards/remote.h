/* Shard sets at a URL: http://, https:// and file:// wherever a shard
 * directory is taken. The set's manifest is fetched first (once per process
 * and URL) into the cache (shards/cache.h); a path URL/FILE naming one of its
 * shards is then downloaded whole into the cache, hashed while it streams in
 * and held to the manifest's sha256 and bytes before anything opens it.
 *
 * Where the cache is and how large it may grow: sp_remote_configure, else
 * $SHARDPIPE_CACHE and $SHARDPIPE_CACHE_LIMIT (see sp_cache_root). TLS: the
 * CA bundle in $SHARDPIPE_CA_FILE, else $CURL_CA_BUNDLE, else $SSL_CERT_FILE,
 * else libcurl's own.
 */
#ifndef SP_REMOTE_H
#define SP_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"

/* 1 when loc is a URL this module reads (http://, https://, file://, s3://). */
int sp_remote_is_url(const char *loc);

/* url without any user:password@ in it into out (n bytes), for messages;
 * returns out. */
const char *sp_remote_shown(const char *url, char *out, size_t n);

/* s3://BUCKET/PREFIX/ is read from ENDPOINT/BUCKET/PREFIX/ (path style): the
 * endpoint given here (NULL: $AWS_ENDPOINT_URL, else AWS's for $AWS_REGION),
 * signed with SigV4 (libcurl's CURLOPT_AWS_SIGV4, region $AWS_REGION, else
 * us-east-1) with $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY and
 * $AWS_SESSION_TOKEN, else the profile $AWS_PROFILE of ~/.aws/credentials
 * ($AWS_SHARED_CREDENTIALS_FILE), else anonymous. Credentials go into the
 * request only: never into a message, the cache or a file. */
void sp_remote_configure_s3(const char *endpoint);

/* The cache and its limit for the sets opened after this call (NULL / 0:
 * the environment's, as above); for the tools' --cache and --cache-limit. */
void sp_remote_configure(const char *cache_dir, uint64_t limit);

/* The local copy of URL/manifest.json into local (n bytes), fetched on the
 * first call for url in this process (also registering the set, so that its
 * shards' URLs open through sp_remote_shard), the same copy afterwards.
 * A manifest whose largest shard exceeds the cache limit is refused here.
 * 0, or -1 with err naming the URL. */
int sp_remote_manifest(const char *url, char *local, size_t n, sp_err *err);
/* The same with this set's own cache and limit (NULL / 0: the defaults),
 * fetching the manifest again when the set was registered before. */
int sp_remote_manifest_with(const char *url, const char *cache_dir, uint64_t limit, char *local, size_t n,
                            sp_err *err);

/* For path URL/FILE of a registered set: FILE in the cache, verified, at
 * local (n bytes), and pinned (*pin: release with sp_remote_unpin once the
 * file is closed). Returns 1; 0 when path is not a registered set's shard
 * (local and *pin untouched, *pin -1); -1 on failure (err names the URL). */
int sp_remote_shard(const char *path, char *local, size_t n, int *pin, sp_err *err);
void sp_remote_unpin(int pin); /* accepts -1 */

/* The order in which this process will open a set's shards: paths[i]
 * (URL/FILE, as sp_remote_shard takes them; all of one registered set) for
 * use i = 0, 1, ...: uses [0, now) the rest of an epoch, as the reader's
 * iterator plans it, and [now, n) the next epoch's when the caller knows it
 * (now = n: it does not). Opening a shard through sp_remote_shard moves the
 * plan's position to that use, within [0, now) only (a shard opened again
 * is this epoch's use, not the next's). Eviction takes the shard whose next
 * use in the whole plan lies furthest ahead; background threads
 * ($SHARDPIPE_PREFETCH_THREADS, default 2) download the uses no reader has
 * opened yet, from the first on, as many as a quarter of the cache limit
 * holds (at least 2), or $SHARDPIPE_PREFETCH shards when set (0: none),
 * past `now` into the next epoch's as this one nears its end, while they
 * fit without evicting a shard needed sooner. Paths of no registered set:
 * nothing happens. 0 or -1 (err). */
int sp_remote_plan(const char *const *paths, size_t n, size_t now, sp_err *err);

#endif
