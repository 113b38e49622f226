/* The layers: each forward next to its backward. Shapes in the comments are
 * per batch; B is the batch size. */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "nn/nn.h"

/* clang reports an `omp simd` loop it leaves scalar (as it does under the
 * sanitizers of `make fuzz`) as a warning; the loops are elementwise, so the
 * results are the same either way. */
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

/* OpenBLAS's thread count (openblas_config.h is not on every include path) */
void openblas_set_num_threads(int n);

static int nn_threads = 1;

void nn_set_threads(int n)
{
    nn_threads = n < 1 ? 1 : n;
    openblas_set_num_threads(1);
    omp_set_num_threads(nn_threads);
}

int nn_get_threads(void) { return nn_threads; }

static int conv_algo = NN_CONV_BY_SHAPE;

void nn_set_conv_algo(int algo) { conv_algo = algo; }

int nn_conv_per_sample(int oh, int ow)
{
    return conv_algo == NN_CONV_PER_SAMPLE || (conv_algo == NN_CONV_BY_SHAPE && oh * ow >= NN_CONV_PER_SAMPLE_PIXELS);
}

static void relu_gradient(const float *restrict v, const float *restrict dy, float *restrict out, size_t n,
                          int threads);

/* [*lo, *hi): part t of T of [0, n), in order. */
static void share(int n, int t, int T, int *lo, int *hi)
{
    *lo = (int)((long)n * t / T);
    *hi = (int)((long)n * (t + 1) / T);
}

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* ---------------- shapes ---------------- */

size_t nn_layer_in_size(const nn_layer *l) { return (size_t)l->c * l->h * l->w; }
size_t nn_layer_out_size(const nn_layer *l) { return (size_t)l->oc * l->oh * l->ow; }

/* ---------------- dense ---------------- */
/* x (B, in), W (out, in), y (B, out) */

/* Threads share out the output units (y's columns, dW's rows) or, for
 * narrow layers, the batch's rows (y, dx): no two write the same value, and
 * each value's sum runs in one order. A share of the units reads the whole
 * batch but only its rows of W, which OpenBLAS packs once per call: faster
 * than halving the batch for the mlp (the README's nn/ section). */
static void dense_forward(nn_layer *l, const float *x, int B)
{
    int in = (int)nn_layer_in_size(l), out = l->oc, T = l->threads;
    int by_unit = out >= 32 * T;
#pragma omp parallel for schedule(static) num_threads(T)
    for (int t = 0; t < T; t++) {
        int b0 = 0, b1 = B, o0 = 0, o1 = out;
        share(by_unit ? out : B, t, T, by_unit ? &o0 : &b0, by_unit ? &o1 : &b1);
        if (b1 == b0 || o1 == o0)
            continue;
        for (int b = b0; b < b1; b++)
            memcpy(l->y + (size_t)b * out + o0, l->bias->w + o0, (size_t)(o1 - o0) * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b1 - b0, o1 - o0, in, 1.0f, x + (size_t)b0 * in, in,
                    l->weight->w + (size_t)o0 * in, in, 1.0f, l->y + (size_t)b0 * out + o0, out);
    }
}

static void dense_backward(nn_layer *l, const float *dy, int B)
{
    int in = (int)nn_layer_in_size(l), out = l->oc, T = l->threads;
#pragma omp parallel for schedule(static) num_threads(T)
    for (int t = 0; t < T; t++) {
        int o0, o1, b0, b1;
        share(out, t, T, &o0, &o1);
        share(B, t, T, &b0, &b1);
        /* dW rows o0..o1 (out, in) = dy^T (out, B) x (B, in); db = column sums of dy */
        if (o1 > o0) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, in, B, 1.0f, dy + o0, out, l->x, in, 0.0f,
                        l->weight->g + (size_t)o0 * in, in);
            memset(l->bias->g + o0, 0, (size_t)(o1 - o0) * sizeof(float));
            for (int b = 0; b < B; b++)
                for (int o = o0; o < o1; o++)
                    l->bias->g[o] += dy[(size_t)b * out + o];
        }
        /* dx rows b0..b1 (B, in) = dy (B, out) W (out, in) */
        if (l->need_dx && b1 > b0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b1 - b0, in, out, 1.0f, dy + (size_t)b0 * out, out,
                        l->weight->w, in, 0.0f, l->dx + (size_t)b0 * in, in);
    }
}

