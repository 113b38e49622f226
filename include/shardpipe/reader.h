/* libshardpipe-reader: read shardpipe shard sets from C.
 *
 *   spr_set *set = spr_open("shards/cifar10", "train", err, sizeof err);
 *   spr_iter_options o = {.batch = 128, .seed = epoch_seed, .flags = SPR_SHUFFLE, .threads = 2};
 *   spr_iter *it = spr_iter_open(set, &o, sizeof o);
 *   uint32_t n;
 *   while (spr_iter_next(it, pixels, labels, &n) > 0) train(pixels, labels, n);
 *   spr_iter_free(it);
 *   spr_close(set);
 *
 * Build with: cc ... $(pkg-config --cflags --libs shardpipe-reader)
 *
 * Contracts:
 *  - pixels are written row-major per record as stored: n x H x W x C values
 *    of spr_dtype (uint8, float16 bits, float32); labels as int32, -1 for none.
 *  - A set is one split of DIR/manifest.json. spr_open checks the manifest
 *    (at most 1,000,000 class names, no shard listed twice, shapes within
 *    65536 x 65536 x 16, known dtypes, totals that add up) and holds every
 *    listed shard to its entry (records, shape, dtype, split, class names).
 *    Handles are not shared between threads, except that an iterator's
 *    own threads read on their own.
 *  - Integrity: every record read (spr_read, spr_iter_next) is checked against
 *    the XXH3-64 its shard stores for it; a mismatch fails the call with a
 *    message naming the shard file and the record's index in it.
 *  - Functions that fail return a negative value (or NULL) and leave a
 *    message in spr_error(set) (spr_open: in the caller's buffer) and its
 *    kind in spr_errcode(set) (SPR_ERR_*).
 *  - Lifetime: spr_close may come before spr_iter_free of the set's
 *    iterators (a garbage collector frees in any order): the set stays
 *    alive until its last iterator is freed, and the call that drops the
 *    last reference frees it. No other call may follow spr_close on the set.
 *  - fork(): the library holds its reader threads out of HDF5 while a
 *    process forks (pthread_atfork), so the child may open sets of its own.
 *    Iterators and their threads do not cross a fork: in the child,
 *    spr_iter_next* on the parent's iterator fails (SPR_ERR_USAGE) and
 *    spr_iter_free releases its memory without touching the parent's
 *    threads.
 *  - Memory: an iterator holds threads + 1 shuffle windows (window_records,
 *    default 16 global batches, at most 32 MiB of records, is the global
 *    window: each partition's is its 1/partitions, a multiple of the records
 *    a partition gives a step, and a rank holds its partitions' windows, so
 *    about 1/nparts of it; 24 more bytes a record for labels, indices and the
 *    permutation) and, per thread, one open shard per partition of the rank
 *    (its HDF5 chunk cache and one compressed plus one decompressed chunk);
 *    never the whole set. The set keeps the
 *    pixel buffers of a finished iterator for the next one (at most 8).
 *  - Threads (spr_iter_open's threads): each fills whole windows ahead of
 *    the caller, in parallel, decompressing its own chunks; the caller copies
 *    its batches out of the ready windows in order. The batches do not
 *    depend on the thread count.
 *  - Order (docs/elastic-order.md): part p of P (spr_iter_new_part, or
 *    spr_iter_options' part and nparts) is rank p of a world of P, and the
 *    global batch is P x batch. The epoch's stream (the shards in the
 *    seed's order) is cut into `partitions` contiguous runs (sizes differ by
 *    at most one), each read through its own shuffle windows; every step
 *    takes global batch / partitions records from each, and rank p reads
 *    its 1/P of the partitions. So with SPR_SHUFFLE the records of each
 *    global step (every rank's batch at that step together) depend on the
 *    seed, the global batch and the partitions only, never on the world
 *    size, and a rank reads about 1/P of the bytes. Each spr_iter_next
 *    gives one step's records; the last steps may be short (a partition that
 *    ran out gives none), so a rank may get one batch fewer than another.
 */
#ifndef SHARDPIPE_READER_H
#define SHARDPIPE_READER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPR_VERSION "0.1.0"

enum spr_dtype { SPR_UINT8 = 1, SPR_FLOAT16 = 2, SPR_FLOAT32 = 3 };

