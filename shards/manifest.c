/* DIR/manifest.json: loading it with its limits and checks against the shards, and writing it atomically. */
#define _POSIX_C_SOURCE 200809L
#include "shards/manifest.h"

#include "common/sp_atomic.h"
#include "shards/remote.h"
#include "shards/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sp_write_json_file(const char *path, const json_t *j, sp_err *err)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot serialise", path);
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps leaves room for its NUL: reuse it for a newline */
    int rc = sp_atomic_write(path, text, n + 1, err);
    free(text);
    return rc;
}

int sp_write_json_atomic(const char *dir, const char *name, const json_t *j, sp_err *err)
{
    char dst[4096];
    if (snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s/%s: path too long", dir, name);
    return sp_write_json_file(dst, j, err);
}

/* 1 if j is an array of at most max strings. */
static int string_array(const json_t *j, size_t max)
{
    if (!json_is_array(j) || json_array_size(j) > max)
        return 0;
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v)
        if (!json_is_string(v))
            return 0;
    return 1;
}

/* The dtype named, or SP_DTYPE_NONE. */
static int dtype_from_name(const char *name)
{
    for (int d = SP_DTYPE_U8; d <= SP_DTYPE_F32; d++)
        if (name && !strcmp(name, sp_dtype_name(d)))
            return d;
    return SP_DTYPE_NONE;
}

/* Checks one shard entry's own fields; 0 or -1 naming the entry. */
static int check_entry(const char *path, size_t i, const json_t *sh, sp_err *err)
{
    const char *file = json_string_value(json_object_get(sh, "file"));
    const char *split = json_string_value(json_object_get(sh, "split"));
    json_t *records = json_object_get(sh, "records"), *bytes = json_object_get(sh, "bytes");
    json_t *shape = json_object_get(sh, "shape");
    if (!file || !*file || strchr(file, '/') || file[0] == '.' || !json_is_integer(records) ||
        !json_is_string(json_object_get(sh, "sha256")) || !split)
        return sp_fail(err, SP_EXIT_DATA, "%s: shard entry %zu is malformed", path, i);
    if (sp_split_from_name(split) <= SP_SPLIT_NONE)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s: unknown split \"%s\"", path, file, split);
    if (json_integer_value(records) < 0 || (uint64_t)json_integer_value(records) > SP_SHARD_MAX_RECORDS)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s: %lld records, outside 0..%llu", path, file,
                       (long long)json_integer_value(records), (unsigned long long)SP_SHARD_MAX_RECORDS);
    if (bytes && (!json_is_integer(bytes) || json_integer_value(bytes) < 0))
        return sp_fail(err, SP_EXIT_DATA, "%s: %s: bytes is not a size", path, file);
    static const json_int_t max[3] = {SP_MANIFEST_MAX_SIDE, SP_MANIFEST_MAX_SIDE, SP_MANIFEST_MAX_CHANNELS};
    int shape_ok = json_array_size(shape) == 3;
    for (size_t k = 0; shape_ok && k < 3; k++) {
        json_t *v = json_array_get(shape, k);
        shape_ok = json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= max[k];
    }
    if (!shape_ok)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s: shape is not [H, W, C] within [%d, %d, %d]", path, file,
                       SP_MANIFEST_MAX_SIDE, SP_MANIFEST_MAX_SIDE, SP_MANIFEST_MAX_CHANNELS);
    if (!dtype_from_name(json_string_value(json_object_get(sh, "dtype"))))
        return sp_fail(err, SP_EXIT_DATA, "%s: %s: dtype is not uint8, float16 or float32", path, file);
    json_t *kind = json_object_get(sh, "kind"); /* absent: pixels */
    if (kind && (!json_is_string(kind) || (strcmp(json_string_value(kind), "encoded") &&
                                           strcmp(json_string_value(kind), "pixels"))))
        return sp_fail(err, SP_EXIT_DATA, "%s: %s: kind is not \"pixels\" or \"encoded\"", path, file);
    return 0;
}

