/* The fetch stage: the plan for a dataset, a URL or a file, the cache with its locks, downloads (libcurl) with resume, and verification. */
#define _DEFAULT_SOURCE /* realpath, strcasecmp */
#include "pipeline/fetch.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/sp_hash.h"
#include "common/sp_atomic.h"
#include "pipeline/datasets.h"
#include "shards/manifest.h" /* sp_write_json_atomic */

void sp_fetch_opts_default(sp_fetch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->retries = 3;
    o->retry_delay = 1.0;
    o->stall_timeout = 30;
    o->connect_timeout = 30;
    o->max_size = SP_FETCH_MAX_SIZE;
}

int sp_fetch_global_init(sp_err *err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        return sp_fail(err, SP_EXIT_SYSTEM, "cannot initialise libcurl");
    return 0;
}

#define note(o, ...) sp_notef((o) ? (o)->note : NULL, (o) ? (o)->ctx : NULL, __VA_ARGS__)

static const char *human_size(uint64_t n, char buf[32])
{
    if (n < 10000)
        snprintf(buf, 32, "%llu bytes", (unsigned long long)n);
    else if (n < 1000000)
        snprintf(buf, 32, "%.1f kB", (double)n / 1e3);
    else if (n < 1000000000ull)
        snprintf(buf, 32, "%.1f MB", (double)n / 1e6);
    else
        snprintf(buf, 32, "%.1f GB", (double)n / 1e9);
    return buf;
}

/* ---------------- verification ---------------- */

/* Progress of hashing, reported under a file's label. */
typedef struct hash_progress {
    const sp_fetch_opts *o;
    const char *label;
} hash_progress;

static void on_hash_progress(void *ctx, uint64_t done, uint64_t total)
{
    hash_progress *h = ctx;
    if (h->o && h->o->progress)
        h->o->progress(h->o->ctx, h->label, done, total);
}

/* sha256 of the decompressed content of a (gzip, xz, ...) file. */
static int content_sha256(const char *path, char sha[65], sp_err *err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    struct archive_entry *e;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(1 << 18);
    int rc = -1;
    if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        goto out;
    }
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK ||
        archive_read_next_header(a, &e) != ARCHIVE_OK) {
        sp_fail(err, SP_EXIT_DATA, "%s: cannot decompress: %s", path, archive_error_string(a));
        goto out;
    }
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, 1 << 18);
        if (n < 0) {
            sp_fail(err, SP_EXIT_DATA, "%s: cannot decompress: %s", path, archive_error_string(a));
            goto out;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)n);
    }
    unsigned char d[32];
    unsigned dl;
    EVP_DigestFinal_ex(md, d, &dl);
    sp_hex(d, dl, sha);
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    free(buf);
    archive_read_free(a);
    return rc;
}

static int verify_file(const sp_fetch_opts *o, const char *path, const json_t *file, const char **how,
                       char md5_out[33], sp_err *err)
{
    const char *name = json_string_value(json_object_get(file, "name"));
    const char *want_md5 = json_string_value(json_object_get(file, "md5"));
    const char *want_sha = json_string_value(json_object_get(file, "sha256"));
    const char *want_content = json_string_value(json_object_get(file, "content_sha256"));
    char md5[33], sha[65], content[65] = "";
    uint64_t size = 0;
    hash_progress hp = {o, name};
    if (sp_hash_file(path, md5, sha, &size, on_hash_progress, &hp, err))
        return -1;
    if (md5_out)
        memcpy(md5_out, md5, 33);
    int file_ok = (want_md5 || want_sha) && (!want_md5 || !strcasecmp(want_md5, md5)) &&
                  (!want_sha || !strcasecmp(want_sha, sha));
    if (file_ok) {
        if (how)
            *how = want_md5 ? "md5" : "sha256";
        return 0;
    }
    if (want_content) {
        sp_err cerr = {0};
        if (content_sha256(path, content, &cerr) == 0 && !strcasecmp(want_content, content)) {
            if (how)
                *how = "content sha256 (a recompressed copy)";
            return 0;
        }
        if (!content[0])
            snprintf(content, sizeof content, "%s", "(not decompressible)");
    }
    if (!want_md5 && !want_sha && !want_content) {
        if (how)
            *how = "nothing (no checksum known)";
        return 0;
    }
    char msg[900];
    size_t len = 0;
    if (want_md5)
        len += (size_t)snprintf(msg + len, sizeof msg - len, "expected md5 %s, got %s", want_md5, md5);
    if (want_sha)
        len += (size_t)snprintf(msg + len, sizeof msg - len, "%sexpected sha256 %s, got %s", len ? "; " : "",
                                want_sha, sha);
    if (want_content && len < sizeof msg)
        snprintf(msg + len, sizeof msg - len, "%sexpected content sha256 %s, got %s", len ? "; " : "",
                 want_content, content);
    return sp_fail(err, SP_EXIT_DATA, "checksum mismatch (%llu bytes): %s", (unsigned long long)size, msg);
}

