#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sp_hash.h"
#include "common/sp_xxh.h"
#include "formats/h5zstd.h"
#include "shards/manifest.h"
#include "common/sp_atomic.h"
#include "shards/shard.h"

#define TMP_PREFIX ".sp-tmp-"   /* a shard being written: removed by the next run */
#define DONE_PREFIX ".sp-done-" /* a finished shard, listed in the journal, not yet committed */
#define JOURNAL_NAME ".sp-journal"
#define JOURNAL_VERSION 1
#define CHUNK_TARGET (1u << 20) /* bytes of pixels per HDF5 chunk */
#define NSPLITS (SP_SPLIT_VAL + 1)

void sp_shard_opts_default(sp_shard_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_records = 0;
    o->max_bytes = 256ull << 20;
    o->zstd_level = 1; /* as small as 3 on IDX data, 5% bigger on photos, much faster */
    o->raw_literals = 1; /* 5-7% bigger, decompresses 1.8-2.9x as fast (README, sp-shard) */
}

/* A shard being written (open) or written and waiting for the commit. */
typedef struct shard {
    int split, index;
    char tmp[4096];
    uint32_t h, w, c;
    int dtype;
    uint64_t n;
    int has_label2;
    struct shard *next;
} shard;

/* A shard being written. While `old` is set, no file is open: the records so
 * far equal the first sh->n records of old, the same shard finished by an
 * interrupted run, and are only compared (see resume_shard). */
typedef struct open_shard {
    shard *sh;
    hid_t file, images;
    size_t item_bytes;
    uint64_t chunk_n, in_chunk, written;
    uint8_t *chunk;
    sp_buf labels, labels2, checksums, keys; /* int32, int32, uint64, NUL-separated */
    sp_shard *old;
    uint64_t old_n;
    int32_t *old_labels, *old_labels2;
    uint64_t *old_checksums;
} open_shard;

/* A shard an interrupted run finished: DIR/.sp-done-SPLIT-NNNNN.h5, as the
 * journal lists it with its record count and the sha256 of the file. */
typedef struct pending {
    int split, index;
    uint64_t records;
    char sha256[65];
} pending;

struct sp_shardset {
    char dir[4096];
    sp_shard_opts opts;
    int lock_fd;
    shard *done, **done_tail;  /* closed shards in creation order */
    open_shard open[NSPLITS];
    int next_index[NSPLITS];
    uint32_t shape[NSPLITS][3];
    int dtype[NSPLITS];
    json_t *manifest;
    int committed;
    int journal_fd; /* DIR/.sp-journal, appended as shards finish; -1 for a merge */
    pending *pending;
    size_t npending;
    uint64_t written, reused; /* shards compressed by this run, and taken over */
};


static int h5fail(sp_err *err, const char *what, const char *path)
{
    char m[256];
    return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s: %s", path, what, sp_h5_error(m, sizeof m));
}

static void done_path(const sp_shardset *s, int split, int index, char *out, size_t n)
{
    snprintf(out, n, "%.3000s/" DONE_PREFIX "%s-%05d.h5", s->dir, sp_split_name(split), index);
}

static pending *find_pending(sp_shardset *s, int split, int index)
{
    for (size_t i = 0; i < s->npending; i++)
        if (s->pending[i].split == split && s->pending[i].index == index)
            return &s->pending[i];
    return NULL;
}

static void forget_pending(sp_shardset *s, pending *p)
{
    *p = s->pending[--s->npending];
}

/* Removes the files of dir whose names start with prefix, except (keep) the
 * finished shards the journal lists. */
static void remove_prefixed(sp_shardset *s, const char *prefix, int keep)
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
            done_path(s, s->pending[i].split, s->pending[i].index, listed, sizeof listed);
            kept = !strcmp(path, listed);
        }
        if (!kept)
            unlink(path);
    }
    closedir(d);
}

/* The journal's first line: what besides the records shapes a shard's bytes.
 * An interrupted run's shards are reused only under an equal one. */
