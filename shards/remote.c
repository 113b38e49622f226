/* Shard sets at a URL: the registry of sets whose manifest was fetched, whole-shard downloads (libcurl) hashed as they stream in, retried and resumed by Range. */
#define _GNU_SOURCE
#include "shards/remote.h"

#include "common/sp_atomic.h"
#include "shards/cache.h"
#include "shards/upload.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST_MAX (256u << 20) /* bytes of a manifest fetched, at most */
#define TRIES 5                   /* attempts a download gets */
#define PREFETCH_MAX_THREADS 8    /* a set's prefetch threads, at most */
#define WRITEBACK_STEP (4u << 20) /* a durable download hands its bytes to writeback this many at a time */
#define PREFETCH_AHEAD_MAX (256ull << 20) /* bytes prefetched ahead by default, at most */

typedef struct rset {
    char *url;         /* without its trailing '/' */
    char root[4096];   /* the cache root */
    uint64_t limit;    /* bytes, 0: none */
    json_t *files;     /* file name -> [sha256, bytes] */
    char manifest[4400];
    char **plan;       /* the shards' sha256 in order of use (sp_remote_plan) */
    char **plan_url;   /* and their URLs */
    unsigned char *opened; /* opened[i]: use i (of this epoch's) has been opened */
    size_t nplan, pos; /* pos: the first of this epoch's uses not opened yet (ncur: all were) */
    size_t ncur;       /* plan[0, ncur): this epoch's uses; [ncur, nplan): the next epoch's */
    uint64_t plan_gen;  /* bumped at each plan and each move of pos */
    int prefetching;    /* its prefetch threads that run (in this process) */
    uint64_t claim_gen; /* the plan_gen next_k counts from */
    size_t next_k;      /* the next use (pos + next_k) a prefetch thread looks at */
    size_t taken;       /* uses not opened yet before it, */
    uint64_t ahead;     /* and their bytes */
    char inflight[PREFETCH_MAX_THREADS][65]; /* the shards its threads download, "" for none */
    uint64_t ticket_next, ticket_turn; /* its prefetches make room in the order they were claimed */
    pthread_cond_t wake;
    struct rset *next;
} rset;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static rset *sets;
static char *default_cache;
static uint64_t default_limit;
static int defaults_set;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
/* Set at exit: prefetches end (see stop_prefetch). */
static volatile sig_atomic_t stopping;
static int prefetch_active; /* prefetch downloads under way (reg_mu) */
static pthread_cond_t prefetch_done = PTHREAD_COND_INITIALIZER;
static int curl_ok;

static void curl_init(void) { curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }

/* fork(): the registry's lock is not held across it, and the child has no
 * prefetch threads (a plan of its own starts them again). */
static void fork_prepare(void) { pthread_mutex_lock(&reg_mu); }
static void fork_parent(void) { pthread_mutex_unlock(&reg_mu); }
static void fork_child(void)
{
    prefetch_active = 0; /* the parent's prefetches are not in this process */
    for (rset *r = sets; r; r = r->next) {
        r->prefetching = 0;
        memset(r->inflight, 0, sizeof r->inflight);
        r->ticket_turn = r->ticket_next;
        pthread_cond_init(&r->wake, NULL);
    }
    pthread_mutex_unlock(&reg_mu);
}
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void fork_install(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }

int sp_remote_is_url(const char *loc)
{
    return loc && (!strncmp(loc, "http://", 7) || !strncmp(loc, "https://", 8) || !strncmp(loc, "file://", 7) ||
                   !strncmp(loc, "s3://", 5));
}

static char *s3_endpoint; /* sp_remote_configure_s3's, or NULL */

void sp_remote_configure_s3(const char *endpoint)
{
    pthread_mutex_lock(&reg_mu);
    free(s3_endpoint);
    s3_endpoint = endpoint ? strdup(endpoint) : NULL;
    pthread_mutex_unlock(&reg_mu);
}

/* ---- S3: where an s3:// URL is, and who asks ---- */

typedef sp_s3_req s3_req;

/* The value of key in section [profile] of an INI file; 0 if found. */
static int ini_value(const char *path, const char *profile, const char *key, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[4096], section[256] = "";
    int found = -1;
    while (found && fgets(line, sizeof line, f)) {
        char *p = line + strspn(line, " \t");
        p[strcspn(p, "\r\n")] = 0;
        if (*p == '[') {
            snprintf(section, sizeof section, "%.*s", (int)strcspn(p + 1, "]"), p + 1);
            continue;
        }
        char *eq = strchr(p, '=');
        if (!eq || strcmp(section, profile))
            continue;
        size_t kl = (size_t)(eq - p);
        while (kl && (p[kl - 1] == ' ' || p[kl - 1] == '\t'))
            kl--;
        if (kl != strlen(key) || strncmp(p, key, kl))
            continue;
        char *v = eq + 1 + strspn(eq + 1, " \t");
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            v[--vl] = 0;
        snprintf(out, n, "%s", v);
        found = 0;
    }
    fclose(f);
    return found;
}

