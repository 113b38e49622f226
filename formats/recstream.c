/* Record stream reader and writer; see recstream.md for the byte layout. */
#define _POSIX_C_SOURCE 200809L
#include "formats/recstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/sp_xxh.h"
#include <zstd.h>

#define FRAME_PREFIX 16
#define RECORD_HEAD_FIXED 26
#define MAX_META_BYTES (64u << 20)
#define IO_BUF (1u << 20)

enum { FRAME_META = 'M', FRAME_RECORD = 'R', FRAME_END = 'E' };

/* ---------------- names ---------------- */
const char *sp_kind_record(int kind)
{
    switch (kind) {
    case SP_KIND_BLOB: return "a blob record";
    case SP_KIND_ENCODED: return "an encoded record";
    case SP_KIND_PIXELS: return "a pixel record";
    default: return "a record of an unknown kind";
    }
}

const char *sp_kind_name(int kind)
{
    switch (kind) {
    case SP_KIND_BLOB: return "blob";
    case SP_KIND_ENCODED: return "encoded";
    case SP_KIND_PIXELS: return "pixels";
    default: return "unknown";
    }
}

static const char *const split_names[] = {"none", "train", "test", "val"};

const char *sp_split_name(int split)
{
    return split >= 0 && split <= SP_SPLIT_VAL ? split_names[split] : "unknown";
}

int sp_split_from_name(const char *s)
{
    for (int i = 0; i <= SP_SPLIT_VAL; i++)
        if (!strcmp(s, split_names[i]))
            return i;
    return -1;
}

const char *sp_dtype_name(int dtype)
{
    switch (dtype) {
    case SP_DTYPE_U8: return "uint8";
    case SP_DTYPE_F16: return "float16";
    case SP_DTYPE_F32: return "float32";
    default: return "none";
    }
}

const char *sp_codec_name(int codec)
{
    switch (codec) {
    case SP_CODEC_JPEG: return "jpeg";
    case SP_CODEC_PNG: return "png";
    default: return "none";
    }
}

int sp_codec_from_name(const char *s)
{
    if (s && !strcmp(s, "jpeg"))
        return SP_CODEC_JPEG;
    if (s && !strcmp(s, "png"))
        return SP_CODEC_PNG;
    return SP_CODEC_NONE;
}

int sp_dtype_size(int dtype)
{
    switch (dtype) {
    case SP_DTYPE_U8: return 1;
    case SP_DTYPE_F16: return 2;
    case SP_DTYPE_F32: return 4;
    default: return 0;
    }
}

int sp_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

int sp_record_init(sp_record *rec, int kind, const char *key, sp_err *err)
{
    memset(rec, 0, offsetof(sp_record, key));
    rec->kind = (uint8_t)kind;
    rec->label = rec->label2 = SP_LABEL_NONE;
    size_t n = strlen(key);
    if (n == 0)
        return sp_fail(err, SP_EXIT_DATA, "empty record key");
    if (n > SP_KEY_MAX)
        return sp_fail(err, SP_EXIT_DATA, "record key longer than %d bytes: %.64s...", SP_KEY_MAX, key);
    if (!sp_utf8_valid(key, n))
        return sp_fail(err, SP_EXIT_DATA, "record key is not valid UTF-8: %.200s", key);
    memcpy(rec->key, key, n + 1);
    rec->key_len = (uint16_t)n;
    return 0;
}

int sp_meta_add_recipe(json_t *meta, const json_t *step)
{
    if (!json_is_object(step))
        return -1;
    json_t *recipe = json_object_get(meta, "recipe");
    if (!json_is_array(recipe)) {
        recipe = json_array();
        if (!recipe || json_object_set_new(meta, "recipe", recipe))
            return -1;
    }
    return json_array_append_new(recipe, json_deep_copy(step)) ? -1 : 0;
}

