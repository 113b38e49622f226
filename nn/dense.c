/* Dense layers: y = x W^T + b and its backward, matrix products shared out over the layer's threads. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "nn/layer_kinds.h"

/* ---------------- dense ---------------- */
/* x (B, in), W (out, in), y (B, out) */

/* Threads share out the output units (y's columns, dW's rows) or, for
 * narrow layers, the batch's rows (y, dx): no two write the same value, and
 * each value's sum runs in one order. A share of the units reads the whole
 * batch but only its rows of W, which OpenBLAS packs once per call: faster
 * than halving the batch for the mlp (docs/nn.md). */
void nn_dense_forward(nn_layer *l, const float *x, int B)
{
    int in = (int)nn_layer_in_size(l), out = l->oc, T = l->threads;
    int by_unit = out >= 32 * T;
#pragma omp parallel for schedule(static) num_threads(T)
    for (int t = 0; t < T; t++) {
        int b0 = 0, b1 = B, o0 = 0, o1 = out;
        nn_share(by_unit ? out : B, t, T, by_unit ? &o0 : &b0, by_unit ? &o1 : &b1);
        if (b1 == b0 || o1 == o0)
            continue;
        for (int b = b0; b < b1; b++)
            memcpy(l->y + (size_t)b * out + o0, l->bias->w + o0, (size_t)(o1 - o0) * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b1 - b0, o1 - o0, in, 1.0f, x + (size_t)b0 * in, in,
                    l->weight->w + (size_t)o0 * in, in, 1.0f, l->y + (size_t)b0 * out + o0, out);
    }
}

void nn_dense_backward(nn_layer *l, const float *dy, int B)
{
    int in = (int)nn_layer_in_size(l), out = l->oc, T = l->threads;
#pragma omp parallel for schedule(static) num_threads(T)
    for (int t = 0; t < T; t++) {
        int o0, o1, b0, b1;
        nn_share(out, t, T, &o0, &o1);
        nn_share(B, t, T, &b0, &b1);
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
