/* Merging the shard sets of parts (sp-shard --merge): links or atomic copies, then one manifest; parts at a URL
 * are fetched into a local directory first. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sp_atomic.h"
#include "shards/manifest.h"
#include "shards/remote.h"
#include "shards/writer_internal.h"

/* dst as a hard link to src, or (across file systems) a copy written through
 * sp_atomic_open/commit, so dst never holds part of a shard. */
static int link_or_copy(const char *src, const char *dst, sp_err *err)
{
    if (link(src, dst) == 0 || errno == EEXIST)
        return 0;
    if (errno != EXDEV && errno != EPERM)
        return sp_fail(err, SP_EXIT_SYSTEM, "link %s: %s", dst, strerror(errno));
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", src, strerror(errno));
    sp_atomic_file out;
    if (sp_atomic_open(&out, dst, err)) {
        close(in);
        return -1;
    }
    static char buf[1 << 20];
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0)
            rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", src, strerror(errno));
        else if (sp_write_all(out.fd, buf, (size_t)n))
            rc = sp_fail(err, SP_EXIT_SYSTEM, "copy %s: %s", dst, strerror(errno));
    }
    close(in);
    if (rc) {
        sp_atomic_abort(&out);
        return -1;
    }
    return sp_atomic_commit(&out, err);
}

static int cmp_shard_entries(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int sx = sp_split_from_name(json_string_value(json_object_get(x, "split")));
    int sy = sp_split_from_name(json_string_value(json_object_get(y, "split")));
    sx = sx == SP_SPLIT_NONE ? 99 : sx;
    sy = sy == SP_SPLIT_NONE ? 99 : sy;
    if (sx != sy)
        return sx < sy ? -1 : 1;
    return strcmp(json_string_value(json_object_get(x, "file")), json_string_value(json_object_get(y, "file")));
}

/* Checks part's shards against those gathered in all (no name twice, one
 * kind and dtype per split, and one shape for pixel shards; encoded shards'
 * shapes are their records' largest, which differ), places them in out and appends them to all. 0 or -1. */
/* Whether two manifest members are equal, both absent included
 * (json_equal(NULL, NULL) is 0). */
static int same(const json_t *a, const json_t *b) { return (!a && !b) || json_equal((json_t *)a, (json_t *)b); }

static int gather(const char *out, const char *dir, const json_t *part, json_t *all, sp_err *err)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(part, "shards"), i, e) {
        const char *file = json_string_value(json_object_get(e, "file"));
        if (!file || !sp_shard_file_name(file))
            return sp_fail(err, SP_EXIT_DATA, "%s: its manifest lists a shard of no shard name", dir);
        size_t j;
        json_t *prev;
        json_array_foreach(all, j, prev) {
            if (!strcmp(file, json_string_value(json_object_get(prev, "file"))))
                return sp_fail(err, SP_EXIT_DATA, "%s: shard %s is in two of the sets (were they written as parts?)",
                               dir, file);
            if (!strcmp(json_string_value(json_object_get(prev, "split")),
                        json_string_value(json_object_get(e, "split"))) &&
                ((!json_object_get(e, "kind") && !same(json_object_get(prev, "shape"), json_object_get(e, "shape"))) ||
                 !same(json_object_get(prev, "kind"), json_object_get(e, "kind")) ||
                 !same(json_object_get(prev, "dtype"), json_object_get(e, "dtype"))))
                return sp_fail(err, SP_EXIT_DATA, "%s: %s has another shape or dtype than the other %s shards", dir,
                               file, json_string_value(json_object_get(e, "split")));
        }
        json_array_append(all, e);
    }
    (void)out;
    return 0;
}

