/* Batch normalization per channel: batch statistics in training, running ones in evaluation, an optional fused relu. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "nn/dist.h"
#include "nn/layer_kinds.h"
#include "nn/row_sums.h"

#define BN_MOMENTUM 0.1f

/* ---------------- batch normalization ---------------- */
/* per channel c over the B*h*w values; train: batch statistics (biased
 * variance), running ones updated with the unbiased variance, as PyTorch */

void nn_batchnorm_batch_stats(nn_layer *l, int c, float mean, double ss, double cnt)
{
    double var = ss / cnt;
    l->mean[c] = mean;
    l->istd[c] = (float)(1.0 / sqrt(var + l->eps));
    l->run_mean[c] = (1 - BN_MOMENTUM) * l->run_mean[c] + BN_MOMENTUM * mean;
    l->run_var[c] = (1 - BN_MOMENTUM) * l->run_var[c] + BN_MOMENTUM * (float)(cnt > 1 ? ss / (cnt - 1) : var);
}

void nn_batchnorm_running_stats(nn_layer *l, int c)
{
    l->mean[c] = l->run_mean[c];
    l->istd[c] = 1.0f / sqrtf(l->run_var[c] + l->eps);
}

/* Channels go to the threads; each channel's sums run in one order. With
 * l->relu the output is relu(bn(x)), and backward takes the gradient through
 * the relu first (where the output is 0, it is 0). */
void nn_batchnorm_forward(nn_layer *l, const float *x, int B, int train)
{
    if (l->cb) { /* the blocked layout: norm_blocked.c */
        nn_batchnorm_forward_blocked(l, x, B, train);
        return;
    }
    if (train && nn_dist_sync_bn()) { /* --sync-bn over MPI ranks: syncbn.c */
        nn_batchnorm_forward_sync(l, x, B);
        return;
    }
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    double cnt = (double)B * (double)hw;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int c = 0; c < l->c; c++) {
        if (train) {
            double s = 0, ss = 0;
            for (int b = 0; b < B; b++)
                s += row_sum(x + b * in + c * hw, hw);
            float m = (float)(s / cnt);
            for (int b = 0; b < B; b++)
                ss += row_sq_dev(x + b * in + c * hw, m, hw);
            nn_batchnorm_batch_stats(l, c, m, ss, cnt);
        } else {
            nn_batchnorm_running_stats(l, c);
        }
        float mean = l->mean[c], istd = l->istd[c];
        float gamma = l->weight->w[c], beta = l->bias->w[c];
        for (int b = 0; b < B; b++) {
            const float *restrict xs = x + b * in + c * hw;
            float *restrict xh = l->xhat + b * in + c * hw, *restrict y = l->y + b * in + c * hw;
            for (size_t i = 0; i < hw; i++) {
                xh[i] = (xs[i] - mean) * istd;
                float v = gamma * xh[i] + beta;
                y[i] = l->relu && v < 0 ? 0.0f : v;
            }
        }
    }
}

void nn_batchnorm_backward(nn_layer *l, const float *dy, int B)
{
    if (l->cb) {
        nn_batchnorm_backward_blocked(l, dy, B);
        return;
    }
    if (l->trained && nn_dist_sync_bn()) {
        nn_batchnorm_backward_sync(l, dy, B);
        return;
    }
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    float cnt = (float)B * (float)hw;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int c = 0; c < l->c; c++) {
        double dg = 0, db = 0;
        for (int b = 0; b < B; b++)
            row_grad_sums(dy + b * in + c * hw, l->y + b * in + c * hw, l->xhat + b * in + c * hw, hw, l->relu, &db,
                          &dg);
        l->weight->g[c] = (float)dg;
        l->bias->g[c] = (float)db;
        if (!l->need_dx)
            continue;
        float k = l->weight->w[c] * l->istd[c], mdb = (float)db / cnt, mdg = (float)dg / cnt;
        for (int b = 0; b < B; b++) {
            const float *restrict g = dy + b * in + c * hw, *restrict y = l->y + b * in + c * hw;
            const float *restrict xh = l->xhat + b * in + c * hw;
            float *restrict dx = l->dx + b * in + c * hw;
            if (l->trained) /* the batch statistics depend on x too */
                for (size_t i = 0; i < hw; i++) {
                    float v = g[i];
                    float gi = l->relu && y[i] <= 0 ? 0.0f : v;
                    dx[i] = k * (gi - mdb - xh[i] * mdg);
                }
            else
                for (size_t i = 0; i < hw; i++) {
                    float v = g[i];
                    dx[i] = k * (l->relu && y[i] <= 0 ? 0.0f : v);
                }
        }
    }
}
