/* sp-verify's checks: every shard of a set against the manifest, byte for byte and record for record. */
#define _POSIX_C_SOURCE 200809L
#include "shards/verify.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "common/sp_xxh.h"

#include "common/sp_hash.h"
#include "shards/manifest.h"
#include "shards/remote.h"
#include "shards/shard.h"

typedef struct vctx {
    const sp_verify_hooks *hooks;
    sp_verify_stats *st;
    sp_shard_batch b; /* verify_records' batch, kept from shard to shard */
} vctx;

static void problem(vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(vctx *v, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    v->st->problems++;
    if (v->hooks->report)
        v->hooks->report(v->hooks->ctx, line);
}

/* Reports a record's labels outside the class lists. */
static void check_labels(vctx *v, const char *file, const char *name, int32_t lab, int32_t lab2, int nclasses,
                         int nclasses2)
{
    if (lab < -1 || lab >= nclasses)
        problem(v, "%s: %s: label %d outside the %d classes", file, name, lab, nclasses);
    if (lab2 < -1 || lab2 >= nclasses2)
        problem(v, "%s: %s: second label %d outside the %d classes", file, name, lab2, nclasses2);
}

static void record_name(sp_shard *s, uint64_t idx, char *name, size_t n)
{
    const char *key = sp_shard_key(s, idx);
    if (key)
        snprintf(name, n, "record %llu (%s)", (unsigned long long)idx, key);
    else
        snprintf(name, n, "record %llu", (unsigned long long)idx);
}

/* Every record of s, in batches of SP_SHARD_BATCH_BYTES with their labels,
 * checksums and keys (sp-verify's memory is a batch's, whatever the shards'
 * or the set's size; pixel shards are read chunk by chunk, about 1 MiB each,
 * a batch's ends through one chunk the shard keeps): its pixels (or, for an
 * encoded shard, its bytes, which are not decoded: the checksum says they
 * are the bytes sp-decode checked) against its checksum, and its labels.
 * keys: load each batch's keys to name its records (not for a shard whose
 * bytes changed). */
static void verify_records(vctx *v, sp_shard *s, const char *file, int keys, int nclasses, int nclasses2)
{
    int encoded = sp_shard_kind(s) == SP_KIND_ENCODED;
    uint32_t h, w, c;
    int dtype;
    sp_shard_shape(s, &h, &w, &c, &dtype);
    size_t item = encoded ? 0 : (size_t)h * w * c * (size_t)sp_dtype_size(dtype);
    uint64_t n = sp_shard_count(s);
    sp_shard_batch *b = &v->b;
    sp_err err = {0};
    for (uint64_t first = 0, k; first < n; first += k) {
        k = sp_shard_batch_records(s, first, SP_SHARD_BATCH_BYTES);
        if (sp_shard_batch_reserve(b, s, first, k, &err)) {
            problem(v, "%s: %s", file, err.msg);
            break;
        }
        if (keys && sp_shard_load_keys(s, first, k, &err)) {
            problem(v, "%s", err.msg); /* the records are still checked, named by index */
            keys = 0;
        }
        if (encoded ? sp_shard_read_encoded(s, first, k, b->bytes.data, b->offsets, NULL, NULL, b->labels, b->labels2,
                                            b->checksums, &err)
                    : sp_shard_read(s, first, k, b->bytes.data, b->labels, b->labels2, b->checksums, &err)) {
            problem(v, "%s: records %llu..%llu: %s", file, (unsigned long long)first,
                    (unsigned long long)(first + k - 1), err.msg);
            break;
        }
        for (uint64_t i = 0; i < k; i++) {
            char name[SP_KEY_MAX + 64];
            record_name(s, first + i, name, sizeof name);
            const uint8_t *rec = b->bytes.data + (encoded ? b->offsets[i] : i * item);
            size_t rec_len = encoded ? (size_t)(b->offsets[i + 1] - b->offsets[i]) : item;
            if (sp_xxh3(rec, rec_len) != b->checksums[i])
                problem(v, "%s: %s: %s do not match their checksum", file, name, encoded ? "encoded bytes" : "pixels");
            check_labels(v, file, name, b->labels[i], b->labels2[i], nclasses, nclasses2);
        }
        if (v->hooks->progress) {
            sp_verify_stats now = *v->st;
            now.records += first + k;
            v->hooks->progress(v->hooks->ctx, &now);
        }
    }
}

static void verify_shard(vctx *v, const char *dir, const json_t *m, json_t *entry, int nclasses, int nclasses2)
{
    const char *file = json_string_value(json_object_get(entry, "file"));
    const char *sha = json_string_value(json_object_get(entry, "sha256"));
    json_int_t bytes = json_integer_value(json_object_get(entry, "bytes"));
    char path[8192], hex[65];
    uint64_t size;
    sp_err err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, file);
    /* a set at a URL: its shards' bytes and sha256 are held to the manifest
     * as they download, and sp_shard_open below fails on a mismatch */
    int remote = sp_remote_is_url(dir);
    if (remote) {
        snprintf(hex, sizeof hex, "%s", sha ? sha : "");
        size = (uint64_t)bytes;
    } else if (sp_hash_file(path, NULL, hex, &size, NULL, NULL, &err)) {
        problem(v, "%s", err.msg);
        return;
    }
    v->st->bytes += size;
    if ((json_int_t)size != bytes)
        problem(v, "%s: %llu bytes, manifest says %lld", file, (unsigned long long)size, (long long)bytes);
    /* A file whose bytes changed is opened without its keys: HDF5 trusts the
     * lengths in its global heap (where the keys live) and a damaged one can
     * crash it. Its records are still checked, named by index. */
    int damaged = strcmp(hex, sha) != 0;
    if (damaged)
        problem(v, "%s: sha256 %s, manifest says %s", file, hex, sha);
    /* (The keys are loaded a batch at a time, by verify_records.) */
    sp_shard *s = sp_shard_open_lane(path, &err); /* an encoded index read and checked batch by batch */
    if (!s) {
        problem(v, "%s", err.msg);
        return;
    }
    sp_shard_set_verify(s, 0); /* verify_records checks every record and reports each bad one */
    long long count = -1;
    if (sp_shard_attr_int(s, "record_count", &count, &err))
        problem(v, "%s", err.msg);
    else if ((uint64_t)count != sp_shard_count(s))
        problem(v, "%s: record_count attribute %lld, images has %llu", file, count,
                (unsigned long long)sp_shard_count(s));
    if (sp_manifest_check_shard(file, m, entry, s, &err))
        problem(v, "%s", err.msg);
    verify_records(v, s, file, !damaged, nclasses, nclasses2);
    v->st->shards++;
    v->st->records += sp_shard_count(s);
    sp_shard_close(s);
}

