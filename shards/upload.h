/* Uploads a finished shard set to an s3:// URL or to an http(s):// server
 * that takes PUT (WebDAV): the shards first (a single PUT each, or on S3 a
 * multipart upload above a size), the manifest last, as the commit point. */
#ifndef SP_UPLOAD_H
#define SP_UPLOAD_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"

/* Where s3://BUCKET/KEY is and who asks (shards/remote.c fills it, for the
 * reads and the uploads alike). userpwd and token hold the credentials: the
 * holder cleanses the struct (OPENSSL_cleanse) once the request is made. */
typedef struct sp_s3_req {
    char url[4400];    /* the http(s) URL of the object (path style) */
    char region[64];
    char userpwd[512]; /* KEY:SECRET, empty for an anonymous request */
    char token[2048];  /* x-amz-security-token's value, or empty */
} sp_s3_req;

/* The request for s3://BUCKET/KEY: the endpoint (sp_remote_configure_s3,
 * else $AWS_ENDPOINT_URL, else AWS's for the region), the region and the
 * credentials as remote.h tells. */
void sp_remote_s3_request(const char *s3url, sp_s3_req *q);

/* Signs c's request as q says (SigV4 with q's credentials; none when it has
 * none: anonymous): appends x-amz-content-sha256 (UNSIGNED-PAYLOAD) and any
 * session token to hdr and returns the list, which the caller passes as
 * CURLOPT_HTTPHEADER and frees after the transfer. */
struct curl_slist *sp_remote_s3_sign(CURL *c, const sp_s3_req *q, struct curl_slist *hdr);

/* What every transfer of the remote sets shares, set on c after
 * curl_easy_reset: url, the error buffer ebuf (CURL_ERROR_SIZE bytes), the
 * user agent, the protocols allowed (e.g. "http,https"), no signals, 30 s to
 * connect, and the CA bundle of $SHARDPIPE_CA_FILE, else $CURL_CA_BUNDLE,
 * else $SSL_CERT_FILE (none set: libcurl's default). */
void sp_remote_curl_setup(CURL *c, const char *url, char *ebuf, const char *protocols);
/* Sleeps before retry `attempt` (1, 2, ...): 0.1, 0.2, 0.4, 0.8 s, ... */
void sp_remote_backoff(int attempt);

typedef struct sp_upload_stats {
    uint64_t put, kept;  /* shards uploaded; shards found already there */
    uint64_t multipart;  /* of those put, in parts */
    uint64_t bytes;      /* bytes put, the manifest's included */
} sp_upload_stats;

/* Uploads the set in directory dir (its manifest.json and the shards it
 * lists; nothing else) to url (s3://BUCKET/PREFIX or http(s)://HOST/PATH,
 * with or without its trailing '/'). A shard whose object is already there
 * with the manifest's bytes and sha256 is kept: on S3 by HEAD (its size and
 * the x-amz-meta-sha256 this function puts on every object), over HTTP by
 * HEAD's size and then a GET of the object hashed as it streams. Any other is
 * put: on S3 in parts of part_size bytes when it is larger than part_size (S3
 * wants parts of 5 MiB at least, but the last), over HTTP in one PUT.
 * manifest.json goes last, once every shard is up. Bounded retries on
 * resets, 5xx, 408 and 429. 0 (stats filled, if not NULL), or -1 with err
 * naming the object's URL (without any user:password) and the HTTP status,
 * never the credentials.
 * $SHARDPIPE_TEST_UPLOAD_KILL=N (for the tests only) sends the process
 * SIGKILL once N objects have been put; $SHARDPIPE_TEST_UPLOAD_KILL_MID=N
 * in the middle of the Nth object's body (half of it handed to libcurl). */
int sp_upload_set(const char *dir, const char *url, uint64_t part_size, sp_upload_stats *stats, sp_err *err);

#endif