typedef struct spr_set spr_set;
typedef struct spr_iter spr_iter;

/* Opens split ("train", "test", "val") of the shard set in dir. NULL on
 * failure, with the reason in err. */
spr_set *spr_open(const char *dir, const char *split, char *err, size_t err_len);
void spr_close(spr_set *s); /* accepts NULL; see Lifetime above */
const char *spr_error(const spr_set *s);
/* What the last failure on s was: */
enum {
    SPR_ERR_NONE = 0,
    SPR_ERR_DATA = 1,    /* the set does not fit its manifest, or lacks the split */
    SPR_ERR_USAGE = 2,   /* an argument out of range, or a call the set cannot serve */
    SPR_ERR_SYSTEM = 3,  /* I/O error, out of memory, a thread that could not start */
    SPR_ERR_CORRUPT = 4, /* a record that fails its checksum or cannot be decoded, a shard that is not what
                          * its manifest entry says: the shards are damaged */
};
int spr_errcode(const spr_set *s);
/* spr_open, with the kind of a failure (SPR_ERR_*) in *code when code is
 * not NULL (SPR_ERR_NONE on success). */
spr_set *spr_open_ex(const char *dir, const char *split, char *err, size_t err_len, int *code);

/* spr_open_ex for a set that may lie at a URL (http://, https://, file://;
 * dir itself may also be a URL in spr_open): its manifest is fetched
 * first, each shard is downloaded whole into the cache directory `cache`
 * (NULL: $SHARDPIPE_CACHE, else $XDG_CACHE_HOME/shardpipe, else
 * ~/.cache/shardpipe), checked against the manifest's sha256 as it streams
 * in, before it is opened; the cache holds at most cache_limit bytes (0:
 * $SHARDPIPE_CACHE_LIMIT, else no limit), evicting the shards whose next use
 * lies furthest ahead. Processes on one node share a cache, each shard
 * downloaded once. A cache_limit below the largest shard fails here
 * (SPR_ERR_USAGE). For a local dir the same as spr_open_ex. */
spr_set *spr_open_cached(const char *dir, const char *split, const char *cache, uint64_t cache_limit, char *err,
                         size_t err_len, int *code);

uint64_t spr_count(const spr_set *s);
void spr_shape(const spr_set *s, uint32_t *h, uint32_t *w, uint32_t *c);
int spr_dtype(const spr_set *s);
size_t spr_record_bytes(const spr_set *s); /* H * W * C * sizeof(dtype) */
int spr_num_classes(const spr_set *s);
const char *spr_class_name(const spr_set *s, int i); /* NULL when out of range */
/* Normalization parameters from the shards (sp-normalize): up to 4 channels
 * into mean/std (x/255 units); *applied = 1 when the pixels already are
 * normalized floats. Returns the channel count, 0 when there are none. */
int spr_normalization(const spr_set *s, double *mean, double *std, int *applied);

/* n uint8 records as stored (n x H x W x C) into n x C x H x W float32:
 * (x/255 - mean[c]) / std[c] with spr_normalization's values, x/255 for a
 * channel it has none for. 0, or -1 (spr_error) when the set is not uint8. */
int spr_normalize(spr_set *s, const void *pixels, uint64_t n, float *out);
/* The same for records of h x w as an iterator hands them out: a pixel
 * set's C channels, or an encoded set's view's 3 (whatever the shards'
 * shape says). */
int spr_normalize_hw(spr_set *s, const void *pixels, uint64_t n, uint32_t h, uint32_t w, float *out);

/* Random access: record index (0 .. count-1, in manifest order) into pixels
 * (spr_record_bytes) and *label (NULL: not wanted). 0 or -1. */
int spr_read(spr_set *s, uint64_t index, void *pixels, int32_t *label);

/* SPR_NEXT_SEED: spr_iter_options' next_seed holds the next epoch's seed. */
enum { SPR_SHUFFLE = 1, SPR_PREFETCH = 2, SPR_NEXT_SEED = 4 };

/* What a set's records hold (spr_kind): pixels as stored, or encoded images
 * (JPEG/PNG bytes as shipped or re-encoded: sp-decode --encoded), which an
 * iterator decodes through a view. spr_shape of an encoded set gives the
 * first shard's largest image, spr_record_bytes 0, and spr_read refuses. */