/* No shard listed twice; with sums, also total_records and each split's
 * records equal to what the shard entries hold. */
static int check_sums(const char *path, const json_t *m, int sums, sp_err *err)
{
    json_t *shards = json_object_get(m, "shards"), *seen = json_object();
    json_t *per_split = json_object();
    json_int_t sum = 0;
    size_t i;
    json_t *sh;
    int rc = seen && per_split ? 0 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    json_array_foreach(shards, i, sh) {
        if (rc)
            break;
        const char *file = json_string_value(json_object_get(sh, "file"));
        const char *split = json_string_value(json_object_get(sh, "split"));
        json_int_t n = json_integer_value(json_object_get(sh, "records"));
        if (json_object_get(seen, file)) {
            rc = sp_fail(err, SP_EXIT_DATA, "%s: shard %s is listed twice", path, file);
            break;
        }
        json_object_set_new(seen, file, json_true());
        sum += n;
        json_t *acc = json_object_get(per_split, split);
        json_object_set_new(per_split, split, json_integer(json_integer_value(acc) + n));
    }
    json_t *total = json_object_get(m, "total_records");
    if (!sums)
        goto out;
    if (!rc && (!json_is_integer(total) || json_integer_value(total) != sum))
        rc = sp_fail(err, SP_EXIT_DATA, "%s: total_records says %lld, the shards hold %lld", path,
                     (long long)json_integer_value(total), (long long)sum);
    const char *name;
    json_t *sj;
    json_object_foreach(json_object_get(m, "splits"), name, sj) {
        if (rc)
            break;
        json_int_t want = json_integer_value(json_object_get(per_split, name));
        if (json_integer_value(json_object_get(sj, "records")) != want)
            rc = sp_fail(err, SP_EXIT_DATA, "%s: split %s lists %lld records, its shards hold %lld", path, name,
                         (long long)json_integer_value(json_object_get(sj, "records")), (long long)want);
    }
out:
    json_decref(seen);
    json_decref(per_split);
    return rc;
}

int sp_manifest_check_shard(const char *name, const json_t *m, const json_t *entry, sp_shard *s, sp_err *err)
{
    json_int_t records = json_integer_value(json_object_get(entry, "records"));
    json_t *shape = json_object_get(entry, "shape");
    const char *dtype = json_string_value(json_object_get(entry, "dtype"));
    const char *split = json_string_value(json_object_get(entry, "split"));
    uint32_t h, w, c;
    int dt;
    sp_shard_shape(s, &h, &w, &c, &dt);
    if ((json_int_t)sp_shard_count(s) != records)
        return sp_fail(err, SP_EXIT_DATA, "%s: %llu records, manifest says %lld", name,
                       (unsigned long long)sp_shard_count(s), (long long)records);
    if (json_integer_value(json_array_get(shape, 0)) != h || json_integer_value(json_array_get(shape, 1)) != w ||
        json_integer_value(json_array_get(shape, 2)) != c)
        return sp_fail(err, SP_EXIT_DATA, "%s: shape %ux%ux%u differs from the manifest's %lldx%lldx%lld", name, h, w,
                       c, (long long)json_integer_value(json_array_get(shape, 0)),
                       (long long)json_integer_value(json_array_get(shape, 1)),
                       (long long)json_integer_value(json_array_get(shape, 2)));
    if (!dtype || strcmp(dtype, sp_dtype_name(dt)))
        return sp_fail(err, SP_EXIT_DATA, "%s: dtype %s, manifest says %s", name, sp_dtype_name(dt),
                       dtype ? dtype : "nothing");
    const char *kind = json_string_value(json_object_get(entry, "kind"));
    if (strcmp(kind ? kind : "pixels", sp_kind_name(sp_shard_kind(s))))
        return sp_fail(err, SP_EXIT_DATA, "%s: %s records, manifest says %s", name, sp_kind_name(sp_shard_kind(s)),
                       kind ? kind : "pixels");
    if (!split || strcmp(split, sp_split_name(sp_shard_split(s))))
        return sp_fail(err, SP_EXIT_DATA, "%s: split %s, manifest says %s", name, sp_split_name(sp_shard_split(s)),
                       split ? split : "nothing");
    static const char *lists[] = {"classes", "classes2"};
    for (size_t k = 0; k < 2; k++) {
        json_t *want = json_object_get(m, lists[k]), *got = json_object_get(sp_shard_meta(s), lists[k]);
        size_t nw = json_array_size(want), ng = json_array_size(got);
        if (nw != ng || (nw && !json_equal(want, got)))
            return sp_fail(err, SP_EXIT_DATA, "%s: %s differ from the manifest's (%zu names in the shard, %zu in the manifest)",
                           name, lists[k], ng, nw);
    }
    return 0;
}