/* ---------------- one transfer ---------------- */

enum {
    XFER_OK,        /* complete: verify it */
    XFER_RETRY,     /* transient: try the same URL again (resuming) */
    XFER_NEXT,      /* permanent for this URL: next mirror */
    XFER_RANGE_END, /* 416: the .part may already be whole */
    XFER_FATAL,     /* the cache cannot be written (a full disk): stop */
};

typedef struct xfer {
    int fd;
    uint64_t offset;   /* bytes in the .part when the request was made */
    uint64_t written;  /* bytes written by this transfer */
    uint64_t cap;      /* cut off beyond this (0 = none) */
    int started, over_cap, bad_range, write_error;
    long range_start;  /* from Content-Range, -1 if none */
    char location[1024]; /* the last Location header (a redirect's target) */
    curl_off_t seen;     /* bytes received when progress last moved ... */
    double seen_at;      /* ... and when (sp_now seconds) */
    int stalled;
    CURL *curl;
    const sp_fetch_opts *o;
    const char *name;
    const char *dir; /* the cache directory of the .part, for fetch_pause */
    uint64_t total;
} xfer;

/* Crash-test phases (SP_FETCH_PAUSE, tests/tools/test_fetch_faults.sh; the
 * mark goes into the cache directory of the download): fetch-partial (the
 * first bytes of a download are written to the .part), fetch-verified (the
 * .part is whole, synced and verified, not yet renamed into place). */
#define fetch_pause(dir, phase) sp_test_pause("SP_FETCH_PAUSE", (dir), 0, (phase))

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    xfer *x = ctx;
    size_t len = size * n;
    if (len > 14 && !strncasecmp(p, "Content-Range:", 14)) {
        long start = -1;
        const char *b = p + 14;
        while (*b == ' ')
            b++;
        if (sscanf(b, "bytes %ld-", &start) == 1)
            x->range_start = start;
    }
    if (len > 9 && !strncasecmp(p, "Location:", 9)) {
        const char *b = p + 9;
        while (*b == ' ')
            b++;
        size_t k = len - (size_t)(b - p);
        while (k && (b[k - 1] == '\r' || b[k - 1] == '\n'))
            k--;
        snprintf(x->location, sizeof x->location, "%.*s", (int)k, b);
    }
    if (len >= 5 && !strncmp(p, "HTTP/", 5))
        x->range_start = -1; /* a new response (after a redirect) */
    return len;
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    xfer *x = ctx;
    size_t len = size * n;
    if (!x->started) {
        x->started = 1;
        long code = 0;
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code == 206 && x->offset > 0) {
            if (x->range_start != (long)x->offset) {
                x->bad_range = 1;
                return 0;
            }
            lseek(x->fd, 0, SEEK_END);
        } else {
            /* 200 (a server that ignores Range), or file://: from zero */
            if (ftruncate(x->fd, 0) || lseek(x->fd, 0, SEEK_SET)) {
                x->write_error = errno;
                return 0;
            }
            x->offset = 0;
        }
    }
    if (x->cap && x->offset + x->written + len > x->cap) {
        x->over_cap = 1;
        return 0;
    }
    if (sp_write_all(x->fd, p, len)) {
        x->write_error = errno;
        return 0;
    }
    if (x->written == 0)
        fetch_pause(x->dir, "fetch-partial");
    x->written += len;
    return len;
}

