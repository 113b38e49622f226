/* The layers: threads, dropout, flatten, residual blocks, branch concatenation, and the dispatch to each kind's forward and backward (layer_kinds.h). */
#include <omp.h>
#include <string.h>

#include "nn/layer_kinds.h"
#include "nn/onednn.h"

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

/* ---------------- dropout ---------------- */

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

/* ---------------- flatten ---------------- */
/* (B, c, h, w) -> (B, c*h*w) in NCHW order, as PyTorch's flatten: the same
 * memory for an NCHW net (or a 1x1 input); from a blocked net (l->cb,
 * nn/onednn.h) a copy into NCHW order, the dense layers' weights being
 * PyTorch's. */

static int flatten_copies(const nn_layer *l) { return l->cb && l->h * l->w > 1; }

/* Copies B samples between the blocked layout (blk) and NCHW (nchw), one
 * way or the other (to_nchw). */
static void flatten_copy(const nn_layer *l, float *blk, float *nchw, int to_nchw, int B)
{
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    int cb = l->cb;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < l->c; ch++)
            for (size_t i = 0; i < hw; i++) {
                float *p = blk + (size_t)b * in + (size_t)(ch / cb) * hw * cb + i * cb + ch % cb;
                float *q = nchw + (size_t)b * in + (size_t)ch * hw + i;
                if (to_nchw)
                    *q = *p;
                else
                    *p = *q;
            }
}

static void flatten_forward(nn_layer *l, const float *x, int B)
{
    if (flatten_copies(l))
        flatten_copy(l, (float *)x, l->y, 1, B);
    else
        l->y = (float *)x; /* the same memory, read as (B, c*h*w) */
}

static void flatten_backward(nn_layer *l, const float *dy, int B)
{
    if (flatten_copies(l))
        flatten_copy(l, l->dx, (float *)dy, 0, B);
    else
        l->dx = (float *)dy;
}

/* ---------------- residual blocks ---------------- */
/* y = relu(main(x) + shortcut(x)); backward sends g = dy through the relu
 * down both paths and adds their input gradients. */

/* The offset of sample b's (c, y, x) in a (B, C, H, W) tensor of channel
 * block cb (nn/onednn.h), or NCHW for cb 0. */
static size_t at(int cb, int C, int H, int W, int b, int c, int y, int x)
{
    if (!cb)
        return (((size_t)b * C + (size_t)c) * H + (size_t)y) * W + (size_t)x;
    return ((((size_t)b * (C / cb) + (size_t)(c / cb)) * H + (size_t)y) * W + (size_t)x) * cb + (size_t)(c % cb);
}

/* y = relu(a + option A's shortcut of x): x (B, c, h, w) at every stride-th
 * row and column, channel ic of it added to channel ic + (oc - c) / 2. */
static void option_a_forward(const nn_layer *l, const float *x, const float *a, int B)
{
    int C = l->c, OC = l->oc, lo = (OC - C) / 2, s = l->stride, cb = l->cb;
    float *y = l->y; /* may be a itself (y_shared): elementwise */
#pragma omp parallel for collapse(2) schedule(static) num_threads(l->threads)
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++) {
            int ic = oc - lo;
            for (int oy = 0; oy < l->oh; oy++)
                for (int ox = 0; ox < l->ow; ox++) {
                    size_t o = at(cb, OC, l->oh, l->ow, b, oc, oy, ox);
                    float v = a[o] + (ic >= 0 && ic < C ? x[at(cb, C, l->h, l->w, b, ic, oy * s, ox * s)] : 0.0f);
                    y[o] = v > 0 ? v : 0.0f;
                }
        }
}

/* dx = option A's input gradient for g: g's channel ic + (oc - c) / 2 at
 * every stride-th row and column of channel ic, 0 elsewhere. */