static json_t *journal_header(const sp_shard_opts *o)
{
    return json_pack("{s:i, s:i, s:b, s:I, s:I, s:i, s:i, s:i}", "journal", JOURNAL_VERSION, "level", o->zstd_level,
                     "raw_literals", o->raw_literals,
                     "max_records", (json_int_t)o->max_records, "max_bytes", (json_int_t)o->max_bytes,
                     "chunk_bytes", (int)CHUNK_TARGET, "part", o->part, "parts", o->parts);
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

/* Writes DIR/.sp-journal anew, atomically: its header and the pending
 * shards, and opens it for appending. */
static int journal_rewrite(sp_shardset *s, sp_err *err)
{
    char path[8192], tmp[8192];
    snprintf(path, sizeof path, "%s/" JOURNAL_NAME, s->dir);
    snprintf(tmp, sizeof tmp, "%s/" TMP_PREFIX "journal", s->dir);
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
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 || sp_write_all(fd, text.data, text.len) || fsync(fd) || rename(tmp, path) ? -1 : 0;
    int e = errno;
    sp_buf_free(&text);
    if (fd >= 0)
        close(fd);
    if (rc) {
        unlink(tmp);
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(e));
    }
    s->journal_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (s->journal_fd < 0)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
    return 0;
}

/* Reads DIR/.sp-journal: the shards an interrupted run finished. Keeps those
 * written under the same options whose files are there and removes every
 * other finished file. The journal is then written anew with the kept
 * entries, or removed when none are left (the first finished shard creates
 * it again). A line cut by a kill ends the journal. */
static int open_journal(sp_shardset *s, sp_err *err)
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
            done_path(s, p.split, p.index, file, sizeof file);
            pending *old = find_pending(s, p.split, p.index);
            if (old)
                forget_pending(s, old);
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
    remove_prefixed(s, DONE_PREFIX, 1);
    if (s->npending)
        return journal_rewrite(s, err);
    unlink(path);
    return 0;
}

static sp_shardset *shardset_open(const char *dir, const sp_shard_opts *opts, int journal, sp_err *err);

sp_shardset *sp_shardset_create(const char *dir, const sp_shard_opts *opts, sp_err *err)
{
    return shardset_open(dir, opts, 1, err);
}

/* journal: 0 for a merge, which writes no shards of its own */
static sp_shardset *shardset_open(const char *dir, const sp_shard_opts *opts, int journal, sp_err *err)
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
    remove_prefixed(s, TMP_PREFIX, 0);
    if (journal && open_journal(s, err)) {
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
    memset(o, 0, sizeof *o);
    o->file = o->images = H5I_INVALID_HID;
}

static int create_file(sp_shardset *s, open_shard *o, sp_err *err);
static int resume_shard(sp_shardset *s, open_shard *o);
static int flush_chunk(open_shard *o, sp_err *err);

static int start_shard(sp_shardset *s, const sp_record *rec, sp_err *err)
{
    open_shard *o = &s->open[rec->split];
    shard *sh = calloc(1, sizeof *sh);
    if (!sh)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    sh->split = rec->split;
    sh->index = s->next_index[rec->split]++;
    sh->h = rec->h, sh->w = rec->w, sh->c = rec->c, sh->dtype = rec->dtype;
    snprintf(sh->tmp, sizeof sh->tmp, "%.3000s/" TMP_PREFIX "%s-%05d.h5", s->dir, sp_split_name(sh->split),
             sh->index);
    o->sh = sh;
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
    return resume_shard(s, o) ? 0 : create_file(s, o, err);
}