/* Also the stall watchdog: libcurl calls this at least once a second, and a
 * transfer whose byte count has not moved for stall_timeout is cut. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ut, curl_off_t un)
{
    (void)ut, (void)un;
    xfer *x = ctx;
    double now = sp_now();
    if (dlnow != x->seen) {
        x->seen = dlnow;
        x->seen_at = now;
    } else if (now - x->seen_at >= (double)x->o->stall_timeout) {
        x->stalled = 1;
        return 1;
    }
    if (x->o->progress && dlnow > 0) {
        uint64_t total = x->total ? x->total : (dltotal > 0 ? x->offset + (uint64_t)dltotal : 0);
        x->o->progress(x->o->ctx, x->name, x->offset + (uint64_t)dlnow, total);
    }
    return 0;
}

/* Empties the .part. A failure here shows up later: the next transfer
 * truncates again on its first byte, and verification reads what is there. */
static void empty_part(int fd)
{
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        return;
}

/* One request for url into fd (the .part, whose size is its resume point).
 * Returns an XFER_* outcome, with why set for anything but XFER_OK. */
static int transfer(const sp_fetch_opts *o, const char *url, const char *name, const char *dir, int fd,
                    uint64_t cap, uint64_t total, char *why, size_t why_len)
{
    struct stat st;
    fstat(fd, &st);
    int is_file = !strncmp(url, "file:", 5);
    xfer x = {.fd = fd, .offset = is_file ? 0 : (uint64_t)st.st_size, .cap = cap, .range_start = -1,
              .o = o, .name = name, .dir = dir, .total = total, .seen_at = sp_now()};
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, why_len, "cannot start libcurl");
        return XFER_NEXT;
    }
    x.curl = c;
    char range[64], errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "shardpipe/" SP_VERSION);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    /* no downgrade: from https, redirects may only lead to https */
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, strncmp(url, "https:", 6) ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L); /* error bodies never reach on_data */
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->connect_timeout);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (cap)
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cap);
    if (x.offset > 0) {
        snprintf(range, sizeof range, "%llu-", (unsigned long long)x.offset);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    int out;
    const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OK) {
        out = XFER_OK;
        if (!x.started && x.offset == 0)
            empty_part(fd); /* an empty body: an empty file */
    } else if (x.over_cap || rc == CURLE_FILESIZE_EXCEEDED) {
        if (total)
            snprintf(why, why_len, "more than the %llu bytes the manifest allows", (unsigned long long)cap);
        else
            snprintf(why, why_len, "more than the %llu bytes allowed (--max-size)", (unsigned long long)cap);
        empty_part(fd);
        out = XFER_NEXT;
    } else if (x.bad_range) {
        snprintf(why, why_len, "server resumed at byte %ld, not %llu", x.range_start,
                 (unsigned long long)x.offset);
        empty_part(fd);
        out = XFER_RETRY;
    } else if (x.write_error) {
        snprintf(why, why_len, "cannot write the download: %s", strerror(x.write_error));
        out = XFER_FATAL;
    } else if (rc == CURLE_HTTP_RETURNED_ERROR) {
        snprintf(why, why_len, "HTTP %ld", code);
        out = code == 416 ? XFER_RANGE_END : code >= 500 || code == 408 || code == 429 ? XFER_RETRY : XFER_NEXT;
    } else if (rc == CURLE_UNSUPPORTED_PROTOCOL && x.location[0]) {
        snprintf(why, why_len, "redirect to %.300s refused (https may only redirect to https)", x.location);
        out = XFER_NEXT;
    } else if (x.stalled) {
        snprintf(why, why_len, "stalled: nothing received for %ld s", o->stall_timeout);
        out = XFER_RETRY;
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(why, why_len, "timed out: %s", msg);
        out = XFER_RETRY;
    } else if (rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
               rc == CURLE_COULDNT_CONNECT || rc == CURLE_SEND_ERROR || rc == CURLE_HTTP2 ||
               rc == CURLE_HTTP2_STREAM) {
        snprintf(why, why_len, "%s", msg);
        out = XFER_RETRY;
    } else {
        /* name resolution, TLS verification, file:// not found, bad URL, ... */
        snprintf(why, why_len, "%s", msg);
        out = XFER_NEXT;
    }
    curl_easy_cleanup(c);
    return out;
}

/* ---------------- a file through the cache ---------------- */

static void join_url(char *out, size_t n, const char *mirror, const char *name)
{
    size_t k = strlen(mirror);
    while (k && mirror[k - 1] == '/')
        k--;
    snprintf(out, n, "%.*s/%s", (int)k, mirror, name);
}

