/* The shard writer: records in, shards out (sp_shardset_create/add/commit); the resume, HDF5, naming and merge
 * details live in journal.c, shard_h5write.c, naming.c and merge.c. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sp_atomic.h"
#include "common/sp_hash.h"
#include "shards/manifest.h"
#include "shards/writer_internal.h"

void sp_shard_opts_default(sp_shard_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_records = 0;
    o->max_bytes = 256ull << 20;
    o->zstd_level = 1; /* as small as 3 on IDX data, 5% bigger on photos, much faster */
    o->raw_literals = 1; /* a few % bigger, decompresses about 2x as fast (docs/tools.md, sp-shard) */
}

/* Hands a note to the tool's on_info, if it gave one. */
#define note(s, ...) sp_notef((s)->opts.on_info, (s)->opts.info_ctx, __VA_ARGS__)

void sp_shardset_pause(const char *dir, const char *phase) { sp_test_pause("SP_WRITER_PAUSE", dir, 0, phase); }

sp_shardset *sp_shardset_create(const char *dir, const sp_shard_opts *opts, sp_err *err)
{
    return sp_shardset_open_dir(dir, opts, 1, err);
}

sp_shardset *sp_shardset_open_dir(const char *dir, const sp_shard_opts *opts, int journal, sp_err *err)
{
    if (sp_h5_init(err))
        return NULL;
    if (strlen(dir) > 3000) {
        sp_fail(err, SP_EXIT_USAGE, "output directory path too long");
        return NULL;
    }
    if (sp_mkdirs(dir)) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot create: %s", dir, strerror(errno));
        return NULL;
    }
    sp_shardset *s = calloc(1, sizeof *s);
    if (!s) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->opts = *opts;
    s->done_tail = &s->done;
    s->journal_fd = -1;
    for (int i = 0; i < NSPLITS; i++)
        s->open[i].file = s->open[i].images = H5I_INVALID_HID;
    char lock[8192];
    snprintf(lock, sizeof lock, "%s/.sp-lock", dir);
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", lock, strerror(errno));
        free(s);
        return NULL;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB)) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: another sp-shard is writing this directory", dir);
        close(s->lock_fd);
        free(s);
        return NULL;
    }
    sp_naming_remove_prefixed(s, TMP_PREFIX, 0);
    sp_naming_remove_atomic_temporaries(dir);
    if (journal && sp_journal_open(s, err)) {
        sp_shardset_free(s);
        return NULL;
    }
    return s;
}

/* Closes the interrupted run's shard o was comparing against (its file stays). */
static void drop_old(open_shard *o)
{
    sp_shard_close(o->old);
    free(o->old_labels);
    free(o->old_labels2);
    free(o->old_checksums);
    o->old = NULL;
    o->old_labels = o->old_labels2 = NULL;
    o->old_checksums = NULL;
}

/* Frees o's buffers; o's own file must be closed. */
static void open_shard_reset(open_shard *o)
{
    drop_old(o);
    free(o->chunk);
    sp_buf_free(&o->labels);
    sp_buf_free(&o->labels2);
    sp_buf_free(&o->checksums);
    sp_buf_free(&o->keys);
    sp_buf_free(&o->enc);
    sp_buf_free(&o->offsets);
    sp_buf_free(&o->shapes);
    sp_buf_free(&o->codecs);
    memset(o, 0, sizeof *o);
    o->file = o->images = H5I_INVALID_HID;
}

static int resume_shard(sp_shardset *s, open_shard *o);

