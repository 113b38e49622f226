/* Networks: the models by name, forward and backward through the layers,
 * the optimizers, and checkpoints. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sp_xxh.h"
#include "nn/nn.h"

/* ---------------- building ---------------- */

/* A conv's unrolled input per gemm: 512 KiB, so it stays in the L2 cache
 * while the gemm packs it. Measured on the cnn (2 cores, 1 MiB L2 each)
 * against 256 KiB to 32 MiB: 0.85x the epoch time of 32 MiB on one thread,
 * 0.88x on two. */
#define CONV_GROUP_FLOATS ((size_t)128 << 10)

static nn_param *param_new(size_t n, int decay)
{
    nn_param *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n;
    p->decay = decay;
    p->w = calloc(n, sizeof(float));
    p->g = calloc(n, sizeof(float));
    p->m = calloc(n, sizeof(float));
    p->v = calloc(n, sizeof(float));
    if (!p->w || !p->g || !p->m || !p->v) {
        free(p->w), free(p->g), free(p->m), free(p->v), free(p);
        return NULL;
    }
    return p;
}

static void param_free(nn_param *p)
{
    if (p)
        free(p->w), free(p->g), free(p->m), free(p->v), free(p);
}

static int add_param(nn_net *n, nn_param *p)
{
    nn_param **grown = realloc(n->params, (size_t)(n->nparams + 1) * sizeof *grown);
    if (!grown)
        return -1;
    n->params = grown;
    n->params[n->nparams++] = p;
    return 0;
}

static int build_block(nn_net *n, nn_layer *l, const nn_spec *sp, nn_rng *rng);

/* Whether a layer of n so far learns: only then must the layers after it
 * pass gradients back (the mlp's first dense, after a flatten, computes no
 * (B, 784) input gradient). */
static int learns_before(const nn_net *n)
{
    for (int i = 0; i < n->nlayers; i++)
        if (n->layers[i].weight || n->layers[i].kind == NN_BLOCK)
            return 1;
    return 0;
}

