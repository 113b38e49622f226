/* The shard cache of remote sets: its root, per-shard locks, room made by eviction (next use furthest ahead first), and the commit of a verified download. */
#define _GNU_SOURCE
#include "shards/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static sp_cache_stats stats;

void sp_cache_get_stats(sp_cache_stats *st)
{
    pthread_mutex_lock(&stats_mu);
    *st = stats;
    pthread_mutex_unlock(&stats_mu);
}

static void count(uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&stats_mu);
    *field += n;
    pthread_mutex_unlock(&stats_mu);
}

void sp_cache_count_download(uint64_t bytes)
{
    pthread_mutex_lock(&stats_mu);
    stats.downloads++;
    stats.download_bytes += bytes;
    pthread_mutex_unlock(&stats_mu);
}

void sp_cache_count_wait(void) { count(&stats.waits, 1); }

int sp_cache_root(const char *dir, char *out, size_t n, sp_err *err)
{
    const char *env = getenv("SHARDPIPE_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int w;
    if (dir && *dir)
        w = snprintf(out, n, "%s", dir);
    else if (env && *env)
        w = snprintf(out, n, "%s", env);
    else if (xdg && *xdg)
        w = snprintf(out, n, "%s/shardpipe", xdg);
    else if (home && *home)
        w = snprintf(out, n, "%s/.cache/shardpipe", home);
    else
        return sp_fail(err, SP_EXIT_SYSTEM, "no cache directory: give --cache DIR or set SHARDPIPE_CACHE");
    if (w < 0 || (size_t)w >= n - 64)
        return sp_fail(err, SP_EXIT_SYSTEM, "cache directory: path too long");
    return 0;
}

int sp_cache_parse_size(const char *what, const char *text, uint64_t *out, sp_err *err)
{
    *out = 0;
    if (!text || !*text)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    int shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (errno || end == text || *end || text[0] == '-' || (shift && v > (UINT64_MAX >> shift)))
        return sp_fail(err, SP_EXIT_USAGE, "%s: not a size (1000, 64k, 256M, 2G): %s", what, text);
    *out = (uint64_t)v << shift;
    return 0;
}

/* root/objects/sha + suffix into out. */
static int object_path(char *out, size_t n, const char *root, const char *sha, const char *suffix)
{
    return snprintf(out, n, "%s/objects/%s%s", root, sha, suffix) < (int)n ? 0 : -1;
}

static int make_dirs(const char *root, sp_err *err)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/objects", root);
    if (sp_mkdirs(d) && errno != EEXIST)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot create: %s", d, strerror(errno));
    return 0;
}

/* 1 when the shard at path is in place with `bytes` bytes; 0 when absent;
 * -1 when in place with another size (cut short or grown after its commit,
 * as an OS crash may leave an entry that was never made durable). */
static int in_place(const char *path, uint64_t bytes)
{
    struct stat st;
    if (stat(path, &st))
        return 0;
    return (uint64_t)st.st_size == bytes ? 1 : -1;
}

int sp_cache_pin(const char *root, const char *sha, uint64_t bytes, char *path, size_t n, int *pin, sp_err *err)
{
    char lock[4200];
    *pin = -1;
    if (make_dirs(root, err))
        return -1;
    if (object_path(lock, sizeof lock, root, sha, ".lock") || object_path(path, n, root, sha, ""))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: path too long", root);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", lock, strerror(errno));
    /* shared first: a shard in place is read by any number at once */
    while (flock(fd, LOCK_SH) && errno == EINTR)
        ;
    if (in_place(path, bytes) == 1) {
        utimensat(AT_FDCWD, path, NULL, 0); /* its last use, for the shards no next-use function knows */
        count(&stats.hits, 1);
        *pin = fd;
        return 1;
    }
    /* absent or of the wrong size: take it exclusively (one download), then
     * look again, as another may have fetched it between the two locks */
    flock(fd, LOCK_UN);
    while (flock(fd, LOCK_EX) && errno == EINTR)
        ;
    *pin = fd;
    int st = in_place(path, bytes);
    if (st == 1) {
        flock(fd, LOCK_SH);
        count(&stats.hits, 1);
        return 1;
    }
    if (st < 0 && unlink(path) && errno != ENOENT) { /* not trusted: downloaded again */
        sp_fail(err, SP_EXIT_SYSTEM, "%s: of the wrong size, and cannot be removed: %s", path, strerror(errno));
        sp_cache_unpin(fd);
        *pin = -1;
        return -1;
    }
    if (st < 0)
        count(&stats.dropped, 1);
    return 0;
}

