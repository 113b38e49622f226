/* The layers: each forward next to its backward. Shapes in the comments are
 * per batch; B is the batch size. */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "nn/nn.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* ---------------- random numbers ---------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void nn_rng_seed(nn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nn_rng_next(nn_rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return out;
}

float nn_rng_uniform(nn_rng *r) { return (float)(nn_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

float nn_rng_normal(nn_rng *r)
{
    float u1 = nn_rng_uniform(r), u2 = nn_rng_uniform(r);
    return sqrtf(-2.0f * logf(1.0f - u1)) * cosf(6.2831853f * u2);
}

/* ---------------- shapes ---------------- */

size_t nn_layer_in_size(const nn_layer *l) { return (size_t)l->c * l->h * l->w; }
size_t nn_layer_out_size(const nn_layer *l) { return (size_t)l->oc * l->oh * l->ow; }

/* ---------------- dense ---------------- */
/* x (B, in), W (out, in), y (B, out) */

static void dense_forward(nn_layer *l, const float *x, int B)
{
    int in = (int)nn_layer_in_size(l), out = l->oc;
    for (int b = 0; b < B; b++)
        memcpy(l->y + (size_t)b * out, l->bias->w, (size_t)out * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, out, in, 1.0f, x, in, l->weight->w, in, 1.0f, l->y, out);
}

static void dense_backward(nn_layer *l, const float *dy, int B)
{
    int in = (int)nn_layer_in_size(l), out = l->oc;
    /* dW (out, in) += dy^T (out, B) x (B, in); db += column sums of dy */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, B, 1.0f, dy, out, l->x, in, 1.0f, l->weight->g, in);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < out; o++)
            l->bias->g[o] += dy[(size_t)b * out + o];
    /* dx (B, in) = dy (B, out) W (out, in) */
    if (l->need_dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, 1.0f, dy, out, l->weight->w, in, 0.0f, l->dx,
                    in);
}

/* ---------------- convolution ---------------- */
/* x (B, c, h, w), W (oc, c, k, k), y (B, oc, oh, ow); per sample through
 * im2col: col (c*k*k, oh*ow), y_b = W col + b. */

static void im2col(const nn_layer *l, const float *x, float *col)
{
    int k = l->k, s = l->stride, p = l->pad, ohw = l->oh * l->ow;
    for (int c = 0; c < l->c; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = col + ((size_t)(c * k + ki) * k + kj) * ohw;
                for (int oy = 0; oy < l->oh; oy++) {
                    int iy = oy * s - p + ki;
                    float *dst = row + oy * l->ow;
                    if (iy < 0 || iy >= l->h) {
                        memset(dst, 0, (size_t)l->ow * sizeof(float));
                        continue;
                    }
                    const float *src = x + ((size_t)c * l->h + iy) * l->w;
                    for (int ox = 0; ox < l->ow; ox++) {
                        int ix = ox * s - p + kj;
                        dst[ox] = ix >= 0 && ix < l->w ? src[ix] : 0.0f;
                    }
                }
            }
}

/* The adjoint of im2col: adds col's entries back onto dx (zeroed here). */
static void col2im(const nn_layer *l, const float *col, float *dx)
{
    int k = l->k, s = l->stride, p = l->pad, ohw = l->oh * l->ow;
    memset(dx, 0, nn_layer_in_size(l) * sizeof(float));
    for (int c = 0; c < l->c; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                const float *row = col + ((size_t)(c * k + ki) * k + kj) * ohw;
                for (int oy = 0; oy < l->oh; oy++) {
                    int iy = oy * s - p + ki;
                    if (iy < 0 || iy >= l->h)
                        continue;
                    float *dst = dx + ((size_t)c * l->h + iy) * l->w;
                    const float *src = row + oy * l->ow;
                    for (int ox = 0; ox < l->ow; ox++) {
                        int ix = ox * s - p + kj;
                        if (ix >= 0 && ix < l->w)
                            dst[ix] += src[ox];
                    }
                }
            }
}

static void conv_forward(nn_layer *l, const float *x, int B)
{
    int ckk = l->c * l->k * l->k, ohw = l->oh * l->ow;
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l);
    for (int b = 0; b < B; b++) {
        float *y = l->y + b * out;
        for (int o = 0; o < l->oc; o++)
            for (int i = 0; i < ohw; i++)
                y[(size_t)o * ohw + i] = l->bias->w[o];
        im2col(l, x + b * in, l->col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l->oc, ohw, ckk, 1.0f, l->weight->w, ckk, l->col, ohw,
                    1.0f, y, ohw);
    }
}

static void conv_backward(nn_layer *l, const float *dy, int B)
{
    int ckk = l->c * l->k * l->k, ohw = l->oh * l->ow;
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l);
    for (int b = 0; b < B; b++) {
        const float *g = dy + b * out;
        im2col(l, l->x + b * in, l->col); /* recomputed: cheaper than keeping B of them */
        /* dW (oc, ckk) += dy_b (oc, ohw) col^T (ohw, ckk) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l->oc, ckk, ohw, 1.0f, g, ohw, l->col, ohw, 1.0f,
                    l->weight->g, ckk);
        for (int o = 0; o < l->oc; o++) {
            float sum = 0;
            for (int i = 0; i < ohw; i++)
                sum += g[(size_t)o * ohw + i];
            l->bias->g[o] += sum;
        }
        if (l->need_dx) { /* dcol (ckk, ohw) = W^T (ckk, oc) dy_b (oc, ohw), then back to pixels */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, ohw, l->oc, 1.0f, l->weight->w, ckk, g, ohw, 0.0f,
                        l->dcol, ohw);
            col2im(l, l->dcol, l->dx + b * in);
        }
    }
}