/* Appends a layer after the last one (or the input shape) of n. */
static int add_layer(nn_net *n, const nn_spec *sp, nn_rng *rng, int last)
{
    nn_layer *l = &n->layers[n->nlayers];
    memset(l, 0, sizeof *l);
    if (n->nlayers == 0) {
        l->c = n->c, l->h = n->h, l->w = n->w;
    } else {
        const nn_layer *p = l - 1;
        l->c = p->oc, l->h = p->oh, l->w = p->ow;
    }
    l->kind = sp->kind;
    l->threads = nn_get_threads();
    l->need_dx = learns_before(n);
    l->oc = l->c, l->oh = l->h, l->ow = l->w;
    size_t fan_in = 0;
    switch (sp->kind) {
    case NN_DENSE:
        l->oc = sp->out, l->oh = l->ow = 1;
        if (l->h != 1 || l->w != 1) /* dense reads (B, c*h*w) */
            l->c = (int)nn_layer_in_size(l), l->h = l->w = 1;
        fan_in = (size_t)l->c;
        l->weight = param_new((size_t)l->oc * l->c, 1);
        l->bias = param_new((size_t)l->oc, 0);
        break;
    case NN_CONV:
        l->k = sp->k, l->stride = sp->stride, l->pad = sp->pad, l->oc = sp->out, l->relu = sp->relu;
        l->oh = (l->h + 2 * l->pad - l->k) / l->stride + 1;
        l->ow = (l->w + 2 * l->pad - l->k) / l->stride + 1;
        fan_in = (size_t)l->c * l->k * l->k;
        l->weight = param_new((size_t)l->oc * fan_in, 1);
        if (!sp->nobias && !(l->bias = param_new((size_t)l->oc, 0)))
            return -1;
        if (l->h + 2 * l->pad < l->k || l->w + 2 * l->pad < l->k)
            return -2;
        /* as many samples per gemm as keep the unrolled input near
         * CONV_GROUP_FLOATS, and at least one group per thread */
        size_t per = fan_in * l->oh * l->ow, slots = (size_t)l->threads;
        int share = (n->batch + l->threads - 1) / l->threads;
        l->per_sample = nn_conv_per_sample(l->oh, l->ow);
        l->group = per >= CONV_GROUP_FLOATS || l->per_sample ? 1 : (int)(CONV_GROUP_FLOATS / per);
        if (l->group > share)
            l->group = share;
        l->col = malloc(slots * per * l->group * sizeof(float));
        l->dcol = malloc(slots * per * l->group * sizeof(float));
        l->ybuf = malloc(slots * l->oc * l->oh * l->ow * l->group * sizeof(float));
        l->dwbuf = malloc(slots * l->oc * fan_in * sizeof(float));
        l->dbbuf = malloc(slots * l->oc * sizeof(float));
        if (!l->col || !l->dcol || !l->ybuf || !l->dwbuf || !l->dbbuf)
            return -1;
        break;
    case NN_MAXPOOL:
        l->k = sp->k, l->stride = sp->stride, l->pad = sp->pad;
        if (l->h + 2 * l->pad < l->k || l->w + 2 * l->pad < l->k || l->pad * 2 > l->k)
            return -2;
        l->oh = (l->h + 2 * l->pad - l->k) / l->stride + 1, l->ow = (l->w + 2 * l->pad - l->k) / l->stride + 1;
        break;
    case NN_FLATTEN: l->oc = (int)nn_layer_in_size(l), l->oh = l->ow = 1; break;
    case NN_DROPOUT: l->rate = sp->rate; break;
    case NN_BATCHNORM:
        l->relu = sp->relu;
        l->weight = param_new((size_t)l->c, 0);
        l->bias = param_new((size_t)l->c, 0);
        l->run_mean = calloc((size_t)l->c, sizeof(float));
        l->run_var = malloc((size_t)l->c * sizeof(float));
        l->mean = malloc((size_t)l->c * sizeof(float));
        l->istd = malloc((size_t)l->c * sizeof(float));
        if (!l->weight || !l->run_mean || !l->run_var || !l->mean || !l->istd)
            return -1;
        for (int c = 0; c < l->c; c++)
            l->weight->w[c] = 1, l->run_var[c] = 1;
        break;
    case NN_GAP: l->oh = l->ow = 1; break;
    case NN_BLOCK: {
        int rc = build_block(n, l, sp, rng);
        if (rc)
            return rc;
        break;
    }
    }
    if (fan_in && !l->weight)
        return -1;
    if (l->oh < 1 || l->ow < 1)
        return -2;
    n->nlayers++;
    size_t in = (size_t)n->batch * nn_layer_in_size(l), out = (size_t)n->batch * nn_layer_out_size(l);
    if (sp->kind != NN_FLATTEN) {
        l->y = malloc(out * sizeof(float));
        l->dx = malloc(in * sizeof(float));
        if (!l->y || !l->dx)
            return -1;
    }
    if ((sp->kind == NN_MAXPOOL && !(l->arg = malloc(out * sizeof(int32_t)))) ||
        (sp->kind == NN_DROPOUT && !(l->mask = malloc(in * sizeof(float)))) ||
        (sp->kind == NN_BATCHNORM && !(l->xhat = malloc(in * sizeof(float)))) ||
        (sp->kind == NN_BLOCK && !(l->g = malloc(out * sizeof(float)))))
        return -1;
    if ((l->weight && add_param(n, l->weight)) || (l->bias && add_param(n, l->bias)))
        return -1;
    for (int s = 0; sp->kind == NN_BLOCK && s < 2; s++) { /* the paths' parameters, in order */
        const nn_net *path = s == 0 ? l->main : l->shortcut;
        for (int i = 0; path && i < path->nparams; i++)
            if (add_param(n, path->params[i]))
                return -1;
    }
    if (fan_in) { /* He-uniform before a relu, Glorot-uniform for the output layer */
        double bound = last ? sqrt(6.0 / (double)(fan_in + (size_t)l->oc)) : sqrt(6.0 / (double)fan_in);
        for (size_t i = 0; i < l->weight->n; i++)
            l->weight->w[i] = (float)((2.0 * nn_rng_uniform(rng) - 1.0) * bound);
    }
    return 0;
}

/* A block's two paths as networks of their own on its input shape; l's
 * output shape from them. */