static int start_shard(sp_shardset *s, const sp_record *rec, sp_err *err)
{
    open_shard *o = &s->open[rec->split];
    shard *sh = calloc(1, sizeof *sh);
    if (!sh)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    sh->split = rec->split;
    sh->index = s->next_index[rec->split]++;
    sh->kind = rec->kind;
    sh->h = rec->h, sh->w = rec->w, sh->c = rec->c, sh->dtype = rec->dtype;
    snprintf(sh->tmp, sizeof sh->tmp, "%.3000s/" TMP_PREFIX "%s-%05d.h5", s->dir, sp_split_name(sh->split),
             sh->index);
    o->sh = sh;
    if (sh->kind == SP_KIND_ENCODED) { /* bytes buffered in o->enc; offsets start at 0 */
        uint64_t zero = 0;
        if (sp_buf_append(&o->offsets, &zero, 8)) {
            free(sh);
            o->sh = NULL;
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        }
        return resume_shard(s, o) ? 0 : sp_h5w_create(&s->opts, o, err);
    }
    o->item_bytes = (size_t)rec->payload_len;
    o->chunk_n = CHUNK_TARGET / o->item_bytes;
    if (o->chunk_n < 1)
        o->chunk_n = 1;
    if (s->opts.max_records && o->chunk_n > s->opts.max_records)
        o->chunk_n = s->opts.max_records;
    o->chunk = malloc(o->chunk_n * o->item_bytes);
    if (!o->chunk) {
        free(sh);
        o->sh = NULL;
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    return resume_shard(s, o) ? 0 : sp_h5w_create(&s->opts, o, err);
}

/* 1 when an interrupted run finished this shard (same split and index, its
 * file as the journal hashed it, same shape): o then compares the records
 * against it instead of writing them. 0 otherwise; an unusable file is
 * removed, and the shard is written anew. */
static int resume_shard(sp_shardset *s, open_shard *o)
{
    shard *sh = o->sh;
    pending *p = sp_journal_find(s, sh->split, sh->index);
    if (!p)
        return 0;
    char path[8192], hex[65];
    sp_journal_done_path(s, sh->split, sh->index, path, sizeof path);
    if (sh->kind == SP_KIND_ENCODED) { /* encoded shards are written anew, never taken over */
        note(s, "%s: not reused (an encoded shard is written anew)", path);
        sp_journal_forget(s, p);
        unlink(path);
        return 0;
    }
    sp_err e = {0};
    uint32_t h, w, c;
    int dtype;
    int ok = sp_hash_file(path, NULL, hex, NULL, NULL, NULL, &e) == 0 && !strcmp(hex, p->sha256) &&
             (o->old = sp_shard_open_unfinished(path, sh->split, &e)) != NULL;
    if (ok) {
        sp_shard_shape(o->old, &h, &w, &c, &dtype);
        o->old_n = sp_shard_count(o->old);
        ok = h == sh->h && w == sh->w && c == sh->c && dtype == sh->dtype && o->old_n == p->records &&
             (o->old_labels = malloc(o->old_n * 4)) && (o->old_labels2 = malloc(o->old_n * 4)) &&
             (o->old_checksums = malloc(o->old_n * 8)) &&
             sp_shard_read(o->old, 0, o->old_n, NULL, o->old_labels, o->old_labels2, o->old_checksums, &e) == 0;
    }
    sp_journal_forget(s, p);
    if (!ok) {
        note(s, "%s: not reused (%s)", path, e.msg[0] ? e.msg : "another shape or size");
        drop_old(o);
        unlink(path);
        return 0;
    }
    return 1;
}

/* Whether rec equals record j of the interrupted run's shard. */
static int same_as_old(const open_shard *o, uint64_t j, const sp_record *rec)
{
    const char *key = sp_shard_key(o->old, j);
    return j < o->old_n && key && strlen(key) == rec->key_len && !memcmp(key, rec->key, rec->key_len) &&
           o->old_labels[j] == rec->label && o->old_labels2[j] == rec->label2 && o->old_checksums[j] == rec->checksum;
}

/* The records so far equal the first sh->n of the interrupted run's shard but
 * the next do not: writes those from its file exactly as if they had come
 * from the stream (same chunks, same buffers), then drops it. */
static int diverge(sp_shardset *s, open_shard *o, sp_err *err)
{
    shard *sh = o->sh;
    if (sp_h5w_create(&s->opts, o, err))
        return -1;
    for (uint64_t first = 0; first < sh->n; first += o->chunk_n) {
        uint64_t k = sh->n - first < o->chunk_n ? sh->n - first : o->chunk_n;
        if (sp_shard_read(o->old, first, k, o->chunk, NULL, NULL, NULL, err))
            return -1;
        o->in_chunk = k;
        if (k == o->chunk_n && sp_h5w_flush_chunk(o, err))
            return -1;
    }
    for (uint64_t i = 0; i < sh->n; i++) {
        const char *key = sp_shard_key(o->old, i);
        if (sp_buf_append(&o->labels, &o->old_labels[i], 4) || sp_buf_append(&o->labels2, &o->old_labels2[i], 4) ||
            sp_buf_append(&o->checksums, &o->old_checksums[i], 8) || sp_buf_append(&o->keys, key, strlen(key) + 1))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    char path[8192];
    sp_journal_done_path(s, sh->split, sh->index, path, sizeof path);
    drop_old(o);
    unlink(path);
    return 0;
}

/* Finishes o's shard: its file written and closed, renamed (sp_atomic_rename)
 * to its .sp-done- name and listed in the journal, so that a rerun after a
 * kill can take it over. On failure the shard's file is removed. */
static int close_shard(sp_shardset *s, int split, sp_err *err)
{
    open_shard *o = &s->open[split];
    if (!o->sh)
        return 0;
    shard *sh = o->sh;
    if (o->old && sh->n == o->old_n) { /* every record as the interrupted run wrote them: take its file */
        sp_journal_done_path(s, sh->split, sh->index, sh->tmp, sizeof sh->tmp);
        open_shard_reset(o);
        *s->done_tail = sh;
        s->done_tail = &sh->next;
        s->reused++;
        return 0;
    }
    int rc = o->old ? diverge(s, o, err) : 0;
    if (rc == 0)
        rc = sp_h5w_finish(&s->opts, o, err);
    sp_h5w_discard(o);
    open_shard_reset(o);
    char done[sizeof sh->tmp];
    sp_journal_done_path(s, sh->split, sh->index, done, sizeof done);
    if (rc == 0 && (rc = sp_atomic_rename(sh->tmp, done, err)) == 0) {
        snprintf(sh->tmp, sizeof sh->tmp, "%s", done);
        rc = sp_journal_add(s, sh, err);
    }
    if (rc) { /* the file, wherever the failure left it, is listed nowhere */
        unlink(sh->tmp);
        unlink(done);
        free(sh);
        return -1;
    }
    *s->done_tail = sh;
    s->done_tail = &sh->next;
    s->written++;
    sp_shardset_pause(s->dir, "shard-finished");
    return 0;
}

/* Adds an encoded record to the open shard of its split (see sp_shardset_add). */
static int add_encoded(sp_shardset *s, const sp_record *rec, const uint8_t *payload, sp_err *err)
{
    int sp = rec->split;
    open_shard *o = &s->open[sp];
    if (o->sh) {
        uint64_t bytes = o->enc_total + rec->payload_len;
        if ((s->opts.max_records && o->sh->n >= s->opts.max_records) ||
            (s->opts.max_bytes && bytes > s->opts.max_bytes && o->sh->n > 0))
            if (close_shard(s, sp, err))
                return -1;
    }
    if (!o->sh && start_shard(s, rec, err))
        return -1;
    shard *sh = o->sh;
    o->enc_total += rec->payload_len;
    uint32_t shape[3] = {rec->h, rec->w, rec->c};
    uint8_t codec = rec->codec;
    int32_t l1 = rec->label, l2 = rec->label2;
    if (sp_buf_append(&o->enc, payload, (size_t)rec->payload_len) ||
        sp_buf_append(&o->offsets, &o->enc_total, 8) || sp_buf_append(&o->shapes, shape, sizeof shape) ||
        sp_buf_append(&o->codecs, &codec, 1) || sp_buf_append(&o->labels, &l1, 4) ||
        sp_buf_append(&o->labels2, &l2, 4) || sp_buf_append(&o->checksums, &rec->checksum, 8) ||
        sp_buf_append(&o->keys, rec->key, (size_t)rec->key_len + 1))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (l2 != SP_LABEL_NONE)
        sh->has_label2 = 1;
    if (rec->h > sh->h)
        sh->h = rec->h;
    if (rec->w > sh->w)
        sh->w = rec->w;
    sh->n++;
    return o->enc.len >= CHUNK_TARGET ? sp_h5w_flush_encoded(o, 0, err) : 0; /* in writes of about 1 MiB */
}

int sp_shardset_add(sp_shardset *s, const sp_record *rec, const uint8_t *payload, sp_err *err)
{
    if (rec->kind != SP_KIND_PIXELS && rec->kind != SP_KIND_ENCODED)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s; sp-shard stores pixel or encoded records (run sp-decode "
                       "first)", rec->key, sp_kind_record(rec->kind));
    if (rec->split != SP_SPLIT_TRAIN && rec->split != SP_SPLIT_VAL && rec->split != SP_SPLIT_TEST)
        /* the readers (manifest.c) take these three only: a set of any other would open nowhere */
        return sp_fail(err, SP_EXIT_DATA, "%s: a record of split \"%s\"; a shard set holds train, val and test "
                       "records only (sp-decode --split names the split of records without one)", rec->key,
                       sp_split_name(rec->split));
    if (!s->kind)
        s->kind = rec->kind;
    if (rec->kind != s->kind)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s among %s records: a shard set holds one kind", rec->key,
                       sp_kind_record(rec->kind), sp_kind_name(s->kind));
    int sp = rec->split;
    if (rec->kind == SP_KIND_ENCODED) {
        if (s->shape[sp][2] == 0) {
            s->shape[sp][2] = rec->c;
            s->dtype[sp] = rec->dtype;
        } else if (s->shape[sp][2] != rec->c || s->dtype[sp] != rec->dtype) {
            return sp_fail(err, SP_EXIT_DATA, "%s: %u channels %s differ from the %u channels %s of the other %s records",
                           rec->key, rec->c, sp_dtype_name(rec->dtype), s->shape[sp][2], sp_dtype_name(s->dtype[sp]),
                           sp_split_name(sp));
        }
        return add_encoded(s, rec, payload, err);
    }
    if (s->shape[sp][0] == 0) {
        s->shape[sp][0] = rec->h, s->shape[sp][1] = rec->w, s->shape[sp][2] = rec->c;
        s->dtype[sp] = rec->dtype;
    } else if (s->shape[sp][0] != rec->h || s->shape[sp][1] != rec->w || s->shape[sp][2] != rec->c ||
               s->dtype[sp] != rec->dtype) {
        return sp_fail(err, SP_EXIT_DATA,
                       "%s: shape %ux%ux%u %s differs from the %ux%ux%u %s of the other %s records "
                       "(resize them to one size first)",
                       rec->key, rec->h, rec->w, rec->c, sp_dtype_name(rec->dtype), s->shape[sp][0],
                       s->shape[sp][1], s->shape[sp][2], sp_dtype_name(s->dtype[sp]), sp_split_name(sp));
    }
    open_shard *o = &s->open[sp];
    if (o->sh) {
        uint64_t bytes = (o->sh->n + 1) * o->item_bytes;
        if ((s->opts.max_records && o->sh->n >= s->opts.max_records) ||
            (s->opts.max_bytes && bytes > s->opts.max_bytes && o->sh->n > 0))
            if (close_shard(s, sp, err))
                return -1;
    }
    if (!o->sh && start_shard(s, rec, err))
        return -1;
    shard *sh = o->sh;
    if (o->old) {
        if (same_as_old(o, sh->n, rec)) {
            sh->has_label2 |= rec->label2 != SP_LABEL_NONE;
            sh->n++;
            return 0;
        }
        if (diverge(s, o, err))
            return -1;
    }
    memcpy(o->chunk + o->in_chunk * o->item_bytes, payload, o->item_bytes);
    if (++o->in_chunk == o->chunk_n && sp_h5w_flush_chunk(o, err))
        return -1;
    int32_t l1 = rec->label, l2 = rec->label2;
    if (l2 != SP_LABEL_NONE)
        sh->has_label2 = 1;
    if (sp_buf_append(&o->labels, &l1, 4) || sp_buf_append(&o->labels2, &l2, 4) ||
        sp_buf_append(&o->checksums, &rec->checksum, 8) ||
        sp_buf_append(&o->keys, rec->key, (size_t)rec->key_len + 1))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    sh->n++;
    return 0;
}

/* ---- commit ---- */

static json_t *shape_json(const shard *sh) { return json_pack("[i,i,i]", sh->h, sh->w, sh->c); }

void sp_shardset_set_list(json_t *m, json_t *list)
{
    json_t *splits = json_object();
    json_int_t total = 0, bytes = 0;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *split = json_string_value(json_object_get(e, "split"));
        json_int_t r = json_integer_value(json_object_get(e, "records"));
        json_int_t b = json_integer_value(json_object_get(e, "bytes"));
        json_t *sj = json_object_get(splits, split);
        if (!sj) {
            sj = json_pack("{s:I, s:i, s:I, s:o, s:O}", "records", (json_int_t)0, "shards", 0, "bytes", (json_int_t)0,
                           "shape", json_deep_copy(json_object_get(e, "shape")), "dtype", json_object_get(e, "dtype"));
            if (json_object_get(e, "kind"))
                json_object_set(sj, "kind", json_object_get(e, "kind"));
            json_object_set_new(splits, split, sj);
        } else if (json_object_get(e, "kind")) { /* encoded: the split's shape is its shards' largest */
            json_t *have = json_object_get(sj, "shape"), *more = json_object_get(e, "shape");
            for (size_t k = 0; k < 2; k++)
                if (json_integer_value(json_array_get(more, k)) > json_integer_value(json_array_get(have, k)))
                    json_array_set(have, k, json_array_get(more, k));
        }
        json_object_set_new(sj, "records", json_integer(json_integer_value(json_object_get(sj, "records")) + r));
        json_object_set_new(sj, "shards", json_integer(json_integer_value(json_object_get(sj, "shards")) + 1));
        json_object_set_new(sj, "bytes", json_integer(json_integer_value(json_object_get(sj, "bytes")) + b));
        total += r;
        bytes += b;
    }
    json_object_set_new(m, "shards", list);
    json_object_set_new(m, "splits", splits);
    json_object_set_new(m, "total_records", json_integer(total));
    json_object_set_new(m, "total_bytes", json_integer(bytes));
}

