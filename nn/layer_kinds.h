/* The layer kinds' forward and backward passes, each kind in its own file, for the dispatch in layers.c; internal to nn/.
 *
 * The calls go one way: layers.c calls these files, and they call nothing
 * of layers.c (the shape helpers are inline, nn_share here and the layer
 * sizes in nn.h; tests/tools/test_nn_calls.sh holds them to it).
 *
 * Shapes in the comments of those files are per batch; B is the batch size.
 * Each forward reads x (B x in) and writes l->y (B x out); each backward
 * reads dy (B x out), writes l->dx (B x in) when l->need_dx and sets the
 * parameter gradients. */
#ifndef SP_NN_LAYER_KINDS_H
#define SP_NN_LAYER_KINDS_H

#include "nn/nn.h"

void nn_dense_forward(nn_layer *l, const float *x, int B);      /* dense.c */
void nn_dense_backward(nn_layer *l, const float *dy, int B);
void nn_conv_forward(nn_layer *l, const float *x, int B);       /* conv.c */
void nn_conv_backward(nn_layer *l, const float *dy, int B);
void nn_maxpool_forward(nn_layer *l, const float *x, int B);    /* pool.c */
void nn_maxpool_backward(nn_layer *l, const float *dy, int B);
void nn_avgpool_forward(nn_layer *l, const float *x, int B);
void nn_avgpool_backward(nn_layer *l, const float *dy, int B);
void nn_gap_forward(nn_layer *l, const float *x, int B);
void nn_gap_backward(nn_layer *l, const float *dy, int B);
void nn_batchnorm_forward(nn_layer *l, const float *x, int B, int train); /* norm.c */
void nn_batchnorm_backward(nn_layer *l, const float *dy, int B);
/* Channel c's statistics from its batch, the mean and ss, the sum of squared
 * deviations from it over cnt values: sets l->mean[c] and l->istd[c]
 * (1/sqrt(biased variance + eps)) and moves the running mean and the
 * running (unbiased) variance by the momentum, as PyTorch (norm.c). Every
 * form of batch norm (norm.c, syncbn.c, norm_blocked.c) takes it, so their
 * statistics are made alike to the bit. */
void nn_batchnorm_batch_stats(nn_layer *l, int c, float mean, double ss, double cnt);
/* The same from the running statistics, for evaluation. */
void nn_batchnorm_running_stats(nn_layer *l, int c);
void nn_batchnorm_forward_blocked(nn_layer *l, const float *x, int B, int train); /* norm_blocked.c */
void nn_batchnorm_backward_blocked(nn_layer *l, const float *dy, int B);
void nn_relu_forward(nn_layer *l, const float *x, int B);       /* relu.c */
void nn_relu_backward(nn_layer *l, const float *dy, int B);
/* out = dy where v > 0, else 0: the gradient through a relu whose input (or
 * output) is v, for n values over threads. out may be dy itself
 * (elementwise; `omp simd` vectorises it without restrict). */
void nn_relu_gradient(const float *v, const float *dy, float *out, size_t n, int threads);

/* [*lo, *hi): part t of T of [0, n), in order. */
static inline void nn_share(int n, int t, int T, int *lo, int *hi)
{
    *lo = (int)((long)n * t / T);
    *hi = (int)((long)n * (t + 1) / T);
}

#endif
