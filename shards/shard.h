/* HDF5 shards: one file per (split, index), written complete or not at all.
 *
 * A shard holds, for N records of one split, all of one shape H x W x C:
 *   /images     [N, H, W, C] uint8 (or float16/float32), chunked, zstd (filter 32015)
 *   /labels     [N] int32, -1 where a record has none
 *   /labels2    [N] int32, only when the records have a second label
 *   /keys       [N] variable-length UTF-8 strings: each record's source key
 *   /checksums  [N] uint64: XXH3-64 of each record's pixel bytes, as in the stream
 *               (stored uncompressed: hashes do not compress)
 *               (stored uncompressed: hashes do not compress)
 * and attributes on the root group:
 *   format = "shardpipe-shard", format_version = 1, dataset, split,
 *   shard_index, record_count, shape [H, W, C], dtype, classes, classes2
 *   (when there are second labels), recipe (JSON array), meta (the whole
 *   stream metadata as JSON), and when the stream has normalization
 *   parameters norm_mean, norm_std (float64 per channel, x/255 units) and
 *   norm_applied (1 when the pixels are already normalized floats).
 * No timestamps are stored, so equal input gives byte-identical files.
 *
 * An encoded shard (a set of encoded records: formats/recstream.md; one
 * shard set holds one kind) has, instead of /images:
 *   /encoded    [B] uint8: every record's encoded bytes (JPEG, PNG), back to
 *               back, chunked (1 MiB), not compressed
 *   /offsets    [N+1] uint64: record i is encoded[offsets[i]:offsets[i+1]];
 *               offsets[0] = 0, offsets[N] = B, rising (no empty record)
 *   /shapes     [N, 3] uint32: the H, W, C each record decodes to (C = 3)
 *   /codecs     [N] uint8: enum sp_codec (1 JPEG, 2 PNG)
 *   /checksums  [N] uint64: XXH3-64 of each record's encoded bytes, as in the stream
 * and labels, labels2 and keys as above; the attributes as above plus kind =
 * "encoded", with shape = [largest H, largest W, C] and dtype "uint8" (of the
 * decoded pixels). A shard without a kind attribute is a pixel shard.
 */
#ifndef SP_SHARD_H
#define SP_SHARD_H

#include <hdf5.h>
#include <jansson.h>

#include "formats/recstream.h"

#define SP_SHARD_FORMAT "shardpipe-shard"
#define SP_SHARD_FORMAT_VERSION 1
#define SP_MANIFEST_NAME "manifest.json"

/* Silences HDF5's own error printing and registers the zstd filter. Call
 * once before any other HDF5 use; 0 or -1. */
int sp_h5_init(sp_err *err);
/* The HDF5 type of pixels of an sp_dtype: uint8, float32, or IEEE half
 * (an HDF5 float of 2 bytes, which h5py reads as numpy float16). */
hid_t sp_h5_pixel_type(int dtype);
/* The innermost message of HDF5's current error stack, for messages. */
const char *sp_h5_error(char *buf, size_t n);

/* ---------------- writing a shard set ---------------- */
typedef struct sp_shard_opts {
    uint64_t max_records; /* records per shard, 0 = no limit */
    uint64_t max_bytes;   /* uncompressed pixel bytes per shard, 0 = no limit */
    int zstd_level;       /* 1..19 */
    int raw_literals;     /* 1: pixels' literals stored without Huffman coding (SP_H5Z_ZSTD_RAW_LITERALS) */
    int part, parts;      /* this writer is part `part` of `parts` (0 of 0: not a part):
                           * shard names carry it, SPLIT-pIofN-NNNNN-HHHHHHHH.h5,
                           * so the parts' shards can be merged into one directory */
    /* Notes for the user that are not errors (an interrupted run's shard not reused, and why):
     * called with one line of text, borrowed for the call; NULL: not reported. The library never
     * prints; the tool decides where such notes go. */
    void (*on_info)(void *ctx, const char *msg);
    void *info_ctx;
} sp_shard_opts;
void sp_shard_opts_default(sp_shard_opts *o); /* no record limit, 256 MiB, level 1, raw literals, no on_info */

typedef struct sp_shardset sp_shardset;