/* ---------------- reader ---------------- */
struct sp_reader {
    int fd;
    const uint8_t *pre; /* bytes already taken from fd by the caller, read first */
    size_t pre_len, pre_pos;
    char name[256];
    sp_reader_limits lim;
    /* plain bytes of the stream */
    uint8_t *ibuf;
    size_t ilen, ipos;
    int raw_eof;
    /* zstd input side, when the stream is compressed */
    ZSTD_DStream *zs;
    uint8_t *zbuf;
    size_t zlen, zpos;
    size_t zret; /* last ZSTD_decompressStream result: 0 = frame complete */
    /* state */
    json_t *meta;
    uint64_t meta_serial;
    uint64_t count;
    int in_record;      /* a record was returned and its payload not finished */
    uint64_t remaining; /* payload bytes not yet read */
    XXH3_state_t *hash;
    sp_record cur;
    sp_buf payload;
};

void sp_reader_limits_default(sp_reader_limits *lim)
{
    lim->max_payload_in_memory = 4ull << 30;
    lim->max_pixels_side = 1u << 16;
    lim->max_channels = 16;
}

/* read(2) that first serves the caller's pre-read bytes. */
static ssize_t raw_read(sp_reader *r, uint8_t *dst, size_t n)
{
    if (r->pre_pos < r->pre_len) {
        size_t k = r->pre_len - r->pre_pos;
        if (k > n)
            k = n;
        memcpy(dst, r->pre + r->pre_pos, k);
        r->pre_pos += k;
        return (ssize_t)k;
    }
    ssize_t got = read(r->fd, dst, n);
    while (got < 0 && errno == EINTR)
        got = read(r->fd, dst, n);
    return got;
}

/* Refills ibuf; returns bytes now available (0 at EOF) or -1. */
static ssize_t rd_fill(sp_reader *r, sp_err *err)
{
    r->ipos = r->ilen = 0;
    if (!r->zs) {
        if (r->raw_eof)
            return 0;
        ssize_t n = raw_read(r, r->ibuf, IO_BUF);
        if (n < 0)
            return sp_fail(err, SP_EXIT_SYSTEM, "%s: read failed: %s", r->name, strerror(errno));
        if (n == 0)
            r->raw_eof = 1;
        r->ilen = (size_t)n;
        return n;
    }
    while (r->ilen == 0) {
        if (r->zpos == r->zlen) {
            if (r->raw_eof) {
                if (r->zret != 0)
                    return sp_fail(err, SP_EXIT_DATA, "%s: truncated zstd data", r->name);
                return 0;
            }
            ssize_t n = raw_read(r, r->zbuf, ZSTD_DStreamInSize());
            if (n < 0)
                return sp_fail(err, SP_EXIT_SYSTEM, "%s: read failed: %s", r->name, strerror(errno));
            r->zpos = 0;
            r->zlen = (size_t)n;
            if (n == 0) {
                r->raw_eof = 1;
                continue;
            }
        }
        ZSTD_inBuffer in = {r->zbuf, r->zlen, r->zpos};
        ZSTD_outBuffer out = {r->ibuf, IO_BUF, 0};
        size_t ret = ZSTD_decompressStream(r->zs, &out, &in);
        if (ZSTD_isError(ret))
            return sp_fail(err, SP_EXIT_DATA, "%s: zstd: %s", r->name, ZSTD_getErrorName(ret));
        r->zret = ret;
        r->zpos = in.pos;
        r->ilen = out.pos;
    }
    return (ssize_t)r->ilen;
}

/* Reads up to n bytes; fewer only at EOF. Returns bytes read or -1. */
static ssize_t rd_bytes(sp_reader *r, void *dst, size_t n, sp_err *err)
{
    uint8_t *d = dst;
    size_t got = 0;
    while (got < n) {
        if (r->ipos == r->ilen && !r->zs && !r->raw_eof && n - got >= (64u << 10)) {
            /* a large read with nothing buffered: straight into dst, no copy */
            ssize_t k = raw_read(r, d + got, n - got);
            if (k < 0)
                return sp_fail(err, SP_EXIT_SYSTEM, "%s: read failed: %s", r->name, strerror(errno));
            if (k == 0) {
                r->raw_eof = 1;
                break;
            }
            got += (size_t)k;
            continue;
        }
        if (r->ipos == r->ilen) {
            ssize_t f = rd_fill(r, err);
            if (f < 0)
                return -1;
            if (f == 0)
                break;
        }
        size_t k = r->ilen - r->ipos;
        if (k > n - got)
            k = n - got;
        memcpy(d + got, r->ibuf + r->ipos, k);
        r->ipos += k;
        got += k;
    }
    return (ssize_t)got;
}

