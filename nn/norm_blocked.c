/* Batch normalization in the channel-blocked layout (nn/onednn.h): the channels of a block are the vector lanes. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/dist.h"
#include "nn/layer_kinds.h"

#define CHUNK 64         /* pixels summed in float before the sum goes into a double */

/* The same contract as norm.c's: per channel over (B, h, w), batch
 * statistics in training (biased variance for the output, unbiased for the
 * running variance), running ones in evaluation, an optional fused relu,
 * and with --sync-bn the sums reduced over the ranks. Each (sample, channel
 * block) is one task: its per-channel sums go into l->bnsum[b * c + ch]
 * (and l->bnsum[B * c + ...] for backward's second sum), then every channel
 * adds its B partial sums in sample order, so the result does not depend on
 * the thread count. The normalized input is not kept: backward computes it
 * again from the input (l->x) and the batch statistics, which saves an
 * activation's memory for one pass over it. */

/* out[k] = sum over the hw pixels i of f(p[i * CB + k]), each lane summed
 * CHUNK pixels at a time in float. CB is a constant where it is inlined. */
#define LANE_LOOP(CB, BODY)                                                                                            \
    for (size_t i0 = 0; i0 < hw; i0 += CHUNK) {                                                                        \
        size_t i1 = i0 + CHUNK < hw ? i0 + CHUNK : hw;                                                                 \
        float acc[CB] = {0}, acc2[CB] = {0};                                                                           \
        for (size_t i = i0; i < i1; i++)                                                                               \
            for (int k = 0; k < CB; k++) {                                                                             \
                BODY                                                                                                   \
            }                                                                                                          \
        for (int k = 0; k < CB; k++)                                                                                   \
            s1[k] += acc[k], s2[k] += acc2[k];                                                                         \
    }

/* what 0: sum of x; 1: sum of (x - mean)^2; 2: sums of g' and g' * xhat,
 * g' = g masked by a relu's zero output y when relu, xhat = (x - mean) * istd. */
static inline void block_sums(int CB, int what, const float *restrict x, const float *restrict g,
                              const float *restrict y, int relu, const float *restrict mean,
                              const float *restrict istd, size_t hw, double *restrict s1, double *restrict s2)
{
    if (what == 0) {
        LANE_LOOP(16, if (k < CB) acc[k] += x[i * CB + k];)
    } else if (what == 1) {
        LANE_LOOP(16, if (k < CB) {
            float d = x[i * CB + k] - mean[k];
            acc[k] += d * d;
        })
    } else {
        LANE_LOOP(16, if (k < CB) {
            float v = g[i * CB + k];
            float gi = relu && y[i * CB + k] <= 0 ? 0.0f : v;
            acc[k] += gi;
            acc2[k] += gi * ((x[i * CB + k] - mean[k]) * istd[k]);
        })
    }
}

/* One (sample, block) task for each of the B * nb, over the threads. */
static void sums_pass(nn_layer *l, int what, const float *x, const float *dy, int B)
{
    int cb = l->cb, nb = l->c / cb;
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l), c = (size_t)l->c;
    double *part = l->bnsum;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int t = 0; t < B * nb; t++) {
        int b = t / nb, j = t % nb;
        size_t off = (size_t)b * in + (size_t)j * hw * cb;
        double s1[16] = {0}, s2[16] = {0};
        if (cb == 16)
            block_sums(16, what, x + off, dy ? dy + off : NULL, l->y + off, l->relu, l->mean + j * cb,
                       l->istd + j * cb, hw, s1, s2);
        else
            block_sums(8, what, x + off, dy ? dy + off : NULL, l->y + off, l->relu, l->mean + j * cb,
                       l->istd + j * cb, hw, s1, s2);
        for (int k = 0; k < cb; k++) {
            part[(size_t)b * c + (size_t)j * cb + k] = s1[k];
            if (what == 2)
                part[(size_t)B * c + (size_t)b * c + (size_t)j * cb + k] = s2[k];
        }
    }
}

/* out[ch] (and out[c + ch] for what 2) = the partial sums over the samples, in order. */
static void sums_total(const nn_layer *l, int what, int B, double *out)
{
    size_t c = (size_t)l->c;
    for (size_t ch = 0; ch < c; ch++) {
        double s = 0, s2 = 0;
        for (int b = 0; b < B; b++) {
            s += l->bnsum[(size_t)b * c + ch];
            if (what == 2)
                s2 += l->bnsum[(size_t)B * c + (size_t)b * c + ch];
        }
        out[ch] = s;
        if (what == 2)
            out[c + ch] = s2;
    }
}

