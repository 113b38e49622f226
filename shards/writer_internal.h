/* What the shard writer's files (shard_writer.c, journal.c, shard_h5write.c, naming.c, merge.c) share: the
 * writer's state and its internal calls. Not installed; no other part of the project includes it. */
#ifndef SP_WRITER_INTERNAL_H
#define SP_WRITER_INTERNAL_H

#include "common/sp_common.h"
#include "shards/shard.h"

#define TMP_PREFIX ".sp-tmp-"   /* a shard being written: removed by the next run */
#define DONE_PREFIX ".sp-done-" /* a finished shard, listed in the journal, not yet committed */
#define JOURNAL_NAME ".sp-journal"
#define OWNED_NAME ".sp-owned" /* the shard names a commit is placing: see sp_shardset_commit */
#define JOURNAL_VERSION 1
#define CHUNK_TARGET (1u << 20) /* bytes of pixels per HDF5 chunk */
/* bytes per chunk of an encoded shard's /encoded: HDF5 stores the last,
 * partial chunk of an unfiltered dataset whole, so this bounds the waste */
#define ENCODED_CHUNK (64u << 10)
#define NSPLITS (SP_SPLIT_VAL + 1)

/* A shard being written (open) or written and waiting for the commit. tmp is
 * its current path: DIR/.sp-tmp-SPLIT-NNNNN.h5 while written, DIR/.sp-done-...
 * once finished; empty once renamed to its final name. */
typedef struct shard {
    int split, index;
    char tmp[4096];
    int kind;        /* SP_KIND_PIXELS or SP_KIND_ENCODED: one kind per set */
    uint32_t h, w, c; /* pixels: every record's shape; encoded: the largest decoded h and w, and c */
    int dtype;
    uint64_t n;
    int has_label2;
    struct shard *next;
} shard;

/* A shard being written. While `old` is set, no file is open: the records so
 * far equal the first sh->n records of old, the same shard finished by an
 * interrupted run, and are only compared (see resume_shard). io_errno: the
 * first OS error of the file's I/O (shard_h5file.h), 0 while none. */
typedef struct open_shard {
    shard *sh;
    hid_t file, images;
    int io_errno;
    size_t item_bytes;
    uint64_t chunk_n, in_chunk, written;
    uint8_t *chunk;
    sp_buf labels, labels2, checksums, keys; /* int32, int32, uint64, NUL-separated */
    /* encoded shards: the bytes not yet written to /encoded, and per record
     * its end offset (uint64, the first entry 0), decoded shape (3 x uint32)
     * and codec (uint8); images is then the /encoded dataset */
    sp_buf enc, offsets, shapes, codecs;
    uint64_t enc_total; /* bytes of every record so far, written or not */
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
    shard *done, **done_tail; /* closed shards in creation order */
    open_shard open[NSPLITS];
    int next_index[NSPLITS];
    uint32_t shape[NSPLITS][3];
    int dtype[NSPLITS];
    int kind; /* of the set's first record; 0 before it */
    json_t *manifest;
    int committed;
    int journal_fd; /* DIR/.sp-journal, appended as shards finish; -1 for a merge */
    pending *pending;
    size_t npending;
    uint64_t written, reused; /* shards compressed by this run, and taken over */
};

/* ---- shard_writer.c ---- */
/* Opens dir for writing (see sp_shardset_create); journal 0 for a merge,
 * which writes no shards of its own. */
sp_shardset *sp_shardset_open_dir(const char *dir, const sp_shard_opts *opts, int journal, sp_err *err);
/* Sets m's shards (list, taken) and what follows from them: per split the
 * records, shards, bytes, shape and dtype, and the totals. */
void sp_shardset_set_list(json_t *m, json_t *list);
/* When SP_WRITER_PAUSE names phase: creates DIR/.sp-pause-PHASE and waits for
 * a signal (crash tests kill the writer there). Otherwise nothing. */
