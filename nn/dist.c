/* Data-parallel training over MPI ranks (nn/dist.h): Open MPI's libmpi opened at run time, gradient sums in buckets. */
#define _POSIX_C_SOURCE 200809L
#include "nn/dist.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Open MPI's ABI (libmpi.so.40, Open MPI 3.0 to 5): handles are pointers, and
 * MPI_COMM_WORLD, MPI_FLOAT, MPI_DOUBLE and MPI_SUM are the addresses of the
 * library's predefined objects (mpi.h's OMPI_PREDEFINED_GLOBAL). */
typedef void *mpi_handle;
static struct {
    void *lib;
    int rank, size, sync_bn, overlap;
    double reduce_seconds;
    long buckets_summed, buckets_early; /* every bucket's sum, and those started during a backward */
    float *bucket;
    mpi_handle comm_world, type_float, type_double, op_sum;
    int (*init)(int *, char ***);
    int (*finalize)(void);
    int (*comm_rank)(mpi_handle, int *);
    int (*comm_size)(mpi_handle, int *);
    int (*allreduce)(const void *, void *, int, mpi_handle, mpi_handle, mpi_handle);
    int (*iallreduce)(const void *, void *, int, mpi_handle, mpi_handle, mpi_handle, mpi_handle *);
    int (*test)(mpi_handle *, int *, void *);
    int (*wait)(mpi_handle *, void *);
    /* the step's gradient sums (nn_dist_grad_begin to nn_dist_grad_end) */
    const nn_net *net;      /* the net being summed, NULL outside a step */
    size_t *off;            /* off[p]: where params[p] starts in the stream of floats; off[nparams]: the total */
    int offs;               /* the entries off holds */
    int buckets, next;      /* the step's bucket count; buckets next..buckets-1 are started */
    float *slot[NN_DIST_INFLIGHT];  /* one bucket's floats each, NN_DIST_BUCKET */
    mpi_handle req[NN_DIST_INFLIGHT];
    int slot_bucket[NN_DIST_INFLIGHT]; /* the bucket a slot's sum is for, -1 when the slot is free */
} mpi = {.size = 1, .overlap = 1};

#define MPI_IN_PLACE_ ((void *)1)      /* Open MPI's MPI_IN_PLACE */
#define MPI_STATUS_IGNORE_ ((void *)0) /* and MPI_STATUS_IGNORE */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The rank count the launcher announces in the environment; 1 when none does. */
static long launcher_size(void)
{
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    if (!s)
        s = getenv("PMI_SIZE");
    if (!s && getenv("PMIX_RANK"))
        s = getenv("SLURM_NTASKS");
    long n = s ? strtol(s, NULL, 10) : 1;
    return n > 1 ? n : 1;
}

int nn_dist_init(sp_err *err)
{
    const char *ov = getenv("SP_ALLREDUCE_OVERLAP");
    mpi.overlap = !(ov && strcmp(ov, "0") == 0);
    if (launcher_size() == 1)
        return 0;
    /* RTLD_GLOBAL: Open MPI's own components, opened by libmpi, resolve its symbols */
    mpi.lib = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
    if (!mpi.lib)
        return sp_fail(err, SP_EXIT_SYSTEM,
                       "started by an MPI launcher with %ld ranks, but Open MPI's library cannot be loaded: %s "
                       "(install openmpi-bin)",
                       launcher_size(), dlerror());
    struct {
        const char *name;
        void **at;
    } syms[] = {
        {"MPI_Init", (void **)&mpi.init},
        {"MPI_Finalize", (void **)&mpi.finalize},
        {"MPI_Comm_rank", (void **)&mpi.comm_rank},
        {"MPI_Comm_size", (void **)&mpi.comm_size},
        {"MPI_Allreduce", (void **)&mpi.allreduce},
        {"MPI_Iallreduce", (void **)&mpi.iallreduce},
        {"MPI_Test", (void **)&mpi.test},
        {"MPI_Wait", (void **)&mpi.wait},
        {"ompi_mpi_comm_world", &mpi.comm_world},
        {"ompi_mpi_float", &mpi.type_float},
        {"ompi_mpi_double", &mpi.type_double},
        {"ompi_mpi_op_sum", &mpi.op_sum},
    };
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
        void *p = dlsym(mpi.lib, syms[i].name);
        if (!p) {
            sp_fail(err, SP_EXIT_SYSTEM, "libmpi.so.40 has no %s: not Open MPI's library", syms[i].name);
            dlclose(mpi.lib);
            memset(&mpi, 0, sizeof mpi), mpi.size = 1, mpi.overlap = 1;
            return -1;
        }
        memcpy(syms[i].at, &p, sizeof p);
    }
    if (mpi.init(NULL, NULL) != 0 || mpi.comm_rank(mpi.comm_world, &mpi.rank) != 0 ||
        mpi.comm_size(mpi.comm_world, &mpi.size) != 0)
        return sp_fail(err, SP_EXIT_SYSTEM, "MPI_Init failed");
    return 0;
}