/* The request for s3://BUCKET/KEY: the endpoint (sp_remote_configure_s3,
 * else $AWS_ENDPOINT_URL, else https://s3.REGION.amazonaws.com), the region
 * ($AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1), the credentials
 * ($AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY with $AWS_SESSION_TOKEN,
 * else profile $AWS_PROFILE (default "default") of
 * $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, else none: anonymous). */
void sp_remote_s3_request(const char *s3url, s3_req *q)
{
    const char *region = getenv("AWS_REGION");
    if (!region || !*region)
        region = getenv("AWS_DEFAULT_REGION");
    snprintf(q->region, sizeof q->region, "%s", region && *region ? region : "us-east-1");
    char ep[1024];
    pthread_mutex_lock(&reg_mu);
    const char *env = getenv("AWS_ENDPOINT_URL");
    if (s3_endpoint)
        snprintf(ep, sizeof ep, "%s", s3_endpoint);
    else if (env && *env)
        snprintf(ep, sizeof ep, "%s", env);
    else
        snprintf(ep, sizeof ep, "https://s3.%s.amazonaws.com", q->region);
    pthread_mutex_unlock(&reg_mu);
    size_t el = strlen(ep);
    while (el && ep[el - 1] == '/')
        ep[--el] = 0;
    snprintf(q->url, sizeof q->url, "%s/%s", ep, s3url + 5);
    q->userpwd[0] = q->token[0] = 0;
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN");
    if (id && *id && secret && *secret) {
        snprintf(q->userpwd, sizeof q->userpwd, "%s:%s", id, secret);
        if (token && *token)
            snprintf(q->token, sizeof q->token, "%s", token);
        return;
    }
    char path[4096], pid[256] = "", psecret[256] = "";
    const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE"), *home = getenv("HOME");
    const char *profile = getenv("AWS_PROFILE");
    if (file && *file)
        snprintf(path, sizeof path, "%s", file);
    else
        snprintf(path, sizeof path, "%s/.aws/credentials", home ? home : "");
    profile = profile && *profile ? profile : "default";
    if (!ini_value(path, profile, "aws_access_key_id", pid, sizeof pid) &&
        !ini_value(path, profile, "aws_secret_access_key", psecret, sizeof psecret)) {
        snprintf(q->userpwd, sizeof q->userpwd, "%s:%s", pid, psecret);
        ini_value(path, profile, "aws_session_token", q->token, sizeof q->token);
    }
}

struct curl_slist *sp_remote_s3_sign(CURL *c, const s3_req *q, struct curl_slist *hdr)
{
    /* radosgw (and S3) want the payload's hash named: none here */
    hdr = curl_slist_append(hdr, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (q->userpwd[0]) {
        char sig[128];
        snprintf(sig, sizeof sig, "aws:amz:%s:s3", q->region);
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sig);
        curl_easy_setopt(c, CURLOPT_USERPWD, q->userpwd);
        if (q->token[0]) {
            char t[2100];
            snprintf(t, sizeof t, "x-amz-security-token: %s", q->token);
            hdr = curl_slist_append(hdr, t);
        }
    }
    return hdr;
}

void sp_remote_configure(const char *cache_dir, uint64_t limit)
{
    pthread_mutex_lock(&reg_mu);
    free(default_cache);
    default_cache = cache_dir ? strdup(cache_dir) : NULL;
    default_limit = limit;
    defaults_set = 1;
    pthread_mutex_unlock(&reg_mu);
}

const char *sp_remote_shown(const char *url, char *out, size_t n)
{
    const char *scheme = strstr(url, "://"), *host = scheme ? scheme + 3 : url;
    const char *slash = strchr(host, '/'), *at = strchr(host, '@');
    if (at && (!slash || at < slash))
        snprintf(out, n, "%.*s%s", (int)(host - url), url, at + 1);
    else
        snprintf(out, n, "%s", url);
    return out;
}

/* ---- one transfer ---- */

typedef struct xfer {
    CURL *c;
    int fd;               /* the .part, or -1: into mem */
    sp_buf *mem;          /* the manifest's bytes */
    uint64_t got, cap;    /* bytes kept so far, and at most */
    uint64_t flushed;     /* bytes [0, flushed) of the .part handed to writeback already */
    EVP_MD_CTX *md;       /* the hash of bytes [0, got) */
    int restarted, over, io;
    long stall;           /* seconds without a byte that end an attempt */
    curl_off_t seen;      /* bytes received by this attempt at... */
    double seen_at;       /* ...this time (sp_now) */
    int stalled;
    int prefetch;         /* a prefetch's transfer: ends at exit */
    int durable;          /* the .part is fsynced before its commit (cache_fsync) */
} xfer;