void sp_cache_unpin(int pin)
{
    if (pin >= 0)
        close(pin); /* drops its lock */
}

typedef struct entry {
    char sha[65];
    uint64_t bytes, next;
    struct timespec mtime;
} entry;

/* -1 when x was used before y, 1 after, 0 at once. */
static int older(const entry *x, const entry *y)
{
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return 0;
}

/* Belady: furthest next use first; among equal ones (none known:
 * UINT64_MAX), the most recently used first. */
static int by_eviction(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->next != y->next)
        return x->next > y->next ? -1 : 1;
    int o = older(x, y);
    return o ? -o : strcmp(x->sha, y->sha);
}

/* The comparison's policy: least recently used first. */
static int by_lru(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int o = older(x, y);
    return o ? o : strcmp(x->sha, y->sha);
}

static int lru_policy(void)
{
    const char *p = getenv("SHARDPIPE_CACHE_EVICTION");
    return p && !strcmp(p, "lru");
}

int sp_cache_has(const char *root, const char *sha)
{
    char path[4200];
    return !object_path(path, sizeof path, root, sha, "") && access(path, F_OK) == 0;
}

/* 1 when a download of the shard named by the part file `name`
 * (SHA256HEX.part) is under way: its lock is held exclusively. */
static int downloading(const char *root, const char *name)
{
    char lock[4200];
    snprintf(lock, sizeof lock, "%s/objects/%.64s.lock", root, name);
    int fd = open(lock, O_RDONLY | O_CLOEXEC), busy = 0;
    if (fd >= 0) {
        busy = flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK;
        close(fd);
    }
    return busy;
}

/* Every file under root/objects that takes room (shards and parts): their
 * bytes into *used, and those of the parts of downloads under way into
 * *inflight; the shards (not parts) other than `self` into *out. */
static int scan(const char *root, const char *self, entry **out, size_t *nout, uint64_t *used, uint64_t *inflight,
                sp_err *err)
{
    char d[4200];
    snprintf(d, sizeof d, "%s/objects", root);
    DIR *dir = opendir(d);
    if (!dir)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", d, strerror(errno));
    struct dirent *de;
    size_t n = 0, cap = 0;
    entry *v = NULL;
    *used = *inflight = 0;
    while ((de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        int part = len == 69 && !strcmp(de->d_name + 64, ".part");
        if (len != 64 && !part)
            continue;
        struct stat st;
        if (fstatat(dirfd(dir), de->d_name, &st, 0) || !S_ISREG(st.st_mode))
            continue;
        *used += (uint64_t)st.st_size;
        if (part && downloading(root, de->d_name))
            *inflight += (uint64_t)st.st_size;
        if (part || !strcmp(de->d_name, self))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            entry *g = realloc(v, cap * sizeof *v);
            if (!g) {
                free(v);
                closedir(dir);
                return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
            }
            v = g;
        }
        memcpy(v[n].sha, de->d_name, 65);
        v[n].bytes = (uint64_t)st.st_size;
        v[n].mtime = st.st_mtim;
        n++;
    }
    closedir(dir);
    *out = v;
    *nout = n;
    return 0;
}

/* Removes the shard e when no one holds it; 1 if it went. */
static int evict(const char *root, const entry *e)
{
    char lock[4200], path[4200];
    object_path(lock, sizeof lock, root, e->sha, ".lock");
    object_path(path, sizeof path, root, e->sha, "");
    int fd = open(lock, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int gone = 0;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 && unlink(path) == 0) {
        gone = 1;
        count(&stats.evictions, 1);
        count(&stats.evicted_bytes, e->bytes);
    }
    close(fd);
    return gone;
}