/* Prepares writing into dir (created with its parents if missing). Takes dir's lock, so two
 * writers never share a directory, and removes temporary files an earlier
 * killed run left. Nothing visible changes until sp_shardset_commit.
 *
 * Resume: each shard, once full, is fsynced, renamed to DIR/.sp-done-SPLIT-NNNNN.h5
 * and listed in DIR/.sp-journal with its record count and sha256 (the journal's
 * first line holds the options that shape a shard's bytes). A run that finds
 * a journal of equal options takes such a shard over when the records it is
 * given for that split and index equal the shard's, one by one (key, labels
 * and the XXH3 of the pixels): it compares them instead of compressing and
 * writing them again. At the first record that differs, the equal prefix is
 * copied from the old file and the shard is written as usual, so the result
 * is byte-identical to an uninterrupted run's either way. A finished file
 * whose sha256 differs from the journal's is written anew. */
sp_shardset *sp_shardset_create(const char *dir, const sp_shard_opts *opts, sp_err *err);
/* Adds one pixel record (payload = its pixels). Records of a split must all
 * have the same shape and dtype. A record whose split is not train, val or
 * test (SP_SPLIT_NONE) is refused with SP_EXIT_DATA: no reader opens one. */
int sp_shardset_add(sp_shardset *s, const sp_record *rec, const uint8_t *payload, sp_err *err);
/* Finishes every shard, writes their attributes from meta, fsyncs, renames
 * them into place and last writes dir/manifest.json the same way; then
 * removes the shard files the new manifest does not list, but only those this
 * writer can prove it wrote: listed in the previous manifest or in DIR/.sp-owned
 * (written, fsynced, before any shard is renamed into place, so a killed
 * commit's shards are found by the next one). A file merely named like a
 * shard is never touched. Then the journal and the finished shards of an
 * interrupted run not reused are removed.
 *
 * Errors: every file goes through common/sp_atomic.h; an I/O error names the
 * file and the OS error (strerror), fills err with SP_EXIT_SYSTEM, removes the
 * temporary and leaves the last committed set as it was. A set of no records
 * (every input rejected upstream) is refused with SP_EXIT_DATA and nothing
 * changes, except for a part of --part, which may be empty. */
int sp_shardset_commit(sp_shardset *s, const json_t *meta, sp_err *err);
/* Shards this run compressed and wrote, and shards it took over from an
 * interrupted run (see sp_shardset_create). */
void sp_shardset_counts(const sp_shardset *s, uint64_t *written, uint64_t *reused);
/* The manifest written by commit (borrowed), for summaries. */
const json_t *sp_shardset_manifest(const sp_shardset *s);
/* Removes uncommitted temporary files; accepts NULL. */
void sp_shardset_free(sp_shardset *s);

/* 1 if name is a shard file name this writer gives: SPLIT-NNNNN-HHHHHHHH.h5,
 * or SPLIT-pIofN-NNNNN-HHHHHHHH.h5 for a part. */
int sp_shard_file_name(const char *name);

/* Joins the shard sets in dirs (parts written with --part) into out (names[i],
 * or dirs[i] when names is NULL, is what messages call dirs[i]): their
 * shards are linked (or copied through a temporary) into out and one manifest
 * lists them all, fsynced and renamed into place last. The sets must agree on
 * dataset, classes and shapes, and no shard name may repeat. Removes, as
 * commit does, only the unlisted shards out's previous manifest or .sp-owned
 * names.
 *
 * SP_WRITER_PAUSE=PHASE (an environment variable, for crash tests): at that
 * phase the writer creates DIR/.sp-pause-PHASE and waits for a signal.
 * Phases: shard-finished (the first shard is listed in the journal),
 * commit-renamed (a commit's shards are in place, its manifest not yet),
 * merge-copied (a merge's shards are in place, its manifest not yet). */
int sp_shardset_merge(const char *out, char **dirs, char **names, int ndirs, sp_err *err);

/* Copies the committed set at url (http(s)://, s3://, file://) into the
 * directory dir (created if missing) for a merge: each shard its manifest
 * lists is downloaded through the cache (sp_remote_shard: checked against the
 * manifest's sha256 before it is placed), hard linked into dir (or copied
 * across file systems) under its own name, replacing any file of that name,
 * and the manifest last, so dir holds a committed set or none. 0, or -1 with
 * err naming the URL. */
