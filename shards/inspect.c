/* sp-inspect's summaries (counts per split and class, bytes per record) and its contact sheet (PNG). */
#define _POSIX_C_SOURCE 200809L
#include "shards/inspect.h"

#include "common/sp_draw.h"

#include <errno.h>
#include <unistd.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "formats/image.h"
#include "formats/resample.h"
#include "shards/manifest.h"
#include "shards/shard.h"

/* The shard a manifest entry names, opened (keys not loaded). */
static sp_shard *open_entry(const char *dir, const json_t *entry, sp_err *err)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, json_string_value(json_object_get(entry, "file")));
    return sp_shard_open_lane(path, err); /* an encoded index read batch by batch */
}

/* Every record of s read in batches, and so checked against its checksum (a
 * summary of a damaged set is an error, not a table): its label counted in
 * counts (a JSON array of nclasses integers) or in *unlabeled, and, for an
 * encoded shard, the bytes of its decoded pixels (H x W x C) added to
 * *decoded. 0 or -1 with err. */
static int scan_shard(sp_shard *s, sp_shard_batch *b, json_t *counts, int nclasses, json_int_t *unlabeled,
                      uint64_t *decoded, sp_err *err)
{
    int encoded = sp_shard_kind(s) == SP_KIND_ENCODED;
    uint64_t n = sp_shard_count(s);
    for (uint64_t first = 0, k; first < n; first += k) {
        k = sp_shard_batch_records(s, first, SP_SHARD_BATCH_BYTES);
        if (sp_shard_batch_reserve(b, s, first, k, err))
            return -1;
        if (encoded ? sp_shard_read_encoded(s, first, k, b->bytes.data, NULL, b->shapes, NULL, b->labels, NULL, NULL,
                                            err)
                    : sp_shard_read(s, first, k, b->bytes.data, b->labels, NULL, NULL, err))
            return -1;
        for (uint64_t r = 0; r < k; r++) {
            int32_t lab = b->labels[r];
            if (lab >= 0 && lab < nclasses) {
                json_t *j = json_array_get(counts, (size_t)lab);
                json_integer_set(j, json_integer_value(j) + 1);
            } else {
                (*unlabeled)++;
            }
            if (encoded)
                *decoded += (uint64_t)b->shapes[3 * r] * b->shapes[3 * r + 1] * b->shapes[3 * r + 2];
        }
    }
    return 0;
}

json_t *sp_inspect(const char *dir, sp_err *err)
{
    json_t *m = sp_manifest_load(dir, err);
    if (!m)
        return NULL;
    int nclasses = (int)json_array_size(json_object_get(m, "classes"));
    json_t *out = json_object(), *splits = json_object();
    const char *keys[] = {"dataset", "classes", "classes2", "recipe", "shuffle", "normalize", "stats", "part"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (json_object_get(m, keys[i]))
            json_object_set(out, keys[i], json_object_get(m, keys[i]));
    size_t i;
    json_t *e;
    int rc = 0;
    sp_shard_batch buf = {0}; /* one batch's memory (SP_SHARD_BATCH_BYTES) for the whole set */
    json_array_foreach(json_object_get(m, "shards"), i, e) {
        const char *split = json_string_value(json_object_get(e, "split"));
        sp_shard *s = open_entry(dir, e, err);
        if (!s) {
            rc = -1;
            break;
        }
        json_t *sj = json_object_get(splits, split);
        if (!sj) {
            uint32_t h, w, c;
            int dtype;
            sp_shard_shape(s, &h, &w, &c, &dtype);
            json_t *counts = json_array();
            for (int k = 0; k < nclasses; k++)
                json_array_append_new(counts, json_integer(0));
            sj = json_pack("{s:I, s:i, s:[i,i,i], s:s, s:I, s:I, s:o, s:I, s:s}", "records", (json_int_t)0, "shards",
                           0, "shape", h, w, c, "dtype", sp_dtype_name(dtype), "bytes", (json_int_t)0, "pixel_bytes",
                           (json_int_t)0, "class_counts", counts, "unlabeled", (json_int_t)0, "kind",
                           sp_kind_name(sp_shard_kind(s)));
            if (sp_shard_kind(s) == SP_KIND_ENCODED)
                json_object_set_new(sj, "encoded_bytes", json_integer(0));
            json_object_set_new(splits, split, sj);
        }
        uint64_t n = sp_shard_count(s);
        json_int_t unlabeled = 0;
        uint32_t h, w, c;
        int dtype;
        sp_shard_shape(s, &h, &w, &c, &dtype);
        uint64_t decoded = 0;
        int encoded = sp_shard_kind(s) == SP_KIND_ENCODED;
        if (scan_shard(s, &buf, json_object_get(sj, "class_counts"), nclasses, &unlabeled, &decoded, err)) {
            sp_shard_close(s);
            rc = -1;
            break;
        }
        json_int_t px = encoded ? (json_int_t)decoded
                                : (json_int_t)((uint64_t)n * h * w * c * (uint64_t)sp_dtype_size(dtype));
        if (encoded) { /* the split's shape: the largest image of its shards */
            json_t *shape = json_object_get(sj, "shape");
            if ((json_int_t)h > json_integer_value(json_array_get(shape, 0)))
                json_array_set_new(shape, 0, json_integer(h));
            if ((json_int_t)w > json_integer_value(json_array_get(shape, 1)))
                json_array_set_new(shape, 1, json_integer(w));
            json_object_set_new(sj, "encoded_bytes",
                                json_integer(json_integer_value(json_object_get(sj, "encoded_bytes")) +
                                             (json_int_t)sp_shard_encoded_size(s, 0, n)));
        }
#define ADD(name, v) json_object_set_new(sj, name, json_integer(json_integer_value(json_object_get(sj, name)) + (v)))
        ADD("records", (json_int_t)n);
        ADD("shards", 1);
        ADD("bytes", json_integer_value(json_object_get(e, "bytes")));
        ADD("pixel_bytes", px);
        ADD("unlabeled", unlabeled);
#undef ADD
        sp_shard_close(s);
    }
    sp_shard_batch_free(&buf);
    json_decref(m);
    if (rc) {
        json_decref(out);
        json_decref(splits);
        return NULL;
    }
    const char *name;
    json_t *sj;
    json_object_foreach(splits, name, sj) { /* the size per image, on disk */
        json_int_t n = json_integer_value(json_object_get(sj, "records"));
        json_object_set_new(sj, "bytes_per_record",
                            json_real(n ? (double)json_integer_value(json_object_get(sj, "bytes")) / (double)n : 0.0));
    }
    json_object_set_new(out, "splits", splits);
    return out;
}

/* Which classes have records: present[k] set for each label k seen. */
static int classes_present(const char *dir, const json_t *m, int nclasses, unsigned char *present, sp_err *err)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(m, "shards"), i, e) {
        sp_shard *s = open_entry(dir, e, err);
        if (!s)
            return -1;
        uint64_t n = sp_shard_count(s);
        int32_t *labels = malloc((n ? n : 1) * sizeof *labels);
        int rc = !labels ? sp_fail(err, SP_EXIT_SYSTEM, "out of memory")
                         : sp_shard_read(s, 0, n, NULL, labels, NULL, NULL, err);
        for (uint64_t r = 0; rc == 0 && r < n; r++)
            if (labels[r] >= 0 && labels[r] < nclasses)
                present[labels[r]] = 1;
        free(labels);
        sp_shard_close(s);
        if (rc)
            return -1;
    }
    return 0;
}