static int build_block(nn_net *n, nn_layer *l, const nn_spec *sp, nn_rng *rng)
{
#define CONVBN(out_, k_, s_, relu_)                                                                                \
    {.kind = NN_CONV, .out = out_, .k = k_, .stride = s_, .pad = (k_) / 2, .nobias = 1},                            \
        {.kind = NN_BATCHNORM, .relu = relu_ }
    int width = sp->out, s = sp->stride < 1 ? 1 : sp->stride, out = sp->bottleneck ? 4 * width : width;
    nn_spec basic[] = {CONVBN(width, 3, s, 1), CONVBN(width, 3, 1, 0)};
    nn_spec bottleneck[] = {CONVBN(width, 1, 1, 1), CONVBN(width, 3, s, 1), CONVBN(out, 1, 1, 0)};
    nn_spec projection[] = {CONVBN(out, 1, s, 0)};
#undef CONVBN
    sp_err e = {0};
    l->stride = s;
    l->main = sp->bottleneck ? nn_net_build("block", bottleneck, 6, l->c, l->h, l->w, 2, n->batch, rng, &e)
                             : nn_net_build("block", basic, 4, l->c, l->h, l->w, 2, n->batch, rng, &e);
    if (!l->main)
        return e.code == SP_EXIT_SYSTEM ? -1 : -2;
    const nn_layer *last = &l->main->layers[l->main->nlayers - 1];
    l->oc = last->oc, l->oh = last->oh, l->ow = last->ow;
    if ((s != 1 || out != l->c) && !(l->shortcut = nn_net_build("shortcut", projection, 2, l->c, l->h, l->w, 2,
                                                                   n->batch, rng, &e)))
        return e.code == SP_EXIT_SYSTEM ? -1 : -2;
    /* the paths' first layers pass gradients back when the block must */
    l->main->layers[0].need_dx = l->need_dx;
    if (l->shortcut)
        l->shortcut->layers[0].need_dx = l->need_dx;
    return 0;
}

/* torchvision's resnets for 224x224 (blocks per stage, bottleneck or not), or
 * the CIFAR resnet20; the specs into out (room for 64). */
static int resnet_specs(const char *model, nn_spec *out)
{
    static const int depth18[] = {2, 2, 2, 2}, depth34[] = {3, 4, 6, 3};
    const int *depth;
    int stages, bottleneck = 0, width = 64, n = 0;
    if (!strcmp(model, "resnet20")) {
        out[n++] = (nn_spec){.kind = NN_CONV, .out = 16, .k = 3, .stride = 1, .pad = 1, .nobias = 1};
        out[n++] = (nn_spec){.kind = NN_BATCHNORM, .relu = 1};
        for (int st = 0; st < 3; st++)
            for (int b = 0; b < 3; b++)
                out[n++] = (nn_spec){.kind = NN_BLOCK, .out = 16 << st, .stride = st > 0 && b == 0 ? 2 : 1};
    } else {
        if (!strcmp(model, "resnet18"))
            depth = depth18;
        else if (!strcmp(model, "resnet34") || !strcmp(model, "resnet50"))
            depth = depth34, bottleneck = !strcmp(model, "resnet50");
        else
            return 0;
        stages = 4;
        out[n++] = (nn_spec){.kind = NN_CONV, .out = 64, .k = 7, .stride = 2, .pad = 3, .nobias = 1};
        out[n++] = (nn_spec){.kind = NN_BATCHNORM, .relu = 1};
        out[n++] = (nn_spec){.kind = NN_MAXPOOL, .k = 3, .stride = 2, .pad = 1};
        for (int st = 0; st < stages; st++)
            for (int b = 0; b < depth[st]; b++)
                out[n++] = (nn_spec){.kind = NN_BLOCK, .out = width << st, .stride = st > 0 && b == 0 ? 2 : 1,
                                     .bottleneck = bottleneck};
    }
    out[n++] = (nn_spec){.kind = NN_GAP};
    out[n++] = (nn_spec){.kind = NN_DENSE, .out = -1};
    return n;
}