/* sp_shardset_commit, with the classes in their final order: map as sp_h5w_attributes takes it. */
static int commit(sp_shardset *s, const json_t *meta, const int32_t *map, int nmap, sp_err *err)
{
    for (int i = 0; i < NSPLITS; i++)
        if (close_shard(s, i, err))
            return -1;
    uint64_t records = 0;
    for (const shard *sh = s->done; sh; sh = sh->next)
        records += sh->n;
    if (records == 0 && !s->opts.parts)
        return sp_fail(err, SP_EXIT_DATA, "%s: no records to write: the input held none (every image rejected "
                                          "upstream?); the directory is left as it was", s->dir);
    json_t *m = json_object(), *list = json_array();
    if (!m || !list) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        goto fail;
    }
    /* manifest order: by split (train, test, val, none), then index; first
     * every shard finished and named, then (once .sp-owned names them all)
     * renamed into place */
    static const int order[] = {SP_SPLIT_TRAIN, SP_SPLIT_TEST, SP_SPLIT_VAL, SP_SPLIT_NONE};
    for (int k = 0; k < 4; k++) {
        for (shard *sh = s->done; sh; sh = sh->next) {
            if (sh->split != order[k])
                continue;
            char hex[65], name[256];
            uint64_t size;
            if (sp_h5w_attributes(sh, meta, map, nmap, err) || sp_hash_file(sh->tmp, NULL, hex, &size, NULL, NULL, err)) {
                unlink(sh->tmp); /* its attributes half written: no longer the journal's shard */
                goto fail;
            }
            sp_naming_final(&s->opts, sh, hex, name, sizeof name);
            json_t *entry = json_pack("{s:s, s:s, s:i, s:I, s:I, s:s, s:o, s:s}", "file", name, "split",
                                      sp_split_name(sh->split), "index", sh->index, "records", (json_int_t)sh->n,
                                      "bytes", (json_int_t)size, "sha256", hex, "shape", shape_json(sh), "dtype",
                                      sp_dtype_name(sh->dtype));
            if (entry && sh->kind == SP_KIND_ENCODED) /* absent: pixels, as every set before encoded ones */
                json_object_set_new(entry, "kind", json_string(sp_kind_name(sh->kind)));
            json_array_append_new(list, entry);
        }
    }
    if (sp_naming_own(s->dir, list, err)) {
        sp_naming_restore(s->dir);
        goto fail;
    }
    size_t at = 0;
    for (int k = 0; k < 4; k++) {
        for (shard *sh = s->done; sh; sh = sh->next) {
            if (sh->split != order[k])
                continue;
            char dst[8192];
            snprintf(dst, sizeof dst, "%s/%s", s->dir,
                     json_string_value(json_object_get(json_array_get(list, at++), "file")));
            if (sp_atomic_rename(sh->tmp, dst, err)) {
                sh->tmp[0] = 0;
                sp_naming_restore(s->dir);
                goto fail;
            }
            sh->tmp[0] = 0; /* no longer ours to remove */
        }
    }
    sp_shardset_pause(s->dir, "commit-renamed");
    /* every stream metadata member (dataset, classes, recipe, ...) at the top,
     * then the manifest's own members */
    json_object_update(m, (json_t *)meta);
    json_object_set_new(m, "format", json_string(SP_MANIFEST_FORMAT));
    json_object_set_new(m, "format_version", json_integer(SP_MANIFEST_VERSION));
    sp_shardset_set_list(m, json_incref(list));
    if (sp_fsync_path(s->dir, err) || sp_write_json_atomic(s->dir, SP_MANIFEST_NAME, m, err)) {
        if (!sp_naming_in_place(s->dir, list))
            sp_naming_restore(s->dir);
        goto fail;
    }
    s->committed = 1;
    s->manifest = m;
    /* shards of this writer that the new manifest does not list: the previous
     * set's, and any an interrupted commit renamed into place */
    sp_naming_remove_unlisted(s->dir, list);
    json_decref(list);
    /* the journal and the finished shards of an interrupted run this one did not reach */
    sp_journal_clear(s);
    return 0;