enum { SPR_PIXELS = 0, SPR_ENCODED = 1 };
int spr_kind(const spr_set *s);
/* Views of encoded images, decoded on the iterator's threads into size x
 * size x 3 uint8 (pipeline/views.h of the source tree tells the details):
 *  SPR_VIEW_TRAIN: torchvision's RandomResizedCrop(size, scale (0.08, 1),
 *    ratio (3/4, 4/3)) + horizontal flip, drawn from (seed, record index):
 *    the same epoch seed gives the same crops, on any thread count;
 *  SPR_VIEW_EVAL: Resize(size / 0.875) + CenterCrop(size), equal to
 *    torchvision's on PIL, antialiased.
 * SPR_VIEW_STORED (0) is the only view of a pixel set. */
enum { SPR_VIEW_STORED = 0, SPR_VIEW_TRAIN = 1, SPR_VIEW_EVAL = 2 };

/* One pass (epoch) over the set in batches. With SPR_SHUFFLE the shard order
 * and the records (through a shuffle window) are permuted by seed; with
 * SPR_PREFETCH a thread reads the next window while the caller uses this one.
 * window_records: 0 = 16 x batch. */
spr_iter *spr_iter_new(spr_set *s, uint32_t batch, uint64_t seed, int flags, uint32_t window_records);
/* Part `part` of `nparts` (rank of world: see Order above) of the epoch for
 * seed, starting after its first skip_records records
 * (a resume: the records come exactly as the uninterrupted part would go on).
 * NULL with spr_error when part >= nparts, nparts does not divide the
 * partitions, or out of memory. */
spr_iter *spr_iter_new_part(spr_set *s, uint32_t batch, uint64_t seed, int flags, uint32_t window_records,
                            uint32_t part, uint32_t nparts, uint64_t skip_records);
/* Everything spr_iter_new_part takes, and the thread count: zero-initialise
 * it, set what you need, and pass sizeof (fields are only ever appended, so
 * a caller built against an older header keeps working). */
typedef struct spr_iter_options {
    uint32_t batch;          /* records a batch, 1..SPR_MAX_BATCH */
    uint64_t seed;           /* the epoch's order */
    int flags;               /* SPR_SHUFFLE, SPR_NEXT_SEED (SPR_PREFETCH is ignored here: see threads) */
    uint32_t window_records; /* the shuffle window; 0 = the default above */
    uint32_t part, nparts;   /* part `part` of `nparts` (0 counts as 1) */
    uint64_t skip_records;   /* a resume: start after this many of the part's records */
    uint32_t threads;        /* reader threads filling windows ahead of the caller, 0 to SPR_MAX_THREADS;
                              * 0 = the caller reads each window when it needs it */
    int view;                /* SPR_VIEW_*: encoded sets need TRAIN or EVAL */
    uint32_t size;           /* the view's side, 1..4096 (encoded sets) */
    /* SPR_VIEW_TRAIN's RandomResizedCrop ranges: the crop's share of the
     * image's area in [scale_min, scale_max] within (0, 1], and its aspect
     * ratio (w/h) in [ratio_min, ratio_max] > 0; all four 0: torchvision's
     * (0.08, 1) and (3/4, 4/3). */
    double scale_min, scale_max, ratio_min, ratio_max;
    /* The largest source image (width x height) a view decodes; 0: the set's
     * own limit (its manifest's max_pixels, as sp-decode --max-pixels wrote
     * it), else 100 million. A set whose recorded limit is above this one
     * is refused here, before any record is read. */
    uint64_t max_pixels;
    /* The partitions of the canonical order (see Order above): they must
     * divide the global batch (batch x nparts), and nparts must divide them.
     * 0: with SPR_SHUFFLE the global batch's largest divisor up to 64; without
     * it nparts (each rank its contiguous share, in the shards' order). */
    uint32_t partitions;
    /* With SPR_NEXT_SEED in flags: the seed of the epoch the caller reads
     * after this one, with these options otherwise, from its start. A set at
     * a URL then hands its cache the next epoch's order of shards too: the
     * prefetch goes on into that epoch's first shards as this one ends (its
     * first batch need not wait for a download), and eviction weighs the
     * next uses in both epochs. A local set ignores it. */
    uint64_t next_seed;
} spr_iter_options;
#define SPR_MAX_THREADS 64
#define SPR_MAX_BATCH (1u << 24)
/* A shuffle window's pixels (window_records, or a batch, times a record's
 * bytes) at most: the iterator keeps threads + 1 of them. */
