/* Convolutions: im2col and a gemm per group of samples or per sample, forward and backward, with an optional fused relu. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "nn/layer_kinds.h"
#include "nn/onednn.h"

static int conv_algo = NN_CONV_BY_SHAPE;

void nn_set_conv_algo(int algo) { conv_algo = algo; }

int nn_layout_block(void) { return conv_algo == NN_CONV_BY_SHAPE ? nn_onednn_block() : 0; }

int nn_conv_per_sample(int oh, int ow)
{
    return conv_algo == NN_CONV_PER_SAMPLE || (conv_algo == NN_CONV_BY_SHAPE && oh * ow >= NN_CONV_PER_SAMPLE_PIXELS);
}

/* ---------------- convolution ---------------- */
/* x (B, c, h, w), W (oc, c, k, kw), y (B, oc, oh, ow): a k x kw window
 * (height x width), padded by pad rows and padw columns. Samples go through
 * in groups of l->group: im2col unrolls a group into col (c*k*kw, g*oh*ow),
 * sample j's columns at j*oh*ow, so one gemm covers the group:
 * ybuf (oc, g*oh*ow) = W col, then ybuf is laid out per sample with the bias. */

/* The output columns ox whose input column ox*stride - pad + kj falls in
 * [0, w): [*lo, *hi). */
static void valid_span(const nn_layer *l, int kj, int *lo, int *hi)
{
    int s = l->stride, first = l->padw - kj, last = l->w - 1 + l->padw - kj;
    *lo = first <= 0 ? 0 : (first + s - 1) / s;
    *hi = last < 0 ? 0 : last / s + 1;
    if (*lo > l->ow)
        *lo = l->ow;
    if (*hi > l->ow)
        *hi = l->ow;
    if (*hi < *lo)
        *hi = *lo;
}

static void im2col(const nn_layer *l, const float *x, int g, float *col)
{
    int k = l->k, kw = l->kw, s = l->stride, p = l->pad, pw = l->padw, ohw = l->oh * l->ow;
    size_t in = nn_layer_in_size(l), ld = (size_t)g * ohw, hw = (size_t)l->h * l->w;
    for (int c = 0; c < l->c; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < kw; kj++) {
                int lo, hi;
                valid_span(l, kj, &lo, &hi);
                float *row = col + ((size_t)(c * k + ki) * kw + kj) * ld;
                for (int j = 0; j < g; j++) {
                    const float *plane = x + j * in + c * hw;
                    for (int oy = 0; oy < l->oh; oy++) {
                        int iy = oy * s - p + ki;
                        float *d = row + (size_t)j * ohw + (size_t)oy * l->ow;
                        if (iy < 0 || iy >= l->h) {
                            memset(d, 0, (size_t)l->ow * sizeof(float));
                            continue;
                        }
                        const float *src = plane + (size_t)iy * l->w - pw + kj;
                        for (int ox = 0; ox < lo; ox++)
                            d[ox] = 0;
                        if (s == 1)
                            memcpy(d + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
                        else
                            for (int ox = lo; ox < hi; ox++)
                                d[ox] = src[ox * s];
                        for (int ox = hi; ox < l->ow; ox++)
                            d[ox] = 0;
                    }
                }
            }
}

/* The adjoint of im2col: adds col's entries back onto the g samples of dx
 * (zeroed here). */
static void col2im(const nn_layer *l, const float *col, int g, float *dx)
{
    int k = l->k, kw = l->kw, s = l->stride, p = l->pad, pw = l->padw, ohw = l->oh * l->ow;
    size_t in = nn_layer_in_size(l), ld = (size_t)g * ohw, hw = (size_t)l->h * l->w;
    memset(dx, 0, (size_t)g * in * sizeof(float));
    for (int c = 0; c < l->c; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < kw; kj++) {
                int lo, hi;
                valid_span(l, kj, &lo, &hi);
                const float *row = col + ((size_t)(c * k + ki) * kw + kj) * ld;
                for (int j = 0; j < g; j++) {
                    float *plane = dx + j * in + c * hw;
                    for (int oy = 0; oy < l->oh; oy++) {
                        int iy = oy * s - p + ki;
                        if (iy < 0 || iy >= l->h)
                            continue;
                        const float *src = row + (size_t)j * ohw + (size_t)oy * l->ow;
                        float *d = plane + (size_t)iy * l->w - pw + kj;
                        if (s == 1)
                            for (int ox = lo; ox < hi; ox++)
                                d[ox] += src[ox];
                        else
                            for (int ox = lo; ox < hi; ox++)
                                d[ox * s] += src[ox];
                    }
                }
            }
}

/* Groups go to threads in order (static schedule); each thread works in its
 * own scratch slot. With no more groups than threads a group keeps its slot
 * from forward to backward, so backward reuses the forward's im2col. */
static int conv_slot(const nn_layer *l, int ngroups, int gi)
{
    return ngroups <= l->threads ? gi : omp_get_thread_num();
}

/* A 1x1 stride-1 unpadded conv's im2col is its input. */
static int conv_is_pointwise(const nn_layer *l)
{
    return l->k == 1 && l->kw == 1 && l->stride == 1 && l->pad == 0 && l->padw == 0;
}

/* NN_CONV_PER_SAMPLE: y_b (oc, ohw) = W (oc, ckk) col_b (ckk, ohw) + b, in place. */
static void conv_forward_per_sample(nn_layer *l, const float *x, int B)
{
    int ckk = l->c * l->k * l->kw, ohw = l->oh * l->ow;
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l), colsz = (size_t)ckk * ohw;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int b = 0; b < B; b++) {
        float *col = l->col + (size_t)omp_get_thread_num() * colsz, *y = l->y + b * out;
        if (conv_is_pointwise(l))
            col = (float *)(x + b * in);
        else
            im2col(l, x + b * in, 1, col);
        for (int o = 0; o < l->oc; o++)
            for (int i = 0; i < ohw; i++)
                y[(size_t)o * ohw + i] = l->bias ? l->bias->w[o] : 0.0f;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l->oc, ohw, ckk, 1.0f, l->weight->w, ckk, col, ohw, 1.0f,
                    y, ohw);
        if (l->relu)
            for (size_t i = 0; i < out; i++)
                y[i] = y[i] > 0 ? y[i] : 0.0f;
    }
}