int sp_verify_dir(const char *dir, const sp_verify_hooks *hooks, sp_verify_stats *st, sp_err *err)
{
    static const sp_verify_hooks none;
    memset(st, 0, sizeof *st);
    json_t *m = sp_manifest_read(dir, err);
    if (!m)
        return -1;
    vctx v = {.hooks = hooks ? hooks : &none, .st = st};
    int nclasses = (int)json_array_size(json_object_get(m, "classes"));
    int nclasses2 = (int)json_array_size(json_object_get(m, "classes2"));
    size_t i;
    json_t *e;
    json_int_t sum = 0;
    json_array_foreach(json_object_get(m, "shards"), i, e) {
        verify_shard(&v, dir, m, e, nclasses, nclasses2);
        sum += json_integer_value(json_object_get(e, "records"));
    }
    json_int_t total = json_integer_value(json_object_get(m, "total_records"));
    if (sum != total)
        problem(&v, "manifest: shards hold %lld records, total_records says %lld", (long long)sum,
                (long long)total);
    /* a set of no records is what a run whose every input was rejected would
     * leave; sp-shard refuses to commit one, except for a part of --part */
    if (total == 0 && sum == 0 && !json_object_get(m, "part"))
        problem(&v, "manifest: the set holds no records");
    const char *name;
    json_t *sj;
    json_object_foreach(json_object_get(m, "splits"), name, sj) {
        json_int_t n = 0;
        json_array_foreach(json_object_get(m, "shards"), i, e) {
            if (strcmp(json_string_value(json_object_get(e, "split")), name))
                continue;
            n += json_integer_value(json_object_get(e, "records"));
            /* one split, one shape and dtype: what the split says, every shard holds */
            /* (encoded shards: one kind, dtype and channel count; their shapes are their largest images') */
            const json_t *want_shape = json_object_get(sj, "shape"), *want_dtype = json_object_get(sj, "dtype");
            const char *want_kind = json_string_value(json_object_get(sj, "kind"));
            const char *kind = json_string_value(json_object_get(e, "kind"));
            int encoded = kind && !strcmp(kind, "encoded");
            if ((want_kind || kind) && (!want_kind || !kind || strcmp(want_kind, kind)))
                problem(&v, "manifest: %s: kind %s, its split %s's is %s", json_string_value(json_object_get(e, "file")),
                        kind ? kind : "pixels", name, want_kind ? want_kind : "pixels");
            else if ((want_shape && !encoded && !json_equal((json_t *)want_shape, json_object_get(e, "shape"))) ||
                     (want_shape && encoded &&
                      !json_equal(json_array_get(want_shape, 2), json_array_get(json_object_get(e, "shape"), 2))) ||
                     (want_dtype && !json_equal((json_t *)want_dtype, json_object_get(e, "dtype"))))
                problem(&v, "manifest: %s: shape or dtype differs from its split %s's",
                        json_string_value(json_object_get(e, "file")), name);
        }
        if (n != json_integer_value(json_object_get(sj, "records")))
            problem(&v, "manifest: split %s lists %lld records, its shards hold %lld", name,
                    (long long)json_integer_value(json_object_get(sj, "records")), (long long)n);
    }
    json_decref(m);
    sp_shard_batch_free(&v.b);
    return st->problems ? 1 : 0;
}

typedef struct first_problems {
    char first[400];  /* the first problem */
    char record[400]; /* the first naming a record, when that is another */
} first_problems;

static void keep_first(void *ctx, const char *problem)
{
    first_problems *p = ctx;
    if (!p->first[0])
        snprintf(p->first, sizeof p->first, "%s", problem);
    else if (!p->record[0] && strstr(problem, ": record ") && !strstr(p->first, ": record "))
        snprintf(p->record, sizeof p->record, "%s", problem);
}

int sp_verify_or_fail(const char *dir, sp_err *err)
{
    first_problems p = {{0}, {0}};
    sp_verify_hooks hooks = {.report = keep_first, .ctx = &p};
    sp_verify_stats st;
    int rc = sp_verify_dir(dir, &hooks, &st, err);
    if (rc > 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: the shards do not verify: %s%s%s (run sp-verify %s)", dir, p.first,
                       p.record[0] ? "; " : "", p.record, dir);
    return rc;
}
