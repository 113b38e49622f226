/* Walks a shard's or a shard set's records as stream records (see shard_records.h). */
#define _POSIX_C_SOURCE 200809L
#include "shards/shard_records.h"

#include <stdlib.h>

#include "common/sp_xxh.h"
#include "shards/manifest.h"

int sp_shard_each_record(sp_shard *s, sp_shard_record_fn fn, void *ctx, sp_err *err)
{
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