void nn_dist_finalize(void)
{
    if (mpi.lib)
        mpi.finalize();
    free(mpi.bucket), free(mpi.off);
    mpi.bucket = NULL, mpi.off = NULL, mpi.offs = 0, mpi.net = NULL;
    for (int s = 0; s < NN_DIST_INFLIGHT; s++)
        free(mpi.slot[s]), mpi.slot[s] = NULL;
}

int nn_dist_rank(void) { return mpi.rank; }
int nn_dist_size(void) { return mpi.size; }

int nn_dist_local_size(void)
{
    const char *s = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!s)
        s = getenv("SLURM_NTASKS_PER_NODE");
    long n = s && mpi.size > 1 ? strtol(s, NULL, 10) : 1;
    return n >= 1 && n <= mpi.size ? (int)n : 1;
}

void nn_dist_sum_doubles(double *v, size_t n)
{
    if (mpi.size == 1 || n == 0)
        return;
    double t0 = now();
    mpi.allreduce(MPI_IN_PLACE_, v, (int)n, mpi.type_double, mpi.op_sum, mpi.comm_world);
    mpi.reduce_seconds += now() - t0;
}

/* One bucket's floats summed over the ranks in place. */
static void sum_floats(float *v, size_t n)
{
    double t0 = now();
    mpi.allreduce(MPI_IN_PLACE_, v, (int)n, mpi.type_float, mpi.op_sum, mpi.comm_world);
    mpi.reduce_seconds += now() - t0;
}

/* The gradients of net, parameter after parameter, are one stream of floats
 * cut into buckets of NN_DIST_BUCKET: bucket j is the stream's floats from
 * j * NN_DIST_BUCKET, the last one shorter. Sets mpi.off for net and
 * mpi.buckets. */
static int stream_plan(const nn_net *net, sp_err *err)
{
    if (mpi.offs < net->nparams + 1) {
        size_t *grown = realloc(mpi.off, (size_t)(net->nparams + 1) * sizeof *grown);
        if (!grown)
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        mpi.off = grown, mpi.offs = net->nparams + 1;
    }
    mpi.off[0] = 0;
    for (int p = 0; p < net->nparams; p++)
        mpi.off[p + 1] = mpi.off[p] + net->params[p]->n;
    size_t total = mpi.off[net->nparams];
    mpi.buckets = (int)((total + NN_DIST_BUCKET - 1) / NN_DIST_BUCKET);
    return 0;
}

/* Bucket j's float count. */
static size_t bucket_floats(const nn_net *net, int j)
{
    size_t from = (size_t)j * NN_DIST_BUCKET, total = mpi.off[net->nparams];
    return total - from < NN_DIST_BUCKET ? total - from : NN_DIST_BUCKET;
}

/* Bucket j copied from the gradients into buf (pack), or back (!pack). */
static void bucket_copy(const nn_net *net, int j, float *buf, int pack)
{
    size_t at = (size_t)j * NN_DIST_BUCKET, end = at + bucket_floats(net, j);
    int p = 0;
    while (mpi.off[p + 1] <= at)
        p++;
    for (; at < end; p++) {
        size_t off = at - mpi.off[p], take = mpi.off[p + 1] - at < end - at ? mpi.off[p + 1] - at : end - at;
        float *g = net->params[p]->g + off, *b = buf + (at - (size_t)j * NN_DIST_BUCKET);
        memcpy(pack ? b : g, pack ? g : b, take * sizeof(float));
        at += take;
    }
}