static void sleep_seconds(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Opens and takes (flock, waiting) the lock file of a download; returns its
 * fd, or -1 with errno. A holder removes the lock file when it is done
 * (drop_lock), so a lock taken on a file no longer at that name is stale:
 * then it tries again on a fresh one. */
static int take_lock(const char *lock)
{
    for (;;) {
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return -1;
        if (flock(fd, LOCK_EX)) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(lock, &named) == 0 && held.st_ino == named.st_ino &&
            held.st_dev == named.st_dev)
            return fd;
        close(fd);
    }
}

/* Removes the lock file and releases the lock: a waiter on it tries again
 * (take_lock), so no empty lock file stays in the cache. */
static void drop_lock(const char *lock, int fd)
{
    unlink(lock);
    close(fd);
}

int sp_fetch_file(const sp_fetch_opts *o, const char *subdir, const json_t *mirrors, const json_t *file,
                  char *path, size_t path_len, sp_err *err)
{
    const char *name = json_string_value(json_object_get(file, "name"));
    char dir[4096], part[4200], bad[4200], lock[4200], label[512];
    snprintf(dir, sizeof dir, "%s/%s", o->cache_dir, subdir);
    snprintf(path, path_len, "%s/%s", dir, name);
    snprintf(label, sizeof label, "%s/%s", subdir, name);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        note(o, "%s: cached", label);
        return 0;
    }
    if (o->offline)
        return sp_fail(err, SP_EXIT_DATA, "%s: not in the cache (%s) and --offline is set", label, o->cache_dir);
    const char *own_url = json_string_value(json_object_get(file, "url"));
    size_t nmirrors = own_url ? 1 : json_array_size(mirrors);
    if (nmirrors == 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: no mirror to download it from", label);
    if (sp_mkdirs(dir))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot create: %s", dir, strerror(errno));
    snprintf(part, sizeof part, "%s.part", path);
    snprintf(bad, sizeof bad, "%s.bad", path);
    snprintf(lock, sizeof lock, "%s.lock", path);
    /* another fetcher of the same file: wait for it, then use its result */
    int lockfd = take_lock(lock);
    if (lockfd < 0)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot lock: %s", lock, strerror(errno));
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        drop_lock(lock, lockfd);
        note(o, "%s: cached (by another fetcher)", label);
        return 0;
    }
    int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        drop_lock(lock, lockfd);
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", part, strerror(errno));
    }
    json_int_t size = json_integer_value(json_object_get(file, "size"));
    uint64_t cap = size > 0 ? (uint64_t)size + (uint64_t)size / 8 + (1u << 20) : o->max_size;
    char failures[900] = "";
    size_t flen = 0;
    for (size_t m = 0; m < nmirrors; m++) {
        char url[4096], why[1400] = "";
        if (own_url)
            snprintf(url, sizeof url, "%s", own_url);
        else
            join_url(url, sizeof url, json_string_value(json_array_get(mirrors, m)), name);
        int outcome = XFER_NEXT;
        for (int attempt = 0; attempt <= o->retries; attempt++) {
            if (attempt > 0) {
                note(o, "%s: %s: %s; retrying", label, url, why);
                sleep_seconds(o->retry_delay * (double)(1 << (attempt - 1)));
            }
            outcome = transfer(o, url, label, dir, fd, cap, size > 0 ? (uint64_t)size : 0, why, sizeof why);
            if (outcome == XFER_RANGE_END) {
                /* the server has nothing past our .part: it may be whole */
                if (verify_file(o, part, file, NULL, NULL, NULL) == 0) {
                    outcome = XFER_OK;
                    break;
                }
                empty_part(fd);
                outcome = XFER_RETRY;
                continue;
            }
            if (outcome != XFER_RETRY)
                break;
        }
        if (outcome == XFER_FATAL) {
            /* a failed write: what the .part holds is not to be trusted or
             * resumed, and removing it gives back the space of a full disk */
            close(fd);
            unlink(part);
            drop_lock(lock, lockfd);
            return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s: %s", label, part, why);
        }
        if (outcome == XFER_OK) {
            const char *how = NULL;
            sp_err verr = {0};
            fstat(fd, &st);
            if (fsync(fd) != 0) { /* the bytes may not be on the disk: a system error, not bad data */
                int e = errno;
                close(fd);
                unlink(part); /* after a failed fsync its bytes on disk are unknown */
                drop_lock(lock, lockfd);
                return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s: cannot sync: %s", label, part, strerror(e));
            }
            if (verify_file(o, part, file, &how, NULL, &verr) == 0) {
                fetch_pause(dir, "fetch-verified");
                sp_err derr = {0};
                int renamed = rename(part, path) == 0;
                int e = errno;
                if (!renamed)
                    unlink(part);
                int synced = renamed && sp_fsync_path(dir, &derr) == 0;
                close(fd);
                drop_lock(lock, lockfd);
                if (!renamed)
                    return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot move into the cache: %s", path, strerror(e));
                if (!synced) /* the file is whole and verified; its name may not survive a crash */
                    return sp_fail(err, SP_EXIT_SYSTEM, "%s: in the cache, but %s", path, derr.msg);
                char sz[32];
                note(o, "%s: %s from %s, verified by %s", label, human_size((uint64_t)st.st_size, sz), url, how);
                return 0;
            }
            /* keep the evidence; the next mirror starts a new .part */
            rename(part, bad);
            snprintf(why, sizeof why, "%.700s (kept as %.600s)", verr.msg, bad);
            close(fd);
            fd = open(part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) {
                drop_lock(lock, lockfd);
                return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", part, strerror(errno));
            }
        } else if (outcome == XFER_RETRY) {
            snprintf(why + strlen(why), sizeof why - strlen(why), " (%d tries)", o->retries + 1);
        }
        note(o, "%s: %s: %s", label, url, why);
        if (flen < sizeof failures)
            flen += (size_t)snprintf(failures + flen, sizeof failures - flen, "%s%s: %s", flen ? "; " : "", url,
                                     why);
    }
    close(fd);
    /* keep a partial download for the next run to resume; drop an empty one */
    if (stat(part, &st) == 0 && st.st_size == 0)
        unlink(part);
    drop_lock(lock, lockfd);
    return sp_fail(err, SP_EXIT_DATA, "%s: no verified copy from any mirror: %s", label, failures);
}