void nn_batchnorm_forward_blocked(nn_layer *l, const float *x, int B, int train)
{
    size_t c = (size_t)l->c, hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    int cb = l->cb, nb = l->c / cb, sync = nn_dist_sync_bn();
    double *tot = l->bnsum + 2 * (size_t)B * c; /* c + 1 totals after the partial sums */
    if (train) {
        sums_pass(l, 0, x, NULL, B);
        sums_total(l, 0, B, tot);
        tot[c] = (double)B * (double)hw;
        if (sync)
            nn_dist_sum_doubles(tot, c + 1);
        double cnt = tot[c];
        for (size_t ch = 0; ch < c; ch++)
            l->mean[ch] = (float)(tot[ch] / cnt);
        sums_pass(l, 1, x, NULL, B);
        sums_total(l, 1, B, tot);
        if (sync)
            nn_dist_sum_doubles(tot, c);
        for (size_t ch = 0; ch < c; ch++)
            nn_batchnorm_batch_stats(l, (int)ch, l->mean[ch], tot[ch], cnt);
    } else {
        for (size_t ch = 0; ch < c; ch++)
            nn_batchnorm_running_stats(l, (int)ch);
    }
    int relu = l->relu;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int t = 0; t < B * nb; t++) {
        int b = t / nb, j = t % nb;
        size_t off = (size_t)b * in + (size_t)j * hw * cb;
        const float *restrict xs = x + off;
        float *restrict y = l->y + off;
        float sc[16], sh[16], ga[16], be[16]; /* the block's per-channel constants, out of the pixel loop */
        for (int k = 0; k < cb; k++) { /* y = gamma * (x - mean) * istd + beta */
            sc[k] = l->istd[j * cb + k];
            sh[k] = l->mean[j * cb + k];
            ga[k] = l->weight->w[j * cb + k];
            be[k] = l->bias->w[j * cb + k];
        }
        for (size_t i = 0; i < hw; i++)
            for (int k = 0; k < cb; k++) {
                float v = ga[k] * ((xs[i * cb + k] - sh[k]) * sc[k]) + be[k];
                y[i * cb + k] = relu && v < 0 ? 0.0f : v;
            }
    }
}

void nn_batchnorm_backward_blocked(nn_layer *l, const float *dy, int B)
{
    size_t c = (size_t)l->c, hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    int cb = l->cb, nb = l->c / cb;
    double *tot = l->bnsum + 2 * (size_t)B * c; /* 2c + 1 */
    sums_pass(l, 2, l->x, dy, B);
    sums_total(l, 2, B, tot);
    for (size_t ch = 0; ch < c; ch++) /* the rank's own sums (the ranks' gradients are added later) */
        l->bias->g[ch] = (float)tot[ch], l->weight->g[ch] = (float)tot[c + ch];
    tot[2 * c] = (double)B * (double)hw;
    if (l->trained && nn_dist_sync_bn())
        nn_dist_sum_doubles(tot, 2 * c + 1);
    if (!l->need_dx)
        return;
    float cnt = (float)tot[2 * c];
    const float *gamma = l->weight->w;
    int trained = l->trained, relu = l->relu;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int t = 0; t < B * nb; t++) {
        int b = t / nb, j = t % nb;
        size_t off = (size_t)b * in + (size_t)j * hw * cb;
        const float *restrict g = dy + off, *restrict y = l->y + off, *restrict xs = l->x + off;
        float *restrict dx = l->dx + off;
        float kk[16], mdb[16], mdg[16], mean[16], istd[16];
        for (int k = 0; k < cb; k++) {
            int ch = j * cb + k;
            istd[k] = l->istd[ch], mean[k] = l->mean[ch];
            kk[k] = gamma[ch] * istd[k];
            mdb[k] = trained ? (float)tot[ch] / cnt : 0.0f; /* in evaluation the statistics are constants */
            mdg[k] = trained ? (float)tot[c + ch] / cnt : 0.0f;
        }
        for (size_t i = 0; i < hw; i++)
            for (int k = 0; k < cb; k++) {
                float v = g[i * cb + k];
                float gi = relu && y[i * cb + k] <= 0 ? 0.0f : v;
                float xh = (xs[i * cb + k] - mean[k]) * istd[k];
                dx[i * cb + k] = kk[k] * (gi - mdb[k] - xh * mdg[k]);
            }
    }
}