static int rd_exact(sp_reader *r, void *dst, size_t n, const char *what, sp_err *err)
{
    ssize_t got = rd_bytes(r, dst, n, err);
    if (got < 0)
        return -1;
    if ((size_t)got < n)
        return sp_fail(err, SP_EXIT_DATA, "%s: truncated stream: cut inside %s after %llu records",
                       r->name, what, (unsigned long long)r->count);
    return 0;
}

/* Reads the rest of a frame whose 16-byte prefix is t. Returns 1 for a record
 * (filled into rec, payload pending), 2 for a metadata frame (applied), 3 for
 * the end frame (verified), -1 on error. */
static int reader_frame(sp_reader *r, const uint8_t *t, sp_record *rec, sp_err *err);

sp_reader *sp_reader_open(int fd, const char *name, const sp_reader_limits *lim, sp_err *err)
{
    return sp_reader_open_prefixed(fd, NULL, 0, name, lim, err);
}

sp_reader *sp_reader_open_prefixed(int fd, const void *pre, size_t pre_len, const char *name,
                                   const sp_reader_limits *lim, sp_err *err)
{
    sp_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->ibuf = malloc(IO_BUF)) || !(r->hash = XXH3_createState())) {
        sp_reader_free(r);
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    r->fd = fd;
    r->pre = pre;
    r->pre_len = pre_len;
    snprintf(r->name, sizeof r->name, "%s", strcmp(name, "-") ? name : "stdin");
    if (lim)
        r->lim = *lim;
    else
        sp_reader_limits_default(&r->lim);

    uint8_t head[16];
    ssize_t got = 0, k;
    while (got < 4 && (k = raw_read(r, head + got, (size_t)(4 - got))) > 0)
        got += k;
    if (got < 4 && k < 0) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: read failed: %s", r->name, strerror(errno));
        goto fail;
    }
    if (got == 4 && sp_get_u32(head) == ZSTD_MAGICNUMBER) {
        r->zs = ZSTD_createDStream();
        r->zbuf = malloc(ZSTD_DStreamInSize() > 4 ? ZSTD_DStreamInSize() : 4);
        if (!r->zs || !r->zbuf) {
            sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
            goto fail;
        }
        ZSTD_initDStream(r->zs);
        memcpy(r->zbuf, head, 4);
        r->zlen = 4;
        r->zret = 1;
    } else {
        memcpy(r->ibuf, head, (size_t)got);
        r->ilen = (size_t)got;
        if (got < 4)
            r->raw_eof = 1;
    }
    got = rd_bytes(r, head, 16, err);
    if (got < 0)
        goto fail;
    if (got == 0) {
        sp_fail(err, SP_EXIT_DATA, "%s: empty input, not a record stream", r->name);
        goto fail;
    }
    if (got < 8 || memcmp(head, SP_STREAM_MAGIC, 8)) {
        sp_fail(err, SP_EXIT_DATA, "%s: not a shardpipe record stream (bad magic)", r->name);
        goto fail;
    }
    if (got < 16) {
        sp_fail(err, SP_EXIT_DATA, "%s: truncated stream header", r->name);
        goto fail;
    }
    uint32_t version = sp_get_u32(head + 8);
    if (version != SP_STREAM_VERSION || sp_get_u32(head + 12) != 0) {
        sp_fail(err, SP_EXIT_DATA, "%s: record stream version %u (flags %08x), this build reads version %u",
                r->name, version, sp_get_u32(head + 12), SP_STREAM_VERSION);
        goto fail;
    }
    /* The first frame must be metadata. */
    sp_record unused;
    uint8_t t[FRAME_PREFIX];
    if (rd_exact(r, t, FRAME_PREFIX, "the first frame", err))
        goto fail;
    if (t[0] != FRAME_META) {
        sp_fail(err, SP_EXIT_DATA, "%s: stream does not start with a metadata frame", r->name);
        goto fail;
    }
    if (reader_frame(r, t, &unused, err) != 2)
        goto fail;
    return r;
fail:
    sp_reader_free(r);
    return NULL;
}