/* Each thread's share of a conv's dW and db, zeroed first. With several
 * threads they go to per-thread buffers, summed into the gradients in thread
 * order afterwards (deterministic); with one, straight into the gradients.
 * A conv without bias sums db into a scratch share it ignores. */
static void grad_shares_clear(nn_layer *l)
{
    int T = l->threads;
    memset(T > 1 ? l->dwbuf : l->weight->g, 0, (size_t)T * l->weight->n * sizeof(float));
    memset(T > 1 || !l->bias ? l->dbbuf : l->bias->g, 0, (size_t)T * l->oc * sizeof(float));
}

static float *grad_share_w(nn_layer *l, int t)
{
    return l->threads > 1 ? l->dwbuf + (size_t)t * l->weight->n : l->weight->g;
}

static float *grad_share_b(nn_layer *l, int t)
{
    return l->threads > 1 ? l->dbbuf + (size_t)t * l->oc : l->bias ? l->bias->g : l->dbbuf;
}

static void grad_shares_sum(nn_layer *l)
{
    size_t wn = l->weight->n;
    for (int t = 0; l->threads > 1 && t < l->threads; t++) { /* the first share sets, the others add */
        for (size_t i = 0; i < wn; i++)
            l->weight->g[i] = (t ? l->weight->g[i] : 0.0f) + l->dwbuf[t * wn + i];
        for (int o = 0; l->bias && o < l->oc; o++)
            l->bias->g[o] = (t ? l->bias->g[o] : 0.0f) + l->dbbuf[(size_t)t * l->oc + o];
    }
}

