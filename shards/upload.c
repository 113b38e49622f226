/* Uploads of a finished shard set to S3 (libcurl, SigV4) or to an HTTP(S)
 * server that takes PUT (WebDAV): HEAD (and, over HTTP, a GET hashed as it
 * streams) to keep the objects already there, PUT or a multipart upload for
 * the others, the manifest last. */
#define _GNU_SOURCE
#include "shards/upload.h"

#include "shards/remote.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRIES 5              /* attempts a request gets */
#define BODY_MAX (1u << 20)  /* bytes of a response body kept, at most */

/* What one request asks: method, query (starting with '?', or ""), the
 * bytes to send (len bytes of f from off, or body), one more header. */
typedef struct req {
    const char *method;
    const char *query;
    FILE *f;
    off_t off;
    uint64_t len, sent;
    const char *body;
    const char *header;
} req;

/* What came back: the status, the body (or, with md, its sha256 and size
 * only), and the headers read. */
typedef struct resp {
    long code;
    sp_buf body;
    EVP_MD_CTX *md;   /* not NULL: the body is hashed here, not kept */
    uint64_t hashed;  /* bytes hashed by md */
    char sha[72];   /* x-amz-meta-sha256 */
    char etag[256];
    curl_off_t length;
} resp;

static unsigned long puts_done; /* objects put by this process */

/* The tests' fault hooks: SIGKILL once `name` (an environment variable) is
 * set to n. */
static void kill_at(const char *name, unsigned long n)
{
    const char *at = getenv(name);
    if (at && *at && strtoul(at, NULL, 10) == n)
        raise(SIGKILL);
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *ctx)
{
    req *q = ctx;
    size_t n = size * nmemb;
    if (n > q->len - q->sent)
        n = (size_t)(q->len - q->sent);
    if (!n)
        return 0;
    if (fseeko(q->f, q->off + (off_t)q->sent, SEEK_SET))
        return CURL_READFUNC_ABORT;
    if (q->sent >= q->len / 2 && q->sent) /* half of this body handed to libcurl, and sent */
        kill_at("SHARDPIPE_TEST_UPLOAD_KILL_MID", puts_done + 1);
    size_t r = fread(p, 1, n, q->f);
    if (r == 0)
        return CURL_READFUNC_ABORT;
    q->sent += r;
    return r;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    resp *r = ctx;
    size_t n = size * nmemb;
    if (r->md) {
        r->hashed += n;
        return EVP_DigestUpdate(r->md, p, n) ? n : 0;
    }
    if (r->body.len + n <= BODY_MAX && sp_buf_append(&r->body, p, n))
        return 0;
    return n;
}

/* Copies header "name: value" into out when line is that header. */
static void header_value(const char *line, size_t n, const char *name, char *out, size_t out_n)
{
    size_t nl = strlen(name);
    if (n <= nl + 1 || strncasecmp(line, name, nl) || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = n - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    snprintf(out, out_n, "%.*s", (int)vl, v);
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
    resp *r = ctx;
    size_t n = size * nmemb;
    header_value(p, n, "x-amz-meta-sha256", r->sha, sizeof r->sha);
    header_value(p, n, "ETag", r->etag, sizeof r->etag);
    return n;
}

/* The text between <tag> and </tag> in r's body into out ("" if none). */
static const char *xml_value(const resp *r, const char *tag, char *out, size_t n)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    out[0] = 0;
    char *text = strndup(r->body.data ? (const char *)r->body.data : "", r->body.len);
    if (!text)
        return out;
    char *a = strstr(text, open), *b = a ? strstr(a, close) : NULL;
    if (a && b)
        snprintf(out, n, "%.*s", (int)(b - a - (long)strlen(open)), a + strlen(open));
    free(text);
    return out;
}

static int is_s3(const char *url) { return !strncmp(url, "s3://", 5); }

/* One request to target (an s3:// URL, signed, or an http(s):// one; +
 * q->query), with retries on resets, 5xx, 408 and 429. Returns the HTTP
 * status (2xx; or 404 when ok404), else -1 with err naming target (without
 * any user:password) and the status (and S3's error code when it sent one). */