int nn_dist_sum_gradients(const nn_net *net, sp_err *err)
{
    if (mpi.size == 1)
        return 0;
    if (!mpi.bucket && !(mpi.bucket = malloc(NN_DIST_BUCKET * sizeof *mpi.bucket)))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (stream_plan(net, err))
        return -1;
    for (int j = 0; j < mpi.buckets; j++) {
        bucket_copy(net, j, mpi.bucket, 1);
        sum_floats(mpi.bucket, bucket_floats(net, j));
        bucket_copy(net, j, mpi.bucket, 0);
    }
    mpi.buckets_summed += mpi.buckets;
    return 0;
}

void nn_dist_set_overlap(int on) { mpi.overlap = on; }
int nn_dist_overlap(void) { return mpi.overlap; }

/* The sum in slot s done (wait: waits for it, else only tests): its bucket
 * unpacked into the gradients and the slot freed. 1 when done. */
static int slot_finish(int s, int wait)
{
    if (mpi.slot_bucket[s] < 0)
        return 1;
    int done = 1;
    double t0 = now();
    if (wait)
        mpi.wait(&mpi.req[s], MPI_STATUS_IGNORE_);
    else
        mpi.test(&mpi.req[s], &done, MPI_STATUS_IGNORE_);
    mpi.reduce_seconds += now() - t0;
    if (done) {
        bucket_copy(mpi.net, mpi.slot_bucket[s], mpi.slot[s], 0);
        mpi.slot_bucket[s] = -1;
    }
    return done;
}

/* Starts bucket j's sum in its slot (j % NN_DIST_INFLIGHT), once the bucket
 * that held the slot before is done. */
static void bucket_start(int j)
{
    int s = j % NN_DIST_INFLIGHT;
    slot_finish(s, 1);
    bucket_copy(mpi.net, j, mpi.slot[s], 1);
    double t0 = now();
    mpi.iallreduce(MPI_IN_PLACE_, mpi.slot[s], (int)bucket_floats(mpi.net, j), mpi.type_float, mpi.op_sum,
                   mpi.comm_world, &mpi.req[s]);
    mpi.reduce_seconds += now() - t0;
    mpi.slot_bucket[s] = j;
    mpi.buckets_summed++;
}

int nn_dist_grad_begin(const nn_net *net, sp_err *err)
{
    mpi.net = NULL;
    if (mpi.size == 1 || !mpi.overlap)
        return 0;
    for (int s = 0; s < NN_DIST_INFLIGHT; s++)
        if (!mpi.slot[s] && !(mpi.slot[s] = malloc(NN_DIST_BUCKET * sizeof(float))))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (stream_plan(net, err))
        return -1;
    for (int s = 0; s < NN_DIST_INFLIGHT; s++)
        mpi.slot_bucket[s] = -1;
    mpi.net = net, mpi.next = mpi.buckets;
    return 0;
}

void nn_dist_grad_ready(void *ctx, int first)
{
    (void)ctx;
    if (!mpi.net)
        return;
    /* every bucket that starts at or after params[first] is whole: start them, last first */
    while (mpi.next > 0 && (size_t)(mpi.next - 1) * NN_DIST_BUCKET >= mpi.off[first])
        bucket_start(--mpi.next), mpi.buckets_early += first > 0; /* some gradients still to come */
    /* without a progress thread, a rank's MPI moves the sums on only inside
     * its calls: the sums under way tested in the order they started, up to
     * the first not done (one test that finds nothing done: Open MPI's
     * mpi_yield_when_idle yields the core there) */
    for (int j = mpi.next + NN_DIST_INFLIGHT - 1; j >= mpi.next; j--)
        if (j < mpi.buckets && mpi.slot_bucket[j % NN_DIST_INFLIGHT] == j && !slot_finish(j % NN_DIST_INFLIGHT, 0))
            break;
}