static char *fmt_size(char *buf, size_t n, uint64_t b)
{
    snprintf(buf, n, "%llu bytes", (unsigned long long)b);
    return buf;
}

int sp_cache_reserve(const char *root, uint64_t limit, const char *sha, uint64_t bytes, const char *name,
                     sp_cache_next_use next, void *ctx, int *fd, sp_err *err)
{
    return sp_cache_reserve_ahead(root, limit, sha, bytes, name, next, ctx, 0, fd, err);
}

int sp_cache_reserve_ahead(const char *root, uint64_t limit, const char *sha, uint64_t bytes, const char *name,
                           sp_cache_next_use next, void *ctx, uint64_t use, int *fd, sp_err *err)
{
    char a[64], b[64], lockp[4200], part[4200];
    *fd = -1;
    if (limit && bytes > limit)
        return sp_fail(err, SP_EXIT_USAGE, "%s: the shard's %s do not fit the cache limit of %s", name,
                       fmt_size(a, sizeof a, bytes), fmt_size(b, sizeof b, limit));
    snprintf(lockp, sizeof lockp, "%s/cache.lock", root);
    int lk = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lk < 0)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", lockp, strerror(errno));
    int rc = 0;
    for (int wait_ms = 1;; wait_ms = wait_ms < 64 ? 2 * wait_ms : 64) {
        while (flock(lk, LOCK_EX) && errno == EINTR)
            ;
        if (!limit)
            break;
        entry *v = NULL;
        size_t nv = 0;
        uint64_t used = 0, inflight = 0;
        if (scan(root, sha, &v, &nv, &used, &inflight, err)) {
            close(lk);
            return -1;
        }
        if (used + bytes > limit) {
            int lru = lru_policy();
            for (size_t i = 0; i < nv; i++)
                v[i].next = next && !lru ? next(ctx, v[i].sha) : UINT64_MAX;
            qsort(v, nv, sizeof *v, lru ? by_lru : by_eviction);
            /* a prefetch (use > 0) takes no room from a shard needed sooner */
            for (size_t i = 0; i < nv && used + bytes > limit && (!use || v[i].next > use); i++)
                if (evict(root, &v[i]))
                    used -= v[i].bytes;
        }
        free(v);
        if (used + bytes <= limit)
            break;
        /* a shard needed now waits for the room that downloads under way
         * (prefetches: theirs may be evicted once in place) hold */
        if (!use && used - inflight + bytes <= limit) {
            flock(lk, LOCK_UN);
            nanosleep(&(struct timespec){0, wait_ms * 1000000L}, NULL);
            continue;
        }
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: no room in the cache %s for the shard's %s: %s of the limit of "
                     "%llu are held by shards in use (raise --cache-limit, or read fewer partitions at once: "
                     "each holds a shard in use)", name, root,
                     fmt_size(a, sizeof a, bytes), fmt_size(b, sizeof b, used), (unsigned long long)limit);
        break;
    }
    if (!rc) {
        object_path(part, sizeof part, root, sha, ".part");
        *fd = open(part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int e = *fd < 0 ? errno : bytes ? posix_fallocate(*fd, 0, (off_t)bytes) : 0;
        if (e) {
            rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot make room for the shard's %s in the cache %s: %s", name,
                         fmt_size(a, sizeof a, bytes), root, strerror(e));
            if (*fd >= 0) {
                close(*fd);
                unlink(part);
            }
            *fd = -1;
        }
    }
    close(lk);
    return rc;
}

int sp_cache_commit(const char *root, const char *sha, int pin, sp_err *err)
{
    char part[4200], path[4200];
    object_path(part, sizeof part, root, sha, ".part");
    object_path(path, sizeof path, root, sha, "");
    if (rename(part, path))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
    flock(pin, LOCK_SH);
    return 0;
}

void sp_cache_abort(const char *root, const char *sha, int pin)
{
    char part[4200];
    object_path(part, sizeof part, root, sha, ".part");
    unlink(part);
    sp_cache_unpin(pin);
}