/* Creates o's file and its (empty) images dataset. */
static int create_file(sp_shardset *s, open_shard *o, sp_err *err)
{
    shard *sh = o->sh;
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    o->file = H5Fcreate(sh->tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (o->file < 0)
        return h5fail(err, "cannot create", sh->tmp);
    hsize_t dims[4] = {0, sh->h, sh->w, sh->c};
    hsize_t maxd[4] = {H5S_UNLIMITED, sh->h, sh->w, sh->c};
    hsize_t chunk[4] = {o->chunk_n, sh->h, sh->w, sh->c};
    hid_t space = H5Screate_simple(4, dims, maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    H5Pset_chunk(dcpl, 4, chunk);
    unsigned zstd[2] = {(unsigned)s->opts.zstd_level, SP_H5Z_ZSTD_RAW_LITERALS};
    H5Pset_filter(dcpl, SP_H5Z_ZSTD, H5Z_FLAG_MANDATORY, s->opts.raw_literals ? 2 : 1, zstd);
    o->images = H5Dcreate2(o->file, "images", sp_h5_pixel_type(sh->dtype), space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    if (o->images < 0)
        return h5fail(err, "cannot create images", sh->tmp);
    return 0;
}

/* 1 when an interrupted run finished this shard (same split and index, its
 * file as the journal hashed it, same shape): o then compares the records
 * against it instead of writing them. 0 otherwise; an unusable file is
 * removed, and the shard is written anew. */
static int resume_shard(sp_shardset *s, open_shard *o)
{
    shard *sh = o->sh;
    pending *p = find_pending(s, sh->split, sh->index);
    if (!p)
        return 0;
    char path[8192], hex[65];
    done_path(s, sh->split, sh->index, path, sizeof path);
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
    forget_pending(s, p);
    if (!ok) {
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
    if (create_file(s, o, err))
        return -1;
    for (uint64_t first = 0; first < sh->n; first += o->chunk_n) {
        uint64_t k = sh->n - first < o->chunk_n ? sh->n - first : o->chunk_n;
        if (sp_shard_read(o->old, first, k, o->chunk, NULL, NULL, NULL, err))
            return -1;
        o->in_chunk = k;
        if (k == o->chunk_n && flush_chunk(o, err))
            return -1;
    }
    for (uint64_t i = 0; i < sh->n; i++) {
        const char *key = sp_shard_key(o->old, i);
        if (sp_buf_append(&o->labels, &o->old_labels[i], 4) || sp_buf_append(&o->labels2, &o->old_labels2[i], 4) ||
            sp_buf_append(&o->checksums, &o->old_checksums[i], 8) || sp_buf_append(&o->keys, key, strlen(key) + 1))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    char path[8192];
    done_path(s, sh->split, sh->index, path, sizeof path);
    drop_old(o);
    unlink(path);
    return 0;
}

static int flush_chunk(open_shard *o, sp_err *err)
{
    if (!o->in_chunk)
        return 0;
    hsize_t newsize[4] = {o->written + o->in_chunk, o->sh->h, o->sh->w, o->sh->c};
    if (H5Dset_extent(o->images, newsize) < 0)
        return h5fail(err, "cannot extend images", o->sh->tmp);
    hid_t fspace = H5Dget_space(o->images);
    hsize_t start[4] = {o->written, 0, 0, 0};
    hsize_t count[4] = {o->in_chunk, o->sh->h, o->sh->w, o->sh->c};
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t mspace = H5Screate_simple(4, count, NULL);
    herr_t rc = H5Dwrite(o->images, sp_h5_pixel_type(o->sh->dtype), mspace, fspace, H5P_DEFAULT, o->chunk);
    H5Sclose(mspace);
    H5Sclose(fspace);
    if (rc < 0)
        return h5fail(err, "cannot write images", o->sh->tmp);
    o->written += o->in_chunk;
    o->in_chunk = 0;
    return 0;
}

/* A 1-D dataset of n values of type t from data, chunked and compressed. */
static int write_column(hid_t file, const char *name, hid_t t, uint64_t n, const void *data, int compress,
                        unsigned level)
{
    hsize_t dims[1] = {n}, chunk[1] = {n < 65536 ? n : 65536};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    H5Pset_chunk(dcpl, 1, chunk);
    if (compress)
        H5Pset_filter(dcpl, SP_H5Z_ZSTD, H5Z_FLAG_MANDATORY, 1, &level);
    hid_t ds = H5Dcreate2(file, name, t, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0)
        H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

static hid_t vlen_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

/* Renames o's closed file to its finished name and lists it in the journal
 * with its sha256, both made durable: from then on an interrupted run's
 * rerun can take it over. */
static int finish_file(sp_shardset *s, shard *sh, sp_err *err)
{
    char path[8192], hex[65];
    done_path(s, sh->split, sh->index, path, sizeof path);
    if (sp_fsync_path(sh->tmp, err))
        return -1;
    if (rename(sh->tmp, path))
        return sp_fail(err, SP_EXIT_SYSTEM, "rename %s: %s", path, strerror(errno));
    done_path(s, sh->split, sh->index, sh->tmp, sizeof sh->tmp);
    if (sp_hash_file(path, NULL, hex, NULL, NULL, NULL, err))
        return -1;
    pending p = {.split = sh->split, .index = sh->index, .records = sh->n};
    memcpy(p.sha256, hex, sizeof hex);
    json_t *j = pending_json(&p);
    sp_buf line = {0};
    int bad = !j || journal_line(j, &line);
    json_decref(j);
    if (!bad && s->journal_fd < 0 && journal_rewrite(s, err)) {
        sp_buf_free(&line);
        return -1;
    }
    if (!bad && (sp_write_all(s->journal_fd, line.data, line.len) || fsync(s->journal_fd)))
        bad = sp_fail(err, SP_EXIT_SYSTEM, "%s/" JOURNAL_NAME ": %s", s->dir, strerror(errno));
    else if (bad)
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    sp_buf_free(&line);
    return bad ? -1 : 0;
}

static int close_shard(sp_shardset *s, int split, sp_err *err)
{
    open_shard *o = &s->open[split];
    if (!o->sh)
        return 0;
    shard *sh = o->sh;
    if (o->old && sh->n == o->old_n) { /* every record as the interrupted run wrote them: take its file */
        done_path(s, sh->split, sh->index, sh->tmp, sizeof sh->tmp);
        open_shard_reset(o);
        *s->done_tail = sh;
        s->done_tail = &sh->next;
        s->reused++;
        return 0;
    }
    if (o->old && diverge(s, o, err))
        return -1;
    int rc = flush_chunk(o, err);
    unsigned level = (unsigned)s->opts.zstd_level;
    if (!rc && (write_column(o->file, "labels", H5T_NATIVE_INT32, sh->n, o->labels.data, 1, level) ||
                (sh->has_label2 &&
                 write_column(o->file, "labels2", H5T_NATIVE_INT32, sh->n, o->labels2.data, 1, level)) ||
                write_column(o->file, "checksums", H5T_NATIVE_UINT64, sh->n, o->checksums.data, 0, level)))
        rc = h5fail(err, "cannot write labels", sh->tmp);
    if (!rc) {
        const char **ptrs = malloc(sh->n * sizeof *ptrs);
        if (!ptrs)
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        const char *p = (const char *)o->keys.data;
        for (uint64_t i = 0; i < sh->n; i++) {
            ptrs[i] = p;
            p += strlen(p) + 1;
        }
        hid_t st = vlen_str_type();
        if (write_column(o->file, "keys", st, sh->n, ptrs, 0, level))
            rc = h5fail(err, "cannot write keys", sh->tmp);
        H5Tclose(st);
        free(ptrs);
    }
    H5Dclose(o->images);
    if (H5Fclose(o->file) < 0 && !rc)
        rc = h5fail(err, "cannot close", sh->tmp);
    open_shard_reset(o);
    *s->done_tail = sh;
    s->done_tail = &sh->next;
    if (!rc && (rc = finish_file(s, sh, err)) == 0)
        s->written++;
    return rc;
}

int sp_shardset_add(sp_shardset *s, const sp_record *rec, const uint8_t *payload, sp_err *err)
{
    if (rec->kind != SP_KIND_PIXELS)
        return sp_fail(err, SP_EXIT_DATA, "%s: a %s record; sp-shard stores pixel records (run sp-decode first)",
                       rec->key, sp_kind_name(rec->kind));
    int sp = rec->split;
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
    if (++o->in_chunk == o->chunk_n && flush_chunk(o, err))
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

static int attr_string(hid_t loc, const char *name, const char *value)
{
    hid_t t = vlen_str_type();
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, &value);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc < 0 ? -1 : 0;
}

static int attr_json(hid_t loc, const char *name, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s)
        return -1;
    int rc = attr_string(loc, name, s);
    free(s);
    return rc;
}

static int attr_ints(hid_t loc, const char *name, hid_t t, const void *v, hsize_t n)
{
    hid_t sp = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return rc < 0 ? -1 : 0;
}

static int attr_strings(hid_t loc, const char *name, const json_t *arr)
{
    hsize_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    const char **v = malloc(n * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        v[i] = json_string_value(json_array_get(arr, i));
        if (!v[i])
            v[i] = "";
    }
    hid_t t = vlen_str_type();
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    free(v);
    return rc < 0 ? -1 : 0;
}

/* norm_mean, norm_std, norm_applied from the stream's "normalize" member. */
static int attr_norm(hid_t f, const json_t *norm)
{
    json_t *mean = json_object_get(norm, "mean"), *std = json_object_get(norm, "std");
    size_t n = json_array_size(mean);
    if (!n || n != json_array_size(std) || n > 16)
        return 0;
    double m[16], s[16];
    for (size_t i = 0; i < n; i++) {
        m[i] = json_number_value(json_array_get(mean, i));
        s[i] = json_number_value(json_array_get(std, i));
    }
    int32_t applied = json_is_true(json_object_get(norm, "applied"));
    return attr_ints(f, "norm_mean", H5T_NATIVE_DOUBLE, m, n) || attr_ints(f, "norm_std", H5T_NATIVE_DOUBLE, s, n) ||
           attr_ints(f, "norm_applied", H5T_NATIVE_INT32, &applied, 0);
}

static int write_attributes(const shard *sh, const json_t *meta, sp_err *err)
{
    hid_t f = H5Fopen(sh->tmp, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0)
        return h5fail(err, "cannot reopen", sh->tmp);
    const char *dataset = json_string_value(json_object_get(meta, "dataset"));
    int32_t version = SP_SHARD_FORMAT_VERSION, index = sh->index;
    uint64_t count = sh->n;
    int32_t shape[3] = {(int32_t)sh->h, (int32_t)sh->w, (int32_t)sh->c};
    json_t *recipe = json_object_get(meta, "recipe");
    json_t *classes2 = json_object_get(meta, "classes2");
    int bad = attr_string(f, "format", SP_SHARD_FORMAT) ||
              attr_ints(f, "format_version", H5T_NATIVE_INT32, &version, 0) ||
              attr_string(f, "dataset", dataset ? dataset : "") ||
              attr_string(f, "split", sp_split_name(sh->split)) ||
              attr_ints(f, "shard_index", H5T_NATIVE_INT32, &index, 0) ||
              attr_ints(f, "record_count", H5T_NATIVE_UINT64, &count, 0) ||
              attr_ints(f, "shape", H5T_NATIVE_INT32, shape, 3) ||
              attr_string(f, "dtype", sp_dtype_name(sh->dtype)) ||
              attr_strings(f, "classes", json_object_get(meta, "classes")) ||
              (sh->has_label2 && attr_strings(f, "classes2", classes2)) ||
              attr_json(f, "recipe", recipe ? recipe : json_array()) || attr_json(f, "meta", meta) ||
              attr_norm(f, json_object_get(meta, "normalize"));
    if (bad) {
        H5Fclose(f);
        return h5fail(err, "cannot write attributes", sh->tmp);
    }
    if (H5Fclose(f) < 0)
        return h5fail(err, "cannot close", sh->tmp);
    return sp_fsync_path(sh->tmp, err);
}

static json_t *shape_json(const shard *sh) { return json_pack("[i,i,i]", sh->h, sh->w, sh->c); }

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

int sp_shard_part_of(const char *key, size_t key_len, int parts)
{
    return parts > 0 ? (int)(sp_xxh3_seeded(key, key_len, 0x53505041525453ull) % (uint64_t)parts) : 0;
}

static void remove_unlisted(const char *dir, const json_t *list)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!sp_shard_file_name(e->d_name))
            continue;
        int listed = 0;
        size_t i;
        json_t *sh;
        json_array_foreach(list, i, sh)
            listed |= !strcmp(e->d_name, json_string_value(json_object_get(sh, "file")));
        if (!listed) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

/* Sets m's shards (list, taken) and what follows from them: per split the
 * records, shards, bytes, shape and dtype, and the totals. */
static void set_shard_list(json_t *m, json_t *list)
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
            sj = json_pack("{s:I, s:i, s:I, s:O, s:O}", "records", (json_int_t)0, "shards", 0, "bytes", (json_int_t)0,
                           "shape", json_object_get(e, "shape"), "dtype", json_object_get(e, "dtype"));
            json_object_set_new(splits, split, sj);
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

int sp_shardset_commit(sp_shardset *s, const json_t *meta, sp_err *err)
{
    for (int i = 0; i < NSPLITS; i++)
        if (close_shard(s, i, err))
            return -1;
    json_t *m = json_object(), *list = json_array();
    if (!m || !list) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        goto fail;
    }
    /* manifest order: by split (train, test, val, none), then index */
    static const int order[] = {SP_SPLIT_TRAIN, SP_SPLIT_TEST, SP_SPLIT_VAL, SP_SPLIT_NONE};
    for (int k = 0; k < 4; k++) {
        for (shard *sh = s->done; sh; sh = sh->next) {
            if (sh->split != order[k])
                continue;
            char hex[65], name[256], dst[8192];
            uint64_t size;
            if (write_attributes(sh, meta, err) || sp_hash_file(sh->tmp, NULL, hex, &size, NULL, NULL, err))
                goto fail;
            char part[32] = "";
            if (s->opts.parts)
                snprintf(part, sizeof part, "p%dof%d-", s->opts.part, s->opts.parts);
            snprintf(name, sizeof name, "%s-%s%05d-%.8s.h5", sp_split_name(sh->split), part, sh->index, hex);
            snprintf(dst, sizeof dst, "%s/%s", s->dir, name);
            if (rename(sh->tmp, dst)) {
                sp_fail(err, SP_EXIT_SYSTEM, "rename %s: %s", dst, strerror(errno));
                goto fail;
            }
            sh->tmp[0] = 0; /* no longer ours to remove */
            json_array_append_new(list, json_pack("{s:s, s:s, s:i, s:I, s:I, s:s, s:o, s:s}", "file", name,
                                                  "split", sp_split_name(sh->split), "index", sh->index,
                                                  "records", (json_int_t)sh->n, "bytes", (json_int_t)size,
                                                  "sha256", hex, "shape", shape_json(sh), "dtype",
                                                  sp_dtype_name(sh->dtype)));
        }
    }
    /* every stream metadata member (dataset, classes, recipe, ...) at the top,
     * then the manifest's own members */
    json_object_update(m, (json_t *)meta);
    json_object_set_new(m, "format", json_string(SP_MANIFEST_FORMAT));
    json_object_set_new(m, "format_version", json_integer(SP_MANIFEST_VERSION));
    set_shard_list(m, list);
    if (sp_fsync_path(s->dir, err) || sp_write_json_atomic(s->dir, SP_MANIFEST_NAME, m, err)) {
        json_decref(m);
        return -1;
    }
    s->committed = 1;
    s->manifest = m;
    /* shards of this writer's naming that the new manifest does not list: the
     * previous set's, and any an interrupted commit renamed into place */
    remove_unlisted(s->dir, list);
    /* the journal and the finished shards of an interrupted run this one did not reach */
    char journal[8192];
    snprintf(journal, sizeof journal, "%s/" JOURNAL_NAME, s->dir);
    unlink(journal);
    s->npending = 0;
    remove_prefixed(s, DONE_PREFIX, 0);
    return 0;
fail:
    json_decref(m);
    json_decref(list);
    return -1;
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
            if (o->images >= 0)
                H5Dclose(o->images);
            if (o->file >= 0)
                H5Fclose(o->file);
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

/* ---- merging the sets of parts ---- */

/* out/name as a hard link to src, or a copy (fsynced) across file systems. */
static int link_or_copy(const char *src, const char *dst, sp_err *err)
{
    if (link(src, dst) == 0 || errno == EEXIST)
        return 0;
    if (errno != EXDEV && errno != EPERM)
        return sp_fail(err, SP_EXIT_SYSTEM, "link %s: %s", dst, strerror(errno));
    char tmp[8300];
    snprintf(tmp, sizeof tmp, "%s.sp-copy", dst);
    int in = open(src, O_RDONLY | O_CLOEXEC), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = in >= 0 && out >= 0 ? 0 : -1;
    static char buf[1 << 20];
    ssize_t n = 0;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
        rc = sp_write_all(out, buf, (size_t)n);
    if (n < 0 || (rc == 0 && fsync(out)))
        rc = -1;
    int e = errno;
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out))
        rc = -1;
    if (rc == 0 && rename(tmp, dst))
        rc = -1, e = errno;
    if (rc) {
        unlink(tmp);
        return sp_fail(err, SP_EXIT_SYSTEM, "copy %s: %s", dst, strerror(e));
    }
    return 0;
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

int sp_shardset_merge(const char *out, char **dirs, int ndirs, sp_err *err)
{
    sp_shard_opts o;
    sp_shard_opts_default(&o);
    sp_shardset *lock = shardset_open(out, &o, 0, err); /* out's lock, stale temporaries gone */
    if (!lock)
        return -1;
    json_t *m = NULL, *all = json_array();
    size_t nall = 0;
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
            const char *what = !json_equal(json_object_get(m, "dataset"), json_object_get(part, "dataset")) ? "dataset"
                               : !json_equal(json_object_get(m, "classes"), json_object_get(part, "classes"))
                                   ? "classes"
                                   : NULL;
            if (what)
                rc = sp_fail(err, SP_EXIT_DATA, "%s: its %s differ from %s's", dirs[d], what, dirs[0]);
        }
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(part, "shards"), i, e) {
            if (rc)
                break;
            const char *file = json_string_value(json_object_get(e, "file"));
            size_t j;
            json_t *prev;
            json_array_foreach(all, j, prev) {
                if (!strcmp(file, json_string_value(json_object_get(prev, "file"))))
                    rc = sp_fail(err, SP_EXIT_DATA, "%s: shard %s is in two of the sets (were they written as parts?)",
                                 dirs[d], file);
                else if (!strcmp(json_string_value(json_object_get(prev, "split")),
                                 json_string_value(json_object_get(e, "split"))) &&
                         !json_equal(json_object_get(prev, "shape"), json_object_get(e, "shape")))
                    rc = sp_fail(err, SP_EXIT_DATA, "%s: %s has another shape than the other %s shards", dirs[d], file,
                                 json_string_value(json_object_get(e, "split")));
                if (rc)
                    break;
            }
            char src[8192], dst[8192];
            snprintf(src, sizeof src, "%s/%s", dirs[d], file);
            snprintf(dst, sizeof dst, "%s/%s", out, file);
            if (rc == 0 && strcmp(src, dst))
                rc = link_or_copy(src, dst, err);
            if (rc == 0)
                json_array_append(all, e);
        }
        json_decref(part);
    }
    if (rc == 0) { /* the union, in manifest order, and its totals */
        nall = json_array_size(all);
        entries = malloc((nall ? nall : 1) * sizeof *entries);
        for (size_t i = 0; entries && i < nall; i++)
            entries[i] = json_array_get(all, i);
        if (!entries)
            rc = sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    if (rc == 0) {
        qsort(entries, nall, sizeof *entries, cmp_shard_entries);
        json_t *list = json_array();
        for (size_t i = 0; i < nall; i++)
            json_array_append(list, entries[i]);
        set_shard_list(m, list);
        json_object_set_new(m, "merged_parts", json_integer(ndirs));
        json_object_del(m, "part");
        rc = sp_fsync_path(out, err) || sp_write_json_atomic(out, SP_MANIFEST_NAME, m, err) ? -1 : 0;
        if (rc == 0)
            remove_unlisted(out, list);
    }
    free(entries);
    json_decref(all);
    json_decref(m);
    sp_shardset_free(lock);
    return rc;
}
