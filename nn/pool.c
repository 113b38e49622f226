/* Pooling: max pooling (2x2 stride 2 and general windows with padding), average pooling with padding, and global average pooling. */
#include <float.h>
#include <omp.h>
#include <string.h>

#include "nn/layer_kinds.h"

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

void nn_maxpool_forward(nn_layer *l, const float *x, int B)
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

void nn_maxpool_backward(nn_layer *l, const float *dy, int B)
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

/* ---------------- average pooling ---------------- */
/* x (B, c, h, w) -> y (B, c, oh, ow): each window's in-bounds values summed
 * and divided by k * k (padding counted as zeros, as PyTorch's default). */

void nn_avgpool_forward(nn_layer *l, const float *x, int B)
{
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l);
    float scale = 1.0f / (float)(l->k * l->k);
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < l->c; c++) {
            const float *plane = x + b * in + (size_t)c * l->h * l->w;
            float *y = l->y + b * out + (size_t)c * l->oh * l->ow;
            for (int oy = 0; oy < l->oh; oy++)
                for (int ox = 0; ox < l->ow; ox++) {
                    float sum = 0;
                    for (int i = 0; i < l->k; i++) {
                        int iy = oy * l->stride - l->pad + i;
                        if (iy < 0 || iy >= l->h)
                            continue;
                        for (int j = 0; j < l->k; j++) {
                            int ix = ox * l->stride - l->pad + j;
                            if (ix >= 0 && ix < l->w)
                                sum += plane[iy * l->w + ix];
                        }
                    }
                    y[oy * l->ow + ox] = sum * scale;
                }
        }
}

void nn_avgpool_backward(nn_layer *l, const float *dy, int B)
{
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l);
    float scale = 1.0f / (float)(l->k * l->k);
    memset(l->dx, 0, (size_t)B * in * sizeof(float));
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < l->c; c++) {
            float *plane = l->dx + b * in + (size_t)c * l->h * l->w;
            const float *g = dy + b * out + (size_t)c * l->oh * l->ow;
            for (int oy = 0; oy < l->oh; oy++)
                for (int ox = 0; ox < l->ow; ox++) {
                    float v = g[oy * l->ow + ox] * scale;
                    for (int i = 0; i < l->k; i++) {
                        int iy = oy * l->stride - l->pad + i;
                        if (iy < 0 || iy >= l->h)
                            continue;
                        for (int j = 0; j < l->k; j++) {
                            int ix = ox * l->stride - l->pad + j;
                            if (ix >= 0 && ix < l->w)
                                plane[iy * l->w + ix] += v;
                        }
                    }
                }
        }
}

/* ---------------- global average pooling ---------------- */

/* In the blocked layout (l->cb, nn/onednn.h) channel j*cb+k of sample b is
 * lane k of the hw pixels of block j. */
static void gap_forward_blocked(nn_layer *l, const float *x, int B)
{
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    int cb = l->cb, nb = l->c / cb;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int t = 0; t < B * nb; t++) {
        int b = t / nb, j = t % nb;
        const float *restrict p = x + (size_t)b * in + (size_t)j * hw * cb;
        float s[16] = {0};
        for (size_t i = 0; i < hw; i++)
            for (int k = 0; k < cb; k++)
                s[k] += p[i * cb + k];
        for (int k = 0; k < cb; k++)
            l->y[(size_t)b * l->c + j * cb + k] = s[k] / (float)hw;
    }
}

static void gap_backward_blocked(nn_layer *l, const float *dy, int B)
{
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    int cb = l->cb, nb = l->c / cb;
#pragma omp parallel for schedule(static) num_threads(l->threads)
    for (int t = 0; t < B * nb; t++) {
        int b = t / nb, j = t % nb;
        float *restrict p = l->dx + (size_t)b * in + (size_t)j * hw * cb;
        float g[16];
        for (int k = 0; k < cb; k++)
            g[k] = dy[(size_t)b * l->c + j * cb + k] / (float)hw;
        for (size_t i = 0; i < hw; i++)
            for (int k = 0; k < cb; k++)
                p[i * cb + k] = g[k];
    }
}

void nn_gap_forward(nn_layer *l, const float *x, int B)
{
    if (l->cb) {
        gap_forward_blocked(l, x, B);
        return;
    }
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < l->c; c++) {
            float s = 0;
            for (size_t i = 0; i < hw; i++)
                s += x[b * in + c * hw + i];
            l->y[(size_t)b * l->c + c] = s / (float)hw;
        }
}

void nn_gap_backward(nn_layer *l, const float *dy, int B)
{
    if (l->cb) {
        gap_backward_blocked(l, dy, B);
        return;
    }
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < l->c; c++) {
            float g = dy[(size_t)b * l->c + c] / (float)hw;
            for (size_t i = 0; i < hw; i++)
                l->dx[b * in + c * hw + i] = g;
        }
}