nn_net *nn_net_create(const char *model, int c, int h, int w, int classes, int batch, nn_rng *rng, sp_err *err)
{
#define L(kind_) {.kind = kind_}
#define DENSE(n) {.kind = NN_DENSE, .out = n} /* n = -1: the class count */
#define CONV3(n) {.kind = NN_CONV, .out = n, .k = 3, .stride = 1, .pad = 1, .relu = 1}
#define POOL2 {.kind = NN_MAXPOOL, .k = 2, .stride = 2}
    static const nn_spec mlp[] = {L(NN_FLATTEN), DENSE(128), L(NN_RELU), DENSE(-1)};
    static const nn_spec cnn[] = {
        CONV3(32), POOL2, CONV3(64), POOL2, CONV3(128), POOL2, L(NN_FLATTEN), DENSE(128), L(NN_RELU), DENSE(-1),
    };
#undef L
#undef DENSE
#undef CONV3
#undef POOL2
    if (!strcmp(model, "mlp"))
        return nn_net_build(model, mlp, (int)(sizeof mlp / sizeof *mlp), c, h, w, classes, batch, rng, err);
    if (!strcmp(model, "cnn"))
        return nn_net_build(model, cnn, (int)(sizeof cnn / sizeof *cnn), c, h, w, classes, batch, rng, err);
    nn_spec specs[64];
    int count = resnet_specs(model, specs);
    if (count)
        return nn_net_build(model, specs, count, c, h, w, classes, batch, rng, err);
    sp_fail(err, SP_EXIT_USAGE, "unknown model %s (mlp, cnn, resnet18, resnet34, resnet50 or resnet20)", model);
    return NULL;
}

nn_net *nn_net_build(const char *model, const nn_spec *specs, int count, int c, int h, int w, int classes, int batch,
                     nn_rng *rng, sp_err *err)
{
    if (c < 1 || h < 1 || w < 1 || classes < 2 || batch < 1) {
        sp_fail(err, SP_EXIT_DATA, "model %s: cannot take %dx%dx%d inputs with %d classes", model, h, w, c, classes);
        return NULL;
    }
    nn_net *n = calloc(1, sizeof *n);
    if (!n || !(n->layers = calloc((size_t)count, sizeof *n->layers))) {
        free(n);
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    snprintf(n->model, sizeof n->model, "%s", model);
    n->c = c, n->h = h, n->w = w, n->classes = classes, n->batch = batch;
    for (int i = 0; i < count; i++) {
        nn_spec sp = specs[i];
        if (sp.out < 0)
            sp.out = classes;
        int rc = add_layer(n, &sp, rng, i == count - 1);
        if (rc) {
            if (rc == -2)
                sp_fail(err, SP_EXIT_DATA, "model %s: %dx%d inputs are too small for its layer %d", model, h, w, i + 1);
            else
                sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
            n->nlayers = i + 1; /* a failed layer may be half built: free it too */
            nn_net_free(n);
            return NULL;
        }
    }
    return n;
}

void nn_net_free(nn_net *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->nlayers; i++) {
        nn_layer *l = &n->layers[i];
        if (l->kind != NN_FLATTEN)
            free(l->y), free(l->dx);
        if (l->kind != NN_BLOCK) /* a block's parameters are its paths' */
            param_free(l->weight), param_free(l->bias);
        nn_net_free(l->main), nn_net_free(l->shortcut), free(l->g);
        free(l->col), free(l->dcol), free(l->ybuf), free(l->dwbuf), free(l->dbbuf);
        free(l->arg), free(l->mask), free(l->run_mean), free(l->run_var), free(l->mean), free(l->istd), free(l->xhat);
    }
    free(n->layers);
    free(n->params);
    free(n);
}

size_t nn_net_param_count(const nn_net *n)
{
    size_t total = 0;
    for (int i = 0; i < n->nparams; i++)
        total += n->params[i]->n;
    return total;
}

double nn_net_forward_flops(const nn_net *n)
{
    double f = 0;
    for (int i = 0; i < n->nlayers; i++) {
        const nn_layer *l = &n->layers[i];
        if (l->kind == NN_DENSE || l->kind == NN_CONV)
            f += (double)l->weight->n * l->oh * l->ow;
        else if (l->kind == NN_BLOCK)
            f += nn_net_forward_flops(l->main) + (l->shortcut ? nn_net_forward_flops(l->shortcut) : 0);
    }
    return f;
}

double nn_net_bytes(const nn_net *n)
{
    double floats = 0, B = n->batch;
    for (int i = 0; i < n->nlayers; i++) {
        const nn_layer *l = &n->layers[i];
        double in = B * (double)nn_layer_in_size(l), out = B * (double)nn_layer_out_size(l);
        if (l->kind == NN_FLATTEN)
            continue;
        floats += in + out; /* dx, y */
        if (l->kind == NN_CONV) {
            double per = (double)l->c * l->k * l->k * l->oh * l->ow * l->group * l->threads;
            floats += 2 * per + (double)l->oc * l->oh * l->ow * l->group * l->threads +
                      (double)l->threads * ((double)l->weight->n + l->oc);
        }
        if (l->kind == NN_MAXPOOL)
            floats += out; /* int32 indices */
        if (l->kind == NN_DROPOUT || l->kind == NN_BATCHNORM)
            floats += in + 4.0 * l->c; /* mask or normalized input; statistics */
        if (l->kind == NN_BLOCK) /* its paths hold their own parameters */
            floats += out + nn_net_bytes(l->main) / 4 + (l->shortcut ? nn_net_bytes(l->shortcut) / 4 : 0);
        else
            floats += 4.0 * ((l->weight ? (double)l->weight->n : 0) + (l->bias ? (double)l->bias->n : 0));
    }
    return floats * 4;
}