/* ---------------- a copy the user has ---------------- */

static int str_is(const json_t *j, const char *s)
{
    const char *v = json_string_value(j);
    return v && !strcmp(v, s);
}

int sp_fetch_verify_copy(const sp_fetch_opts *o, const char *subdir, const char *dir, const json_t *file,
                         char *path, size_t path_len, sp_err *err)
{
    const char *name = json_string_value(json_object_get(file, "name"));
    char label[512], stamp[4400], cdir[4096];
    snprintf(path, path_len, "%s/%s", dir, name);
    snprintf(label, sizeof label, "%s/%s", subdir, name);
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode))
        return sp_fail(err, SP_EXIT_DATA, "%s: not found", path);
    json_int_t size = json_integer_value(json_object_get(file, "size"));
    if (size > 0 && st.st_size != size)
        return sp_fail(err, SP_EXIT_DATA, "%s: %lld bytes, the published file has %lld", path,
                       (long long)st.st_size, (long long)size);
    char real[4096];
    if (!realpath(path, real))
        snprintf(real, sizeof real, "%s", path);
    snprintf(cdir, sizeof cdir, "%s/%s", o->cache_dir, subdir);
    snprintf(stamp, sizeof stamp, "%s/%s.verified", cdir, name);
    char mtime[64];
    snprintf(mtime, sizeof mtime, "%lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    json_t *s = json_load_file(stamp, 0, NULL);
    const char *want_md5 = json_string_value(json_object_get(file, "md5"));
    int fresh = s && want_md5 && str_is(json_object_get(s, "path"), real) &&
                json_integer_value(json_object_get(s, "size")) == (json_int_t)st.st_size &&
                str_is(json_object_get(s, "mtime"), mtime) && str_is(json_object_get(s, "md5"), want_md5);
    json_decref(s);
    if (fresh) {
        note(o, "%s: %s, verified before (stamp in %s)", label, path, cdir);
        return 0;
    }
    const char *how;
    char md5[33];
    if (verify_file(o, path, file, &how, md5, err))
        return sp_fail_context(err, "%s", path);
    note(o, "%s: %s, verified by %s", label, path, how);
    s = json_pack("{s:s, s:I, s:s, s:s}", "path", real, "size", (json_int_t)st.st_size, "mtime", mtime, "md5", md5);
    if (!s)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    /* the stamp spares the next run a verification; a cache that cannot take
     * it is a system error like any other write into the cache */
    int rc = 0;
    if (sp_mkdirs(cdir))
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot create: %s", cdir, strerror(errno));
    else
        rc = sp_write_json_atomic(cdir, strrchr(stamp, '/') + 1, s, err);
    if (rc && err && !strstr(err->msg, stamp)) /* the directory's fsync names only the directory */
        sp_fail_context(err, "%s", stamp);
    json_decref(s);
    return rc;
}

