/* Dataset manifests by name (compiled in, or a file): loading and checking their structure. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/datasets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/embedded.h"

static int check(json_t *m, const char *where, sp_err *err)
{
    json_t *files = json_object_get(m, "files");
    if (!json_is_object(m) || !json_is_string(json_object_get(m, "name")) || !json_is_array(files) ||
        (json_object_get(m, "mirrors") && !json_is_array(json_object_get(m, "mirrors"))))
        return sp_fail(err, SP_EXIT_DATA, "%s: not a dataset manifest (needs name, files, mirrors)", where);
    /* the name becomes the cache's subdirectory: a plain name, never a path */
    const char *dname = json_string_value(json_object_get(m, "name"));
    if (!*dname || strchr(dname, '/') || dname[0] == '.')
        return sp_fail(err, SP_EXIT_DATA, "%s: the dataset's name \"%s\" is not a plain name", where, dname);
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!name || !*name || strchr(name, '/') || name[0] == '.')
            return sp_fail(err, SP_EXIT_DATA, "%s: file %zu has no plain name", where, i);
        json_t *size = json_object_get(f, "size");
        if (size && (!json_is_integer(size) || json_integer_value(size) < 0))
            return sp_fail(err, SP_EXIT_DATA, "%s: %s: size is not a byte count", where, name);
    }
    return 0;
}

static json_t *load_path(const char *path, sp_err *err)
{
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    if (!m) {
        sp_fail(err, SP_EXIT_DATA, "%s: %s (line %d)", path, je.text, je.line);
        return NULL;
    }
    if (check(m, path, err)) {
        json_decref(m);
        return NULL;
    }
    return m;
}

json_t *sp_dataset_manifest(const char *name, sp_err *err)
{
    size_t n = strlen(name);
    if (n > 5 && !strcmp(name + n - 5, ".json"))
        return load_path(name, err);
    if (!n || strchr(name, '/'))
        goto unknown;
    const char *dirs = getenv("SP_MANIFESTS");
    if (dirs && *dirs) {
        char *copy = strdup(dirs), *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.json", d, name);
            FILE *f = fopen(path, "r");
            if (f) {
                fclose(f);
                free(copy);
                return load_path(path, err);
            }
        }
        free(copy);
    }
    for (const sp_embedded_file *e = sp_embedded_manifests; e->name; e++) {
        if (strncmp(e->name, name, n) || strcmp(e->name + n, ".json"))
            continue;
        json_error_t je;
        json_t *m = json_loadb(e->data, e->len, 0, &je);
        if (!m || check(m, e->name, err)) {
            json_decref(m);
            sp_fail(err, SP_EXIT_SYSTEM, "built-in manifest %s is broken", e->name);
            return NULL;
        }
        return m;
    }
unknown:;
    char known[512] = "";
    size_t len = 0;
    for (const sp_embedded_file *e = sp_embedded_manifests; e->name && len < sizeof known; e++) {
        size_t k = strlen(e->name);
        if (k > 5 && !strcmp(e->name + k - 5, ".json") && !strchr(e->name, '/'))
            len += (size_t)snprintf(known + len, sizeof known - len, "%s%.*s", len ? ", " : "", (int)(k - 5),
                                    e->name);
    }
    sp_fail(err, SP_EXIT_USAGE, "no dataset named '%s' (known: %s)", name, known);
    return NULL;
}

int sp_dataset_known(const char *name)
{
    json_t *m = sp_dataset_manifest(name, NULL);
    json_decref(m);
    return m != NULL;
}

json_t *sp_numbered_classes(int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        char s[16];
        snprintf(s, sizeof s, "%d", i);
        if (json_array_append_new(a, json_string(s))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}