int sp_shardset_fetch(const char *url, const char *dir, sp_err *err);

/* ---------------- reading one shard ---------------- */
typedef struct sp_shard sp_shard;

/* Limits on what a shard file may claim before the reader allocates for it:
 * records in one shard, and bytes of one images chunk read directly (bigger
 * chunks go through HDF5's own filter pipeline, which bounds them itself). */
#define SP_SHARD_MAX_RECORDS (1ull << 32)
#define SP_SHARD_MAX_CHUNK_BYTES ((size_t)1 << 30)
/* Rows in a chunk of the per-record columns (labels, labels2, checksums) as
 * sp-shard writes them. The reader keeps the chunk each open shard handle is
 * in (16 to 32 KiB a column), read and decompressed on its own, so a handle's
 * memory does not grow with the shard's records, and handles of one file do
 * not fill HDF5's per-dataset chunk cache (1 MiB a column a file). Columns of
 * chunks up to SP_SHARD_COLUMN_DIRECT_MAX rows are read that way; bigger ones
 * (sets written with 65536-row chunks, before) go through HDF5's cache. */
#define SP_SHARD_COLUMN_CHUNK 4096
#define SP_SHARD_COLUMN_DIRECT_MAX 16384

sp_shard *sp_shard_open(const char *path, sp_err *err);
/* The same without loading the keys (sp_shard_key then returns NULL): for
 * readers that want pixels and labels only. */
sp_shard *sp_shard_open_nokeys(const char *path, sp_err *err);
/* sp_shard_open_nokeys for a reader that holds many shards open, each read
 * in order (a lane of libshardpipe-reader): an encoded shard's index
 * (offsets, shapes, codecs; 21 bytes a record) is not loaded but read a
 * chunk at a time as records are, each range checked as it is read, so an
 * open shard holds a chunk of it, not all of it. Sets written before the
 * index was chunked by SP_SHARD_COLUMN_CHUNK rows load it whole, as
 * sp_shard_open_nokeys does. */
sp_shard *sp_shard_open_lane(const char *path, sp_err *err);
/* A shard a writer finished but has not committed (no attributes yet), of
 * split: for resuming an interrupted run. Keys are loaded. */
sp_shard *sp_shard_open_unfinished(const char *path, int split, sp_err *err);
void sp_shard_close(sp_shard *s); /* accepts NULL */
uint64_t sp_shard_count(const sp_shard *s);
/* SP_KIND_PIXELS or SP_KIND_ENCODED. */
int sp_shard_kind(const sp_shard *s);
/* Pixels: every record's shape. Encoded: the largest decoded H and W of its
 * records and their C (the bound a decoder sizes its buffer by), uint8. */
void sp_shard_shape(const sp_shard *s, uint32_t *h, uint32_t *w, uint32_t *c, int *dtype);
int sp_shard_split(const sp_shard *s);      /* enum sp_split, from the attribute */
/* Record i's key, when loaded (NULL when not: see sp_shard_load_keys). */
const char *sp_shard_key(const sp_shard *s, uint64_t i);
/* Loads the keys of records [first, first+n) in place of those loaded before
 * (sp_shard_open loads all of them, sp_shard_open_nokeys none): sp_shard_key
 * then answers for those records only. For a reader going through a shard in
 * batches, whose memory is then a batch's keys, not the shard's. 0, or -1
 * with err (SP_EXIT_DATA: no keys dataset, its length not the records', or
 * unreadable), no keys loaded. A shard whose bytes are not those its
 * manifest lists is not to be asked: HDF5 trusts the lengths of the keys. */
int sp_shard_load_keys(sp_shard *s, uint64_t first, uint64_t n, sp_err *err);
/* The "meta" attribute parsed (owned by the shard), or NULL. */
json_t *sp_shard_meta(const sp_shard *s);
/* An integer attribute; -1 with err set when missing. */
int sp_shard_attr_int(const sp_shard *s, const char *name, long long *out, sp_err *err);
/* Reads records [first, first+n): pixels (n*H*W*C values), labels,
 * labels2 and stored checksums; any output may be NULL. When pixels are read
 * they are checked against the stored XXH3 checksums (unless turned off by
 * sp_shard_set_verify): a mismatch is -1 with SP_EXIT_DATA and a message
 * naming the shard file and the record's index (and key, when loaded). Damage
 * the decompressor notices names the shard and the records of the chunk. */
