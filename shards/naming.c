/* The shard writer's file names, and which files in a directory it may remove (only those it can prove are its own). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sp_atomic.h"
#include "shards/manifest.h"
#include "shards/writer_internal.h"

int sp_shard_file_name(const char *name)
{
    const char *dash = strchr(name, '-');
    if (!dash)
        return 0;
    char split[16];
    size_t n = (size_t)(dash - name);
    if (n == 0 || n >= sizeof split)
        return 0;
    memcpy(split, name, n);
    split[n] = 0;
    if (sp_split_from_name(split) < 0)
        return 0;
    const char *p = dash + 1;
    if (*p == 'p') { /* pIofN- */
        p++;
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
        if (strncmp(p, "of", 2))
            return 0;
        p += 2;
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p++ != '-')
            return 0;
    }
    for (int i = 0; i < 5; i++, p++)
        if (*p < '0' || *p > '9')
            return 0;
    if (*p++ != '-')
        return 0;
    for (int i = 0; i < 8; i++, p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return !strcmp(p, ".h5");
}

void sp_naming_final(const sp_shard_opts *o, const shard *sh, const char *hex, char *out, size_t n)
{
    char part[32] = "";
    if (o->parts)
        snprintf(part, sizeof part, "p%dof%d-", o->part, o->parts);
    snprintf(out, n, "%s-%s%05d-%.8s.h5", sp_split_name(sh->split), part, sh->index, hex);
}

void sp_naming_remove_prefixed(sp_shardset *s, const char *prefix, int keep)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return;
    struct dirent *e;
    char path[8192], listed[8192];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)))
            continue;
        snprintf(path, sizeof path, "%s/%s", s->dir, e->d_name);
        int kept = 0;
        for (size_t i = 0; keep && !kept && i < s->npending; i++) {
            sp_journal_done_path(s, s->pending[i].split, s->pending[i].index, listed, sizeof listed);
            kept = !strcmp(path, listed);
        }
        if (!kept)
            unlink(path);
    }
    closedir(d);
}

/* 1 if name is ".NAME.tmp-XXXXXX" (sp_atomic's temporary) for one of this
 * writer's own files. */
static int own_atomic_temporary(const char *name)
{
    char inner[512];
    if (!sp_atomic_temporary_of(name, inner, sizeof inner))
        return 0;
    return !strcmp(inner, SP_MANIFEST_NAME) || !strcmp(inner, JOURNAL_NAME) || !strcmp(inner, OWNED_NAME) ||
           sp_shard_file_name(inner);
}

void sp_naming_remove_atomic_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[8192];
    while ((e = readdir(d)) != NULL) {
        if (!own_atomic_temporary(e->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* Adds to names (an array of strings) the shard names of list's "file"
 * members that are well formed and not there yet. */
static void add_names(json_t *names, const json_t *list)
{
    size_t i, j;
    json_t *e, *have;
    json_array_foreach(list, i, e) {
        const char *file = json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "file"));
        if (!file || !sp_shard_file_name(file))
            continue;
        int dup = 0;
        json_array_foreach(names, j, have) dup |= !strcmp(file, json_string_value(have));
        if (!dup)
            json_array_append_new(names, json_string(file));
    }
}

/* The names dir/.sp-owned lists (an array), or an empty array. */
static json_t *load_owned(const char *dir)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/" OWNED_NAME, dir);
    json_t *j = json_load_file(path, 0, NULL);
    json_t *names = json_array();
    add_names(names, json_object_get(j, "files"));
    json_decref(j);
    return names;
}

int sp_naming_own(const char *dir, const json_t *list, sp_err *err)
{
    json_t *names = load_owned(dir);
    char path[8192];
    snprintf(path, sizeof path, "%s/" SP_MANIFEST_NAME, dir);
    json_t *prev = json_load_file(path, 0, NULL);
    const char *format = json_string_value(json_object_get(prev, "format"));
    if (format && !strcmp(format, SP_MANIFEST_FORMAT)) /* a set this writer (or a merge) committed */
        add_names(names, json_object_get(prev, "shards"));
    json_decref(prev);
    add_names(names, list);
    json_t *doc = json_pack("{s:s, s:o}", "format", "shardpipe-owned", "files", names);
    char *text = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    if (!text)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    snprintf(path, sizeof path, "%s/" OWNED_NAME, dir);
    int rc = sp_atomic_write(path, text, strlen(text), err);
    free(text);
    return rc;
}

void sp_naming_remove_unlisted(const char *dir, const json_t *list)
{
    json_t *owned = load_owned(dir);
    size_t i, j;
    json_t *name, *sh;
    json_array_foreach(owned, i, name) {
        const char *file = json_string_value(name);
        int listed = 0;
        json_array_foreach(list, j, sh) listed |= !strcmp(file, json_string_value(json_object_get(sh, "file")));
        if (!listed) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", dir, file);
            unlink(path);
        }
    }
    json_decref(owned);
    char path[8192];
    snprintf(path, sizeof path, "%s/" OWNED_NAME, dir);
    unlink(path);
}

void sp_naming_restore(const char *dir)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/" SP_MANIFEST_NAME, dir);
    json_t *m = json_load_file(path, 0, NULL);
    const char *format = json_string_value(json_object_get(m, "format"));
    json_t *none = json_array();
    sp_naming_remove_unlisted(dir, format && !strcmp(format, SP_MANIFEST_FORMAT) ? json_object_get(m, "shards") : none);
    json_decref(none);
    json_decref(m);
}

int sp_naming_in_place(const char *dir, const json_t *list)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/" SP_MANIFEST_NAME, dir);
    json_t *m = json_load_file(path, 0, NULL);
    int same = m && json_equal(json_object_get(m, "shards"), (json_t *)list);
    json_decref(m);
    return same;
}