/* ---------------- convolution ---------------- */
/* x (B, c, h, w), W (oc, c, k, k), y (B, oc, oh, ow). Samples go through in
 * groups of l->group: im2col unrolls a group into col (c*k*k, g*oh*ow),
 * sample j's columns at j*oh*ow, so one gemm covers the group:
 * ybuf (oc, g*oh*ow) = W col, then ybuf is laid out per sample with the bias. */

/* The output columns ox whose input column ox*stride - pad + kj falls in
 * [0, w): [*lo, *hi). */
static void valid_span(const nn_layer *l, int kj, int *lo, int *hi)
{
    int s = l->stride, first = l->pad - kj, last = l->w - 1 + l->pad - kj;
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
    int k = l->k, s = l->stride, p = l->pad, ohw = l->oh * l->ow;
    size_t in = nn_layer_in_size(l), ld = (size_t)g * ohw, hw = (size_t)l->h * l->w;
    for (int c = 0; c < l->c; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                int lo, hi;
                valid_span(l, kj, &lo, &hi);
                float *row = col + ((size_t)(c * k + ki) * k + kj) * ld;
                for (int j = 0; j < g; j++) {
                    const float *plane = x + j * in + c * hw;
                    for (int oy = 0; oy < l->oh; oy++) {
                        int iy = oy * s - p + ki;
                        float *d = row + (size_t)j * ohw + (size_t)oy * l->ow;
                        if (iy < 0 || iy >= l->h) {
                            memset(d, 0, (size_t)l->ow * sizeof(float));
                            continue;
                        }
                        const float *src = plane + (size_t)iy * l->w - p + kj;
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
    int k = l->k, s = l->stride, p = l->pad, ohw = l->oh * l->ow;
    size_t in = nn_layer_in_size(l), ld = (size_t)g * ohw, hw = (size_t)l->h * l->w;
    memset(dx, 0, (size_t)g * in * sizeof(float));
    for (int c = 0; c < l->c; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                int lo, hi;
                valid_span(l, kj, &lo, &hi);
                const float *row = col + ((size_t)(c * k + ki) * k + kj) * ld;
                for (int j = 0; j < g; j++) {
                    float *plane = dx + j * in + c * hw;
                    for (int oy = 0; oy < l->oh; oy++) {
                        int iy = oy * s - p + ki;
                        if (iy < 0 || iy >= l->h)
                            continue;
                        const float *src = row + (size_t)j * ohw + (size_t)oy * l->ow;
                        float *d = plane + (size_t)iy * l->w - p + kj;
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
static int conv_is_pointwise(const nn_layer *l) { return l->k == 1 && l->stride == 1 && l->pad == 0; }

/* NN_CONV_PER_SAMPLE: y_b (oc, ohw) = W (oc, ckk) col_b (ckk, ohw) + b, in place. */
static void conv_forward_per_sample(nn_layer *l, const float *x, int B)
{
    int ckk = l->c * l->k * l->k, ohw = l->oh * l->ow;
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
    int ckk = l->c * l->k * l->k, ohw = l->oh * l->ow;
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l), colsz = (size_t)ckk * ohw;
    grad_shares_clear(l);
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int b = 0; b < B; b++) {
        int t = omp_get_thread_num();
        float *col = l->col + t * colsz, *dcol = l->dcol + t * colsz, *masked = l->ybuf + t * out;
        float *dw = grad_share_w(l, t), *db = grad_share_b(l, t);
        const float *g = dy + b * out;
        if (l->relu) { /* through the relu: where the output is 0, so is the gradient */
            relu_gradient(l->y + b * out, g, masked, out, 1);
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

static void conv_forward(nn_layer *l, const float *x, int B)
{
    if (l->per_sample) {
        conv_forward_per_sample(l, x, B);
        return;
    }
    int ckk = l->c * l->k * l->k, ohw = l->oh * l->ow, ngroups = (B + l->group - 1) / l->group;
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

static void conv_backward(nn_layer *l, const float *dy, int B)
{
    if (l->per_sample) {
        conv_backward_per_sample(l, dy, B);
        return;
    }
    int ckk = l->c * l->k * l->k, ohw = l->oh * l->ow, ngroups = (B + l->group - 1) / l->group, T = l->threads;
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

/* ---------------- max pooling ---------------- */
/* x (B, c, h, w) -> y (B, c, oh, ow), oh = (h - k) / stride + 1 */

/* The common 2x2 window, stride 2, written as selects the compiler
 * vectorises. Backward finds each window's maximum again (the first value
 * equal to the output, which is the first maximum) instead of storing its
 * index. */
static void maxpool2_forward(nn_layer *l, const float *x, int B)
{
    size_t hw = (size_t)l->h * l->w, planes = (size_t)B * l->c, ohw = (size_t)l->oh * l->ow;
    int w = l->w, ow = l->ow;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (size_t pl = 0; pl < planes; pl++)
        for (int oy = 0; oy < l->oh; oy++) {
            const float *restrict r0 = x + pl * hw + (size_t)(2 * oy) * w, *restrict r1 = r0 + w;
            float *restrict y = l->y + pl * ohw + (size_t)oy * ow;
            for (int ox = 0; ox < ow; ox++) {
                float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
                float m = b > a ? b : a;
                m = c > m ? c : m;
                y[ox] = d > m ? d : m;
            }
        }
}

static void maxpool2_backward(nn_layer *l, const float *dy, int B)
{
    size_t hw = (size_t)l->h * l->w, planes = (size_t)B * l->c, ohw = (size_t)l->oh * l->ow;
    int w = l->w, ow = l->ow;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (size_t pl = 0; pl < planes; pl++)
        for (int oy = 0; oy < l->oh; oy++) {
            const float *restrict r0 = l->x + pl * hw + (size_t)(2 * oy) * w, *restrict r1 = r0 + w;
            const float *restrict y = l->y + pl * ohw + (size_t)oy * ow, *restrict g = dy + pl * ohw + (size_t)oy * ow;
            float *restrict d0 = l->dx + pl * hw + (size_t)(2 * oy) * w, *restrict d1 = d0 + w;
            for (int ox = 0; ox < ow; ox++) {
                float m = y[ox], v = g[ox];
                /* bitwise, not short-circuit: no branches, so it vectorises */
                int ia = r0[2 * ox] == m, ib = (r0[2 * ox + 1] == m) & (ia ^ 1);
                int ic = (r1[2 * ox] == m) & ((ia | ib) ^ 1), id = (ia | ib | ic) ^ 1;
                d0[2 * ox] = ia ? v : 0.0f;
                d0[2 * ox + 1] = ib ? v : 0.0f;
                d1[2 * ox] = ic ? v : 0.0f;
                d1[2 * ox + 1] = id ? v : 0.0f;
            }
        }
}

static void maxpool_forward(nn_layer *l, const float *x, int B)
{
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l);
    if (l->k == 2 && l->stride == 2 && l->pad == 0 && l->h % 2 == 0 && l->w % 2 == 0) {
        maxpool2_forward(l, x, B);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < l->c; c++) {
            const float *plane = x + b * in + (size_t)c * l->h * l->w;
            for (int oy = 0; oy < l->oh; oy++)
                for (int ox = 0; ox < l->ow; ox++) {
                    /* the window's first maximum; padding never wins (PyTorch pads with -inf) */
                    float best = -FLT_MAX;
                    int at = -1;
                    for (int i = 0; i < l->k; i++)
                        for (int j = 0; j < l->k; j++) {
                            int iy = oy * l->stride - l->pad + i, ix = ox * l->stride - l->pad + j;
                            if (iy < 0 || iy >= l->h || ix < 0 || ix >= l->w)
                                continue;
                            int idx = iy * l->w + ix;
                            if (at < 0 || plane[idx] > best)
                                best = plane[idx], at = idx;
                        }
                    size_t o = b * out + ((size_t)c * l->oh + oy) * l->ow + ox;
                    l->y[o] = best;
                    l->arg[o] = (int32_t)((size_t)c * l->h * l->w + (size_t)at);
                }
        }
}

static void maxpool_backward(nn_layer *l, const float *dy, int B)
{
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l);
    if (l->k == 2 && l->stride == 2 && l->pad == 0 && l->h % 2 == 0 && l->w % 2 == 0) { /* windows tile the input */
        maxpool2_backward(l, dy, B);
        return;
    }
    memset(l->dx, 0, (size_t)B * in * sizeof(float));
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int b = 0; b < B; b++)
        for (size_t o = 0; o < out; o++)
            l->dx[b * in + (size_t)l->arg[b * out + o]] += dy[b * out + o];
}

/* ---------------- relu, dropout ---------------- */

/* (local restrict pointers: through l's fields the loops would not vectorise) */
static void relu_forward(nn_layer *l, const float *restrict x, int B)
{
    size_t n = (size_t)B * nn_layer_in_size(l);
    float *restrict y = l->y;
#pragma omp parallel for simd schedule(static) num_threads(l->threads)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : 0;
}

/* out = dy where v > 0, else 0: the gradient through a relu whose input (or
 * output) is v; n values over threads. */
static void relu_gradient(const float *restrict v, const float *restrict dy, float *restrict out, size_t n,
                          int threads)
{
#pragma omp parallel for simd schedule(static) num_threads(threads)
    for (size_t i = 0; i < n; i++) {
        float g = dy[i]; /* loaded either way, so the select vectorises */
        out[i] = v[i] > 0 ? g : 0.0f;
    }
}

static void relu_backward(nn_layer *l, const float *dy, int B)
{
    relu_gradient(l->x, dy, l->dx, (size_t)B * nn_layer_in_size(l), l->threads);
}

static void dropout_forward(nn_layer *l, const float *x, int B, int train, nn_rng *rng)
{
    size_t n = (size_t)B * nn_layer_in_size(l);
    /* one element at a time: the generator's order is part of the result */
    float keep = 1.0f / (1.0f - l->rate);
    for (size_t i = 0; i < n; i++) {
        l->mask[i] = !train || l->rate == 0 ? 1.0f : nn_rng_uniform(rng) >= l->rate ? keep : 0.0f;
        l->y[i] = x[i] * l->mask[i];
    }
}

static void dropout_backward(nn_layer *l, const float *restrict dy, int B)
{
    size_t n = (size_t)B * nn_layer_in_size(l);
    const float *restrict mask = l->mask;
    float *restrict dx = l->dx;
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * mask[i];
}

/* ---------------- batch normalization ---------------- */
/* per channel c over the B*h*w values; train: batch statistics (biased
 * variance), running ones updated with the unbiased variance, as PyTorch */

/* Sums over a row of n floats in 16 float lanes (a fixed order, so the
 * compiler can vectorise it and the result does not depend on threads),
 * finished in double. */
#define LANES 16
static double row_sum(const float *restrict a, size_t n)
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

static double row_sq_dev(const float *restrict a, float m, size_t n)
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
static void row_grad_sums(const float *restrict g, const float *restrict y, const float *restrict xh, size_t n,
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

/* Channels go to the threads; each channel's sums run in one order. With
 * l->relu the output is relu(bn(x)), and backward takes the gradient through
 * the relu first (where the output is 0, it is 0). */
static void batchnorm_forward(nn_layer *l, const float *x, int B, int train)
{
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    double cnt = (double)B * (double)hw;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int c = 0; c < l->c; c++) {
        float mean, istd;
        if (train) {
            double s = 0, ss = 0;
            for (int b = 0; b < B; b++)
                s += row_sum(x + b * in + c * hw, hw);
            double m = s / cnt;
            for (int b = 0; b < B; b++)
                ss += row_sq_dev(x + b * in + c * hw, (float)m, hw);
            double var = ss / cnt;
            mean = (float)m;
            istd = (float)(1.0 / sqrt(var + BN_EPS));
            l->run_mean[c] = (1 - BN_MOMENTUM) * l->run_mean[c] + BN_MOMENTUM * (float)m;
            l->run_var[c] = (1 - BN_MOMENTUM) * l->run_var[c] + BN_MOMENTUM * (float)(cnt > 1 ? ss / (cnt - 1) : var);
        } else {
            mean = l->run_mean[c];
            istd = 1.0f / sqrtf(l->run_var[c] + BN_EPS);
        }
        l->mean[c] = mean, l->istd[c] = istd;
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

static void batchnorm_backward(nn_layer *l, const float *dy, int B)
{
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

/* ---------------- residual blocks ---------------- */
/* y = relu(main(x) + shortcut(x)); backward sends g = dy through the relu
 * down both paths and adds their input gradients. */

static void block_forward(nn_layer *l, const float *x, int B, int train, nn_rng *rng)
{
    const float *restrict a = nn_forward(l->main, x, B, train, rng);
    const float *restrict sc = l->shortcut ? nn_forward(l->shortcut, x, B, train, rng) : x;
    float *restrict y = l->y;
    size_t n = (size_t)B * nn_layer_out_size(l);
#pragma omp parallel for simd schedule(static) num_threads(l->threads)
    for (size_t i = 0; i < n; i++) {
        float v = a[i] + sc[i];
        y[i] = v > 0 ? v : 0.0f;
    }
}

static void block_backward(nn_layer *l, const float *dy, int B)
{
    float *g = l->g;
    relu_gradient(l->y, dy, g, (size_t)B * nn_layer_out_size(l), l->threads);
    nn_backward(l->main, g, B);
    if (l->shortcut)
        nn_backward(l->shortcut, g, B);
    if (!l->need_dx)
        return;
    const float *restrict dm = l->main->layers[0].dx;
    const float *restrict ds = l->shortcut ? l->shortcut->layers[0].dx : g; /* the identity passes g on */
    float *restrict dx = l->dx;
    size_t m = (size_t)B * nn_layer_in_size(l); /* the input's size: more than the output's when strided */
#pragma omp parallel for simd schedule(static) num_threads(l->threads)
    for (size_t i = 0; i < m; i++)
        dx[i] = dm[i] + ds[i];
}

/* ---------------- global average pooling ---------------- */

static void gap_forward(nn_layer *l, const float *x, int B)
{
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < l->c; c++) {
            float s = 0;
            for (size_t i = 0; i < hw; i++)
                s += x[b * in + c * hw + i];
            l->y[(size_t)b * l->c + c] = s / (float)hw;
        }
}

static void gap_backward(nn_layer *l, const float *dy, int B)
{
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < l->c; c++) {
            float g = dy[(size_t)b * l->c + c] / (float)hw;
            for (size_t i = 0; i < hw; i++)
                l->dx[b * in + c * hw + i] = g;
        }
}

/* ---------------- dispatch ---------------- */

void nn_layer_forward(nn_layer *l, const float *x, int B, int train, nn_rng *rng)
{
    l->x = x;
    l->trained = train;
    switch (l->kind) {
    case NN_DENSE: dense_forward(l, x, B); break;
    case NN_CONV: conv_forward(l, x, B); break;
    case NN_MAXPOOL: maxpool_forward(l, x, B); break;
    case NN_RELU: relu_forward(l, x, B); break;
    case NN_FLATTEN: l->y = (float *)x; break; /* the same memory, read as (B, c*h*w) */
    case NN_DROPOUT: dropout_forward(l, x, B, train, rng); break;
    case NN_BATCHNORM: batchnorm_forward(l, x, B, train); break;
    case NN_GAP: gap_forward(l, x, B); break;
    case NN_BLOCK: block_forward(l, x, B, train, rng); break;
    }
}

void nn_layer_backward(nn_layer *l, const float *dy, int B)
{
    switch (l->kind) {
    case NN_DENSE: dense_backward(l, dy, B); break;
    case NN_CONV: conv_backward(l, dy, B); break;
    case NN_MAXPOOL: maxpool_backward(l, dy, B); break;
    case NN_RELU: relu_backward(l, dy, B); break;
    case NN_FLATTEN: l->dx = (float *)dy; break;
    case NN_DROPOUT: dropout_backward(l, dy, B); break;
    case NN_BATCHNORM: batchnorm_backward(l, dy, B); break;
    case NN_GAP: gap_backward(l, dy, B); break;
    case NN_BLOCK: block_backward(l, dy, B); break;
    }
}