/* ---------------- forward, backward ---------------- */

const float *nn_forward(nn_net *n, const float *x, int B, int train, nn_rng *rng)
{
    for (int i = 0; i < n->nlayers; i++) {
        nn_layer_forward(&n->layers[i], x, B, train, rng);
        x = n->layers[i].y;
    }
    return x;
}

void nn_backward(nn_net *n, const float *dlogits, int B)
{
    const float *g = dlogits;
    for (int i = n->nlayers - 1; i >= 0; i--) {
        nn_layer_backward(&n->layers[i], g, B);
        g = n->layers[i].dx;
    }
}

/* Part t of nt of a parameter's values for the threads of the optimizer
 * step, cut at multiples of 16 values (whole cache lines); no value's update
 * depends on another's, so their number changes no result. */
static void param_slice(const nn_param *p, int t, int nt, size_t *lo, size_t *hi)
{
    *lo = p->n * (size_t)t / (size_t)nt & ~(size_t)15;
    *hi = t + 1 == nt ? p->n : p->n * (size_t)(t + 1) / (size_t)nt & ~(size_t)15;
}

/* Whether the parameters are many enough to share out over threads. */
static int params_shared(const nn_net *n) { return nn_get_threads() > 1 && nn_net_param_count(n) >= 16384; }

/* ---------------- optimizers ---------------- */

void nn_opt_init(nn_opt *o, int kind, float lr)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = lr;
    o->beta1 = 0.9f, o->beta2 = 0.999f, o->eps = 1e-8f;
}

/* The update loops, one pass over each parameter, built for the widest
 * vectors the CPU has (chosen at load time): memory-bound, they cost as much
 * as the mlp's matrix work when left scalar. */
#if defined(__x86_64__) && !defined(SP_NO_X86_SIMD)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

VECTOR_CLONES static void sgd_update(float *restrict w, const float *restrict g, float *restrict buf, size_t n,
                                     float lr, float momentum, float wd, int first)
{
    for (size_t j = 0; j < n; j++) {
        float d = g[j] + wd * w[j];
        float b = momentum != 0 && !first ? momentum * buf[j] + d : d; /* torch: the first step's buffer is d */
        buf[j] = b;
        w[j] -= lr * b;
    }
}

VECTOR_CLONES static void adam_update(float *restrict w, const float *restrict g, float *restrict m,
                                      float *restrict v, size_t n, float wd, float beta1, float beta2,
                                      float step_size, float inv_bc2_sqrt, float eps)
{
    for (size_t j = 0; j < n; j++) {
        float d = g[j] + wd * w[j];
        m[j] = beta1 * m[j] + (1 - beta1) * d;
        v[j] = beta2 * v[j] + (1 - beta2) * d * d;
        w[j] -= step_size * m[j] / (sqrtf(v[j]) * inv_bc2_sqrt + eps);
    }
}

void nn_opt_step(nn_opt *o, nn_net *n)
{
    o->step++;
    /* Adam as torch.optim.Adam computes it (not fused): bias corrections
     * applied to the step size and to sqrt(v). torch divides sqrt(v) by
     * sqrt(bc2); multiplying by its inverse rounds the denominator at most
     * one unit apart and saves one of the two divisions that bound the
     * update's speed (0.40 -> 0.29 ns a value on one Zen 4 core) */
    float bc1 = 1.0f - powf(o->beta1, (float)o->step), bc2 = 1.0f - powf(o->beta2, (float)o->step);
    float step_size = o->lr / bc1, inv_bc2_sqrt = (float)(1.0 / sqrt((double)bc2));
#pragma omp parallel num_threads(nn_get_threads()) if (params_shared(n))
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int i = 0; i < n->nparams; i++) {
            nn_param *p = n->params[i];
            size_t lo, hi;
            param_slice(p, t, nt, &lo, &hi);
            if (hi <= lo)
                continue;
            float wd = p->decay ? o->weight_decay : 0.0f;
            if (o->kind == NN_SGD)
                sgd_update(p->w + lo, p->g + lo, p->m + lo, hi - lo, o->lr, o->momentum, wd, o->step == 1);
            else
                adam_update(p->w + lo, p->g + lo, p->m + lo, p->v + lo, hi - lo, wd, o->beta1, o->beta2, step_size,
                            inv_bc2_sqrt, o->eps);
        }
    }
}