static int request(const char *target, req *q, resp *r, int ok404, sp_err *err)
{
    char name[4400];
    sp_remote_shown(target, name, sizeof name);
    CURL *c = curl_easy_init();
    sp_s3_req *s = calloc(1, sizeof *s);
    if (!c || !s) {
        curl_easy_cleanup(c);
        free(s);
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot start a transfer", name);
    }
    if (is_s3(target))
        sp_remote_s3_request(target, s);
    else
        snprintf(s->url, sizeof s->url, "%s", target);
    char url[4600], ebuf[CURL_ERROR_SIZE], why[512] = "";
    snprintf(url, sizeof url, "%s%s", s->url, q->query);
    int rc = -1, kind = SP_EXIT_SYSTEM, attempt;
    for (attempt = 0; attempt < TRIES; attempt++) {
        if (attempt)
            sp_remote_backoff(attempt);
        r->body.len = 0, r->sha[0] = r->etag[0] = 0, r->code = 0, r->length = -1, r->hashed = 0;
        if (r->md && !EVP_DigestInit_ex(r->md, EVP_sha256(), NULL)) {
            snprintf(why, sizeof why, "cannot hash");
            break;
        }
        q->sent = 0;
        curl_easy_reset(c);
        sp_remote_curl_setup(c, url, ebuf, "http,https");
        struct curl_slist *hdr = q->header ? curl_slist_append(NULL, q->header) : NULL;
        if (is_s3(target))
            hdr = sp_remote_s3_sign(c, s, hdr);
        if (!strcmp(q->method, "HEAD")) {
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        } else if (q->f) {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, q);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->len);
        } else if (!strcmp(q->method, "POST")) {
            hdr = curl_slist_append(hdr, "Content-Type: application/xml");
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body ? q->body : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->body ? strlen(q->body) : 0));
        } else {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        ebuf[0] = 0;
        CURLcode res = curl_easy_perform(c);
        curl_slist_free_all(hdr);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
        curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->length);
        if (res != CURLE_OK) {
            snprintf(why, sizeof why, "%s", ebuf[0] ? ebuf : curl_easy_strerror(res));
            if (res == CURLE_SSL_CACERT || res == CURLE_PEER_FAILED_VERIFICATION || res == CURLE_URL_MALFORMAT ||
                res == CURLE_UNSUPPORTED_PROTOCOL || res == CURLE_ABORTED_BY_CALLBACK)
                break;
            continue;
        }
        long code = r->code;
        if ((code >= 200 && code < 300) || (ok404 && code == 404)) {
            rc = (int)code;
            break;
        }
        char s3code[128];
        xml_value(r, "Code", s3code, sizeof s3code);
        snprintf(why, sizeof why, "HTTP %ld%s%s", code, s3code[0] ? " " : "", s3code);
        if (code >= 500 || code == 408 || code == 429)
            continue;
        if (code == 401 || code == 403)
            snprintf(why + strlen(why), sizeof why - strlen(why),
                     ": refused (no access: check the credentials or the bucket's policy)");
        else if (code == 404)
            snprintf(why + strlen(why), sizeof why - strlen(why), ": not found"), kind = SP_EXIT_DATA;
        else if (code == 405 || code == 501)
            snprintf(why + strlen(why), sizeof why - strlen(why),
                     ": refused (the server does not take %s here: for nginx, WebDAV's dav_methods PUT)", q->method);
        else
            snprintf(why + strlen(why), sizeof why - strlen(why), ": refused");
        break;
    }
    if (attempt == TRIES)
        snprintf(why + strlen(why), sizeof why - strlen(why), " (after %d attempts)", TRIES);
    curl_easy_cleanup(c);
    OPENSSL_cleanse(s, sizeof *s); /* the secret leaves no copy behind */
    free(s);
    if (rc < 0)
        sp_fail(err, kind, "%s: %s", name, why);
    return rc;
}

/* Counts an object put; $SHARDPIPE_TEST_UPLOAD_KILL's hook. */
static void count_put(void)
{
    puts_done++;
    kill_at("SHARDPIPE_TEST_UPLOAD_KILL", puts_done);
}