static void option_a_backward(const nn_layer *l, const float *g, float *dx, int B)
{
    int C = l->c, OC = l->oc, lo = (OC - C) / 2, s = l->stride, cb = l->cb;
    memset(dx, 0, (size_t)B * nn_layer_in_size(l) * sizeof *dx);
#pragma omp parallel for collapse(2) schedule(static) num_threads(l->threads)
    for (int b = 0; b < B; b++)
        for (int ic = 0; ic < C; ic++)
            for (int oy = 0; oy < l->oh; oy++)
                for (int ox = 0; ox < l->ow; ox++)
                    dx[at(cb, C, l->h, l->w, b, ic, oy * s, ox * s)] = g[at(cb, OC, l->oh, l->ow, b, ic + lo, oy, ox)];
}

static int block_forward(nn_layer *l, const float *x, int B, int train, nn_rng *rng, sp_err *err)
{
    /* y may be a itself (y_shared): elementwise, no restrict */
    const float *a = nn_forward(l->main, x, B, train, rng, err), *sc;
    if (a && l->option_a) {
        option_a_forward(l, x, a, B);
        return 0;
    }
    if (!a || !(sc = l->shortcut ? nn_forward(l->shortcut, x, B, train, rng, err) : x))
        return -1;
    float *y = l->y;
    size_t n = (size_t)B * nn_layer_out_size(l);
#pragma omp parallel for simd schedule(static) num_threads(l->threads)
    for (size_t i = 0; i < n; i++) {
        float v = a[i] + sc[i];
        y[i] = v > 0 ? v : 0.0f;
    }
    return 0;
}

static int block_backward(nn_layer *l, const float *dy, int B, sp_err *err)
{
    /* g_in_dy: a block of a blocked whole net takes its dy, the next
     * layer's input gradient in the net's shared buffers that nothing reads
     * after this, for g (models.c) */
    float *g = l->g_in_dy ? (float *)dy : l->g;
    nn_relu_gradient(l->y, dy, g, (size_t)B * nn_layer_out_size(l), l->threads);
    /* the shortcut first, its input gradient (g itself for the identity)
     * copied into dx; then the main path's added on: dx = ds + dm, the same
     * sum as dm + ds. Neither path's buffers are needed once its gradient
     * is in dx, so in a blocked net both paths share theirs (models.c). */
    float *restrict dx = l->dx;
    size_t m = (size_t)B * nn_layer_in_size(l); /* the input's size: more than the output's when strided */
    if (l->shortcut && nn_backward(l->shortcut, g, B, err))
        return -1;
    if (l->need_dx && l->option_a) {
        option_a_backward(l, g, dx, B);
    } else if (l->need_dx) {
        const float *restrict ds = l->shortcut ? l->shortcut->layers[0].dx : g;
#pragma omp parallel for simd schedule(static) num_threads(l->threads)
        for (size_t i = 0; i < m; i++)
            dx[i] = ds[i];
    }
    if (nn_backward(l->main, g, B, err))
        return -1;
    if (!l->need_dx)
        return 0;
    const float *restrict dm = l->main->layers[0].dx;
#pragma omp parallel for simd schedule(static) num_threads(l->threads)
    for (size_t i = 0; i < m; i++)
        dx[i] += dm[i];
    return 0;
}

/* ---------------- concatenated branches ---------------- */
/* y (B, sum of the paths' channels, oh, ow): sample b's channels path by
 * path. Backward gathers each path's share of dy into l->g, sends it down
 * that path, and sums the paths' input gradients. */

static int concat_forward(nn_layer *l, const float *x, int B, int train, nn_rng *rng, sp_err *err)
{
    size_t out = nn_layer_out_size(l), off = 0;
    for (int p = 0; p < l->npaths; p++) {
        nn_net *path = l->paths[p];
        const float *yp = nn_forward(path, x, B, train, rng, err);
        if (!yp)
            return -1;
        size_t po = nn_layer_out_size(&path->layers[path->nlayers - 1]);
#pragma omp parallel for schedule(static) num_threads(l->threads)
        for (int b = 0; b < B; b++)
            memcpy(l->y + b * out + off, yp + b * po, po * sizeof(float));
        off += po;
    }
    return 0;
}