void sp_reader_free(sp_reader *r)
{
    if (!r)
        return;
    free(r->ibuf);
    free(r->zbuf);
    ZSTD_freeDStream(r->zs);
    XXH3_freeState(r->hash);
    json_decref(r->meta);
    sp_buf_free(&r->payload);
    free(r);
}

json_t *sp_reader_meta(const sp_reader *r) { return r->meta; }
uint64_t sp_reader_meta_serial(const sp_reader *r) { return r->meta_serial; }

/* Names the record being read, for messages. */
static const char *cur_name(sp_reader *r, char *buf, size_t n)
{
    snprintf(buf, n, "%.200s: record %llu (%.300s)", r->name, (unsigned long long)r->count, r->cur.key);
    return buf;
}

static int validate_record(sp_reader *r, sp_record *rec, sp_err *err)
{
    char where[600];
    snprintf(where, sizeof where, "%.200s: record %llu (%.300s)", r->name, (unsigned long long)r->count + 1,
             rec->key);
    if (rec->kind < SP_KIND_BLOB || rec->kind > SP_KIND_PIXELS)
        return sp_fail(err, SP_EXIT_DATA, "%s: unknown record kind %u", where, rec->kind);
    if (rec->split > SP_SPLIT_VAL)
        return sp_fail(err, SP_EXIT_DATA, "%s: unknown split %u", where, rec->split);
    if (rec->label < SP_LABEL_NONE || rec->label2 < SP_LABEL_NONE)
        return sp_fail(err, SP_EXIT_DATA, "%s: negative label", where);
    if (rec->kind != SP_KIND_ENCODED && rec->codec)
        return sp_fail(err, SP_EXIT_DATA, "%s: codec %u set on a %s record", where, rec->codec,
                       sp_kind_name(rec->kind));
    if (rec->kind == SP_KIND_ENCODED) {
        if (rec->codec != SP_CODEC_JPEG && rec->codec != SP_CODEC_PNG)
            return sp_fail(err, SP_EXIT_DATA, "%s: unknown codec %u", where, rec->codec);
        if (rec->dtype != SP_DTYPE_U8)
            return sp_fail(err, SP_EXIT_DATA, "%s: encoded record of dtype %u (uint8 only)", where, rec->dtype);
        if (!rec->h || !rec->w || !rec->c || rec->h > r->lim.max_pixels_side ||
            rec->w > r->lim.max_pixels_side || rec->c > r->lim.max_channels)
            return sp_fail(err, SP_EXIT_DATA, "%s: decoded shape %ux%ux%u out of bounds", where, rec->h, rec->w,
                           rec->c);
        if (rec->payload_len == 0)
            return sp_fail(err, SP_EXIT_DATA, "%s: encoded record of no bytes", where);
    } else if (rec->kind == SP_KIND_PIXELS) {
        int ds = sp_dtype_size(rec->dtype);
        if (!ds)
            return sp_fail(err, SP_EXIT_DATA, "%s: unknown dtype %u", where, rec->dtype);
        if (!rec->h || !rec->w || !rec->c || rec->h > r->lim.max_pixels_side ||
            rec->w > r->lim.max_pixels_side || rec->c > r->lim.max_channels)
            return sp_fail(err, SP_EXIT_DATA, "%s: pixel shape %ux%ux%u out of bounds", where,
                           rec->h, rec->w, rec->c);
        uint64_t want = (uint64_t)rec->h * rec->w * rec->c * (uint64_t)ds;
        if (rec->payload_len != want)
            return sp_fail(err, SP_EXIT_DATA, "%s: payload is %llu bytes, shape %ux%ux%u %s needs %llu",
                           where, (unsigned long long)rec->payload_len, rec->h, rec->w, rec->c,
                           sp_dtype_name(rec->dtype), (unsigned long long)want);
    } else if (rec->dtype || rec->h || rec->w || rec->c) {
        return sp_fail(err, SP_EXIT_DATA, "%s: shape set on a %s record", where, sp_kind_name(rec->kind));
    }
    return 0;
}