/* ---------------- what to fetch ---------------- */

void sp_fetch_default_cache(char *out, size_t n)
{
    const char *env = getenv("SP_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (env && *env)
        snprintf(out, n, "%s", env);
    else if (xdg && *xdg)
        snprintf(out, n, "%s/shardpipe", xdg);
    else
        snprintf(out, n, "%s/.cache/shardpipe", home && *home ? home : ".");
}

int sp_fetch_sum_valid(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static int selected(char **only, int nonly, const char *name)
{
    if (!nonly)
        return 1;
    for (int i = 0; i < nonly; i++)
        if (!strcmp(only[i], name))
            return 1;
    return 0;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int sp_fetch_plan(const char *arg, const sp_fetch_request *rq, json_t *jobs, json_t *meta, sp_err *err)
{
    struct stat st;
    if (strstr(arg, "://")) {
        /* one file, cached under urls/ by a hash of the URL and the sums it must have:
         * a copy fetched without --md5 (or with another) is not looked at */
        char name[256], subdir[64];
        const char *slash = strrchr(arg, '/');
        snprintf(name, sizeof name, "%s", slash && slash[1] ? slash + 1 : "download");
        name[strcspn(name, "?#")] = 0;
        uint64_t h = fnv1a(1469598103934665603ull, arg);
        if (rq->md5)
            h = fnv1a(fnv1a(h, "\nmd5="), rq->md5);
        if (rq->sha256)
            h = fnv1a(fnv1a(h, "\nsha256="), rq->sha256);
        snprintf(subdir, sizeof subdir, "urls/%016llx", (unsigned long long)h);
        json_t *f = json_pack("{s:s, s:s}", "name", name, "url", arg);
        if (rq->md5)
            json_object_set_new(f, "md5", json_string(rq->md5));
        if (rq->sha256)
            json_object_set_new(f, "sha256", json_string(rq->sha256));
        if (!f || json_array_append_new(jobs, json_pack("{s:o, s:s, s:[]}", "file", f, "subdir", subdir, "mirrors")))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return 0;
    }
    if (!strstr(arg, ".json") && stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
        json_array_append_new(jobs, json_pack("{s:{s:s}, s:s}", "file", "name", sp_basename(arg), "local", arg));
        return 0;
    }
    if (strstr(arg, ".json") && stat(arg, &st) != 0) /* a manifest named by path */
        return sp_fail(err, SP_EXIT_DATA, "%s: %s", arg, strerror(errno));
    json_t *manifest = sp_dataset_manifest(arg, err);
    if (!manifest)
        return -1;
    const char *subdir = json_string_value(json_object_get(manifest, "name"));
    json_t *mirrors = json_object_get(manifest, "mirrors");
    json_object_set(meta, "dataset", json_object_get(manifest, "name"));
    if (json_object_get(manifest, "classes"))
        json_object_set(meta, "classes", json_object_get(manifest, "classes"));
    const char *how_to_get = json_string_value(json_object_get(manifest, "access"));
    size_t k;
    json_t *f;
    int rc = 0;
    json_array_foreach(json_object_get(manifest, "files"), k, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!selected(rq->only, rq->nonly, name))
            continue;
        /* a dataset with nothing to download from: only the cache or --from */
        char cached[4200];
        snprintf(cached, sizeof cached, "%s/%s/%s", rq->cache_dir, subdir, name);
        if (!rq->from && !rq->offline && json_array_size(mirrors) == 0 && how_to_get && access(cached, F_OK)) {
            rc = sp_fail(err, SP_EXIT_DATA, "%s: %s", arg, how_to_get);
            break;
        }
        json_array_append_new(jobs, json_pack("{s:O, s:s, s:O}", "file", f, "subdir", subdir, "mirrors", mirrors));
    }
    json_decref(manifest);
    return rc;
}