json_t *sp_manifest_read(const char *dir, sp_err *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/manifest.json", dir) >= (int)sizeof path) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: path too long", dir);
        return NULL;
    }
    /* a URL's manifest is read from its local copy; messages name the URL */
    char local[4300];
    if (sp_remote_is_url(dir) && sp_remote_manifest(dir, local, sizeof local, err))
        return NULL;
    json_error_t je;
    errno = 0;
    json_t *m = json_load_file(sp_remote_is_url(dir) ? local : path, JSON_REJECT_DUPLICATES, &je);
    if (!m) {
        /* a manifest missing or malformed is a data problem; one the system
         * cannot read (permissions, I/O) is the system's (jansson keeps errno) */
        int e = errno, system = je.line == -1 && e && e != ENOENT && e != ENOTDIR;
        sp_fail(err, system ? SP_EXIT_SYSTEM : SP_EXIT_DATA, "%s: %s", path, je.text);
        return NULL;
    }
    const char *fmt = json_string_value(json_object_get(m, "format"));
    json_t *shards = json_object_get(m, "shards");
    if (!fmt || strcmp(fmt, SP_MANIFEST_FORMAT) || !json_is_array(shards)) {
        sp_fail(err, SP_EXIT_DATA, "%s: not a shardpipe manifest", path);
        goto fail;
    }
    json_int_t v = json_integer_value(json_object_get(m, "format_version"));
    if (v != SP_MANIFEST_VERSION) {
        sp_fail(err, SP_EXIT_DATA, "%s: manifest version %lld, this build reads version %d", path, (long long)v,
                SP_MANIFEST_VERSION);
        goto fail;
    }
    static const char *lists[] = {"classes", "classes2"};
    for (size_t k = 0; k < 2; k++) {
        json_t *l = json_object_get(m, lists[k]);
        if (l && !string_array(l, SP_MANIFEST_MAX_CLASSES)) {
            sp_fail(err, SP_EXIT_DATA, "%s: %s is not a list of at most %d names (%zu entries)", path, lists[k],
                    SP_MANIFEST_MAX_CLASSES, json_array_size(l));
            goto fail;
        }
    }
    size_t i;
    json_t *sh;
    json_array_foreach(shards, i, sh)
        if (check_entry(path, i, sh, err))
            goto fail;
    if (check_sums(path, m, 0, err))
        goto fail;
    return m;
fail:
    json_decref(m);
    return NULL;
}

json_t *sp_manifest_load_lazy(const char *dir, sp_err *err)
{
    json_t *m = sp_manifest_read(dir, err);
    if (!m)
        return NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    if (check_sums(path, m, 1, err)) {
        json_decref(m);
        return NULL;
    }
    return m;
}

json_t *sp_manifest_load(const char *dir, sp_err *err)
{
    json_t *m = sp_manifest_load_lazy(dir, err);
    if (!m)
        return NULL;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(m, "shards"), i, e) {
        char file[8192];
        snprintf(file, sizeof file, "%s/%s", dir, json_string_value(json_object_get(e, "file")));
        sp_shard *s = sp_shard_open_lane(file, err); /* its header: no encoded index loaded */
        int rc = s ? sp_manifest_check_shard(file, m, e, s, err) : -1;
        sp_shard_close(s);
        if (rc) {
            json_decref(m);
            return NULL;
        }
    }
    return m;
}