#define SPR_MAX_WINDOW_BYTES (1ull << 30)
/* The iterator opts describes (opts_size = sizeof *opts, at most that of
 * this header's struct); NULL with spr_error when a field is out of range
 * (a batch of 0, part >= nparts, too many threads, a window whose buffers
 * would pass SIZE_MAX), or out of memory.
 * spr_iter_new_part is this with threads = 1 under SPR_PREFETCH, else 0. */
spr_iter *spr_iter_open(spr_set *s, const spr_iter_options *opts, size_t opts_size);
/* Bytes of one record as the iterator hands it out: spr_record_bytes, or
 * size x size x 3 for a view. */
size_t spr_iter_record_bytes(const spr_iter *it);
/* Records the iterator's part holds in one epoch (skipped ones included). */
uint64_t spr_iter_records(const spr_iter *it);
/* Steps (calls of spr_iter_next that give records) of the part in one epoch,
 * skipped ones included; the partitions its order uses. */
uint64_t spr_iter_steps(const spr_iter *it);
uint32_t spr_iter_partitions(const spr_iter *it);
/* Bytes of images the iterator has read from its shards so far: compressed
 * chunks as stored (encoded sets: the encoded bytes), a chunk read twice
 * counting twice. */
uint64_t spr_iter_bytes_read(const spr_iter *it);
/* Fills the next step's records (at most batch: see Order above; after a
 * skip inside a step, the rest of that step) into pixels (batch x
 * spr_iter_record_bytes) and labels (batch values; NULL: not wanted);
 * returns the number (n, also in *n when n is not NULL), 0 at the end of the
 * epoch, -1 on error (spr_error). */
int spr_iter_next(spr_iter *it, void *pixels, int32_t *labels, uint32_t *n);
/* The same, plus each record's index in the set (as spr_read takes it) into
 * indices (batch values; NULL: not wanted). */
int spr_iter_next_indexed(spr_iter *it, void *pixels, int32_t *labels, uint64_t *indices, uint32_t *n);
/* The same, plus each record's second label (CIFAR-100's coarse one; -1 for
 * none) into labels2 (batch values; NULL: not wanted). */
int spr_iter_next_full(spr_iter *it, void *pixels, int32_t *labels, int32_t *labels2, uint64_t *indices,
                       uint32_t *n);
/* The message and kind of the iterator's last failure: its set's (valid
 * after spr_close too, as long as the iterator lives). */
const char *spr_iter_error(const spr_iter *it);
int spr_iter_errcode(const spr_iter *it);
void spr_iter_free(spr_iter *it); /* accepts NULL; stops and joins the iterator's threads */

/* ---- Mixing sets (docs/elastic-order.md, "Mixing sets") ----
 *
 * One epoch of global batches drawn from several opened sets by weight,
 * elastic and resumable as one set's canonical order. opts are those of
 * spr_iter_open (batch: this rank's records a step, of a global batch
 * B = batch x nparts; skip_records must be 0: a mix resumes by steps). The
 * mix has P partitions (opts' partitions; 0: with SPR_SHUFFLE
 * spr_mix_default_partitions(B), without it nparts), P dividing B and
 * nparts dividing P. Every set is read in its own canonical order with a global
 * batch of P records (one a partition), a "slot": a global step of the mix
 * is B / P slots, and slot t goes to the set i with the largest
 * weights[i] x (t + 1) - (slots set i had before t), the lowest i on a tie.
 * So after t slots every set has had within one slot of its share of them
 * (weights x t): the proportions are exact over an epoch, and each step's
 * within two slots (2P records) of them. A step's records are the sets' slots, in slot order; a rank's
 * batch is its partitions' records of each slot (at most batch records).
 *
 * A set's pass is ceil(records / P) slots; pass p of set i is read with
 * the seed drawn from (opts->seed, i, p). When a set's pass ends inside the
 * epoch: policies[i] SPR_MIX_REPEAT starts its next pass (its slots go
 * on); SPR_MIX_STOP ends the epoch with the step that held its last slot
 * (its later slots of that step give nothing). The epoch's steps:
 * epoch_steps when not 0, but no later than the first stop-set's end;
 * with epoch_steps 0, until the first stop-set's end, or, every set being
 * a repeat-set, until the end of the pass of the set that takes longest.
 * policies NULL: every set stops.
 *
 * A position is the global steps consumed (skip_steps): each set's slots
 * follow from it alone, so a mix saved at one world size resumes at any
 * other of the same B and P. Every set must hand out records of one shape
 * and dtype (an encoded set through opts' view), else NULL with a message
 * naming the set by its index. The sets stay the caller's: they must stay
 * open until spr_mix_free. Memory and threads: each set's pass under way is
 * an iterator of opts (threads + 1 windows, threads reader threads), so n
 * sets hold n of them. The epoch's end and a resume's position are found by
 * walking the slots from the first (at most 2^32 of them: weights too far
 * apart for the sets' sizes are refused). NULL with the reason in err (and its SPR_ERR_*
 * kind in *code when code is not NULL) on failure. */