static int concat_backward(nn_layer *l, const float *dy, int B, sp_err *err)
{
    size_t out = nn_layer_out_size(l), m = (size_t)B * nn_layer_in_size(l), off = 0;
    for (int p = 0; p < l->npaths; p++) {
        nn_net *path = l->paths[p];
        size_t po = nn_layer_out_size(&path->layers[path->nlayers - 1]);
        float *gp = l->g + (size_t)B * off;
#pragma omp parallel for schedule(static) num_threads(l->threads)
        for (int b = 0; b < B; b++)
            memcpy(gp + b * po, dy + b * out + off, po * sizeof(float));
        if (nn_backward(path, gp, B, err))
            return -1;
        off += po;
        if (!l->need_dx)
            continue;
        /* summed path by path as each finishes (the paths of a blocked net
         * share their gradient buffers): the same sums whatever the threads */
        const float *restrict dp = path->layers[0].dx;
        float *restrict dx = l->dx;
#pragma omp parallel for simd schedule(static) num_threads(l->threads)
        for (size_t i = 0; i < m; i++)
            dx[i] = p ? dx[i] + dp[i] : dp[i];
    }
    return 0;
}

/* ---------------- dispatch ---------------- */
/* Only oneDNN's passes and the nets inside blocks and concatenations can
 * fail; every other kind's pass is void. */

int nn_layer_forward(nn_layer *l, const float *x, int B, int train, nn_rng *rng, sp_err *err)
{
    l->x = x;
    l->trained = train;
    switch (l->kind) {
    case NN_DENSE: nn_dense_forward(l, x, B); break;
    case NN_CONV:
        if (l->dn)
            return nn_onednn_conv_forward(l, x, B, err);
        nn_conv_forward(l, x, B);
        break;
    case NN_MAXPOOL:
        if (l->dn)
            return nn_onednn_pool_forward(l, x, B, err);
        nn_maxpool_forward(l, x, B);
        break;
    case NN_RELU: nn_relu_forward(l, x, B); break;
    case NN_FLATTEN: flatten_forward(l, x, B); break;
    case NN_DROPOUT: dropout_forward(l, x, B, train, rng); break;
    case NN_BATCHNORM: nn_batchnorm_forward(l, x, B, train); break;
    case NN_GAP: nn_gap_forward(l, x, B); break;
    case NN_BLOCK: return block_forward(l, x, B, train, rng, err);
    case NN_AVGPOOL:
        if (l->dn)
            return nn_onednn_pool_forward(l, x, B, err);
        nn_avgpool_forward(l, x, B);
        break;
    case NN_CONCAT: return concat_forward(l, x, B, train, rng, err);
    }
    return 0;
}

int nn_layer_backward(nn_layer *l, const float *dy, int B, sp_err *err)
{
    switch (l->kind) {
    case NN_DENSE: nn_dense_backward(l, dy, B); break;
    case NN_CONV:
        if (l->dn)
            return nn_onednn_conv_backward(l, dy, B, err);
        nn_conv_backward(l, dy, B);
        break;
    case NN_MAXPOOL:
        if (l->dn)
            return nn_onednn_pool_backward(l, dy, B, err);
        nn_maxpool_backward(l, dy, B);
        break;
    case NN_RELU: nn_relu_backward(l, dy, B); break;
    case NN_FLATTEN: flatten_backward(l, dy, B); break;
    case NN_DROPOUT: dropout_backward(l, dy, B); break;
    case NN_BATCHNORM: nn_batchnorm_backward(l, dy, B); break;
    case NN_GAP: nn_gap_backward(l, dy, B); break;
    case NN_BLOCK: return block_backward(l, dy, B, err);
    case NN_AVGPOOL:
        if (l->dn)
            return nn_onednn_pool_backward(l, dy, B, err);
        nn_avgpool_backward(l, dy, B);
        break;
    case NN_CONCAT: return concat_backward(l, dy, B, err);
    }
    return 0;
}