/* on = 0: sp_shard_read returns pixels unchecked, for a caller that checks
 * them itself (sp-verify, which reports every bad record, not the first). */
void sp_shard_set_verify(sp_shard *s, int on);
/* A compressed chunk's buffer and the zstd decompressor of direct reads
 * (sp_shard_read of shards sp-shard wrote), which a shard otherwise holds
 * itself while open: readers that keep many shards open at once lend one
 * scratch to all of those a thread reads, so their memory is one chunk's,
 * not one per shard. Not thread-safe: one reader at a time. new returns NULL
 * when out of memory; free takes NULL. */
typedef struct sp_shard_scratch sp_shard_scratch;
sp_shard_scratch *sp_shard_scratch_new(void);
void sp_shard_scratch_free(sp_shard_scratch *sc);
/* s's reads use sc from now on (its own are freed), or with NULL its own
 * again; sc must outlive those reads, or be replaced before it is freed. */
void sp_shard_set_scratch(sp_shard *s, sp_shard_scratch *sc);
/* Bytes of images read from the file since the shard opened: compressed
 * chunks as stored (direct reads), an encoded shard's bytes, or the rows
 * HDF5's filters handed out (other layouts). */
uint64_t sp_shard_bytes_read(const sp_shard *s);
/* Lets go of HDF5 for s's reads: every chunk's place in the file (images or
 * encoded bytes, labels, labels2, checksums) is read now, HDF5's handles of
 * s are closed, and sp_shard_read and sp_shard_read_encoded then read the
 * chunks with pread on a file descriptor of s's own. HDF5 keeps about 1 MB
 * for every open file (its metadata cache's table alone is 512 KiB), so a
 * reader that holds a shard open a lane (up to 64) holds that much for each
 * distinct file; detached, a handle holds its chunk table (16 bytes a
 * chunk). Of an encoded shard, only the chunks of records [first,
 * first+need) and of those after them up to first+n, as long as they take
 * at most 64 chunks of its bytes (about 4 MiB), are placed, with its
 * columns' chunks for those records (each place is a lookup in HDF5's chunk
 * index: a lane's whole stretch of a shard, thousands of 64 KiB chunks, for
 * each of 64 lanes took seconds before the first batch); reading other
 * records is an error (sp_shard_covers tells; a reader opens the shard
 * again for them). A pixel shard's chunks are all placed (a few hundred). 0 once detached; 1, s unchanged and still usable through HDF5,
 * when its layout is not one sp-shard writes (images not zstd chunks of
 * whole records, a column not in direct chunks), a chunk's place cannot be
 * read or lies past the file's end (a damaged file: its reads then fail as
 * they would have), or memory runs out. Keys (sp_shard_key,
 * sp_shard_load_keys) need HDF5: a detached shard has none. Not
 * thread-safe, like every call on one shard. */
int sp_shard_detach(sp_shard *s, uint64_t first, uint64_t n, uint64_t need);
/* 1 when reads of records [first, first+n) of s need nothing it has let go
 * of: s is not detached, or was detached for records that hold them. */
int sp_shard_covers(const sp_shard *s, uint64_t first, uint64_t n);
/* Moves from's kept column chunks and scratch buffers into to, a handle of
 * the same file opened again (a lane's next stretch): the chunks need not be
 * read again, and the buffers are not freed and made again next to HDF5's
 * allocations of the open, which left a reader's heap fragmented (14 MB over
 * 1.28x10^6 encoded records). What to already holds is kept; from stays valid
 * and is then closed (from may have been released: sp_shard_release_file).
 * Nothing is moved when the paths differ, and the kept chunks only when both
 * handles were detached from one unchanged file (device, inode, size and
 * modification time). */
void sp_shard_take_buffers(sp_shard *to, sp_shard *from);
/* Closes s's file (HDF5's ids, its descriptor, a remote shard's cache pin)
 * and keeps its buffers, for sp_shard_take_buffers once the shard is opened
 * again: a reader lane holds one open shard at a time, as a remote set's
 * cache counts on. s can then only be given to sp_shard_take_buffers and
 * sp_shard_close. */
void sp_shard_release_file(sp_shard *s);
/* An encoded shard's pixels cannot be read this way (-1 naming
 * sp_shard_read_encoded); its labels, labels2 and checksums can. */