enum { SPR_MIX_STOP = 0, SPR_MIX_REPEAT = 1 };
/* A mix's default partitions: the largest divisor of the global batch up
 * to 64 and up to global_batch / 8 (at least 1), so that a step holds at
 * least 8 slots where the batch allows (B = 256: 32 partitions, 8 slots). */
uint32_t spr_mix_default_partitions(uint64_t global_batch);
#define SPR_MAX_MIX_SETS 256
typedef struct spr_mix spr_mix;
spr_mix *spr_mix_open(spr_set *const *sets, const double *weights, const int *policies, uint32_t nsets,
                      const spr_iter_options *opts, size_t opts_size, uint64_t skip_steps, uint64_t epoch_steps,
                      char *err, size_t err_len, int *code);
/* The next global step's records of this rank: pixels (batch x
 * spr_mix_record_bytes), labels, labels2 and indices as spr_iter_next_full
 * gives them (each in its own set's classes and record indices), and into
 * sources (NULL: not wanted) the index of each record's set. Returns 1 for
 * a step (its records in *n, which may be 0 for a rank whose partitions of
 * every slot of the step ran out), 0 at the end of the epoch, -1 on error
 * (spr_mix_error). */
int spr_mix_next(spr_mix *m, void *pixels, int32_t *labels, int32_t *labels2, uint64_t *indices, int32_t *sources,
                 uint32_t *n);
/* The step spr_mix_next gave last, as every rank has it: into *global
 * (NULL: not wanted) its records over every rank, into *fewest (NULL: not
 * wanted) the fewest records a rank got of it, and into positions (NULL: not
 * wanted; room for opts' batch) the index of each of this rank's records in
 * the global batch, ascending: this rank's record k is record positions[k]
 * of the batch one process with the same global batch and partitions gets
 * at that step (a slot's records are its partitions', the ranks' in rank
 * order). Returns this rank's records of the step (spr_mix_next's *n); 0,
 * *global 0, before the first step. Per-record draws made in global order
 * (augmentation) replay the other ranks' records from it. */
uint32_t spr_mix_layout(const spr_mix *m, uint64_t *positions, uint64_t *global, uint32_t *fewest);
uint64_t spr_mix_steps(const spr_mix *m);      /* global steps in the epoch */
uint64_t spr_mix_step(const spr_mix *m);       /* global steps consumed so far (skipped ones included) */
uint32_t spr_mix_partitions(const spr_mix *m); /* P */
size_t spr_mix_record_bytes(const spr_mix *m);
/* Slots set i takes in the first `steps` global steps of the epoch. */
uint64_t spr_mix_slots(const spr_mix *m, uint32_t i, uint64_t steps);
uint64_t spr_mix_bytes_read(const spr_mix *m); /* every set's iterators' spr_iter_bytes_read, summed */
const char *spr_mix_error(const spr_mix *m);
int spr_mix_errcode(const spr_mix *m);
void spr_mix_free(spr_mix *m); /* accepts NULL */

#ifdef __cplusplus
}
#endif

#endif
