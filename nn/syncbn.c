/* Synchronized batchnorm (--sync-bn): training-mode statistics and backward sums over every rank's part of the batch. */
#include <omp.h>

#include "nn/dist.h"
#include "nn/layer_kinds.h"
#include "nn/row_sums.h"


/* Channels are summed and reduced CHUNK at a time through one static
 * buffer: no allocation on the step's path, and at most two reductions per
 * pass for the resnets' 2048 channels. */
#define CHUNK 1024
static double sums[2 * CHUNK + 1];

static double channel_sum(const float *x, int B, size_t in, size_t hw, int c)
{
    double s = 0;
    for (int b = 0; b < B; b++)
        s += row_sum(x + (size_t)b * in + (size_t)c * hw, hw);
    return s;
}

static double channel_sq_dev(const float *x, int B, size_t in, size_t hw, int c, float m)
{
    double s = 0;
    for (int b = 0; b < B; b++)
        s += row_sq_dev(x + (size_t)b * in + (size_t)c * hw, m, hw);
    return s;
}

/* As nn_batchnorm_forward in training mode, with the mean and the (biased)
 * variance over the global batch: sums of x, then of (x - mean)^2, each
 * reduced over the ranks; the running variance's unbiased count is global. */
void nn_batchnorm_forward_sync(nn_layer *l, const float *x, int B)
{
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    for (int c0 = 0; c0 < l->c; c0 += CHUNK) {
        int k = l->c - c0 < CHUNK ? l->c - c0 : CHUNK;
#pragma omp parallel for schedule(static) num_threads(l->threads)
        for (int j = 0; j < k; j++)
            sums[j] = channel_sum(x, B, in, hw, c0 + j);
        sums[k] = (double)B * (double)hw;
        nn_dist_sum_doubles(sums, (size_t)k + 1);
        double cnt = sums[k];
#pragma omp parallel for schedule(static) num_threads(l->threads)
        for (int j = 0; j < k; j++)
            l->mean[c0 + j] = (float)(sums[j] / cnt);
#pragma omp parallel for schedule(static) num_threads(l->threads)
        for (int j = 0; j < k; j++)
            sums[j] = channel_sq_dev(x, B, in, hw, c0 + j, l->mean[c0 + j]);
        nn_dist_sum_doubles(sums, (size_t)k);
#pragma omp parallel for schedule(static) num_threads(l->threads)
        for (int j = 0; j < k; j++) {
            int c = c0 + j;
            nn_batchnorm_batch_stats(l, c, l->mean[c], sums[j], cnt);
            float mean = l->mean[c], istd = l->istd[c];
            float gamma = l->weight->w[c], beta = l->bias->w[c];
            for (int b = 0; b < B; b++) {
                const float *xs = x + (size_t)b * in + (size_t)c * hw;
                float *xh = l->xhat + (size_t)b * in + (size_t)c * hw, *y = l->y + (size_t)b * in + (size_t)c * hw;
                for (size_t i = 0; i < hw; i++) {
                    xh[i] = (xs[i] - mean) * istd;
                    float v = gamma * xh[i] + beta;
                    y[i] = l->relu && v < 0 ? 0.0f : v;
                }
            }
        }
    }
}

/* As nn_batchnorm_backward: the parameter gradients are the rank's own sums
 * (nn_dist_sum_gradients adds the ranks' up), the input gradient takes the
 * global sums of g' and g' * xhat over the global count. */
void nn_batchnorm_backward_sync(nn_layer *l, const float *dy, int B)
{
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    for (int c0 = 0; c0 < l->c; c0 += CHUNK) {
        int k = l->c - c0 < CHUNK ? l->c - c0 : CHUNK;
#pragma omp parallel for schedule(static) num_threads(l->threads)
        for (int j = 0; j < k; j++) {
            int c = c0 + j;
            double sg = 0, sgx = 0;
            for (int b = 0; b < B; b++)
                row_grad_sums(dy + (size_t)b * in + (size_t)c * hw, l->y + (size_t)b * in + (size_t)c * hw,
                              l->xhat + (size_t)b * in + (size_t)c * hw, hw, l->relu, &sg, &sgx);
            l->bias->g[c] = (float)sg;
            l->weight->g[c] = (float)sgx;
            sums[j] = sg, sums[k + j] = sgx;
        }
        sums[2 * k] = (double)B * (double)hw;
        nn_dist_sum_doubles(sums, 2 * (size_t)k + 1);
        if (!l->need_dx)
            continue;
        float cnt = (float)sums[2 * k];
#pragma omp parallel for schedule(static) num_threads(l->threads)
        for (int j = 0; j < k; j++) {
            int c = c0 + j;
            float kk = l->weight->w[c] * l->istd[c], mdb = (float)sums[j] / cnt, mdg = (float)sums[k + j] / cnt;
            for (int b = 0; b < B; b++) {
                const float *g = dy + (size_t)b * in + (size_t)c * hw, *y = l->y + (size_t)b * in + (size_t)c * hw;
                const float *xh = l->xhat + (size_t)b * in + (size_t)c * hw;
                float *dx = l->dx + (size_t)b * in + (size_t)c * hw;
                for (size_t i = 0; i < hw; i++) {
                    float gi = l->relu && y[i] <= 0 ? 0.0f : g[i];
                    dx[i] = kk * (gi - mdb - xh[i] * mdg);
                }
            }
        }
    }
}