/* Ends an attempt that has received no byte for x->stall seconds, and a
 * prefetch when the process exits. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)ultotal, (void)ulnow;
    xfer *x = ctx;
    if (stopping && x->prefetch)
        return 1;
    double now = sp_now();
    if (dlnow != x->seen || x->seen_at == 0) {
        x->seen = dlnow;
        x->seen_at = now;
        return 0;
    }
    if (now - x->seen_at >= (double)x->stall) {
        x->stalled = 1;
        return 1;
    }
    return 0;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
    xfer *x = ctx;
    size_t n = size * nmemb;
    if (!x->restarted) {
        /* a resume the server answered with the whole body: start over */
        long code = 0;
        curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &code);
        if (code == 200 && x->got) {
            x->got = x->flushed = 0;
            if (x->md)
                EVP_DigestInit_ex(x->md, EVP_sha256(), NULL);
            if (x->mem)
                x->mem->len = 0;
        }
        x->restarted = 1;
    }
    if (x->got + n > x->cap) {
        x->over = 1;
        return 0;
    }
    if (x->fd >= 0) {
        size_t done = 0;
        while (done < n) {
            ssize_t w = pwrite(x->fd, p + done, n - done, (off_t)(x->got + done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                x->io = w < 0 ? errno : EIO;
                return 0;
            }
            done += (size_t)w;
        }
    } else if (sp_buf_append(x->mem, p, n)) {
        x->io = ENOMEM;
        return 0;
    }
    if (x->md)
        EVP_DigestUpdate(x->md, p, n);
    x->got += n;
    if (x->fd >= 0 && x->durable && x->got - x->flushed >= WRITEBACK_STEP) {
        /* the disk starts writing while the rest streams in, so that the
         * fsync before the commit waits for the tail only */
        sync_file_range(x->fd, (off_t)x->flushed, (off_t)(x->got - x->flushed), SYNC_FILE_RANGE_WRITE);
        x->flushed = x->got;
    }
    return n;
}

static const char *env_or(const char *a, const char *b, const char *c)
{
    const char *v = getenv(a);
    if (!v || !*v)
        v = getenv(b);
    if (!v || !*v)
        v = getenv(c);
    return v && *v ? v : NULL;
}

void sp_remote_curl_setup(CURL *c, const char *url, char *ebuf, const char *protocols)
{
    const char *ca = env_or("SHARDPIPE_CA_FILE", "CURL_CA_BUNDLE", "SSL_CERT_FILE");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "shardpipe/" SP_VERSION);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    if (ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
}

