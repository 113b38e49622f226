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
 *  - A download is cut off at the manifest size + 1/8 + 1 MiB, or, for a
 *    file of unknown size (a URL), at max_size bytes.
 *  - A failed write to the cache (a full disk) ends the fetch at once with
 *    SP_EXIT_SYSTEM; the .part stays for a later run to resume.
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
    uint64_t max_size;      /* bytes allowed for a file of unknown size (default SP_FETCH_MAX_SIZE) */
    /* progress: bytes so far and expected (0 = unknown) of the file in flight */
    void (*progress)(void *ctx, const char *name, uint64_t have, uint64_t total);
    /* one line for the user: what was fetched from where, retries, mirrors tried */
    void (*note)(void *ctx, const char *line);
    void *ctx;
} sp_fetch_opts;
void sp_fetch_opts_default(sp_fetch_opts *o);
#define SP_FETCH_MAX_SIZE (64ull << 30)

/* The cache root when none is given: $SP_CACHE, else $XDG_CACHE_HOME/shardpipe,
 * else $HOME/.cache/shardpipe (./.cache/shardpipe without a HOME). */
void sp_fetch_default_cache(char *out, size_t n);

/* What the user asked to fetch, for sp_fetch_plan. */
typedef struct sp_fetch_request {
    const char *cache_dir;
    const char *from;        /* --from DIR, or NULL */
    const char *md5, *sha256; /* expected sums of a URL's file (lowercase hex, syntax checked), or NULL */
    char **only;             /* --file names (nonly of them); none = every file */
    int nonly;
    int offline;
} sp_fetch_request;

/* 32 (n = 32) or 64 (n = 64) hex digits: 1, else 0. */
int sp_fetch_sum_valid(const char *s, size_t n);

/* Appends to jobs what fetching arg (a dataset name or manifest path, a URL,
 * or a local file) means, downloading nothing: {"file", "subdir", "mirrors"}
 * for each selected file of a dataset, or for a URL (cached under
 * "urls/HASH", HASH of the URL and of the sums asked for, so a copy cached
 * under other sums, or none, is never taken for it), {"file", "local"} for a
 * local file. Sets the dataset's name and classes in meta. -1 with err for an
 * unknown dataset (SP_EXIT_USAGE) or one that cannot be downloaded. */
int sp_fetch_plan(const char *arg, const sp_fetch_request *rq, json_t *jobs, json_t *meta, sp_err *err);

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


#endif