/* ---------------- checkpoints ---------------- */

#define CKPT_MAGIC "\x89SPCKPT\n"
#define CKPT_VERSION 1u

/* Every float array of the state, in file order: per parameter w, m, v, then
 * per batchnorm layer run_mean, run_var. Calls fn(ctx, data, count). */
/* The batchnorm layers' running statistics, blocks' paths included, in order. */
static int each_running_stat(const nn_net *n, int (*fn)(void *ctx, float *p, size_t count), void *ctx)
{
    for (int i = 0; i < n->nlayers; i++) {
        const nn_layer *l = &n->layers[i];
        if (l->kind == NN_BATCHNORM && (fn(ctx, l->run_mean, (size_t)l->c) || fn(ctx, l->run_var, (size_t)l->c)))
            return -1;
        if (l->kind == NN_BLOCK &&
            (each_running_stat(l->main, fn, ctx) || (l->shortcut && each_running_stat(l->shortcut, fn, ctx))))
            return -1;
    }
    return 0;
}

static int each_array(const nn_net *n, int (*fn)(void *ctx, float *p, size_t count), void *ctx)
{
    for (int i = 0; i < n->nparams; i++) {
        nn_param *p = n->params[i];
        if (fn(ctx, p->w, p->n) || fn(ctx, p->m, p->n) || fn(ctx, p->v, p->n))
            return -1;
    }
    return each_running_stat(n, fn, ctx);
}

static int append_floats(void *ctx, float *p, size_t count)
{
    return sp_buf_append(ctx, p, count * sizeof(float)); /* little-endian machines only (x86-64, arm64) */
}