void sp_remote_backoff(int attempt)
{
    struct timespec ts = {0, 100000000L << (attempt - 1)};
    while (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    nanosleep(&ts, NULL);
}

/* Seconds from an environment variable, or def. */
static long env_seconds(const char *name, long def)
{
    const char *v = getenv(name);
    long s = v ? strtol(v, NULL, 10) : 0;
    return s > 0 ? s : def;
}

/* Fetches url into x (from x->got on, by Range, when it is not 0), up to
 * TRIES attempts with backoff. 0, or -1 with err naming `name` (the shown URL). */
static int fetch(xfer *x, const char *url, const char *name, sp_err *err)
{
    pthread_once(&curl_once, curl_init);
    if (!curl_ok)
        return sp_fail(err, SP_EXIT_SYSTEM, "cannot initialise libcurl");
    CURL *c = curl_easy_init();
    if (!c)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot start a transfer", name);
    s3_req *q = NULL; /* an s3:// URL's request, signed (SigV4) when there are credentials */
    if (!strncmp(url, "s3://", 5)) {
        if (!(q = calloc(1, sizeof *q))) {
            curl_easy_cleanup(c);
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        }
        sp_remote_s3_request(url, q);
        url = q->url;
    }
    x->c = c;
    char ebuf[CURL_ERROR_SIZE], why[512] = "";
    long low_time = env_seconds("SHARDPIPE_STALL_SECONDS", 30); /* a stalled attempt ends */
    int rc = -1, code_kind = SP_EXIT_SYSTEM, attempt;
    for (attempt = 0; attempt < TRIES; attempt++) {
        if (x->prefetch && stopping) {
            snprintf(why, sizeof why, "the process exits");
            break;
        }
        if (attempt)
            sp_remote_backoff(attempt);
        curl_easy_reset(c);
        sp_remote_curl_setup(c, url, ebuf, q ? "http,https" : "http,https,file");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, strncmp(url, "https:", 6) ? "http,https" : "https");
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        x->stall = low_time, x->seen = 0, x->seen_at = 0, x->stalled = 0;
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        struct curl_slist *hdr = NULL;
        if (q) {
            hdr = sp_remote_s3_sign(c, q, hdr);
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        }
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L << 10); /* fewer, larger writes and hash updates */
        curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
        char range[32];
        if (x->got) {
            snprintf(range, sizeof range, "%llu-", (unsigned long long)x->got);
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        x->restarted = 0;
        ebuf[0] = 0;
        CURLcode res = curl_easy_perform(c);
        curl_slist_free_all(hdr);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (x->over) {
            snprintf(why, sizeof why, "the server sent more than the manifest's %llu bytes",
                     (unsigned long long)x->cap);
            code_kind = SP_EXIT_DATA;
            break;
        }
        if (x->io) {
            snprintf(why, sizeof why, "cannot write to the cache: %s", strerror(x->io));
            break;
        }
        if (res == CURLE_OK) {
            rc = 0;
            break;
        }
        if (res == CURLE_HTTP_RETURNED_ERROR) {
            snprintf(why, sizeof why, "HTTP %ld", code);
            if (code == 404 || code == 410) {
                snprintf(why, sizeof why, "HTTP %ld: not found", code);
                code_kind = SP_EXIT_DATA;
                break;
            }
            if (code >= 400 && code < 500 && code != 408 && code != 429) {
                snprintf(why, sizeof why, "HTTP %ld: refused%s", code,
                         code == 401 || code == 403 ? " (no access: check the credentials or the bucket's policy)"
                                                    : "");
                break;
            }
            if (code == 416) /* a resume past the end: start over */
                x->got = x->flushed = 0;
            continue; /* 5xx, 408, 429 */
        }
        if (x->stalled)
            snprintf(why, sizeof why, "no byte for %ld s", low_time);
        else
            snprintf(why, sizeof why, "%s", ebuf[0] ? ebuf : curl_easy_strerror(res));
        if (res == CURLE_SSL_CACERT || res == CURLE_PEER_FAILED_VERIFICATION || res == CURLE_UNSUPPORTED_PROTOCOL ||
            res == CURLE_URL_MALFORMAT || res == CURLE_FILE_COULDNT_READ_FILE || res == CURLE_REMOTE_FILE_NOT_FOUND) {
            if (res == CURLE_FILE_COULDNT_READ_FILE || res == CURLE_REMOTE_FILE_NOT_FOUND)
                code_kind = SP_EXIT_DATA;
            break;
        }
        /* reset, timeout, a short body: again, from what is kept */
    }
    if (attempt == TRIES) /* every attempt failed on something that may pass */
        snprintf(why + strlen(why), sizeof why - strlen(why), " (after %d attempts)", TRIES);
    curl_easy_cleanup(c);
    if (q) { /* the secret leaves no copy behind */
        OPENSSL_cleanse(q, sizeof *q);
        free(q);
    }
    x->c = NULL;
    if (rc)
        sp_fail(err, code_kind, "%s: %s", name, why);
    return rc;
}

/* ---- the registry ---- */

static rset *find_locked(const char *url, size_t len)
{
    for (rset *r = sets; r; r = r->next)
        if (strlen(r->url) == len && !strncmp(r->url, url, len))
            return r;
    return NULL;
}


/* The shards of manifest text m: file -> [sha256, bytes]; NULL with err. */
static json_t *shard_table(const char *name, const sp_buf *m, uint64_t limit, sp_err *err)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)m->data, m->len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        sp_fail(err, SP_EXIT_DATA, "%s: %s", name, je.text);
        return NULL;
    }
    json_t *t = json_object(), *e;
    size_t i;
    json_array_foreach(json_object_get(j, "shards"), i, e) {
        const char *file = json_string_value(json_object_get(e, "file"));
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        json_t *bytes = json_object_get(e, "bytes");
        int ok = file && *file && !strchr(file, '/') && file[0] != '.' && sha && strlen(sha) == 64 &&
                 strspn(sha, "0123456789abcdef") == 64 && json_is_integer(bytes) && json_integer_value(bytes) >= 0;
        if (!ok) {
            sp_fail(err, SP_EXIT_DATA, "%s: shard entry %zu lacks a file name, a sha256 or its bytes, which a "
                    "remote set needs", name, i);
            goto fail;
        }
        if (limit && (uint64_t)json_integer_value(bytes) > limit) {
            sp_fail(err, SP_EXIT_USAGE, "%s: shard %s holds %lld bytes, more than the cache limit of %llu bytes "
                    "(raise --cache-limit to the largest shard at least)", name, file,
                    (long long)json_integer_value(bytes), (unsigned long long)limit);
            goto fail;
        }
        json_object_set_new(t, file, json_pack("[sI]", sha, json_integer_value(bytes)));
    }
    json_decref(j);
    return t;
fail:
    json_decref(t);
    json_decref(j);
    return NULL;
}