/* Record r of the encoded shard s, read (checked) into enc and decoded into
 * img as RGB. 0 or -1; an image that does not decode names the record. */
static int load_encoded(sp_shard *s, uint64_t r, sp_buf *enc, sp_image *img, sp_err *err)
{
    size_t len = (size_t)sp_shard_encoded_size(s, r, 1);
    uint32_t shape[3];
    if (sp_buf_reserve(enc, len))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (sp_shard_read_encoded(s, r, 1, enc->data, NULL, shape, NULL, NULL, NULL, NULL, err))
        return -1;
    sp_image_opts o;
    sp_image_opts_default(&o);
    sp_err derr = {0};
    if (sp_image_decode(enc->data, len, &o, img, &derr))
        return sp_fail(err, SP_EXIT_DATA, "record %llu: cannot decode: %s", (unsigned long long)r, derr.msg);
    if (img->h != shape[0] || img->w != shape[1])
        return sp_fail(err, SP_EXIT_DATA, "record %llu: decodes to %ux%u, the shard says %ux%u",
                       (unsigned long long)r, img->h, img->w, shape[0], shape[1]);
    return 0;
}

int sp_inspect_grid(const char *dir, const char *png_path, int per_class, int tile, int max_classes, int *rows_out,
                    int *present_out, sp_err *err)
{
    json_t *m = sp_manifest_load(dir, err);
    if (!m)
        return -1;
    json_t *names = json_object_get(m, "classes");
    int nclasses = (int)json_array_size(names);
    if (nclasses <= 0) {
        json_decref(m);
        return sp_fail(err, SP_EXIT_DATA, "%s: no class list to arrange the sheet by", dir);
    }
    unsigned char *present = calloc((size_t)nclasses, 1);
    int *row_of = malloc((size_t)nclasses * sizeof *row_of);
    if (!present || !row_of || classes_present(dir, m, nclasses, present, err)) {
        free(present);
        free(row_of);
        json_decref(m);
        return present && row_of ? -1 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    /* the rows: the classes present, in class order, up to max_classes */
    int rows = 0, npresent = 0;
    for (int k = 0; k < nclasses; k++) {
        npresent += present[k];
        row_of[k] = present[k] && rows < max_classes ? rows++ : -1;
    }
    if (rows_out)
        *rows_out = rows;
    if (present_out)
        *present_out = npresent;
    /* the labels' column: "N name", white on the dark background */
    int S = tile >= 48 ? 2 : 1, label_w = 0;
    char label[64];
    for (int k = 0; k < nclasses; k++) {
        if (row_of[k] < 0)
            continue;
        snprintf(label, sizeof label, "%d %.24s", k, json_string_value(json_array_get(names, (size_t)k)));
        int w = sp_text_width(label, S);
        label_w = w > label_w ? w : label_w;
    }
    label_w += 12;
    sp_canvas sheet = {0};
    int W = label_w + per_class * (tile + 2), H = (rows ? rows : 1) * (tile + 2);
    int *filled = calloc((size_t)nclasses, sizeof *filled);
    uint8_t *pix = NULL, *scaled = malloc((size_t)tile * tile * 4);
    sp_resampler rs = {0};
    sp_buf enc = {0};
    sp_image img = {0};
    int rc = filled && scaled ? sp_canvas_init(&sheet, W, H, 0x202020, err) : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    for (int k = 0; rc == 0 && k < nclasses; k++) {
        if (row_of[k] < 0)
            continue;
        snprintf(label, sizeof label, "%d %.24s", k, json_string_value(json_array_get(names, (size_t)k)));
        sp_draw_text(&sheet, 6, row_of[k] * (tile + 2) + 1 + (tile - sp_text_height(S)) / 2 + S, label, S, 0xf0f0f0);
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(m, "shards"), i, e) {
        if (rc)
            break;
        sp_shard *s = open_entry(dir, e, err);
        if (!s) {
            rc = -1;
            break;
        }
        uint32_t h, w, c;
        int dtype;
        sp_shard_shape(s, &h, &w, &c, &dtype);
        int encoded = sp_shard_kind(s) == SP_KIND_ENCODED;
        if (dtype != SP_DTYPE_U8 || (c != 1 && c != 3 && c != 4)) {
            sp_shard_close(s);
            rc = sp_fail(err, SP_EXIT_DATA, "%s: the contact sheet takes uint8 shards of 1, 3 or 4 channels",
                         json_string_value(json_object_get(e, "file")));
            break;
        }
        free(pix);
        pix = encoded ? NULL : malloc((size_t)h * w * c);
        uint64_t n = sp_shard_count(s);
        int32_t *labels = malloc((n ? n : 1) * sizeof *labels);
        if (!labels || sp_shard_read(s, 0, n, NULL, labels, NULL, NULL, err)) {
            rc = labels ? -1 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
            free(labels);
            sp_shard_close(s);
            break;
        }
        int missing = 0;
        for (int k = 0; k < nclasses; k++)
            missing += row_of[k] >= 0 && filled[k] < per_class;
        for (uint64_t r = 0; rc == 0 && missing && r < n; r++) {
            int32_t label_k = labels[r];
            if (label_k < 0 || label_k >= nclasses || row_of[label_k] < 0 || filled[label_k] >= per_class)
                continue;
            const uint8_t *px = pix;
            if (encoded) { /* the sample's bytes, decoded as sp-decode decodes them */
                if (load_encoded(s, r, &enc, &img, err)) {
                    rc = -1;
                    break;
                }
                px = img.pixels, w = img.w, h = img.h, c = 3;
            } else if (!pix || sp_shard_read(s, r, 1, pix, NULL, NULL, NULL, err)) {
                rc = pix ? -1 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
                break;
            }
            /* fit inside tile x tile, keeping the aspect ratio */
            int tw = (int)w >= (int)h ? tile : (int)((long)tile * w / h), th = (int)h >= (int)w ? tile
                                                                                : (int)((long)tile * h / w);
            if (tw < 1)
                tw = 1;
            if (th < 1)
                th = 1;
            if (sp_resample(&rs, px, (int)w, (int)h, (int)c, tw, th, 0, 0, tw, th, SP_FILTER_BILINEAR, scaled)) {
                rc = sp_fail(err, SP_EXIT_SYSTEM, "cannot scale a sample");
                break;
            }
            int x0 = label_w + filled[label_k] * (tile + 2) + 1 + (tile - tw) / 2,
                y0 = row_of[label_k] * (tile + 2) + 1 + (tile - th) / 2;
            for (int y = 0; y < th; y++)
                for (int x = 0; x < tw; x++)
                    for (int k = 0; k < 3; k++)
                        sheet.pixels[((size_t)(y0 + y) * (size_t)W + (size_t)(x0 + x)) * 3 + (size_t)k] =
                            scaled[((size_t)y * (size_t)tw + (size_t)x) * c + (c == 1 ? 0 : (size_t)k)];
            missing -= ++filled[label_k] == per_class;
        }
        free(labels);
        sp_shard_close(s);
    }
    if (rc == 0)
        rc = sp_canvas_write_png(&sheet, png_path, err);
    sp_resampler_free(&rs);
    sp_buf_free(&enc);
    sp_image_free(&img);
    sp_canvas_free(&sheet);
    free(filled);
    free(present);
    free(row_of);
    free(pix);
    free(scaled);
    json_decref(m);
    return rc;
}
