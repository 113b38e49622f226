#define _POSIX_C_SOURCE 200809L
#include "shards/manifest.h"

#include "common/sp_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sp_write_json_atomic(const char *dir, const char *name, const json_t *j, sp_err *err)
{
    char dst[4096];
    if (snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s/%s: path too long", dir, name);
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!s)
        return sp_fail(err, SP_EXIT_SYSTEM, "cannot serialise %s", name);
    size_t n = strlen(s);
    s[n] = '\n'; /* json_dumps leaves room for its NUL: reuse it for a newline */
    int rc = sp_atomic_write(dst, s, n + 1, err);
    free(s);
    return rc;
}

json_t *sp_manifest_load(const char *dir, sp_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    if (!m) {
        sp_fail(err, SP_EXIT_DATA, "%s: %s", path, je.text);
        return NULL;
    }
    const char *fmt = json_string_value(json_object_get(m, "format"));
    json_t *shards = json_object_get(m, "shards");
    if (!fmt || strcmp(fmt, SP_MANIFEST_FORMAT) || !json_is_array(shards)) {
        sp_fail(err, SP_EXIT_DATA, "%s: not a shardpipe manifest", path);
        json_decref(m);
        return NULL;
    }
    json_int_t v = json_integer_value(json_object_get(m, "format_version"));
    if (v != SP_MANIFEST_VERSION) {
        sp_fail(err, SP_EXIT_DATA, "%s: manifest version %lld, this build reads version %d", path,
                (long long)v, SP_MANIFEST_VERSION);
        json_decref(m);
        return NULL;
    }
    size_t i;
    json_t *sh;
    json_array_foreach(shards, i, sh) {
        const char *file = json_string_value(json_object_get(sh, "file"));
        if (!file || !*file || strchr(file, '/') || file[0] == '.' ||
            !json_is_integer(json_object_get(sh, "records")) ||
            !json_is_string(json_object_get(sh, "sha256")) ||
            !json_is_string(json_object_get(sh, "split"))) {
            sp_fail(err, SP_EXIT_DATA, "%s: shard entry %zu is malformed", path, i);
            json_decref(m);
            return NULL;
        }
    }
    return m;
}