int nn_dist_grad_end(const nn_net *net, sp_err *err)
{
    if (!mpi.net)
        return nn_dist_sum_gradients(net, err);
    while (mpi.next > 0)
        bucket_start(--mpi.next);
    for (int s = 0; s < NN_DIST_INFLIGHT; s++)
        slot_finish(s, 1);
    mpi.net = NULL;
    return 0;
}

double nn_dist_reduce_seconds(void) { return mpi.reduce_seconds; }
long nn_dist_buckets_summed(void) { return mpi.buckets_summed; }
long nn_dist_buckets_early(void) { return mpi.buckets_early; }

enum { SHOWN_WORDS = sizeof(((nn_dist_field *)0)->shown) / 4 };

/* s (SHOWN_WORDS * 4 bytes) as 32-bit words in doubles, which a sum of one
 * rank's words and the others' zeros carries exactly */
static void shown_to_doubles(const char *s, double *v)
{
    for (int i = 0; i < SHOWN_WORDS; i++) {
        uint32_t w;
        memcpy(&w, s + 4 * i, 4);
        v[i] = (double)w;
    }
}

static void shown_from_doubles(const double *v, char *s)
{
    for (int i = 0; i < SHOWN_WORDS; i++) {
        uint32_t w = (uint32_t)v[i];
        memcpy(s + 4 * i, &w, 4);
    }
    s[4 * SHOWN_WORDS - 1] = 0;
}

int nn_dist_agree(const nn_dist_field *f, int n, sp_err *err)
{
    if (mpi.size == 1 || n <= 0)
        return 0;
    size_t len = 2 * (size_t)n;
    if (len < (size_t)mpi.size)
        len = (size_t)mpi.size;
    if (len < 2 * SHOWN_WORDS)
        len = 2 * SHOWN_WORDS;
    double *v = calloc(len, sizeof *v);
    unsigned char *mine = calloc((size_t)n, 1);
    if (!v || !mine) { /* the others wait in the sum: the launcher ends them when this rank exits */
        free(v), free(mine);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    /* rank 0's digests as two 32-bit halves each: a broadcast through the sum */
    for (int i = 0; mpi.rank == 0 && i < n; i++)
        v[2 * i] = (double)(uint32_t)(f[i].digest >> 32), v[2 * i + 1] = (double)(uint32_t)f[i].digest;
    nn_dist_sum_doubles(v, 2 * (size_t)n);
    for (int i = 0; i < n; i++) /* then, field by field, how many ranks differ from it */
        mine[i] = ((uint64_t)v[2 * i] << 32 | (uint64_t)v[2 * i + 1]) != f[i].digest;
    for (int i = 0; i < n; i++)
        v[i] = mine[i];
    nn_dist_sum_doubles(v, (size_t)n);
    int first = 0;
    while (first < n && v[first] == 0)
        first++;
    int rc = 0;
    if (first < n) { /* the lowest rank that differs there, then its value and rank 0's */
        memset(v, 0, len * sizeof *v);
        v[mpi.rank] = mine[first];
        nn_dist_sum_doubles(v, (size_t)mpi.size);
        int other = 1;
        while (other < mpi.size - 1 && v[other] == 0)
            other++;
        memset(v, 0, len * sizeof *v);
        if (mpi.rank == 0)
            shown_to_doubles(f[first].shown, v);
        if (mpi.rank == other)
            shown_to_doubles(f[first].shown, v + SHOWN_WORDS);
        nn_dist_sum_doubles(v, 2 * SHOWN_WORDS);
        char at0[sizeof f->shown], at_other[sizeof f->shown];
        shown_from_doubles(v, at0), shown_from_doubles(v + SHOWN_WORDS, at_other);
        rc = sp_fail(err, SP_EXIT_USAGE,
                     "the ranks disagree on %s: %s on rank 0, %s on rank %d (every rank must be started with the "
                     "same options, shard set and checkpoint)",
                     f[first].name, at0, at_other, other);
    }
    free(v), free(mine);
    return rc;
}

void nn_dist_set_sync_bn(int on) { mpi.sync_bn = on; }
int nn_dist_sync_bn(void) { return mpi.sync_bn; }