/* ---------------- max pooling ---------------- */
/* x (B, c, h, w) -> y (B, c, oh, ow), oh = (h - k) / stride + 1 */

static void maxpool_forward(nn_layer *l, const float *x, int B)
{
    size_t in = nn_layer_in_size(l), out = nn_layer_out_size(l);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < l->c; c++) {
            const float *plane = x + b * in + (size_t)c * l->h * l->w;
            for (int oy = 0; oy < l->oh; oy++)
                for (int ox = 0; ox < l->ow; ox++) {
                    float best = -FLT_MAX;
                    int at = 0;
                    for (int i = 0; i < l->k; i++)
                        for (int j = 0; j < l->k; j++) {
                            int idx = (oy * l->stride + i) * l->w + ox * l->stride + j;
                            if (plane[idx] > best || (i == 0 && j == 0))
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
    memset(l->dx, 0, (size_t)B * in * sizeof(float));
    for (int b = 0; b < B; b++)
        for (size_t o = 0; o < out; o++)
            l->dx[b * in + (size_t)l->arg[b * out + o]] += dy[b * out + o];
}

/* ---------------- relu, dropout ---------------- */

static void relu_forward(nn_layer *l, const float *x, int B)
{
    size_t n = (size_t)B * nn_layer_in_size(l);
    for (size_t i = 0; i < n; i++)
        l->y[i] = x[i] > 0 ? x[i] : 0;
}

static void relu_backward(nn_layer *l, const float *dy, int B)
{
    size_t n = (size_t)B * nn_layer_in_size(l);
    for (size_t i = 0; i < n; i++)
        l->dx[i] = l->x[i] > 0 ? dy[i] : 0;
}

static void dropout_forward(nn_layer *l, const float *x, int B, int train, nn_rng *rng)
{
    size_t n = (size_t)B * nn_layer_in_size(l);
    float keep = 1.0f / (1.0f - l->rate);
    for (size_t i = 0; i < n; i++) {
        l->mask[i] = !train || l->rate == 0 ? 1.0f : nn_rng_uniform(rng) >= l->rate ? keep : 0.0f;
        l->y[i] = x[i] * l->mask[i];
    }
}

static void dropout_backward(nn_layer *l, const float *dy, int B)
{
    size_t n = (size_t)B * nn_layer_in_size(l);
    for (size_t i = 0; i < n; i++)
        l->dx[i] = dy[i] * l->mask[i];
}

/* ---------------- batch normalization ---------------- */
/* per channel c over the B*h*w values; train: batch statistics (biased
 * variance), running ones updated with the unbiased variance, as PyTorch */

static void batchnorm_forward(nn_layer *l, const float *x, int B, int train)
{
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    double cnt = (double)B * (double)hw;
    for (int c = 0; c < l->c; c++) {
        float mean, istd;
        if (train) {
            double s = 0, ss = 0;
            for (int b = 0; b < B; b++)
                for (size_t i = 0; i < hw; i++)
                    s += x[b * in + c * hw + i];
            double m = s / cnt;
            for (int b = 0; b < B; b++)
                for (size_t i = 0; i < hw; i++) {
                    double d = x[b * in + c * hw + i] - m;
                    ss += d * d;
                }
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
        for (int b = 0; b < B; b++)
            for (size_t i = 0; i < hw; i++) {
                size_t at = b * in + c * hw + i;
                l->xhat[at] = (x[at] - mean) * istd;
                l->y[at] = gamma * l->xhat[at] + beta;
            }
    }
}

static void batchnorm_backward(nn_layer *l, const float *dy, int B)
{
    size_t hw = (size_t)l->h * l->w, in = nn_layer_in_size(l);
    float cnt = (float)B * (float)hw;
    for (int c = 0; c < l->c; c++) {
        double dg = 0, db = 0;
        for (int b = 0; b < B; b++)
            for (size_t i = 0; i < hw; i++) {
                size_t at = b * in + c * hw + i;
                dg += dy[at] * l->xhat[at];
                db += dy[at];
            }
        l->weight->g[c] += (float)dg;
        l->bias->g[c] += (float)db;
        if (!l->need_dx)
            continue;
        float k = l->weight->w[c] * l->istd[c];
        for (int b = 0; b < B; b++)
            for (size_t i = 0; i < hw; i++) {
                size_t at = b * in + c * hw + i;
                /* training: the batch statistics depend on x too */
                l->dx[at] = l->trained ? k * (dy[at] - (float)db / cnt - l->xhat[at] * (float)dg / cnt) : k * dy[at];
            }
    }
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
    }
}

/* ---------------- loss ---------------- */

float nn_softmax_xent(const float *logits, const int32_t *labels, int B, int n, float *dlogits, int *correct)
{
    double loss = 0;
    int right = 0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * n;
        int best = 0;
        for (int i = 1; i < n; i++)
            if (z[i] > z[best])
                best = i;
        right += best == labels[b];
        double sum = 0;
        for (int i = 0; i < n; i++)
            sum += exp((double)z[i] - z[best]);
        double logsum = log(sum) + z[best];
        loss += logsum - z[labels[b]];
        if (dlogits)
            for (int i = 0; i < n; i++)
                dlogits[(size_t)b * n + i] = (float)((exp(z[i] - logsum) - (i == labels[b])) / B);
    }
    if (correct)
        *correct = right;
    return (float)(loss / B);
}
