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
    int rank, size, sync_bn;
    double reduce_seconds;
    float *bucket;
    mpi_handle comm_world, type_float, type_double, op_sum;
    int (*init)(int *, char ***);
    int (*finalize)(void);
    int (*comm_rank)(mpi_handle, int *);
    int (*comm_size)(mpi_handle, int *);
    int (*allreduce)(const void *, void *, int, mpi_handle, mpi_handle, mpi_handle);
} mpi = {.size = 1};

#define MPI_IN_PLACE_ ((void *)1) /* Open MPI's MPI_IN_PLACE */

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
            memset(&mpi, 0, sizeof mpi), mpi.size = 1;
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
    free(mpi.bucket);
    mpi.bucket = NULL;
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

/* The gradients, parameter after parameter, as one stream of floats cut
 * into buckets: each bucket is packed, summed and unpacked in turn. */
int nn_dist_sum_gradients(const nn_net *net, sp_err *err)
{
    if (mpi.size == 1)
        return 0;
    if (!mpi.bucket && !(mpi.bucket = malloc(NN_DIST_BUCKET * sizeof *mpi.bucket)))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    int p0 = 0;      /* the bucket starts in parameter p0 at offset off0 */
    size_t off0 = 0;
    while (p0 < net->nparams) {
        size_t fill = 0;
        int p = p0;
        size_t off = off0;
        while (p < net->nparams && fill < NN_DIST_BUCKET) { /* pack */
            const nn_param *q = net->params[p];
            size_t take = q->n - off < NN_DIST_BUCKET - fill ? q->n - off : NN_DIST_BUCKET - fill;
            memcpy(mpi.bucket + fill, q->g + off, take * sizeof(float));
            fill += take, off += take;
            if (off == q->n)
                p++, off = 0;
        }
        sum_floats(mpi.bucket, fill);
        size_t at = 0;
        while (at < fill) { /* unpack into the same places */
            const nn_param *q = net->params[p0];
            size_t take = q->n - off0 < fill - at ? q->n - off0 : fill - at;
            memcpy(q->g + off0, mpi.bucket + at, take * sizeof(float));
            at += take, off0 += take;
            if (off0 == q->n)
                p0++, off0 = 0;
        }
    }
    return 0;
}

double nn_dist_reduce_seconds(void) { return mpi.reduce_seconds; }

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