int sp_shard_read(sp_shard *s, uint64_t first, uint64_t n, void *pixels, int32_t *labels,
                  int32_t *labels2, uint64_t *checksums, sp_err *err);

/* The batch of the tools that read every record of a set (sp-verify,
 * sp-inspect): about this many bytes of pixels or encoded bytes at a time,
 * so that their memory is the same whatever the shards' or the set's size. */
#define SP_SHARD_BATCH_BYTES ((uint64_t)4 << 20)
/* The records of the batch that starts at record first when a shard is read
 * in batches of about max_bytes of pixels (H x W x C x the dtype's size a
 * record) or, for an encoded shard, of encoded bytes: at least one (a record
 * bigger than max_bytes is a batch alone) and at most those left; 0 when
 * first is at or past the end. */
uint64_t sp_shard_batch_records(const sp_shard *s, uint64_t first, uint64_t max_bytes);
/* A batch's buffers for sp_shard_read and sp_shard_read_encoded, grown as
 * needed and kept from shard to shard by a tool that reads a whole set: one
 * allocation of each for the set, so that no shard's batches are placed
 * around another's leftovers in the heap. Zero-initialise it; each array
 * holds `cap` records (offsets one more). */
typedef struct sp_shard_batch {
    sp_buf bytes;         /* the records' pixels, or an encoded shard's bytes */
    uint64_t *offsets;    /* encoded: each record's start in bytes, and the end */
    uint32_t *shapes;     /* encoded: H, W, C a record */
    int32_t *labels, *labels2;
    uint64_t *checksums;
    uint64_t cap;
} sp_shard_batch;
/* Room in b for records [first, first+k) of s: k records in each array and
 * their pixels or encoded bytes. 0, or -1 with err (SP_EXIT_SYSTEM) when out
 * of memory (what b held stays held, for sp_shard_batch_free). */
int sp_shard_batch_reserve(sp_shard_batch *b, const sp_shard *s, uint64_t first, uint64_t k, sp_err *err);
void sp_shard_batch_free(sp_shard_batch *b);

/* Encoded shards: the bytes of records [first, first+n), what `bytes` of
 * sp_shard_read_encoded must hold; 0 for a pixel shard or a range outside
 * the shard. */
uint64_t sp_shard_encoded_size(const sp_shard *s, uint64_t first, uint64_t n);
/* Reads records [first, first+n) of an encoded shard: into bytes
 * (sp_shard_encoded_size bytes, the records back to back), offsets (n+1
 * entries: record i is bytes[offsets[i]:offsets[i+1]], offsets[0] = 0),
 * shapes (n x 3: decoded H, W, C), codecs (n, enum sp_codec), labels,
 * labels2 and stored checksums; any output may be NULL. Offsets, shapes and
 * codecs come from memory (loaded and checked at open), or for a shard
 * opened with sp_shard_open_lane from its index's chunks (checked as read);
 * bytes are one read.
 * The bytes read are checked against the stored XXH3 checksums (unless
 * sp_shard_set_verify turned that off): a mismatch is -1 with SP_EXIT_DATA
 * and a message naming the shard file and the record's index (and key, when
 * loaded). No decoding here. Like every call here it goes into HDF5, which
 * Debian builds without thread safety: callers on several threads hold one
 * lock around it (as shards/reader.c's h5_lock does) and decode outside it. */
int sp_shard_read_encoded(sp_shard *s, uint64_t first, uint64_t n, uint8_t *bytes, uint64_t *offsets,
                          uint32_t *shapes, uint8_t *codecs, int32_t *labels, int32_t *labels2, uint64_t *checksums,
                          sp_err *err);
/* The check sp_shard_read_encoded makes, apart, for a caller that read with
 * verification off (and checksums out) under its HDF5 lock and hashes
 * outside it: offsets (n+1, as sp_shard_read_encoded gives them), bytes and
 * checksums of records [first, first+n) as read. No HDF5 call. 0, or -1 with SP_EXIT_DATA naming the shard, record and key. */
int sp_shard_check_encoded(const sp_shard *s, uint64_t first, uint64_t n, const uint64_t *offsets,
                           const uint8_t *bytes, const uint64_t *checksums, sp_err *err);

#endif