static int reader_frame(sp_reader *r, const uint8_t *t, sp_record *rec, sp_err *err)
{
    uint8_t head[FRAME_PREFIX + RECORD_HEAD_FIXED + SP_KEY_MAX + 8];
    uint16_t head_len = sp_get_u16(t + 2);
    uint64_t payload_len = sp_get_u64(t + 8);
    unsigned long long nrec = (unsigned long long)r->count + 1;
    if (t[0] != FRAME_META && t[0] != FRAME_RECORD && t[0] != FRAME_END)
        return sp_fail(err, SP_EXIT_DATA, "%s: corrupt frame after record %llu (unknown frame type 0x%02x)",
                       r->name, nrec - 1, t[0]);
    if (head_len > RECORD_HEAD_FIXED + SP_KEY_MAX)
        return sp_fail(err, SP_EXIT_DATA, "%s: corrupt frame after record %llu (header length %u)",
                       r->name, nrec - 1, head_len);
    memcpy(head, t, FRAME_PREFIX);
    if (rd_exact(r, head + FRAME_PREFIX, (size_t)head_len + 8, "a frame header", err))
        return -1;
    uint64_t want = sp_xxh3(head, FRAME_PREFIX + (size_t)head_len);
    uint64_t have = sp_get_u64(head + FRAME_PREFIX + head_len);
    if (want != have)
        return sp_fail(err, SP_EXIT_DATA, "%s: record %llu: frame header checksum mismatch (corrupt stream)",
                       r->name, nrec);
    const uint8_t *h = head + FRAME_PREFIX;
    if (t[0] == FRAME_META) {
        if (head_len != 0 || payload_len > MAX_META_BYTES)
            return sp_fail(err, SP_EXIT_DATA, "%s: bad metadata frame", r->name);
        sp_buf buf = {0};
        if (sp_buf_reserve(&buf, payload_len + 8))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        if (rd_exact(r, buf.data, payload_len + 8, "a metadata frame", err)) {
            sp_buf_free(&buf);
            return -1;
        }
        if (sp_xxh3(buf.data, payload_len) != sp_get_u64(buf.data + payload_len)) {
            sp_buf_free(&buf);
            return sp_fail(err, SP_EXIT_DATA, "%s: metadata checksum mismatch (corrupt stream)", r->name);
        }
        json_error_t jerr;
        json_t *m = json_loadb((const char *)buf.data, payload_len, 0, &jerr);
        sp_buf_free(&buf);
        if (!json_is_object(m)) {
            json_decref(m);
            return sp_fail(err, SP_EXIT_DATA, "%s: metadata is not a JSON object", r->name);
        }
        json_decref(r->meta);
        r->meta = m;
        r->meta_serial++;
        return 2;
    }
    if (t[0] == FRAME_END) {
        uint8_t ck[8];
        if (head_len != 8 || payload_len != 0)
            return sp_fail(err, SP_EXIT_DATA, "%s: bad end-of-stream frame", r->name);
        if (rd_exact(r, ck, 8, "the end-of-stream frame", err))
            return -1;
        if (sp_get_u64(ck) != sp_xxh3(NULL, 0))
            return sp_fail(err, SP_EXIT_DATA, "%s: bad end-of-stream frame", r->name);
        uint64_t n = sp_get_u64(h);
        if (n != r->count)
            return sp_fail(err, SP_EXIT_DATA, "%s: stream trailer says %llu records, %llu were read",
                           r->name, (unsigned long long)n, (unsigned long long)r->count);
        uint8_t extra;
        ssize_t x = rd_bytes(r, &extra, 1, err);
        if (x < 0)
            return -1;
        if (x > 0)
            return sp_fail(err, SP_EXIT_DATA, "%s: unexpected data after the end of the stream", r->name);
        return 3;
    }
    /* record */
    if (head_len < RECORD_HEAD_FIXED)
        return sp_fail(err, SP_EXIT_DATA, "%s: record %llu: header too short", r->name, nrec);
    uint16_t key_len = sp_get_u16(h + 24);
    if ((size_t)RECORD_HEAD_FIXED + key_len != head_len || key_len == 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: record %llu: bad key length %u", r->name, nrec, key_len);
    memset(rec, 0, offsetof(sp_record, key));
    memcpy(rec->key, h + RECORD_HEAD_FIXED, key_len);
    rec->key[key_len] = 0;
    rec->key_len = key_len;
    if (!sp_utf8_valid(rec->key, key_len))
        return sp_fail(err, SP_EXIT_DATA, "%s: record %llu: key is not valid UTF-8", r->name, nrec);
    rec->kind = h[0];
    rec->split = h[1];
    rec->dtype = h[2];
    rec->codec = h[3];
    rec->label = (int32_t)sp_get_u32(h + 4);
    rec->label2 = (int32_t)sp_get_u32(h + 8);
    rec->h = sp_get_u32(h + 12);
    rec->w = sp_get_u32(h + 16);
    rec->c = sp_get_u32(h + 20);
    rec->payload_len = payload_len;
    if (validate_record(r, rec, err))
        return -1;
    r->count++;
    r->cur = *rec;
    r->in_record = 1;
    r->remaining = payload_len;
    sp_xxh3_reset(r->hash);
    return 1;
}

ssize_t sp_reader_read(sp_reader *r, void *buf, size_t n, sp_err *err)
{
    char where[600];
    if (!r->in_record)
        return 0;
    if (n > r->remaining)
        n = (size_t)r->remaining;
    if (n) {
        ssize_t got = rd_bytes(r, buf, n, err);
        if (got < 0)
            return -1;
        if ((size_t)got < n)
            return sp_fail(err, SP_EXIT_DATA, "%s: truncated stream: payload cut short",
                           cur_name(r, where, sizeof where));
        sp_xxh3_update(r->hash, buf, n);
        r->remaining -= n;
        return (ssize_t)n;
    }
    uint8_t ck[8];
    if (rd_exact(r, ck, 8, "a record checksum", err))
        return -1;
    uint64_t want = sp_xxh3_digest(r->hash);
    if (sp_get_u64(ck) != want)
        return sp_fail(err, SP_EXIT_DATA, "%s: payload checksum mismatch (corrupt record)",
                       cur_name(r, where, sizeof where));
    r->cur.checksum = want;
    r->in_record = 0;
    return 0;
}

int sp_reader_payload(sp_reader *r, sp_record *rec, const uint8_t **data, sp_err *err)
{
    char where[600];
    if (!r->in_record || r->remaining != r->cur.payload_len)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: payload already consumed", cur_name(r, where, sizeof where));
    if (r->cur.payload_len > r->lim.max_payload_in_memory)
        return sp_fail(err, SP_EXIT_DATA, "%s: payload of %llu bytes is over the in-memory limit",
                       cur_name(r, where, sizeof where), (unsigned long long)r->cur.payload_len);
    r->payload.len = 0;
    if (sp_buf_reserve(&r->payload, (size_t)r->cur.payload_len + 1))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    size_t len = (size_t)r->cur.payload_len;
    while (r->remaining) {
        ssize_t got = sp_reader_read(r, r->payload.data + (len - r->remaining), (size_t)r->remaining, err);
        if (got < 0)
            return -1;
    }
    if (sp_reader_read(r, NULL, 0, err) < 0)
        return -1;
    r->payload.len = len;
    rec->checksum = r->cur.checksum;
    *data = r->payload.data;
    return 0;
}

int sp_reader_drain(sp_reader *r, sp_record *rec, sp_err *err)
{
    uint8_t scratch[16384];
    while (r->in_record)
        if (sp_reader_read(r, scratch, sizeof scratch, err) < 0)
            return -1;
    if (rec)
        rec->checksum = r->cur.checksum;
    return 0;
}

int sp_reader_next(sp_reader *r, sp_record *rec, sp_err *err)
{
    if (sp_reader_drain(r, NULL, err))
        return -1;
    for (;;) {
        uint8_t t[FRAME_PREFIX];
        ssize_t got = rd_bytes(r, t, FRAME_PREFIX, err);
        if (got < 0)
            return -1;
        if (got < FRAME_PREFIX)
            return sp_fail(err, SP_EXIT_DATA,
                           "%s: truncated stream: no end-of-stream trailer after %llu records", r->name,
                           (unsigned long long)r->count);
        int rc = reader_frame(r, t, rec, err);
        if (rc < 0)
            return -1;
        if (rc == 1)
            return 1;
        if (rc == 3)
            return 0;
    }
}

/* ---------------- writer ---------------- */
struct sp_writer {
    int fd;
    uint8_t *buf;
    size_t len;
    uint64_t count, bytes;
    int in_record;
    uint64_t expect, got;
    XXH3_state_t *hash;
    char key[SP_KEY_MAX + 1];
};

static int wr_flush(sp_writer *w, sp_err *err)
{
    if (w->len && sp_write_all(w->fd, w->buf, w->len))
        return sp_fail(err, SP_EXIT_SYSTEM, "write failed: %s", strerror(errno));
    w->len = 0;
    return 0;
}

static int wr_put(sp_writer *w, const void *p, size_t n, sp_err *err)
{
    if (w->len + n > IO_BUF) {
        if (wr_flush(w, err))
            return -1;
        if (n >= IO_BUF / 2) {
            if (sp_write_all(w->fd, p, n))
                return sp_fail(err, SP_EXIT_SYSTEM, "write failed: %s", strerror(errno));
            return 0;
        }
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

/* Writes a frame prefix + head + head checksum. */
static int wr_frame_head(sp_writer *w, int type, const uint8_t *head, uint16_t head_len,
                         uint64_t payload_len, sp_err *err)
{
    uint8_t f[FRAME_PREFIX + RECORD_HEAD_FIXED + SP_KEY_MAX + 8];
    memset(f, 0, FRAME_PREFIX);
    f[0] = (uint8_t)type;
    sp_put_u16(f + 2, head_len);
    sp_put_u64(f + 8, payload_len);
    if (head_len)
        memcpy(f + FRAME_PREFIX, head, head_len);
    sp_put_u64(f + FRAME_PREFIX + head_len, sp_xxh3(f, FRAME_PREFIX + (size_t)head_len));
    return wr_put(w, f, FRAME_PREFIX + (size_t)head_len + 8, err);
}

int sp_writer_meta(sp_writer *w, const json_t *meta, sp_err *err)
{
    char *s = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s)
        return sp_fail(err, SP_EXIT_SYSTEM, "cannot serialise stream metadata");
    size_t n = strlen(s);
    uint8_t ck[8];
    sp_put_u64(ck, sp_xxh3(s, n));
    int rc = wr_frame_head(w, FRAME_META, NULL, 0, n, err) || wr_put(w, s, n, err) ||
             wr_put(w, ck, 8, err);
    free(s);
    return rc ? -1 : 0;
}

sp_writer *sp_writer_open(int fd, const json_t *meta, sp_err *err)
{
    sp_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->buf = malloc(IO_BUF)) || !(w->hash = XXH3_createState())) {
        sp_writer_free(w);
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    w->fd = fd;
    uint8_t h[16];
    memcpy(h, SP_STREAM_MAGIC, 8);
    sp_put_u32(h + 8, SP_STREAM_VERSION);
    sp_put_u32(h + 12, 0);
    if (wr_put(w, h, 16, err) || sp_writer_meta(w, meta, err)) {
        sp_writer_free(w);
        return NULL;
    }
    return w;
}

void sp_writer_free(sp_writer *w)
{
    if (!w)
        return;
    free(w->buf);
    XXH3_freeState(w->hash);
    free(w);
}

int sp_writer_begin(sp_writer *w, const sp_record *rec, sp_err *err)
{
    if (w->in_record)
        return sp_fail(err, SP_EXIT_SYSTEM, "record %s begun before the previous one ended", rec->key);
    uint8_t h[RECORD_HEAD_FIXED + SP_KEY_MAX];
    size_t key_len = strlen(rec->key);
    if (key_len == 0 || key_len > SP_KEY_MAX || !sp_utf8_valid(rec->key, key_len))
        return sp_fail(err, SP_EXIT_DATA, "invalid record key: %.200s", rec->key);
    if (rec->kind == SP_KIND_PIXELS) {
        uint64_t want = (uint64_t)rec->h * rec->w * rec->c * (uint64_t)sp_dtype_size(rec->dtype);
        if (!want || want != rec->payload_len)
            return sp_fail(err, SP_EXIT_SYSTEM, "%s: payload of %llu bytes does not match shape %ux%ux%u",
                           rec->key, (unsigned long long)rec->payload_len, rec->h, rec->w, rec->c);
    }
    if (rec->kind == SP_KIND_ENCODED && (!rec->h || !rec->w || !rec->c || rec->dtype != SP_DTYPE_U8 ||
                                         (rec->codec != SP_CODEC_JPEG && rec->codec != SP_CODEC_PNG)))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: encoded record without its codec, uint8 dtype and decoded shape",
                       rec->key);
    h[0] = rec->kind;
    h[1] = rec->split;
    h[2] = rec->dtype;
    h[3] = rec->kind == SP_KIND_ENCODED ? rec->codec : 0;
    sp_put_u32(h + 4, (uint32_t)rec->label);
    sp_put_u32(h + 8, (uint32_t)rec->label2);
    sp_put_u32(h + 12, rec->h);
    sp_put_u32(h + 16, rec->w);
    sp_put_u32(h + 20, rec->c);
    sp_put_u16(h + 24, (uint16_t)key_len);
    memcpy(h + RECORD_HEAD_FIXED, rec->key, key_len);
    if (wr_frame_head(w, FRAME_RECORD, h, (uint16_t)(RECORD_HEAD_FIXED + key_len), rec->payload_len, err))
        return -1;
    memcpy(w->key, rec->key, key_len + 1);
    w->in_record = 1;
    w->expect = rec->payload_len;
    w->got = 0;
    sp_xxh3_reset(w->hash);
    return 0;
}