fail:
    json_decref(m);
    json_decref(list);
    return -1;
}

typedef struct named_index {
    const char *name;
    int32_t index;
} named_index;

static int cmp_named(const void *a, const void *b)
{
    return strcmp(((const named_index *)a)->name, ((const named_index *)b)->name);
}

/* Classes a stage named in the order it first saw them (meta "class_order":
 * "seen", sp-decode --labels-from dirs without a class list): a copy of meta
 * with them sorted by their UTF-8 bytes (Python's sort of str, as
 * torchvision's ImageFolder sorts its classes) and no class_order, and in
 * *map (malloc'd, *nmap entries) each old label's new one. Otherwise a new
 * reference to meta and *map NULL. NULL when out of memory. */
static json_t *sorted_classes(const json_t *meta, int32_t **map, int *nmap)
{
    *map = NULL;
    *nmap = 0;
    const json_t *names = json_object_get(meta, "classes");
    const char *order = json_string_value(json_object_get(meta, "class_order"));
    if (!order || strcmp(order, "seen") || !json_is_array(names))
        return json_incref((json_t *)meta);
    size_t n = json_array_size(names);
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_array_get(names, i)))
            return json_incref((json_t *)meta);
    json_t *m = json_copy((json_t *)meta), *sorted = json_array();
    named_index *by_name = malloc((n ? n : 1) * sizeof *by_name);
    *map = malloc((n ? n : 1) * sizeof **map);
    if (!m || !sorted || !by_name || !*map) {
        json_decref(m);
        json_decref(sorted);
        free(by_name);
        free(*map);
        *map = NULL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        by_name[i] = (named_index){json_string_value(json_array_get(names, i)), (int32_t)i};
    qsort(by_name, n, sizeof *by_name, cmp_named);
    for (size_t k = 0; k < n; k++) {
        (*map)[by_name[k].index] = (int32_t)k;
        json_array_append(sorted, json_array_get(names, (size_t)by_name[k].index));
    }
    free(by_name);
    json_object_set_new(m, "classes", sorted);
    json_object_del(m, "class_order");
    *nmap = (int)n;
    return m;
}

int sp_shardset_commit(sp_shardset *s, const json_t *meta_in, sp_err *err)
{
    int32_t *map;
    int nmap;
    json_t *meta = sorted_classes(meta_in, &map, &nmap);
    if (!meta)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    int rc = commit(s, meta, map, nmap, err);
    json_decref(meta);
    free(map);
    return rc;
}

const json_t *sp_shardset_manifest(const sp_shardset *s) { return s->manifest; }

void sp_shardset_counts(const sp_shardset *s, uint64_t *written, uint64_t *reused)
{
    *written = s->written;
    *reused = s->reused;
}

void sp_shardset_free(sp_shardset *s)
{
    if (!s)
        return;
    for (int i = 0; i < NSPLITS; i++) {
        open_shard *o = &s->open[i];
        if (o->sh) {
            sp_h5w_discard(o);
            unlink(o->sh->tmp);
            free(o->sh);
        }
        open_shard_reset(o);
    }
    while (s->done) { /* finished shards stay, listed in the journal, for a rerun */
        shard *n = s->done->next;
        free(s->done);
        s->done = n;
    }
    json_decref(s->manifest);
    if (s->journal_fd >= 0)
        close(s->journal_fd);
    free(s->pending);
    close(s->lock_fd);
    free(s);
}