static int register_set(const char *url, const char *cache_dir, uint64_t limit, int explicit_opts, int refetch,
                        char *local, size_t n, sp_err *err)
{
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    pthread_once(&fork_once, fork_install);
    pthread_mutex_lock(&reg_mu);
    rset *r = find_locked(url, len);
    if (r && !refetch) {
        int w = snprintf(local, n, "%s", r->manifest);
        pthread_mutex_unlock(&reg_mu);
        return w < (int)n ? 0 : sp_fail(err, SP_EXIT_SYSTEM, "%s: path too long", r->manifest);
    }
    char root[4096];
    const char *dir = explicit_opts || !defaults_set ? cache_dir : default_cache;
    if (!explicit_opts)
        limit = defaults_set ? default_limit : 0;
    int rc = sp_cache_root(dir, root, sizeof root, err);
    pthread_mutex_unlock(&reg_mu);
    if (rc)
        return -1;
    if (!explicit_opts && !(defaults_set && default_limit) &&
        sp_cache_parse_size("SHARDPIPE_CACHE_LIMIT", getenv("SHARDPIPE_CACHE_LIMIT"), &limit, err))
        return -1;

    char base[4096], murl[4200], name[4200], mpath[4300];
    snprintf(base, sizeof base, "%.*s", (int)len, url);
    snprintf(murl, sizeof murl, "%s/manifest.json", base);
    sp_remote_shown(murl, name, sizeof name);
    sp_buf m = {0};
    xfer x = {.fd = -1, .mem = &m, .cap = MANIFEST_MAX};
    if (fetch(&x, murl, name, err)) {
        sp_buf_free(&m);
        return -1;
    }
    json_t *table = shard_table(name, &m, limit, err);
    if (!table) {
        sp_buf_free(&m);
        return -1;
    }
    unsigned char d[32];
    unsigned dl = 0;
    char key[65];
    EVP_Digest(base, strlen(base), d, &dl, EVP_sha256(), NULL);
    sp_hex(d, 16, key);
    snprintf(mpath, sizeof mpath, "%s/manifests", root);
    if (sp_mkdirs(mpath) && errno != EEXIST) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot create: %s", mpath, strerror(errno));
        goto fail;
    }
    snprintf(mpath, sizeof mpath, "%s/manifests/%s.json", root, key);
    if (sp_atomic_write(mpath, m.data, m.len, err))
        goto fail;
    sp_buf_free(&m);
    pthread_mutex_lock(&reg_mu);
    r = find_locked(base, len);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r || !(r->url = strdup(base))) {
            free(r);
            pthread_mutex_unlock(&reg_mu);
            json_decref(table);
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        }
        pthread_cond_init(&r->wake, NULL);
        r->next = sets;
        sets = r;
    }
    json_decref(r->files);
    r->files = table;
    r->limit = limit;
    snprintf(r->root, sizeof r->root, "%s", root);
    snprintf(r->manifest, sizeof r->manifest, "%s", mpath);
    pthread_mutex_unlock(&reg_mu);
    return snprintf(local, n, "%s", mpath) < (int)n ? 0 : sp_fail(err, SP_EXIT_SYSTEM, "%s: path too long", mpath);
fail:
    sp_buf_free(&m);
    json_decref(table);
    return -1;
}

int sp_remote_manifest(const char *url, char *local, size_t n, sp_err *err)
{
    return register_set(url, NULL, 0, 0, 0, local, n, err);
}

int sp_remote_manifest_with(const char *url, const char *cache_dir, uint64_t limit, char *local, size_t n,
                            sp_err *err)
{
    return register_set(url, cache_dir, limit, 1, 1, local, n, err);
}

/* sp_cache_next_use over a set's plan: the uses from pos on not opened
 * yet, pos itself 0 uses ahead; reg_mu not held. */
