/* The fetch stage's library side: make a dataset's source files available
 * in a local cache, verified against their manifest.
 *
 * Each file is downloaded through libcurl (http, https, file) from the
 * manifest's mirrors in order, into CACHE/DATASET/NAME.part; it is renamed to
 * CACHE/DATASET/NAME only once it verifies (see manifests/README.md), so a
 * file in the cache is a verified file and is never requested again.
 *  - A .part left by an interrupted run is resumed with a Range request; a
 *    server that answers 200 instead of 206 restarts the file from zero.
 *  - HTTP errors never reach the file (their bodies are not written).
 *  - Transient failures (cut body, stall, 5xx, refused connection) are
 *    retried with exponential backoff; then the next mirror is tried.
 *  - A download is cut off at the manifest size + 1/8 + 1 MiB.
 *  - TLS peers are verified; a redirect from https to anything else is refused.
 *  - A file that fails verification is kept as NAME.bad and the next mirror
 *    is tried; the error names the expected and the actual sums.
 * Concurrent fetchers of one file wait for each other (a lock on the .part).
 */
#ifndef SP_FETCH_H
#define SP_FETCH_H

#include <jansson.h>
#include <stdint.h>

#include "common/sp_common.h"

typedef struct sp_fetch_opts {
    const char *cache_dir;  /* the cache root (created as needed) */
    int offline;            /* never download: a file not in the cache is an error */
    int retries;            /* tries per mirror for transient failures (default 3) */
    double retry_delay;     /* seconds before the first retry, doubling (default 1) */
    long stall_timeout;     /* seconds without a byte before a transfer is cut (default 30) */
    long connect_timeout;   /* seconds (default 30) */
    const char *ca_file;    /* CA bundle for TLS, NULL = the system's */
    /* progress: bytes so far and expected (0 = unknown) of the file in flight */
    void (*progress)(void *ctx, const char *name, uint64_t have, uint64_t total);
    /* one line for the user: what was fetched from where, retries, mirrors tried */
    void (*note)(void *ctx, const char *line);
    void *ctx;
} sp_fetch_opts;
void sp_fetch_opts_default(sp_fetch_opts *o);

/* Once per process, before any fetch. */
int sp_fetch_global_init(sp_err *err);

/* Makes file (an item of a manifest's "files") available and verified in
 * the cache under subdir (the dataset's name), trying mirrors (an array of
 * base URLs; the file's URL is mirror "/" name, or its own "url" member).
 * On success path holds the cached file's path. */
int sp_fetch_file(const sp_fetch_opts *o, const char *subdir, const json_t *mirrors, const json_t *file,
                  char *path, size_t path_len, sp_err *err);

/* Verifies a copy the user already has (dir/name), without copying it: a
 * stamp in the cache (size, mtime, md5) spares the hashing next time. */
int sp_fetch_verify_copy(const sp_fetch_opts *o, const char *subdir, const char *dir, const json_t *file,
                         char *path, size_t path_len, sp_err *err);

/* Checks the file at path against file's size, md5, sha256 and
 * content_sha256 (any that are given). 0 when it verifies; -1 with err naming
 * the expected and actual sums. how (may be NULL) says what matched. */
int sp_fetch_verify(const char *path, const json_t *file, const char **how, sp_err *err);

#endif
