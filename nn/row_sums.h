/* Per-row float sums in a fixed lane order, shared by batch norm (nn/norm.c) and its
 * synchronised form (nn/syncbn.c), so one rank's statistics are norm.c's to the bit. */
#ifndef SP_NN_ROW_SUMS_H
#define SP_NN_ROW_SUMS_H

#include <stddef.h>

/* Sums over a row of n floats in 16 float lanes (a fixed order, so the
 * compiler can vectorise it and the result does not depend on threads),
 * finished in double. */
#define LANES 16
static inline double row_sum(const float *restrict a, size_t n)
{
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++)
            acc[k] += a[i + k];
    double s = 0;
    for (; i < n; i++)
        s += a[i];
    for (int k = 0; k < LANES; k++)
        s += acc[k];
    return s;
}

static inline double row_sq_dev(const float *restrict a, float m, size_t n)
{
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float d = a[i + k] - m;
            acc[k] += d * d;
        }
    double s = 0;
    for (; i < n; i++)
        s += (double)(a[i] - m) * (a[i] - m);
    for (int k = 0; k < LANES; k++)
        s += acc[k];
    return s;
}

/* sum(g') and sum(g' * xh) over a row, g' = g where not masked by a relu's
 * zero output y (mask_by_y), else g. */
static inline void row_grad_sums(const float *restrict g, const float *restrict y, const float *restrict xh, size_t n,
                          int mask_by_y, double *sg, double *sgx)
{
    float a[LANES] = {0}, b[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float v = g[i + k];
            float gi = mask_by_y && y[i + k] <= 0 ? 0.0f : v;
            a[k] += gi;
            b[k] += gi * xh[i + k];
        }
    double s = 0, t = 0;
    for (; i < n; i++) {
        float gi = mask_by_y && y[i] <= 0 ? 0.0f : g[i];
        s += gi, t += (double)gi * xh[i];
    }
    for (int k = 0; k < LANES; k++)
        s += a[k], t += b[k];
    *sg += s, *sgx += t;
}

#endif