static uint64_t plan_next_use(void *ctx, const char *sha)
{
    rset *r = ctx;
    uint64_t next = UINT64_MAX;
    pthread_mutex_lock(&reg_mu);
    for (size_t i = r->pos; i < r->nplan; i++)
        if (!(i < r->ncur && r->opened[i]) && !strcmp(r->plan[i], sha)) {
            next = i - r->pos;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
    return next;
}

void sp_remote_unpin(int pin) { sp_cache_unpin(pin); }

static void moved_to(rset *r, const char *sha);

static pthread_cond_t turn_cv = PTHREAD_COND_INITIALIZER;

/* The prefetch of `ticket` makes room for its shard after every prefetch
 * claimed before it did, so that a shard needed later never takes the room
 * of one needed sooner (which would then fail for no room): turn_begin waits
 * for its turn, turn_end passes it on. NO_TICKET: a reader's own download. */
#define NO_TICKET UINT64_MAX
static void turn_begin(rset *r, uint64_t ticket)
{
    pthread_mutex_lock(&reg_mu);
    while (ticket != NO_TICKET && r->ticket_turn != ticket)
        pthread_cond_wait(&turn_cv, &reg_mu);
    pthread_mutex_unlock(&reg_mu);
}

static void turn_end(rset *r, uint64_t ticket)
{
    if (ticket == NO_TICKET)
        return;
    pthread_mutex_lock(&reg_mu);
    r->ticket_turn++;
    pthread_cond_broadcast(&turn_cv);
    pthread_mutex_unlock(&reg_mu);
}

/* 1 when $SHARDPIPE_CACHE_FSYNC asks for every download made durable
 * before its commit. */
static int cache_fsync(void)
{
    const char *v = getenv("SHARDPIPE_CACHE_FSYNC");
    return v && *v && strcmp(v, "0");
}

/* Downloads the shard of r (sha, bytes) at url into the cache, for a use
 * `use` ahead (0: now; see sp_cache_reserve_ahead), a prefetch's room made
 * in its ticket's turn; pin holds its exclusive lock and turns shared on
 * success, and is released on failure. 0 or -1. */
static int download(rset *r, const char *url, const char *name, const char *sha, uint64_t bytes, uint64_t use,
                    uint64_t ticket, int pin, sp_err *err)
{
    int fd;
    turn_begin(r, ticket);
    int full = sp_cache_reserve_ahead(r->root, r->limit, sha, bytes, name, plan_next_use, r, use, &fd, err);
    turn_end(r, ticket);
    if (full) {
        sp_cache_unpin(pin);
        return -1;
    }
    int durable = cache_fsync();
    xfer x = {.fd = fd, .cap = bytes, .md = EVP_MD_CTX_new(), .prefetch = use > 0, .durable = durable};
    int rc = x.md && EVP_DigestInit_ex(x.md, EVP_sha256(), NULL) ? 0
                                                                  : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (!rc)
        rc = fetch(&x, url, name, err);
    unsigned char d[32];
    unsigned dl = 0;
    char got[65] = "";
    if (!rc) {
        EVP_DigestFinal_ex(x.md, d, &dl);
        sp_hex(d, 32, got);
        if (x.got != bytes)
            rc = sp_fail(err, SP_EXIT_DATA, "%s: the server sent %llu bytes, the manifest says %llu (truncated)", name,
                         (unsigned long long)x.got, (unsigned long long)bytes);
        else if (strcmp(got, sha))
            rc = sp_fail(err, SP_EXIT_DATA, "%s: sha256 %s, the manifest says %s (the object changed since the "
                         "manifest was written, or is damaged)", name, got, sha);
    }
    EVP_MD_CTX_free(x.md);
    /* The rename alone makes the commit atomic against a process killed
     * mid-download; an fsync first (SHARDPIPE_CACHE_FSYNC=1) makes the entry
     * survive an OS crash or power loss too. Without it such a crash may
     * leave an entry of the wrong size (sp_cache_pin drops and downloads it
     * again) or of the right size with wrong bytes (every record's XXH3
     * fails the read: an error, never wrong data). */
    if (!rc && durable && fsync(fd))
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot write to the cache %s: %s", name, r->root, strerror(errno));
    close(fd);
    if (!rc) {
        /* counted before the commit shows the shard to a reader waiting for
         * it, which may otherwise end its epoch and read the counters while
         * this thread has yet to count: the bytes came whatever follows */
        sp_cache_count_download(bytes);
        rc = sp_cache_commit(r->root, sha, pin, err);
    }
    if (rc) {
        sp_cache_abort(r->root, sha, pin);
        return -1;
    }
    return 0;
}

int sp_remote_shard(const char *path, char *local, size_t n, int *pin, sp_err *err)
{
    *pin = -1;
    if (!sp_remote_is_url(path))
        return 0;
    const char *slash = strrchr(path, '/');
    pthread_mutex_lock(&reg_mu);
    size_t len = slash ? (size_t)(slash - path) : 0;
    while (len > 0 && path[len - 1] == '/') /* DIR/ + FILE */
        len--;
    rset *r = slash ? find_locked(path, len) : NULL;
    json_t *e = r ? json_object_get(r->files, slash + 1) : NULL;
    char sha[65], root[4096], full[4400];
    uint64_t bytes = 0;
    if (r) /* the set's URL, one '/', the file: DIR/ + FILE asks for no "//" */
        snprintf(full, sizeof full, "%s/%s", r->url, slash + 1);
    if (e) {
        snprintf(sha, sizeof sha, "%s", json_string_value(json_array_get(e, 0)));
        bytes = (uint64_t)json_integer_value(json_array_get(e, 1));
        snprintf(root, sizeof root, "%s", r->root);
    }
    pthread_mutex_unlock(&reg_mu);
    if (!r)
        return 0;
    char name[4400];
    sp_remote_shown(full, name, sizeof name);
    if (!e)
        return sp_fail(err, SP_EXIT_DATA, "%s: not a shard of the set's manifest", name);
    int ready = sp_cache_has(root, sha);
    int in = sp_cache_pin(root, sha, bytes, local, n, pin, err);
    if (in < 0)
        return -1;
    /* only once pinned: a use opened no longer protects its shard from eviction */
    moved_to(r, sha);
    if (!ready || !in)
        sp_cache_count_wait();
    if (!in && download(r, full, name, sha, bytes, 0, NO_TICKET, *pin, err)) {
        *pin = -1;
        return -1;
    }
    return 1;
}

static void free_plan(rset *r)
{
    for (size_t i = 0; i < r->nplan; i++) {
        free(r->plan[i]);
        free(r->plan_url[i]);
    }
    free(r->plan);
    free(r->plan_url);
    free(r->opened);
    r->opened = NULL;
    r->plan = r->plan_url = NULL;
    r->nplan = r->pos = r->ncur = 0;
}

/* How far ahead r's prefetch threads go: $SHARDPIPE_PREFETCH shards when
 * set (0: none), else *depth = SIZE_MAX and the shards whose bytes add up
 * to *bytes: a quarter of the cache limit, at most PREFETCH_AHEAD_MAX
 * (always 2 shards at least). Their number: $SHARDPIPE_PREFETCH_THREADS, 1
 * to PREFETCH_MAX_THREADS, default 2, so that one download's latency (the
 * request, the fsync) overlaps another's transfer. */
static void prefetch_depth(const rset *r, size_t *depth, uint64_t *bytes, int *threads)
{
    const char *env = getenv("SHARDPIPE_PREFETCH"), *t = getenv("SHARDPIPE_PREFETCH_THREADS");
    *depth = env && *env ? (size_t)strtoul(env, NULL, 10) : SIZE_MAX;
    *bytes = r->limit && r->limit / 4 < PREFETCH_AHEAD_MAX ? r->limit / 4 : PREFETCH_AHEAD_MAX;
    long n = t && *t ? strtol(t, NULL, 10) : 2;
    *threads = n < 1 ? 1 : n > PREFETCH_MAX_THREADS ? PREFETCH_MAX_THREADS : (int)n;
}

/* The next use ahead of r's position that a prefetch thread should fetch
 * (its offset k from pos into *k, its shard and URL into sha, url), within
 * the depth, not in the cache's way already (another thread's download):
 * 1, or 0 when there is none in this plan_gen. reg_mu held. */
static int prefetch_claim(rset *r, size_t *k, char *sha, char *url, uint64_t *bytes)
{
    size_t depth;
    uint64_t budget;
    int threads;
    prefetch_depth(r, &depth, &budget, &threads);
    if (r->claim_gen != r->plan_gen)
        r->claim_gen = r->plan_gen, r->next_k = 0, r->ahead = 0, r->taken = 0;
    while (r->taken < depth && r->pos + r->next_k < r->nplan) {
        size_t i = r->pos + r->next_k;
        if (i < r->ncur && r->opened[i]) { /* a reader has it */
            r->next_k++;
            continue;
        }
        json_t *e = json_object_get(r->files, strrchr(r->plan_url[i], '/') + 1);
        uint64_t b = (uint64_t)json_integer_value(json_array_get(e, 1));
        if (depth == SIZE_MAX && r->taken >= 2 && r->ahead + b > budget)
            return 0;
        *k = ++r->next_k;
        r->taken++;
        r->ahead += b;
        int busy = 0;
        for (int t = 0; t < PREFETCH_MAX_THREADS; t++)
            busy |= !strcmp(r->inflight[t], r->plan[i]);
        if (busy)
            continue;
        snprintf(sha, 65, "%s", r->plan[i]);
        snprintf(url, 4400, "%s", r->plan_url[i]);
        *bytes = b;
        return 1;
    }
    return 0;
}

/* A prefetch thread of r: the next shards of its plan into the cache, as
 * prefetch_claim hands them out, side by side with r's other threads. */
static void *prefetch_main(void *arg)
{
    rset *r = arg;
    pthread_mutex_lock(&reg_mu);
    for (;;) {
        size_t k;
        uint64_t bytes;
        char sha[65], url[4400], name[4400], local[4400];
        if (stopping || !prefetch_claim(r, &k, sha, url, &bytes)) {
            uint64_t gen = r->plan_gen;
            while (gen == r->plan_gen || stopping)
                pthread_cond_wait(&r->wake, &reg_mu);
            continue;
        }
        int slot = 0;
        while (slot < PREFETCH_MAX_THREADS - 1 && r->inflight[slot][0])
            slot++;
        snprintf(r->inflight[slot], 65, "%s", sha);
        uint64_t ticket = r->ticket_next++;
        prefetch_active++;
        pthread_mutex_unlock(&reg_mu);
        int in = 1, pin = -1;
        sp_err err = {0};
        if (!sp_cache_has(r->root, sha))
            in = sp_cache_pin(r->root, sha, bytes, local, sizeof local, &pin, &err);
        /* a failure here is left to the reader's own open, which reports it */
        if (in != 0) {
            turn_begin(r, ticket);
            turn_end(r, ticket);
            sp_cache_unpin(pin);
        } else if (!download(r, url, sp_remote_shown(url, name, sizeof name), sha, bytes, k, ticket, pin, &err)) {
            sp_cache_unpin(pin); /* download releases it itself on failure */
        }
        pthread_mutex_lock(&reg_mu);
        r->inflight[slot][0] = 0;
        prefetch_active--;
        pthread_cond_broadcast(&prefetch_done);
    }
    return NULL;
}

/* At exit, before libcurl's and OpenSSL's own exit handlers (registered
 * before this one): the prefetch threads start nothing more, and the
 * downloads under way end (their .part files are removed) before exit goes on. */
static void stop_prefetch(void)
{
    pthread_mutex_lock(&reg_mu);
    stopping = 1;
    while (prefetch_active)
        pthread_cond_wait(&prefetch_done, &reg_mu);
    pthread_mutex_unlock(&reg_mu);
}

/* Marks the first use of sha at or after r's position not opened yet, in
 * this epoch's uses only, opened, and moves the position past the uses
 * opened (reg_mu not held). The reader's threads open the shards of
 * different windows side by side, so a use may be opened before an
 * earlier one: that one stays ahead, to prefetch. */
static void moved_to(rset *r, const char *sha)
{
    pthread_mutex_lock(&reg_mu);
    for (size_t i = r->pos; i < r->ncur; i++)
        if (!r->opened[i] && !strcmp(r->plan[i], sha)) {
            r->opened[i] = 1;
            while (r->pos < r->ncur && r->opened[r->pos])
                r->pos++;
            r->plan_gen++;
            pthread_cond_broadcast(&r->wake);
            break;
        }
    pthread_mutex_unlock(&reg_mu);
}

int sp_remote_plan(const char *const *paths, size_t n, size_t now, sp_err *err)
{
    if (now > n)
        now = n;
    if (!n || !sp_remote_is_url(paths[0]))
        return 0;
    const char *slash = strrchr(paths[0], '/');
    size_t len = (size_t)(slash - paths[0]);
    while (len > 0 && paths[0][len - 1] == '/')
        len--;
    char **plan = calloc(n, sizeof *plan), **urls = calloc(n, sizeof *urls);
    unsigned char *opened = calloc(now ? now : 1, 1);
    int rc = plan && urls && opened ? 0 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    pthread_mutex_lock(&reg_mu);
    rset *r = find_locked(paths[0], len);
    for (size_t i = 0; r && !rc && i < n; i++) {
        json_t *e = json_object_get(r->files, strrchr(paths[i], '/') + 1);
        if (!e)
            rc = sp_fail(err, SP_EXIT_DATA, "%s: not a shard of the set's manifest", paths[i]);
        else if (!(plan[i] = strdup(json_string_value(json_array_get(e, 0)))) ||
                 !(urls[i] = malloc(strlen(r->url) + strlen(paths[i]) + 2)))
            rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        else
            sprintf(urls[i], "%s/%s", r->url, strrchr(paths[i], '/') + 1);
    }
    if (r && !rc) {
        free_plan(r);
        r->plan = plan;
        r->plan_url = urls;
        r->opened = opened;
        r->nplan = n;
        r->ncur = now;
        plan = urls = NULL;
        opened = NULL;
        r->plan_gen++;
        const char *env = getenv("SHARDPIPE_PREFETCH");
        size_t depth;
        uint64_t ahead;
        int threads;
        prefetch_depth(r, &depth, &ahead, &threads);
        static int at_exit;
        if (!r->prefetching && !(env && !strcmp(env, "0")) && !at_exit)
            at_exit = atexit(stop_prefetch) == 0;
        for (int i = r->prefetching; i < threads && !(env && !strcmp(env, "0")); i++) {
            pthread_t t;
            pthread_attr_t at;
            pthread_attr_init(&at);
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            r->prefetching += pthread_create(&t, &at, prefetch_main, r) == 0;
            pthread_attr_destroy(&at);
        }
        pthread_cond_broadcast(&r->wake);
    }
    pthread_mutex_unlock(&reg_mu);
    for (size_t i = 0; plan && i < n; i++)
        free(plan[i]);
    for (size_t i = 0; urls && i < n; i++)
        free(urls[i]);
    free(plan);
    free(urls);
    free(opened);
    return rc;
}