static void conv_backward_per_sample(nn_layer *l, const float *dy, int B)
{
    int ckk = l->c * l->k * l->kw, ohw = l->oh * l->ow;
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l), colsz = (size_t)ckk * ohw;
    grad_shares_clear(l);
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int b = 0; b < B; b++) {
        int t = omp_get_thread_num();
        float *col = l->col + t * colsz, *dcol = l->dcol + t * colsz, *masked = l->ybuf + t * out;
        float *dw = grad_share_w(l, t), *db = grad_share_b(l, t);
        const float *g = dy + b * out;
        if (l->relu) { /* through the relu: where the output is 0, so is the gradient */
            nn_relu_gradient(l->y + b * out, g, masked, out, 1);
            g = masked;
        }
        for (int o = 0; o < l->oc; o++) {
            float sum = 0;
            for (int i = 0; i < ohw; i++)
                sum += g[(size_t)o * ohw + i];
            db[o] += sum;
        }
        if (conv_is_pointwise(l))
            col = (float *)(l->x + b * in);
        else
            im2col(l, l->x + b * in, 1, col);
        /* dW (oc, ckk) += dy_b (oc, ohw) col^T (ohw, ckk) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l->oc, ckk, ohw, 1.0f, g, ohw, col, ohw, 1.0f, dw, ckk);
        if (!l->need_dx)
            continue;
        if (conv_is_pointwise(l)) { /* dx_b (c, ohw) = W^T (c, oc) dy_b (oc, ohw) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, ohw, l->oc, 1.0f, l->weight->w, ckk, g, ohw, 0.0f,
                        l->dx + b * in, ohw);
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, ohw, l->oc, 1.0f, l->weight->w, ckk, g, ohw, 0.0f,
                        dcol, ohw);
            col2im(l, dcol, 1, l->dx + b * in);
        }
    }
    grad_shares_sum(l);
}

void nn_conv_forward(nn_layer *l, const float *x, int B)
{
    if (l->per_sample) {
        conv_forward_per_sample(l, x, B);
        return;
    }
    int ckk = l->c * l->k * l->kw, ohw = l->oh * l->ow, ngroups = (B + l->group - 1) / l->group;
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l);
    size_t colsz = (size_t)ckk * ohw * l->group, ysz = (size_t)l->oc * ohw * l->group;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int gi = 0; gi < ngroups; gi++) {
        int b0 = gi * l->group, g = B - b0 < l->group ? B - b0 : l->group, n = g * ohw, slot = conv_slot(l, ngroups, gi);
        float *col = l->col + slot * colsz, *ybuf = l->ybuf + slot * ysz;
        im2col(l, x + b0 * in, g, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l->oc, n, ckk, 1.0f, l->weight->w, ckk, col, n, 0.0f,
                    ybuf, n);
        for (int j = 0; j < g; j++)
            for (int o = 0; o < l->oc; o++) {
                const float *restrict src = ybuf + (size_t)o * n + (size_t)j * ohw;
                float *restrict dst = l->y + (b0 + j) * out + (size_t)o * ohw, bias = l->bias ? l->bias->w[o] : 0;
                if (l->relu)
                    for (int i = 0; i < ohw; i++) {
                        float v = src[i] + bias;
                        dst[i] = v > 0 ? v : 0.0f;
                    }
                else
                    for (int i = 0; i < ohw; i++)
                        dst[i] = src[i] + bias;
            }
    }
}

void nn_conv_backward(nn_layer *l, const float *dy, int B)
{
    if (l->per_sample) {
        conv_backward_per_sample(l, dy, B);
        return;
    }
    int ckk = l->c * l->k * l->kw, ohw = l->oh * l->ow, ngroups = (B + l->group - 1) / l->group, T = l->threads;
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l);
    size_t colsz = (size_t)ckk * ohw * l->group, ysz = (size_t)l->oc * ohw * l->group;
    grad_shares_clear(l);
#pragma omp parallel for schedule(static) num_threads(T)
    for (int gi = 0; gi < ngroups; gi++) {
        int b0 = gi * l->group, g = B - b0 < l->group ? B - b0 : l->group, n = g * ohw, slot = conv_slot(l, ngroups, gi);
        int t = omp_get_thread_num();
        float *col = l->col + slot * colsz, *ybuf = l->ybuf + slot * ysz, *dcol = l->dcol + slot * colsz;
        float *dw = grad_share_w(l, t), *db = grad_share_b(l, t);
        if (ngroups > T) /* else col still holds this group's forward im2col */
            im2col(l, l->x + b0 * in, g, col);
        for (int j = 0; j < g; j++) /* dy of the group as the gemm wants it: (oc, g*ohw), through the relu */
            for (int o = 0; o < l->oc; o++) {
                const float *restrict src = dy + (b0 + j) * out + (size_t)o * ohw;
                const float *restrict y = l->y + (b0 + j) * out + (size_t)o * ohw;
                float *restrict dst = ybuf + (size_t)o * n + (size_t)j * ohw, sum = 0;
                if (l->relu)
                    for (int i = 0; i < ohw; i++) {
                        float v = src[i];
                        dst[i] = y[i] > 0 ? v : 0.0f;
                        sum += dst[i];
                    }
                else
                    for (int i = 0; i < ohw; i++) {
                        dst[i] = src[i];
                        sum += src[i];
                    }
                db[o] += sum;
            }
        /* dW (oc, ckk) += dy (oc, n) col^T (n, ckk) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l->oc, ckk, n, 1.0f, ybuf, n, col, n, 1.0f, dw, ckk);
        if (l->need_dx) { /* dcol (ckk, n) = W^T (ckk, oc) dy (oc, n), then back to pixels */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, n, l->oc, 1.0f, l->weight->w, ckk, ybuf, n, 0.0f,
                        dcol, n);
            col2im(l, dcol, g, l->dx + b0 * in);
        }
    }
    grad_shares_sum(l);
}
