/* The shard writer's resume journal: DIR/.sp-journal lists the finished shards (DIR/.sp-done-*) of a run. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sp_atomic.h"
#include "common/sp_hash.h"
#include "shards/writer_internal.h"

void sp_journal_done_path(const sp_shardset *s, int split, int index, char *out, size_t n)
{
    snprintf(out, n, "%.3000s/" DONE_PREFIX "%s-%05d.h5", s->dir, sp_split_name(split), index);
}

pending *sp_journal_find(sp_shardset *s, int split, int index)
{
    for (size_t i = 0; i < s->npending; i++)
        if (s->pending[i].split == split && s->pending[i].index == index)
            return &s->pending[i];
    return NULL;
}

void sp_journal_forget(sp_shardset *s, pending *p) { *p = s->pending[--s->npending]; }

/* The journal's first line: what besides the records shapes a shard's bytes.
 * An interrupted run's shards are reused only under an equal one. */
static json_t *journal_header(const sp_shard_opts *o)
{
    return json_pack("{s:i, s:i, s:b, s:I, s:I, s:i, s:i, s:i}", "journal", JOURNAL_VERSION, "level", o->zstd_level,
                     "raw_literals", o->raw_literals, "max_records", (json_int_t)o->max_records, "max_bytes",
                     (json_int_t)o->max_bytes, "chunk_bytes", (int)CHUNK_TARGET, "part", o->part, "parts", o->parts);
}

/* One journal line; 0 or -1 (out of memory). */
static int journal_line(const json_t *j, sp_buf *out)
{
    char *line = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    int rc = !line || sp_buf_append(out, line, strlen(line)) || sp_buf_append(out, "\n", 1) ? -1 : 0;
    free(line);
    return rc;
}

static json_t *pending_json(const pending *p)
{
    return json_pack("{s:s, s:i, s:I, s:s}", "split", sp_split_name(p->split), "index", p->index, "records",
                     (json_int_t)p->records, "sha256", p->sha256);
}

/* Writes DIR/.sp-journal anew through sp_atomic_write: its header and the
 * pending shards; then opens it for appending. */
static int journal_rewrite(sp_shardset *s, sp_err *err)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/" JOURNAL_NAME, s->dir);
    json_t *header = journal_header(&s->opts);
    sp_buf text = {0};
    int bad = !header || journal_line(header, &text);
    for (size_t i = 0; !bad && i < s->npending; i++) {
        json_t *j = pending_json(&s->pending[i]);
        bad = !j || journal_line(j, &text);
        json_decref(j);
    }
    json_decref(header);
    if (bad) {
        sp_buf_free(&text);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    int rc = sp_atomic_write(path, text.data, text.len, err);
    sp_buf_free(&text);
    if (rc)
        return -1;
    s->journal_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (s->journal_fd < 0)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
    return 0;
}

/* Keeps the shards an interrupted run finished that were written under the
 * same options and whose files are there, and removes every other finished
 * file. The journal is then written anew with the kept entries, or removed
 * when none are left (the first finished shard creates it again). A line cut
 * by a kill ends the journal. */
int sp_journal_open(sp_shardset *s, sp_err *err)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/" JOURNAL_NAME, s->dir);
    json_t *header = journal_header(&s->opts);
    FILE *f = header ? fopen(path, "r") : NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    for (int first = 1; f && (len = getline(&line, &cap, f)) > 0 && line[len - 1] == '\n'; first = 0) {
        json_t *j = json_loads(line, 0, NULL);
        if (first) {
            int same = j && json_equal(j, header);
            json_decref(j);
            if (!same)
                break;
            continue;
        }
        const char *split = json_string_value(json_object_get(j, "split"));
        const char *sha = json_string_value(json_object_get(j, "sha256"));
        pending p = {.split = split ? sp_split_from_name(split) : -1,
                     .index = (int)json_integer_value(json_object_get(j, "index")),
                     .records = (uint64_t)json_integer_value(json_object_get(j, "records"))};
        char file[8192];
        struct stat st;
        if (p.split >= 0 && p.index >= 0 && p.records > 0 && sha && strlen(sha) == 64) {
            memcpy(p.sha256, sha, 65);
            sp_journal_done_path(s, p.split, p.index, file, sizeof file);
            pending *old = sp_journal_find(s, p.split, p.index);
            if (old)
                sp_journal_forget(s, old);
            pending *grown = realloc(s->pending, (s->npending + 1) * sizeof *grown);
            if (grown && stat(file, &st) == 0)
                (s->pending = grown)[s->npending++] = p;
            else if (grown)
                s->pending = grown;
        }
        json_decref(j);
    }
    free(line);
    if (f)
        fclose(f);
    json_decref(header);
    sp_naming_remove_prefixed(s, DONE_PREFIX, 1);
    if (s->npending)
        return journal_rewrite(s, err);
    unlink(path);
    return 0;
}

int sp_journal_add(sp_shardset *s, const shard *sh, sp_err *err)
{
    char hex[65];
    if (sp_hash_file(sh->tmp, NULL, hex, NULL, NULL, NULL, err)) {
        unlink(sh->tmp);
        return -1;
    }
    pending p = {.split = sh->split, .index = sh->index, .records = sh->n};
    memcpy(p.sha256, hex, sizeof hex);
    json_t *j = pending_json(&p);
    sp_buf line = {0};
    int bad = !j || journal_line(j, &line);
    json_decref(j);
    if (bad)
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    else if (s->journal_fd < 0 && journal_rewrite(s, err))
        bad = 1;
    else if (sp_write_all(s->journal_fd, line.data, line.len) || fsync(s->journal_fd))
        bad = sp_fail(err, SP_EXIT_SYSTEM, "writing %s/" JOURNAL_NAME ": %s", s->dir, strerror(errno));
    sp_buf_free(&line);
    if (bad)
        unlink(sh->tmp);
    return bad ? -1 : 0;
}

void sp_journal_clear(sp_shardset *s)
{
    char journal[8192];
    snprintf(journal, sizeof journal, "%s/" JOURNAL_NAME, s->dir);
    unlink(journal);
    s->npending = 0;
    sp_naming_remove_prefixed(s, DONE_PREFIX, 0);
}