int sp_writer_append(sp_writer *w, const void *p, size_t n, sp_err *err)
{
    if (!w->in_record || w->got + n > w->expect)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: more payload than the %llu bytes declared", w->key,
                       (unsigned long long)w->expect);
    sp_xxh3_update(w->hash, p, n);
    w->got += n;
    w->bytes += n;
    return wr_put(w, p, n, err);
}

static int writer_end(sp_writer *w, uint64_t *checksum, sp_err *err)
{
    if (!w->in_record || w->got != w->expect)
        return sp_fail(err, SP_EXIT_DATA, "%s: payload ended after %llu of %llu bytes", w->key,
                       (unsigned long long)w->got, (unsigned long long)w->expect);
    uint8_t ck[8];
    uint64_t d = sp_xxh3_digest(w->hash);
    sp_put_u64(ck, d);
    if (checksum)
        *checksum = d;
    w->in_record = 0;
    w->count++;
    return wr_put(w, ck, 8, err);
}

int sp_writer_end(sp_writer *w, sp_err *err) { return writer_end(w, NULL, err); }

int sp_writer_record(sp_writer *w, sp_record *rec, const void *payload, size_t len, sp_err *err)
{
    rec->payload_len = len;
    if (sp_writer_begin(w, rec, err) || sp_writer_append(w, payload, len, err))
        return -1;
    return writer_end(w, &rec->checksum, err);
}