int nn_checkpoint_save(const char *path, const nn_net *n, const nn_opt *o, int epoch, const nn_rng *rng,
                       const char *extra_json, sp_err *err)
{
    json_t *extra = extra_json ? json_loads(extra_json, JSON_DECODE_ANY, NULL) : json_null();
    char rs[4][17];
    for (int i = 0; i < 4; i++)
        snprintf(rs[i], sizeof rs[i], "%016llx", (unsigned long long)rng->s[i]);
    json_t *h = json_pack("{s:s, s:[i,i,i], s:i, s:I, s:{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:I}, s:i, s:[s,s,s,s], s:o}",
                          "model", n->model, "input", n->c, n->h, n->w, "classes", n->classes, "parameters",
                          (json_int_t)nn_net_param_count(n), "optimizer", "kind", o->kind == NN_SGD ? "sgd" : "adam",
                          "lr", (double)o->lr, "momentum", (double)o->momentum, "weight_decay",
                          (double)o->weight_decay, "beta1", (double)o->beta1, "beta2", (double)o->beta2, "eps",
                          (double)o->eps, "step", (json_int_t)o->step, "epoch", epoch, "rng", rs[0], rs[1], rs[2],
                          rs[3], "extra", extra ? extra : json_null());
    char *hs = h ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(h);
    if (!hs)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    sp_buf b = {0};
    uint32_t ver = CKPT_VERSION, hlen = (uint32_t)strlen(hs);
    int bad = sp_buf_append(&b, CKPT_MAGIC, 8) || sp_buf_append(&b, &ver, 4) || sp_buf_append(&b, &hlen, 4) ||
              sp_buf_append(&b, hs, hlen) || each_array(n, append_floats, &b);
    free(hs);
    uint64_t sum = bad ? 0 : sp_xxh3(b.data, b.len);
    if (bad || sp_buf_append(&b, &sum, 8)) {
        sp_buf_free(&b);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%.4000s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 || sp_write_all(fd, b.data, b.len) || fsync(fd) ? -1 : 0;
    int e = errno;
    sp_buf_free(&b);
    if (fd >= 0 && close(fd))
        rc = -1, e = errno;
    if (rc == 0 && rename(tmp, path))
        rc = -1, e = errno;
    if (rc) {
        unlink(tmp);
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

typedef struct reading {
    const uint8_t *p, *end;
} reading;

static int take_floats(void *ctx, float *p, size_t count)
{
    reading *r = ctx;
    if ((size_t)(r->end - r->p) < count * sizeof(float))
        return -1;
    memcpy(p, r->p, count * sizeof(float));
    r->p += count * sizeof(float);
    return 0;
}

int nn_checkpoint_load(const char *path, int batch, nn_net **out, nn_opt *o, int *epoch, nn_rng *rng,
                       char **extra_json, sp_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s", path, strerror(errno));
    sp_buf b = {0};
    char chunk[1 << 16];
    size_t got;
    int rc = 0;
    while (rc == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = sp_buf_append(&b, chunk, got);
    fclose(f);
    const uint8_t *d = b.data;
    uint32_t ver = 0, hlen = 0;
    uint64_t sum = 0;
    if (rc) {
        sp_buf_free(&b);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    if (b.len < 24 || memcmp(d, CKPT_MAGIC, 8)) {
        sp_buf_free(&b);
        return sp_fail(err, SP_EXIT_DATA, "%s: not a shardpipe checkpoint (bad magic)", path);
    }
    memcpy(&ver, d + 8, 4), memcpy(&hlen, d + 12, 4), memcpy(&sum, d + b.len - 8, 8);
    const char *why = ver != CKPT_VERSION                 ? "unknown version"
                      : (size_t)hlen > b.len - 24         ? "header longer than the file"
                      : sp_xxh3(d, b.len - 8) != sum      ? "checksum mismatch (corrupt or cut)"
                                                          : NULL;
    json_t *h = why ? NULL : json_loadb((const char *)d + 16, hlen, 0, NULL);
    if (!why && !h)
        why = "bad header";
    const char *model = json_string_value(json_object_get(h, "model"));
    json_t *in = json_object_get(h, "input"), *opt = json_object_get(h, "optimizer"), *rs = json_object_get(h, "rng");
    if (!why && (!model || json_array_size(in) != 3 || !json_is_object(opt) || json_array_size(rs) != 4))
        why = "header lacks model, input, optimizer or rng";
    if (why) {
        json_decref(h);
        sp_buf_free(&b);
        return sp_fail(err, SP_EXIT_DATA, "%s: %s", path, why);
    }
    nn_rng scratch;
    nn_rng_seed(&scratch, 0);
    nn_net *n = nn_net_create(model, (int)json_integer_value(json_array_get(in, 0)),
                              (int)json_integer_value(json_array_get(in, 1)),
                              (int)json_integer_value(json_array_get(in, 2)),
                              (int)json_integer_value(json_object_get(h, "classes")), batch, &scratch, err);
    reading r = {d + 16 + hlen, d + b.len - 8};
    if (n && (each_array(n, take_floats, &r) || r.p != r.end)) {
        sp_fail(err, SP_EXIT_DATA, "%s: its weights do not fit model %s", path, model);
        nn_net_free(n);
        n = NULL;
    }
    if (n) {
        const char *kind = json_string_value(json_object_get(opt, "kind"));
        nn_opt_init(o, kind && !strcmp(kind, "sgd") ? NN_SGD : NN_ADAM,
                    (float)json_number_value(json_object_get(opt, "lr")));
        o->momentum = (float)json_number_value(json_object_get(opt, "momentum"));
        o->weight_decay = (float)json_number_value(json_object_get(opt, "weight_decay"));
        o->beta1 = (float)json_number_value(json_object_get(opt, "beta1"));
        o->beta2 = (float)json_number_value(json_object_get(opt, "beta2"));
        o->eps = (float)json_number_value(json_object_get(opt, "eps"));
        o->step = json_integer_value(json_object_get(opt, "step"));
        *epoch = (int)json_integer_value(json_object_get(h, "epoch"));
        for (int i = 0; i < 4; i++)
            rng->s[i] = strtoull(json_string_value(json_array_get(rs, (size_t)i)) ? json_string_value(json_array_get(rs, (size_t)i)) : "0", NULL, 16);
        if (extra_json)
            *extra_json = json_dumps(json_object_get(h, "extra"), JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        *out = n;
    }
    json_decref(h);
    sp_buf_free(&b);
    return n ? 0 : -1;
}