int sp_shardset_merge(const char *out, char **dirs, char **names, int ndirs, sp_err *err)
{
    if (!names)
        names = dirs;
    sp_shard_opts o;
    sp_shard_opts_default(&o);
    sp_shardset *lock = sp_shardset_open_dir(out, &o, 0, err); /* out's lock, stale temporaries gone */
    if (!lock)
        return -1;
    json_t *m = NULL, *all = json_array(), *list = NULL;
    json_t **entries = NULL;
    int rc = 0;
    for (int d = 0; rc == 0 && d < ndirs; d++) {
        json_t *part = sp_manifest_load(dirs[d], err);
        if (!part) {
            rc = -1;
            break;
        }
        if (!m) {
            m = json_deep_copy(part);
        } else {
            const char *what = !same(json_object_get(m, "dataset"), json_object_get(part, "dataset")) ? "dataset"
                               : !same(json_object_get(m, "classes"), json_object_get(part, "classes")) ? "classes"
                               : !same(json_object_get(m, "classes2"), json_object_get(part, "classes2")) ? "classes2"
                               : !same(json_object_get(m, "normalize"), json_object_get(part, "normalize"))
                                   ? "normalization"
                                   : NULL;
            if (what)
                rc = sp_fail(err, SP_EXIT_DATA, "%s: its %s differ from %s's", names[d], what, names[0]);
        }
        size_t before = json_array_size(all);
        if (rc == 0)
            rc = gather(out, names[d], part, all, err);
        json_decref(part);
        if (rc == 0) { /* what this merge places in out is its own from now on */
            json_t *mine = json_array();
            for (size_t i = before; i < json_array_size(all); i++)
                json_array_append(mine, json_array_get(all, i));
            rc = sp_naming_own(out, mine, err);
            json_decref(mine);
        }
        for (size_t i = before; rc == 0 && i < json_array_size(all); i++) {
            const char *file = json_string_value(json_object_get(json_array_get(all, i), "file"));
            char src[8192], dst[8192];
            snprintf(src, sizeof src, "%s/%s", dirs[d], file);
            snprintf(dst, sizeof dst, "%s/%s", out, file);
            if (strcmp(src, dst))
                rc = link_or_copy(src, dst, err);
        }
    }
    size_t nall = json_array_size(all);
    if (rc == 0) { /* the union, in manifest order, and its totals */
        entries = malloc((nall ? nall : 1) * sizeof *entries);
        for (size_t i = 0; entries && i < nall; i++)
            entries[i] = json_array_get(all, i);
        if (!entries)
            rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    if (rc == 0) {
        qsort(entries, nall, sizeof *entries, cmp_shard_entries);
        list = json_array();
        for (size_t i = 0; i < nall; i++)
            json_array_append(list, entries[i]);
        sp_shardset_pause(out, "merge-copied");
        sp_shardset_set_list(m, json_incref(list));
        json_object_set_new(m, "merged_parts", json_integer(ndirs));
        json_object_del(m, "part");
        rc = sp_fsync_path(out, err) || sp_write_json_atomic(out, SP_MANIFEST_NAME, m, err) ? -1 : 0;
        if (rc == 0)
            sp_naming_remove_unlisted(out, list);
    }
    if (rc && !(list && sp_naming_in_place(out, list)))
        sp_naming_restore(out);
    json_decref(list);
    free(entries);
    json_decref(all);
    json_decref(m);
    sp_shardset_free(lock);
    return rc;
}

int sp_shardset_fetch(const char *url, const char *dir, sp_err *err)
{
    char local[4400], name[4400], path[8192];
    size_t ul = strlen(url);
    while (ul > 0 && url[ul - 1] == '/')
        ul--;
    if (sp_remote_manifest(url, local, sizeof local, err))
        return -1;
    json_error_t je;
    json_t *m = json_load_file(local, 0, &je);
    if (!m)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s", sp_remote_shown(url, name, sizeof name), je.text);
    snprintf(path, sizeof path, "%s/" SP_MANIFEST_NAME, dir);
    int rc = 0;
    if (sp_mkdirs(dir) && errno != EEXIST)
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot create: %s", dir, strerror(errno));
    else if (unlink(path) && errno != ENOENT) /* dir holds no committed set until the end */
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(m, "shards"), i, e) {
        if (rc)
            break;
        const char *file = json_string_value(json_object_get(e, "file"));
        char surl[8192], cached[4400];
        int pin = -1;
        snprintf(surl, sizeof surl, "%.*s/%s", (int)ul, url, file ? file : "");
        snprintf(path, sizeof path, "%s/%s", dir, file ? file : "");
        int got = sp_remote_shard(surl, cached, sizeof cached, &pin, err);
        if (got == 0)
            rc = sp_fail(err, SP_EXIT_DATA, "%s: not a shard of the set", sp_remote_shown(surl, name, sizeof name));
        else if (got < 0)
            rc = -1;
        else if (unlink(path) && errno != ENOENT)
            rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
        else
            rc = link_or_copy(cached, path, err);
        sp_remote_unpin(pin);
    }
    snprintf(path, sizeof path, "%s/" SP_MANIFEST_NAME, dir);
    if (rc == 0)
        rc = sp_fsync_path(dir, err) || link_or_copy(local, path, err) ? -1 : 0;
    json_decref(m);
    return rc;
}