/* Puts len bytes of file path as target in one request, with header. */
static int put_whole(const char *target, const char *path, uint64_t len, const char *header, sp_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot open: %s", path, strerror(errno));
    req q = {.method = "PUT", .query = "", .f = f, .len = len, .header = header};
    resp r = {0};
    int rc = request(target, &q, &r, 0, err) < 0 ? -1 : 0;
    sp_buf_free(&r.body);
    fclose(f);
    return rc;
}

/* Puts file path (len bytes) as s3url in parts of part bytes: initiate,
 * the parts, complete; aborted on failure. */
static int put_parts(const char *s3url, const char *path, uint64_t len, uint64_t part, const char *header,
                     sp_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot open: %s", path, strerror(errno));
    resp r = {0};
    req init = {.method = "POST", .query = "?uploads=", .header = header};
    char id[1024], query[1400];
    sp_buf done = {0}; /* the CompleteMultipartUpload document */
    int rc = request(s3url, &init, &r, 0, err) < 0 ? -1 : 0;
    if (rc == 0 && !xml_value(&r, "UploadId", id, sizeof id)[0])
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: the server answered a multipart upload without an UploadId", s3url);
    char *eid = NULL;
    if (rc == 0 && !(eid = curl_easy_escape(NULL, id, 0)))
        rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    const char *head = "<CompleteMultipartUpload>";
    if (rc == 0 && sp_buf_append(&done, head, strlen(head)))
        rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    for (uint64_t off = 0, n = 1; rc == 0 && off < len; off += part, n++) {
        req q = {.method = "PUT", .query = query, .f = f, .off = (off_t)off, .len = len - off < part ? len - off : part};
        snprintf(query, sizeof query, "?partNumber=%llu&uploadId=%s", (unsigned long long)n, eid);
        if (request(s3url, &q, &r, 0, err) < 0) {
            rc = -1;
            break;
        }
        if (!r.etag[0]) {
            rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: part %llu: the server sent no ETag", s3url, (unsigned long long)n);
            break;
        }
        char entry[512];
        int w = snprintf(entry, sizeof entry, "<Part><PartNumber>%llu</PartNumber><ETag>%s</ETag></Part>",
                         (unsigned long long)n, r.etag);
        if (w < 0 || (size_t)w >= sizeof entry || sp_buf_append(&done, entry, (size_t)w))
            rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    const char *tail = "</CompleteMultipartUpload>";
    if (rc == 0 && sp_buf_append(&done, tail, strlen(tail) + 1))
        rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (rc == 0) {
        snprintf(query, sizeof query, "?uploadId=%s", eid);
        req q = {.method = "POST", .query = query, .body = (const char *)done.data};
        char s3code[128];
        if (request(s3url, &q, &r, 0, err) < 0)
            rc = -1;
        else if (xml_value(&r, "Code", s3code, sizeof s3code)[0]) /* S3 may answer 200 with an error */
            rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: the multipart upload failed: %s", s3url, s3code);
    }
    if (rc && eid) { /* no parts left behind to pay for */
        snprintf(query, sizeof query, "?uploadId=%s", eid);
        req q = {.method = "DELETE", .query = query};
        request(s3url, &q, &r, 1, NULL);
    }
    curl_free(eid);
    sp_buf_free(&done);
    sp_buf_free(&r.body);
    fclose(f);
    return rc;
}

/* Puts dir/file as url/file: to S3 in parts when larger than part, with its
 * sha256 as x-amz-meta-sha256; over HTTP in one PUT. */
static int put_file(const char *dir, const char *url, const char *file, uint64_t bytes, const char *sha,
                    uint64_t part, sp_upload_stats *st, sp_err *err)
{
    char path[4400], target[4400], header[128];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(target, sizeof target, "%s/%s", url, file);
    snprintf(header, sizeof header, "x-amz-meta-sha256: %s", sha);
    struct stat sb;
    if (stat(path, &sb))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
    if ((uint64_t)sb.st_size != bytes)
        return sp_fail(err, SP_EXIT_DATA, "%s: %llu bytes, its manifest says %llu", path,
                       (unsigned long long)sb.st_size, (unsigned long long)bytes);
    int s3 = is_s3(url), multi = s3 && bytes > part;
    if (multi ? put_parts(target, path, bytes, part, header, err)
              : put_whole(target, path, bytes, s3 ? header : NULL, err))
        return -1;
    st->put++, st->multipart += (uint64_t)multi, st->bytes += bytes;
    count_put();
    return 0;
}

/* Whether what came back hashes (r->md, r->hashed bytes) to sha. */
static int hashed_to(resp *r, const char *sha)
{
    unsigned char d[32];
    unsigned dl = 0;
    char hex[65];
    if (!EVP_DigestFinal_ex(r->md, d, &dl) || dl != 32)
        return 0;
    sp_hex(d, 32, hex);
    return !strcasecmp(hex, sha);
}

/* 1 when url/file is there with bytes and sha, 0 if not, -1 on failure. On
 * S3, HEAD's size and the x-amz-meta-sha256 put here; over HTTP, where a
 * server keeps no such header, HEAD's size and then the object itself, read
 * back by GET and hashed as it streams (nothing kept on disk). */
static int already_there(const char *url, const char *file, uint64_t bytes, const char *sha, sp_err *err)
{
    char target[4400];
    snprintf(target, sizeof target, "%s/%s", url, file);
    req q = {.method = "HEAD", .query = ""};
    resp r = {0};
    int code = request(target, &q, &r, 1, err);
    sp_buf_free(&r.body);
    if (code < 0)
        return -1;
    if (code != 200 || r.length != (curl_off_t)bytes)
        return 0;
    if (is_s3(url))
        return !strcasecmp(r.sha, sha);
    req get = {.method = "GET", .query = ""};
    if (!(r.md = EVP_MD_CTX_new()))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    code = request(target, &get, &r, 1, err);
    int same = code == 200 && r.hashed == bytes && hashed_to(&r, sha);
    EVP_MD_CTX_free(r.md);
    sp_buf_free(&r.body);
    return code < 0 ? -1 : same;
}

int sp_upload_set(const char *dir, const char *url_in, uint64_t part_size, sp_upload_stats *stats, sp_err *err)
{
    sp_upload_stats st = {0};
    size_t scheme = !strncmp(url_in, "s3://", 5)       ? 5
                    : !strncmp(url_in, "http://", 7)  ? 7
                    : !strncmp(url_in, "https://", 8) ? 8
                                                      : 0;
    char name[4400];
    if (!scheme || !url_in[scheme] || url_in[scheme] == '/')
        return sp_fail(err, SP_EXIT_USAGE, "%s: not an s3://BUCKET/PREFIX or http(s)://HOST/PATH URL",
                       sp_remote_shown(url_in, name, sizeof name));
    if (part_size == 0)
        return sp_fail(err, SP_EXIT_USAGE, "the part size of a multipart upload is 0");
    char url[4096];
    snprintf(url, sizeof url, "%s", url_in);
    size_t ul = strlen(url);
    while (ul > scheme && url[ul - 1] == '/')
        url[--ul] = 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return sp_fail(err, SP_EXIT_SYSTEM, "cannot initialise libcurl");
    char mpath[4400];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
    json_error_t je;
    json_t *m = json_load_file(mpath, 0, &je);
    if (!m)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s", mpath, je.text);
    int rc = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(m, "shards"), i, e) {
        const char *file = json_string_value(json_object_get(e, "file"));
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        json_int_t bytes = json_integer_value(json_object_get(e, "bytes"));
        if (!file || !sha || bytes <= 0 || strchr(file, '/')) {
            rc = sp_fail(err, SP_EXIT_DATA, "%s: shard entry %zu lacks a file name, a sha256 or its bytes", mpath, i);
            break;
        }
        int there = already_there(url, file, (uint64_t)bytes, sha, err);
        if (there < 0 ||
            (!there && put_file(dir, url, file, (uint64_t)bytes, sha, part_size, &st, err))) {
            rc = -1;
            break;
        }
        st.kept += (uint64_t)there;
    }
    if (rc == 0) { /* the commit point: every shard is up */
        struct stat sb;
        if (stat(mpath, &sb))
            rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", mpath, strerror(errno));
        else {
            char target[4400];
            snprintf(target, sizeof target, "%s/manifest.json", url);
            rc = put_whole(target, mpath, (uint64_t)sb.st_size, NULL, err);
            st.bytes += rc ? 0 : (uint64_t)sb.st_size;
        }
    }
    json_decref(m);
    if (stats)
        *stats = st;
    return rc;
}
