/* Walks a shard's or a shard set's records as stream records (see shard_records.h). */
#define _POSIX_C_SOURCE 200809L
#include "shards/shard_records.h"

#include <stdlib.h>
#include <string.h>

#include "common/sp_xxh.h"
#include "shards/manifest.h"

/* sp_shard_each_record for an encoded shard: batches of about 16 MiB of bytes. */
static int each_encoded(sp_shard *s, sp_shard_record_fn fn, void *ctx, sp_err *err)
{
    uint64_t n = sp_shard_count(s);
    sp_buf bytes = {0};
    uint64_t *off = NULL;
    uint32_t *shapes = NULL;
    uint8_t *codecs = NULL;
    int32_t *lab = NULL, *lab2 = NULL;
    sp_record rec;
    sp_record_init(&rec, SP_KIND_ENCODED, "x", NULL);
    rec.split = (uint8_t)sp_shard_split(s);
    rec.dtype = SP_DTYPE_U8;
    int rc = 0;
    for (uint64_t first = 0; rc == 0 && first < n;) {
        uint64_t k = 1;
        while (first + k < n && sp_shard_encoded_size(s, first, k + 1) <= (16u << 20))
            k++;
        if (sp_buf_reserve(&bytes, (size_t)sp_shard_encoded_size(s, first, k)) ||
            !(off = realloc(off, (k + 1) * 8)) || !(shapes = realloc(shapes, k * 12)) ||
            !(codecs = realloc(codecs, k)) || !(lab = realloc(lab, k * 4)) || !(lab2 = realloc(lab2, k * 4))) {
            rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
            break;
        }
        rc = sp_shard_read_encoded(s, first, k, bytes.data, off, shapes, codecs, lab, lab2, NULL, err);
        for (uint64_t i = 0; rc == 0 && i < k; i++) {
            const char *key = sp_shard_key(s, first + i);
            snprintf(rec.key, sizeof rec.key, "%s", key ? key : "");
            rec.key_len = (uint16_t)strlen(rec.key);
            rec.label = lab[i];
            rec.label2 = lab2[i];
            rec.h = shapes[3 * i], rec.w = shapes[3 * i + 1], rec.c = shapes[3 * i + 2];
            rec.codec = codecs[i];
            rec.payload_len = off[i + 1] - off[i];
            rec.checksum = sp_xxh3(bytes.data + off[i], (size_t)rec.payload_len);
            rc = fn(ctx, &rec, bytes.data + off[i], err);
        }
        first += k;
    }
    sp_buf_free(&bytes);
    free(off);
    free(shapes);
    free(codecs);
    free(lab);
    free(lab2);
    return rc;
}

int sp_shard_each_record(sp_shard *s, sp_shard_record_fn fn, void *ctx, sp_err *err)
{
    if (sp_shard_kind(s) == SP_KIND_ENCODED)
        return each_encoded(s, fn, ctx, err);
    uint32_t h, w, c;
    int dtype;
    sp_shard_shape(s, &h, &w, &c, &dtype);
    size_t item = (size_t)h * w * c * (size_t)sp_dtype_size(dtype);
    if (item == 0)
        return sp_fail(err, SP_EXIT_DATA, "shard records of no bytes (%ux%ux%u)", h, w, c);
    uint64_t n = sp_shard_count(s), batch = (16u << 20) / item + 1;
    uint8_t *pix = malloc(batch * item);
    int32_t *lab = malloc(batch * 4), *lab2 = malloc(batch * 4);
    int rc = pix && lab && lab2 ? 0 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    sp_record rec;
    sp_record_init(&rec, SP_KIND_PIXELS, "x", NULL);
    rec.split = (uint8_t)sp_shard_split(s);
    rec.h = h, rec.w = w, rec.c = c, rec.dtype = (uint8_t)dtype;
    rec.payload_len = item;
    for (uint64_t first = 0; rc == 0 && first < n; first += batch) {
        uint64_t k = n - first < batch ? n - first : batch;
        rc = sp_shard_read(s, first, k, pix, lab, lab2, NULL, err);
        for (uint64_t i = 0; rc == 0 && i < k; i++) {
            const char *key = sp_shard_key(s, first + i);
            snprintf(rec.key, sizeof rec.key, "%s", key ? key : "");
            rec.label = lab[i];
            rec.label2 = lab2[i];
            rec.checksum = sp_xxh3(pix + i * item, item);
            rc = fn(ctx, &rec, pix + i * item, err);
        }
    }
    free(pix);
    free(lab);
    free(lab2);
    return rc;
}

int sp_shardset_each_record(const char *dir, sp_shard_record_fn fn, void *ctx, sp_err *err)
{
    json_t *m = sp_manifest_load(dir, err);
    if (!m)
        return -1;
    size_t i;
    json_t *e;
    int rc = 0;
    json_array_foreach(json_object_get(m, "shards"), i, e) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, json_string_value(json_object_get(e, "file")));
        sp_shard *s = sp_shard_open(path, err);
        if (!s) {
            rc = -1;
            break;
        }
        rc = sp_shard_each_record(s, fn, ctx, err);
        sp_shard_close(s);
        if (rc)
            break;
    }
    json_decref(m);
    return rc;
}