int sp_writer_finish(sp_writer *w, sp_err *err)
{
    if (w->in_record)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: stream finished inside a record", w->key);
    uint8_t h[8], ck[8];
    sp_put_u64(h, w->count);
    sp_put_u64(ck, sp_xxh3(NULL, 0));
    if (wr_frame_head(w, FRAME_END, h, 8, 0, err) || wr_put(w, ck, 8, err))
        return -1;
    return wr_flush(w, err);
}

int sp_stream_sniff(const void *buf, size_t n)
{
    if (n >= 8 && !memcmp(buf, SP_STREAM_MAGIC, 8))
        return 1;
    if (n < 4 || sp_get_u32(buf) != ZSTD_MAGICNUMBER)
        return 0;
    ZSTD_DStream *zs = ZSTD_createDStream();
    if (!zs)
        return 0;
    uint8_t out[8];
    ZSTD_inBuffer in = {buf, n, 0};
    ZSTD_outBuffer o = {out, sizeof out, 0};
    ZSTD_initDStream(zs);
    while (o.pos < o.size && in.pos < in.size) {
        size_t ret = ZSTD_decompressStream(zs, &o, &in);
        if (ZSTD_isError(ret) || ret == 0)
            break;
    }
    ZSTD_freeDStream(zs);
    return o.pos == 8 && !memcmp(out, SP_STREAM_MAGIC, 8);
}