void sp_shardset_pause(const char *dir, const char *phase);

/* ---- journal.c ---- */
void sp_journal_done_path(const sp_shardset *s, int split, int index, char *out, size_t n);
pending *sp_journal_find(sp_shardset *s, int split, int index);
void sp_journal_forget(sp_shardset *s, pending *p);
/* Reads DIR/.sp-journal at open: keeps the finished shards of equal options
 * whose files are there, removes the other .sp-done-* files. 0 or -1. */
int sp_journal_open(sp_shardset *s, sp_err *err);
/* Lists a finished shard (its file at its .sp-done- path) with its sha256,
 * durably. 0 or -1 (the file is then removed: unlisted, it is nobody's). */
int sp_journal_add(sp_shardset *s, const shard *sh, sp_err *err);
/* After a commit: removes the journal and every finished file. */
void sp_journal_clear(sp_shardset *s);

/* ---- shard_h5write.c ---- */
/* Creates o's file (o->sh->tmp) and its empty images dataset. 0 or -1. */
int sp_h5w_create(const sp_shard_opts *opts, open_shard *o, sp_err *err);
/* Writes the o->in_chunk buffered records as the next rows of images. */
int sp_h5w_flush_chunk(open_shard *o, sp_err *err);
/* Encoded shards: appends o->enc's whole chunks (all of it when all) to
 * /encoded and keeps the rest. 0 or -1. */
int sp_h5w_flush_encoded(open_shard *o, int all, sp_err *err);
/* Writes labels, labels2, checksums and keys and closes o's file; every HDF5
 * object is closed on every path. 0 or -1 (the file is then worthless). */
int sp_h5w_finish(const sp_shard_opts *opts, open_shard *o, sp_err *err);
/* Closes o's file and objects after an error (nothing is reported). */
void sp_h5w_discard(open_shard *o);
/* Writes the root attributes of a finished shard from meta and closes it;
 * with map (nmap entries, else NULL) first rewrites its /labels, label l as
 * map[l] (a label past nmap as -1, -1 kept). */
int sp_h5w_attributes(const shard *sh, const json_t *meta, const int32_t *map, int nmap, sp_err *err);

/* ---- naming.c ---- */
/* The committed name of a finished shard whose sha256 is hex. */
void sp_naming_final(const sp_shard_opts *o, const shard *sh, const char *hex, char *out, size_t n);
/* Removes dir's files whose names start with prefix, except (keep) the
 * finished shards the journal lists. */
void sp_naming_remove_prefixed(sp_shardset *s, const char *prefix, int keep);
/* Removes the temporaries common/sp_atomic.h left for this writer's own files
 * (".NAME.tmp-XXXXXX" with NAME the manifest, the journal, .sp-owned or a
 * shard name) when a run was killed. Call under the lock. */
void sp_naming_remove_atomic_temporaries(const char *dir);
/* Before a commit places the shards in list (names in "file"): writes
 * dir/.sp-owned, durably, naming them, the shards of dir's previous manifest
 * and those an earlier .sp-owned named. 0 or -1. */
int sp_naming_own(const char *dir, const json_t *list, sp_err *err);
/* After the manifest listing list is committed: removes the files
 * dir/.sp-owned names that list does not, then .sp-owned itself. */
void sp_naming_remove_unlisted(const char *dir, const json_t *list);
/* After a failed commit or merge: removes what it placed, i.e. the files
 * .sp-owned names that the manifest now on disk does not list (all of them
 * when there is none), so dir holds its last committed set again. */
void sp_naming_restore(const char *dir);
/* 1 when dir's manifest on disk lists exactly list: a manifest write that
 * failed after its rename (the directory's fsync) left it in place; then
 * nothing may be removed, as either manifest may be the one a crash keeps,
 * and .sp-owned stays for the next run to finish the cleanup. */
int sp_naming_in_place(const char *dir, const json_t *list);

#endif
