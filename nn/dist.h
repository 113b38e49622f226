/* Data-parallel training over MPI ranks: rank and size, gradient sums, synchronized batchnorm; one rank without MPI. */
#ifndef SP_NN_DIST_H
#define SP_NN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"
#include "nn/nn.h"

/* The process's place among the ranks of one training run. A process is
 * rank 0 of 1, and nothing of MPI is loaded, unless the environment says an
 * MPI launcher started it with more than one rank: OMPI_COMM_WORLD_SIZE
 * (Open MPI's mpirun), PMI_SIZE (Slurm's srun with PMI-2) or PMIX_RANK with
 * SLURM_NTASKS (srun --mpi=pmix). Then Open MPI's libmpi.so.40 is opened at
 * run time (dlopen) and MPI_Init'ed: the binary has no link-time dependency on
 * MPI, and a machine without it builds and runs everything else.
 * 0, or -1 with err (SP_EXIT_SYSTEM) when the launcher says several ranks but
 * libmpi cannot be loaded. Call once, before any other nn_dist_ function.
 * An error inside MPI itself (a rank lost, a broken link) is MPI's to
 * handle: under its default MPI_ERRORS_ARE_FATAL the launcher ends the job. */
int nn_dist_init(sp_err *err);
/* MPI_Finalize when nn_dist_init started MPI; call on success only (after a
 * failure a rank exits without it, and the launcher stops the others). */
void nn_dist_finalize(void);

int nn_dist_rank(void);       /* 0..size-1; 0 without MPI */
int nn_dist_size(void);       /* ranks in the run; 1 without MPI */
int nn_dist_local_size(void); /* ranks on this node (OMPI_COMM_WORLD_LOCAL_SIZE, SLURM_NTASKS_PER_NODE), >= 1 */

/* Sums v[0..n) over the ranks in place (MPI_Allreduce, MPI_SUM); every rank
 * gets the same values. Nothing to do with one rank. The seconds spent in
 * these sums add up in nn_dist_reduce_seconds. */
void nn_dist_sum_doubles(double *v, size_t n);
/* The gradients of a net, parameter after parameter, form one stream of
 * floats cut into buckets of NN_DIST_BUCKET floats (the last one shorter),
 * each summed over the ranks by one allreduce. 2^16 floats (256 KiB): small
 * enough that resnet20's 272,000 gradients make 5 buckets, of which the
 * last 4 can be sent while the first layers' backward runs; resnet50's 25.6
 * million make 391. */
#define NN_DIST_BUCKET (1u << 16)
/* Every parameter's gradient of net summed over the ranks, bucket by bucket
 * (pack, MPI_Allreduce, unpack), in stream order. Nothing to do with one
 * rank. -1 with err (SP_EXIT_SYSTEM) when the bucket cannot be allocated. */
int nn_dist_sum_gradients(const nn_net *net, sp_err *err);
/* The same sums overlapped with the backward pass, for a training step:
 *     nn_dist_grad_begin(net, err);
 *     nn_backward_each(net, dlogits, B, nn_dist_grad_ready, NULL, err);
 *     nn_dist_grad_end(net, err);
 * nn_dist_grad_ready(ctx, first) is told that params[first..nparams) hold
 * their final gradients (the layers finish last to first): every bucket
 * that lies wholly among them is packed and its MPI_Iallreduce started,
 * and the sums under way are tested (MPI_Test), which is where a rank
 * without a progress thread moves them on. nn_dist_grad_end starts the
 * buckets left, in the same order, waits for every sum and unpacks it.
 * Each bucket holds the same floats, summed by the same operation, as in
 * nn_dist_sum_gradients, and every rank starts them in the same order (last
 * bucket first); with 2 ranks each element is a single a + b, so both give
 * the same bits (tested); with more, Open MPI's non-blocking algorithm may
 * add the ranks' values in another order than its blocking one. At most
 * NN_DIST_INFLIGHT sums are under way at once (the 17th waits for the
 * first). With overlap off (nn_dist_set_overlap(0)) or one rank, begin and
 * ready do nothing and end is nn_dist_sum_gradients. begin and end: 0, or
 * -1 with err (SP_EXIT_SYSTEM) when the buckets cannot be allocated.
 * Seconds inside MPI calls (start, tests, waits) add up in
 * nn_dist_reduce_seconds. */
#define NN_DIST_INFLIGHT 16
int nn_dist_grad_begin(const nn_net *net, sp_err *err);
void nn_dist_grad_ready(void *ctx, int first);
int nn_dist_grad_end(const nn_net *net, sp_err *err);
/* Whether nn_dist_grad_* overlap the sums with the backward: on unless the
 * environment variable SP_ALLREDUCE_OVERLAP is "0" when nn_dist_init runs.
 * Every rank must hold the same setting (the buckets are started in another
 * order without it). */
void nn_dist_set_overlap(int on);
int nn_dist_overlap(void);
double nn_dist_reduce_seconds(void);
/* The buckets summed so far, and how many of them nn_dist_grad_ready
 * started while the backward had layers with parameters left to run
 * (params[0] not yet final; 0 with overlap off). */
long nn_dist_buckets_summed(void);
long nn_dist_buckets_early(void);

/* One thing every rank of a run must hold the same (an option, the shard
 * set, the checkpoint's position, the weights): its name in messages
 * ("--batch"), a digest of its value and the value as shown ("64"). */
typedef struct nn_dist_field {
    const char *name;
    uint64_t digest;
    char shown[48];
} nn_dist_field;
/* Compares every rank's f[0..n) with rank 0's (four small MPI_Allreduces;
 * every rank must pass the same n, and nothing to do with one rank). 0 when
 * all agree; else -1 on every rank with err (SP_EXIT_USAGE) naming the first
 * field that differs, rank 0's value and the lowest differing rank's. Ranks
 * that disagreed would hang in, or overrun, each other's allreduces. */
int nn_dist_agree(const nn_dist_field *f, int n, sp_err *err);

/* Synchronized batchnorm (--sync-bn): with on, a training-mode batchnorm
 * takes its mean and variance over the global batch (every rank's records)
 * instead of the rank's own, and its backward the global sums; its parameter
 * gradients stay the rank's own, summed with the others by
 * nn_dist_sum_gradients. With one rank the same sums in the same order as
 * norm.c: the same values to the bit. */
void nn_dist_set_sync_bn(int on);
int nn_dist_sync_bn(void);

/* Synchronized batchnorm's forward (training mode) and backward (syncbn.c),
 * for norm.c to call when nn_dist_sync_bn(); the same contract as
 * nn_batchnorm_forward and nn_batchnorm_backward (nn/layer_kinds.h). */
void nn_batchnorm_forward_sync(nn_layer *l, const float *x, int B);
void nn_batchnorm_backward_sync(nn_layer *l, const float *dy, int B);

#endif
