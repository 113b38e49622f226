/* Networks: building them from layer specs, the models by name, forward and backward through the layers. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* madvise's MADV_HUGEPAGE */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nn/nn.h"
#include "nn/onednn.h"

/* ---------------- building ---------------- */

/* A conv's unrolled input per gemm: 512 KiB, so it stays in the L2 cache
 * while the gemm packs it (the fastest of 256 KiB to 32 MiB on the cnn; the
 * figures are in docs/nn.md). */
#define CONV_GROUP_FLOATS ((size_t)128 << 10)

/* An activation-sized buffer (free() releases it). From 2 MiB on it is
 * aligned to 2 MiB and asked to be backed by huge pages where the kernel
 * gives them on request (transparent_hugepage "madvise", Debian's default):
 * the first touch of resnet50's 3.5 GB of activations cost 45% of its first
 * step in 4 KiB page faults. */
static void *activation_alloc(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge)
        return malloc(bytes ? bytes : 1);
    void *p;
    bytes = (bytes + huge - 1) / huge * huge;
    if (posix_memalign(&p, huge, bytes))
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE); /* advice only: without it, 4 KiB pages */
#endif
    return p;
}

static nn_param *param_new(size_t n, int role)
{
    nn_param *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n;
    p->role = role;
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
static int build_concat(nn_net *n, nn_layer *l, const nn_spec *sp, nn_rng *rng);

/* The parameter tensors a layer holds, its paths' included. */
static int layer_nparams(const nn_layer *l)
{
    int count = (l->weight != NULL) + (l->bias != NULL);
    if (l->kind == NN_BLOCK)
        count = l->main->nparams + (l->shortcut ? l->shortcut->nparams : 0);
    for (int p = 0; l->kind == NN_CONCAT && p < l->npaths; p++)
        count += l->paths[p]->nparams;
    return count;
}

/* Whether a layer of n so far learns: only then must the layers after it
 * pass gradients back (the mlp's first dense, after a flatten, computes no
 * (B, 784) input gradient). */
static int learns_before(const nn_net *n)
{
    for (int i = 0; i < n->nlayers; i++)
        if (layer_nparams(&n->layers[i]))
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
        l->weight = param_new((size_t)l->oc * l->c, NN_ROLE_WEIGHT);
        l->bias = param_new((size_t)l->oc, NN_ROLE_BIAS);
        break;
    case NN_CONV:
        l->k = sp->k, l->stride = sp->stride, l->pad = sp->pad, l->oc = sp->out, l->relu = sp->relu;
        l->kw = sp->kw ? sp->kw : sp->k, l->padw = sp->kw ? sp->padw : sp->pad;
        if (l->h + 2 * l->pad < l->k || l->w + 2 * l->padw < l->kw)
            return -2;
        l->oh = (l->h + 2 * l->pad - l->k) / l->stride + 1;
        l->ow = (l->w + 2 * l->padw - l->kw) / l->stride + 1;
        fan_in = (size_t)l->c * l->k * l->kw;
        l->weight = param_new((size_t)l->oc * fan_in, NN_ROLE_WEIGHT);
        if (!sp->nobias && !(l->bias = param_new((size_t)l->oc, NN_ROLE_BIAS)))
            return -1;
        /* as many samples per gemm as keep the unrolled input near
         * CONV_GROUP_FLOATS, and at least one group per thread */
        size_t per = fan_in * l->oh * l->ow, slots = (size_t)l->threads;
        int share = (n->batch + l->threads - 1) / l->threads;
        l->per_sample = nn_conv_per_sample(l->oh, l->ow);
        l->group = per >= CONV_GROUP_FLOATS || l->per_sample ? 1 : (int)(CONV_GROUP_FLOATS / per);
        if (l->group > share)
            l->group = share;
        l->col = activation_alloc(slots * per * l->group * sizeof(float));
        l->dcol = activation_alloc(slots * per * l->group * sizeof(float));
        l->ybuf = activation_alloc(slots * l->oc * l->oh * l->ow * l->group * sizeof(float));
        l->dwbuf = malloc(slots * l->oc * fan_in * sizeof(float));
        l->dbbuf = malloc(slots * l->oc * sizeof(float));
        if (!l->col || !l->dcol || !l->ybuf || !l->dwbuf || !l->dbbuf)
            return -1;
        break;
    case NN_MAXPOOL:
    case NN_AVGPOOL:
        l->k = sp->k, l->stride = sp->stride, l->pad = sp->pad;
        if (l->h + 2 * l->pad < l->k || l->w + 2 * l->pad < l->k || l->pad * 2 > l->k)
            return -2;
        l->oh = (l->h + 2 * l->pad - l->k) / l->stride + 1, l->ow = (l->w + 2 * l->pad - l->k) / l->stride + 1;
        break;
    case NN_FLATTEN: l->oc = (int)nn_layer_in_size(l), l->oh = l->ow = 1; break;
    case NN_DROPOUT: l->rate = sp->rate; break;
    case NN_BATCHNORM:
        l->relu = sp->relu;
        l->eps = sp->eps > 0 ? sp->eps : 1e-5f;
        l->weight = param_new((size_t)l->c, NN_ROLE_BN);
        l->bias = param_new((size_t)l->c, NN_ROLE_BN);
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
    case NN_BLOCK:
    case NN_CONCAT: {
        int rc = sp->kind == NN_BLOCK ? build_block(n, l, sp, rng) : build_concat(n, l, sp, rng);
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
        l->y = activation_alloc(out * sizeof(float));
        l->dx = activation_alloc(in * sizeof(float));
        if (!l->y || !l->dx)
            return -1;
    }
    if ((sp->kind == NN_MAXPOOL && !(l->arg = malloc(out * sizeof(int32_t)))) ||
        (sp->kind == NN_DROPOUT && !(l->mask = activation_alloc(in * sizeof(float)))) ||
        (sp->kind == NN_BATCHNORM && !(l->xhat = activation_alloc(in * sizeof(float)))) ||
        ((sp->kind == NN_BLOCK || sp->kind == NN_CONCAT) && !(l->g = activation_alloc(out * sizeof(float)))))
        return -1;
    if ((l->weight && add_param(n, l->weight)) || (l->bias && add_param(n, l->bias)))
        return -1;
    for (int s = 0; sp->kind == NN_BLOCK && s < 2; s++) { /* the paths' parameters, in order */
        const nn_net *path = s == 0 ? l->main : l->shortcut;
        for (int i = 0; path && i < path->nparams; i++)
            if (add_param(n, path->params[i]))
                return -1;
    }
    for (int p = 0; sp->kind == NN_CONCAT && p < l->npaths; p++)
        for (int i = 0; i < l->paths[p]->nparams; i++)
            if (add_param(n, l->paths[p]->params[i]))
                return -1;
    if (fan_in) { /* He-uniform before a relu, Glorot-uniform for the output layer */
        double bound = last ? sqrt(6.0 / (double)(fan_in + (size_t)l->oc)) : sqrt(6.0 / (double)fan_in);
        for (size_t i = 0; i < l->weight->n; i++)
            l->weight->w[i] = (float)((2.0 * nn_rng_uniform(rng) - 1.0) * bound);
    }
    return 0;
}

/* The layers of a block's main path (into main, room for 6; returns the
 * count) and of its projection shortcut (into proj, 2), for input channels c;
 * *proj_needed: whether the block has that shortcut (the shape changes). */
static int block_specs(const nn_spec *sp, int c, nn_spec *main, nn_spec *proj, int *proj_needed)
{
#define CONVBN(out_, k_, s_, relu_)                                                                                \
    (nn_spec){.kind = NN_CONV, .out = out_, .k = k_, .stride = s_, .pad = (k_) / 2, .nobias = 1},                   \
        (nn_spec){.kind = NN_BATCHNORM, .relu = relu_ }
    int width = sp->out, s = sp->stride < 1 ? 1 : sp->stride, out = sp->bottleneck ? 4 * width : width;
    int n = 0;
    if (sp->bottleneck) {
        nn_spec b[] = {CONVBN(width, 1, 1, 1), CONVBN(width, 3, s, 1), CONVBN(out, 1, 1, 0)};
        for (n = 0; n < 6; n++)
            main[n] = b[n];
    } else {
        nn_spec b[] = {CONVBN(width, 3, s, 1), CONVBN(width, 3, 1, 0)};
        for (n = 0; n < 4; n++)
            main[n] = b[n];
    }
    nn_spec p[] = {CONVBN(out, 1, s, 0)};
#undef CONVBN
    proj[0] = p[0], proj[1] = p[1];
    *proj_needed = (s != 1 || out != c) && !sp->option_a;
    return n;
}

/* A block's two paths as networks of their own on its input shape; l's
 * output shape from them. */
static int build_block(nn_net *n, nn_layer *l, const nn_spec *sp, nn_rng *rng)
{
    nn_spec main[6], proj[2];
    int has_proj, count = block_specs(sp, l->c, main, proj, &has_proj);
    sp_err e = {0};
    l->stride = sp->stride < 1 ? 1 : sp->stride;
    l->option_a = sp->option_a && (l->stride != 1 || (sp->bottleneck ? 4 * sp->out : sp->out) != l->c);
    if (!(l->main = nn_net_build("block", main, count, l->c, l->h, l->w, 2, n->batch, rng, &e)))
        return e.code == SP_EXIT_SYSTEM ? -1 : -2;
    const nn_layer *last = &l->main->layers[l->main->nlayers - 1];
    l->oc = last->oc, l->oh = last->oh, l->ow = last->ow;
    if (l->option_a && (l->oc < l->c || (l->h + l->stride - 1) / l->stride != l->oh ||
                        (l->w + l->stride - 1) / l->stride != l->ow))
        return -2; /* no subsampled, padded x of the main path's shape */
    if (has_proj && !(l->shortcut = nn_net_build("shortcut", proj, 2, l->c, l->h, l->w, 2, n->batch, rng, &e)))
        return e.code == SP_EXIT_SYSTEM ? -1 : -2;
    /* the paths' first layers pass gradients back when the block must */
    l->main->layers[0].need_dx = l->need_dx;
    if (l->shortcut)
        l->shortcut->layers[0].need_dx = l->need_dx;
    return 0;
}

/* torchvision's Inception v3 blocks as concatenated paths: sp->mixed says
 * which (see nn_spec), sp->out its width. Each path's specs into paths[p]
 * (room for 12), their counts into len; returns the number of paths, 0 for
 * an unknown block. Every conv is torchvision's BasicConv2d: no bias,
 * batchnorm with eps 0.001, relu. */
static int mixed_paths(const nn_spec *sp, nn_spec paths[4][12], int len[4])
{
#define BC(o, kh, kw_, ph, pw_, s_)                                                                                \
    (nn_spec){.kind = NN_CONV, .out = o, .k = kh, .kw = kw_, .pad = ph, .padw = pw_, .stride = s_, .nobias = 1},    \
        (nn_spec){.kind = NN_BATCHNORM, .relu = 1, .eps = 1e-3f}
#define C1(o) BC(o, 1, 1, 0, 0, 1)
#define AVG3 (nn_spec){.kind = NN_AVGPOOL, .k = 3, .stride = 1, .pad = 1}
#define MAX3S2 (nn_spec){.kind = NN_MAXPOOL, .k = 3, .stride = 2}
#define PATH(p, ...)                                                                                               \
    do {                                                                                                           \
        nn_spec specs_[] = {__VA_ARGS__};                                                                          \
        len[p] = (int)(sizeof specs_ / sizeof *specs_);                                                            \
        memcpy(paths[p], specs_, sizeof specs_);                                                                   \
    } while (0)
    int o = sp->out;
    switch (sp->mixed) {
    case 'A':
        PATH(0, C1(64));
        PATH(1, C1(48), BC(64, 5, 5, 2, 2, 1));
        PATH(2, C1(64), BC(96, 3, 3, 1, 1, 1), BC(96, 3, 3, 1, 1, 1));
        PATH(3, AVG3, C1(o));
        return 4;
    case 'B':
        PATH(0, BC(384, 3, 3, 0, 0, 2));
        PATH(1, C1(64), BC(96, 3, 3, 1, 1, 1), BC(96, 3, 3, 0, 0, 2));
        PATH(2, MAX3S2);
        return 3;
    case 'C':
        PATH(0, C1(192));
        PATH(1, C1(o), BC(o, 1, 7, 0, 3, 1), BC(192, 7, 1, 3, 0, 1));
        PATH(2, C1(o), BC(o, 7, 1, 3, 0, 1), BC(o, 1, 7, 0, 3, 1), BC(o, 7, 1, 3, 0, 1), BC(192, 1, 7, 0, 3, 1));
        PATH(3, AVG3, C1(192));
        return 4;
    case 'D':
        PATH(0, C1(192), BC(320, 3, 3, 0, 0, 2));
        PATH(1, C1(192), BC(192, 1, 7, 0, 3, 1), BC(192, 7, 1, 3, 0, 1), BC(192, 3, 3, 0, 0, 2));
        PATH(2, MAX3S2);
        return 3;
    case 'E':
        PATH(0, C1(320));
        PATH(1, C1(384), (nn_spec){.kind = NN_CONCAT, .mixed = 'e', .out = 384});
        PATH(2, C1(448), BC(384, 3, 3, 1, 1, 1), (nn_spec){.kind = NN_CONCAT, .mixed = 'e', .out = 384});
        PATH(3, AVG3, C1(192));
        return 4;
    case 'e':
        PATH(0, BC(o, 1, 3, 0, 1, 1));
        PATH(1, BC(o, 3, 1, 1, 0, 1));
        return 2;
    default: return 0;
    }
#undef PATH
}

/* torchvision's inception_v3 without the auxiliary classifier (299x299, and
 * any input from 75x75, 224 included): the specs into out (room for 64). */
static int inception_specs(nn_spec *out)
{
    const nn_spec stem[] = {BC(32, 3, 3, 0, 0, 2), BC(32, 3, 3, 0, 0, 1), BC(64, 3, 3, 1, 1, 1), MAX3S2,
                            C1(80),                BC(192, 3, 3, 0, 0, 1), MAX3S2};
#undef BC
#undef C1
#undef AVG3
#undef MAX3S2
    static const struct {
        char mixed;
        int out;
    } blocks[] = {{'A', 32}, {'A', 64}, {'A', 64}, {'B', 0}, {'C', 128}, {'C', 160},
                  {'C', 160}, {'C', 192}, {'D', 0}, {'E', 0}, {'E', 0}};
    int n = 0;
    for (size_t i = 0; i < sizeof stem / sizeof *stem; i++)
        out[n++] = stem[i];
    for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++)
        out[n++] = (nn_spec){.kind = NN_CONCAT, .mixed = blocks[i].mixed, .out = blocks[i].out};
    out[n++] = (nn_spec){.kind = NN_GAP};
    out[n++] = (nn_spec){.kind = NN_DROPOUT, .rate = 0.5f};
    out[n++] = (nn_spec){.kind = NN_DENSE, .out = -1};
    return n;
}

/* A concat's paths as networks of their own on its input shape; l's output
 * shape from them (-2 when their heights or widths differ). */
static int build_concat(nn_net *n, nn_layer *l, const nn_spec *sp, nn_rng *rng)
{
    nn_spec paths[4][12];
    int len[4], count = mixed_paths(sp, paths, len);
    sp_err e = {0};
    if (!count)
        return -2;
    if (!(l->paths = calloc((size_t)count, sizeof *l->paths)))
        return -1;
    l->oc = 0;
    for (int p = 0; p < count; p++) {
        if (!(l->paths[p] = nn_net_build("path", paths[p], len[p], l->c, l->h, l->w, 2, n->batch, rng, &e)))
            return e.code == SP_EXIT_SYSTEM ? -1 : -2;
        l->npaths = p + 1;
        if (l->need_dx) /* a path may start with a pool: every layer before a conv must pass gradients */
            nn_net_need_dx(l->paths[p]);
        const nn_layer *last = &l->paths[p]->layers[l->paths[p]->nlayers - 1];
        if (p && (last->oh != l->oh || last->ow != l->ow))
            return -2;
        l->oh = last->oh, l->ow = last->ow, l->oc += last->oc;
    }
    return 0;
}

/* torchvision's resnets for 224x224 (blocks per stage, bottleneck or not), or
 * He et al.'s CIFAR family (resnet20, 32, 44, 56, 110: 3, 5, 7, 9, 18 blocks
 * a stage: 58 specs for resnet110); the specs into out (room for 64). */
static int resnet_specs(const char *model, nn_spec *out)
{
    static const int depth18[] = {2, 2, 2, 2}, depth34[] = {3, 4, 6, 3};
    static const struct {
        const char *name;
        int blocks;
    } cifar[] = {{"resnet20", 3}, {"resnet32", 5}, {"resnet44", 7}, {"resnet56", 9}, {"resnet110", 18}};
    const int *depth;
    int stages, bottleneck = 0, width = 64, n = 0, blocks = 0;
    for (size_t i = 0; i < sizeof cifar / sizeof *cifar; i++)
        if (!strcmp(model, cifar[i].name))
            blocks = cifar[i].blocks;
    if (blocks) {
        out[n++] = (nn_spec){.kind = NN_CONV, .out = 16, .k = 3, .stride = 1, .pad = 1, .nobias = 1};
        out[n++] = (nn_spec){.kind = NN_BATCHNORM, .relu = 1};
        for (int st = 0; st < 3; st++)
            for (int b = 0; b < blocks; b++)
                out[n++] = (nn_spec){.kind = NN_BLOCK, .out = 16 << st, .stride = st > 0 && b == 0 ? 2 : 1,
                                     .option_a = 1};
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

/* torchvision's vgg11 and vgg16 ("vgg11", "vgg16"; "_bn": each conv
 * followed by batchnorm, the conv keeping its bias, as torchvision's), for
 * 224x224: 3x3 convs with padding 1 and relu, maxpool 2 after each stage,
 * then the features flattened (7x7x512 at 224, where torchvision's adaptive
 * 7x7 average pool is the identity), dense 4096, relu, dropout 0.5, dense
 * 4096, relu, dropout 0.5, dense classes. "-cifar": the same features for
 * 32x32 (1x1x512 out) and the small classifier: dense 512, relu, dropout 0.5,
 * dense 512, relu, dropout 0.5, dense classes. The specs into out (room for
 * 64); the count, or 0 for another name. */
static int vgg_specs(const char *model, nn_spec *out)
{
    static const int cfg11[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
    static const int cfg16[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
    char name[32];
    snprintf(name, sizeof name, "%s", model);
    char *dash = strchr(name, '-');
    int cifar = dash && !strcmp(dash, "-cifar");
    if (dash && !cifar)
        return 0;
    if (dash)
        *dash = 0;
    int bn = strlen(name) == 8 && !strcmp(name + 5, "_bn");
    if (bn)
        name[5] = 0;
    const int *cfg = !strcmp(name, "vgg11") ? cfg11 : !strcmp(name, "vgg16") ? cfg16 : NULL;
    int len = cfg == cfg11 ? (int)(sizeof cfg11 / sizeof *cfg11) : (int)(sizeof cfg16 / sizeof *cfg16), n = 0;
    if (!cfg)
        return 0;
    for (int i = 0; i < len; i++) {
        if (!cfg[i]) {
            out[n++] = (nn_spec){.kind = NN_MAXPOOL, .k = 2, .stride = 2};
            continue;
        }
        out[n++] = (nn_spec){.kind = NN_CONV, .out = cfg[i], .k = 3, .stride = 1, .pad = 1, .relu = !bn};
        if (bn)
            out[n++] = (nn_spec){.kind = NN_BATCHNORM, .relu = 1};
    }
    int width = cifar ? 512 : 4096;
    out[n++] = (nn_spec){.kind = NN_FLATTEN};
    for (int i = 0; i < 2; i++) {
        out[n++] = (nn_spec){.kind = NN_DENSE, .out = width};
        out[n++] = (nn_spec){.kind = NN_RELU};
        out[n++] = (nn_spec){.kind = NN_DROPOUT, .rate = 0.5f};
    }
    out[n++] = (nn_spec){.kind = NN_DENSE, .out = -1};
    return n;
}

/* The layer specs of a model by name, without a head, into out (room for
 * 64); the count, or 0 for an unknown name. */
static int named_specs(const char *model, nn_spec *out)
{
#define L(kind_) {.kind = kind_}
#define DENSE(n) {.kind = NN_DENSE, .out = n} /* n = -1: the class count */
#define CONV3(n, p) {.kind = NN_CONV, .out = n, .k = 3, .stride = 1, .pad = p, .relu = 1}
#define POOL2 {.kind = NN_MAXPOOL, .k = 2, .stride = 2}
    static const nn_spec mlp[] = {L(NN_FLATTEN), DENSE(128), L(NN_RELU), DENSE(-1)};
    /* the seed's Keras CIFAR net: Conv2D(3x3) is padding "valid", so 32 ->
     * 30 -> 15 -> 13 -> 6 -> 4 -> 2 and 128 x 2 x 2 = 512 into Dense(128) */
    static const nn_spec cnn[] = {
        CONV3(32, 0), POOL2, CONV3(64, 0), POOL2, CONV3(128, 0), POOL2, L(NN_FLATTEN), DENSE(128), L(NN_RELU),
        DENSE(-1),
    };
    /* the same with "same" padding: 32 -> 16 -> 8 -> 4, 2048 into Dense(128) */
    static const nn_spec cnn_same[] = {
        CONV3(32, 1), POOL2, CONV3(64, 1), POOL2, CONV3(128, 1), POOL2, L(NN_FLATTEN), DENSE(128), L(NN_RELU),
        DENSE(-1),
    };
#undef L
#undef DENSE
#undef CONV3
#undef POOL2
    const nn_spec *fixed = !strcmp(model, "mlp")        ? mlp
                           : !strcmp(model, "cnn")      ? cnn
                           : !strcmp(model, "cnn-same") ? cnn_same
                                                        : NULL;
    int count = fixed == mlp ? (int)(sizeof mlp / sizeof *mlp) : (int)(sizeof cnn / sizeof *cnn);
    if (!fixed && !strncmp(model, "vgg", 3))
        return vgg_specs(model, out);
    if (!fixed && !strcmp(model, "inception_v3"))
        return inception_specs(out);
    if (!fixed)
        return resnet_specs(model, out);
    for (int i = 0; i < count; i++)
        out[i] = fixed[i];
    return count;
}

/* The layers of a named model before its classifier: its base. */
static int base_count(const char *model, const nn_spec *specs, int count)
{
    if (!strcmp(model, "mlp"))
        return 0;
    int i = 0;
    while (i < count && specs[i].kind != NN_FLATTEN && specs[i].kind != NN_GAP && specs[i].kind != NN_DENSE)
        i++;
    return i;
}

#define HEAD_SUFFIX "+head"

/* The specs of model (a named model, or one with "+headN") into out (room
 * for 64), its base's layer count into *base; 0 for an unknown name or a
 * bad head. */
static int model_specs(const char *model, nn_spec *out, int *base)
{
    char name[32];
    const char *plus = strstr(model, HEAD_SUFFIX);
    long head = 0;
    if (plus) {
        const char *digits = plus + strlen(HEAD_SUFFIX);
        char *end;
        if ((size_t)(plus - model) >= sizeof name || !*digits || strspn(digits, "0123456789") != strlen(digits) ||
            strlen(digits) > 6 || (head = strtol(digits, &end, 10)) < 1 || head > NN_MAX_CLASSES)
            return 0;
        snprintf(name, sizeof name, "%.*s", (int)(plus - model), model);
    } else {
        snprintf(name, sizeof name, "%s", model);
    }
    int count = named_specs(name, out);
    if (!count)
        return 0;
    *base = base_count(name, out, count);
    if (!head)
        return count;
    /* the seed's head: global average pool, Dense(head, relu), Dense(classes) */
    count = *base;
    out[count++] = (nn_spec){.kind = NN_GAP};
    out[count++] = (nn_spec){.kind = NN_DENSE, .out = (int)head};
    out[count++] = (nn_spec){.kind = NN_RELU};
    out[count++] = (nn_spec){.kind = NN_DENSE, .out = -1};
    return count;
}

int nn_model_with_head(char *out, size_t n, const char *model, int head, sp_err *err)
{
    int len = head ? snprintf(out, n, "%s" HEAD_SUFFIX "%d", model, head) : snprintf(out, n, "%s", model);
    if (len < 0 || (size_t)len >= n || (size_t)len >= sizeof ((nn_net *)0)->model)
        return sp_fail(err, SP_EXIT_USAGE, "model name %s with head %d is too long", model, head);
    return 0;
}

static int unknown_model(const char *model, sp_err *err)
{
    return sp_fail(err, SP_EXIT_USAGE,
                   "unknown model %s (mlp, cnn, cnn-same, resnet18, resnet34, resnet50, resnet20, resnet32, resnet44, "
                   "resnet56, resnet110, inception_v3, "
                   "vgg11, vgg16, vgg11_bn, vgg16_bn, the vggs with -cifar; any with +headN)",
                   model);
}

nn_net *nn_net_create(const char *model, int c, int h, int w, int classes, int batch, nn_rng *rng, sp_err *err)
{
    nn_spec specs[64];
    size_t params, running;
    int base = 0;
    if (nn_net_plan(model, c, h, w, classes, &params, &running, err))
        return NULL;
    nn_net *n = nn_net_build(model, specs, model_specs(model, specs, &base), c, h, w, classes, batch, rng, err);
    if (n) {
        n->base_layers = base;
        for (int i = 0; i < base; i++)
            n->base_params += layer_nparams(&n->layers[i]);
    }
    return n;
}

int nn_net_freeze_base(nn_net *n, sp_err *err)
{
    if (n->base_layers < 1)
        return sp_fail(err, SP_EXIT_USAGE, "model %s has no base to freeze", n->model);
    n->frozen = n->base_layers;
    for (int i = 0; i < n->base_params; i++)
        n->params[i]->frozen = 1;
    n->layers[n->frozen].need_dx = 0; /* nothing before it wants a gradient */
    return 0;
}

/* The shape walk of add_layer and build_block without building: the output
 * shape into *c, *h, *w, the parameter and running-statistic floats added to
 * *params and *running. -2 when a layer's input is too small. */
static int plan_specs(const nn_spec *specs, int count, int classes, int *c, int *h, int *w, size_t *params,
                      size_t *running)
{
    for (int i = 0; i < count; i++) {
        nn_spec sp = specs[i];
        if (sp.out < 0)
            sp.out = classes;
        switch (sp.kind) {
        case NN_DENSE: {
            size_t in = (size_t)*c * (size_t)*h * (size_t)*w;
            *params += (size_t)sp.out * in + (size_t)sp.out;
            *c = sp.out, *h = *w = 1;
            break;
        }
        case NN_CONV:
        case NN_MAXPOOL:
        case NN_AVGPOOL: {
            int kw = sp.kind == NN_CONV && sp.kw ? sp.kw : sp.k, pw = sp.kind == NN_CONV && sp.kw ? sp.padw : sp.pad;
            if (*h + 2 * sp.pad < sp.k || *w + 2 * pw < kw || (sp.kind != NN_CONV && sp.pad * 2 > sp.k))
                return -2;
            *h = (*h + 2 * sp.pad - sp.k) / sp.stride + 1, *w = (*w + 2 * pw - kw) / sp.stride + 1;
            if (sp.kind == NN_CONV) {
                *params += (size_t)sp.out * (size_t)*c * (size_t)sp.k * (size_t)kw + (sp.nobias ? 0 : (size_t)sp.out);
                *c = sp.out;
            }
            break;
        }
        case NN_FLATTEN: *c = *c * *h * *w, *h = *w = 1; break;
        case NN_BATCHNORM: *params += 2 * (size_t)*c, *running += 2 * (size_t)*c; break;
        case NN_GAP: *h = *w = 1; break;
        case NN_CONCAT: {
            nn_spec paths[4][12];
            int len[4], np = mixed_paths(&sp, paths, len), oc = 0, oh = 0, ow = 0;
            if (!np)
                return -2;
            for (int p = 0; p < np; p++) {
                int pc = *c, ph = *h, pw = *w;
                if (plan_specs(paths[p], len[p], 2, &pc, &ph, &pw, params, running) || (p && (ph != oh || pw != ow)))
                    return -2;
                oc += pc, oh = ph, ow = pw;
            }
            *c = oc, *h = oh, *w = ow;
            break;
        }
        case NN_BLOCK: {
            nn_spec main[6], proj[2];
            int has_proj, n = block_specs(&sp, *c, main, proj, &has_proj), pc = *c, ph = *h, pw = *w;
            if (plan_specs(main, n, 2, c, h, w, params, running) ||
                (has_proj && plan_specs(proj, 2, 2, &pc, &ph, &pw, params, running)))
                return -2;
            break;
        }
        default: break;
        }
        if (*h < 1 || *w < 1)
            return -2;
    }
    return 0;
}

/* The limits every net is held to (see nn.h), with a message naming what
 * exceeds them. */
static int check_limits(const char *model, int c, int h, int w, int classes, int batch, sp_err *err)
{
    if (c < 1 || h < 1 || w < 1 || classes < 2 || batch < 1)
        return sp_fail(err, SP_EXIT_DATA, "model %s: cannot take %dx%dx%d inputs with %d classes", model, h, w, c,
                       classes);
    if (h > NN_MAX_SIDE || w > NN_MAX_SIDE || c > NN_MAX_CHANNELS)
        return sp_fail(err, SP_EXIT_DATA, "model %s: %dx%dx%d inputs exceed the limit of %dx%dx%d", model, h, w, c,
                       NN_MAX_SIDE, NN_MAX_SIDE, NN_MAX_CHANNELS);
    if (classes > NN_MAX_CLASSES)
        return sp_fail(err, SP_EXIT_DATA, "model %s: %d classes exceed the limit of %d", model, classes,
                       NN_MAX_CLASSES);
    if (batch > NN_MAX_BATCH)
        return sp_fail(err, SP_EXIT_DATA, "model %s: a batch of %d exceeds the limit of %d", model, batch,
                       NN_MAX_BATCH);
    return 0;
}

int nn_net_plan(const char *model, int c, int h, int w, int classes, size_t *params, size_t *running, sp_err *err)
{
    nn_spec specs[64];
    int base;
    int count = model_specs(model, specs, &base);
    if (!count)
        return unknown_model(model, err);
    if (check_limits(model, c, h, w, classes, 1, err))
        return -1;
    *params = *running = 0;
    int oc = c, oh = h, ow = w;
    if (plan_specs(specs, count, classes, &oc, &oh, &ow, params, running))
        return sp_fail(err, SP_EXIT_DATA, "model %s: %dx%d inputs are too small for it", model, h, w);
    if (*params > NN_MAX_PARAMS)
        return sp_fail(err, SP_EXIT_DATA, "model %s: %zu parameters for %dx%dx%d inputs exceed the limit of %zu",
                       model, *params, h, w, c, (size_t)NN_MAX_PARAMS);
    return 0;
}

/* ---------------- layout ---------------- */
/* A net runs in the blocked layout (nn/onednn.h: oneDNN's convolutions and
 * pooling, norm_blocked.c's batchnorm) when oneDNN has a block for this CPU,
 * the convolution algorithm is left to the shape (nn_set_conv_algo), and
 * every tensor between its first layer and its flatten or global pooling
 * has a multiple of the block as channels: then no tensor is padded and
 * each has its NCHW size. The first layer must be a convolution (it reads
 * the NCHW input); from the flatten or the global pooling on, the net is
 * (B, n) as in NCHW. Else the whole net stays in NCHW on conv.c's gemms. */

/* Whether n fits (top: a whole net; else a path of a block or concat,
 * spatial throughout). */
static int layout_fits(const nn_net *n, int cb, int top)
{
    int spatial = 1;
    for (int i = 0; i < n->nlayers; i++) {
        const nn_layer *l = &n->layers[i];
        int first = top && i == 0;
        if (!spatial) {
            if (l->kind != NN_DENSE && l->kind != NN_RELU && l->kind != NN_DROPOUT && l->kind != NN_FLATTEN)
                return 0;
            continue;
        }
        if ((first && l->kind != NN_CONV) || (!first && l->c % cb))
            return 0;
        switch (l->kind) {
        case NN_CONV:
            if (l->oc % cb)
                return 0;
            break;
        case NN_DENSE: /* straight after a spatial layer it would read the blocked layout as NCHW */
            return 0;
        case NN_FLATTEN:
        case NN_GAP: spatial = 0; break;
        case NN_BLOCK:
            if (!layout_fits(l->main, cb, 0) || (l->shortcut && !layout_fits(l->shortcut, cb, 0)))
                return 0;
            break;
        case NN_CONCAT:
            for (int p = 0; p < l->npaths; p++)
                if (!layout_fits(l->paths[p], cb, 0))
                    return 0;
            break;
        }
    }
    return top ? !spatial : 1;
}

/* The input gradients of a blocked net share buffers: a layer's dx is
 * read only by the backward of the layer before it, so the layers of one net
 * take turns at two (pair[i % 2]); the paths of blocks and concats, run one
 * after another, each done with its buffers once its gradient is added into
 * the block's or concat's dx (layers.c), share the pair of their depth,
 * and the blocks and concats of one depth one buffer for their g. A slot
 * is depth * 4 + role * 2 + k. */
enum { ROLE_NET, ROLE_G, POOL_DEPTHS = NN_GRAD_SLOTS / 4 };

typedef struct grad_pool {
    size_t need[NN_GRAD_SLOTS]; /* floats per slot */
    float **buf;                /* NULL while measuring; then the net's slots */
} grad_pool;

/* Takes slot for *p (its old buffer freed), or while measuring, notes that
 * it needs floats; -1 past the depths a pool has. */
static int pool_take(grad_pool *gp, int depth, int role, int k, size_t floats, float **p)
{
    if (depth >= POOL_DEPTHS)
        return -1;
    int slot = depth * 4 + role * 2 + k;
    if (!gp->buf) {
        if (floats > gp->need[slot])
            gp->need[slot] = floats;
        return 0;
    }
    free(*p);
    *p = gp->buf[slot];
    return 0;
}

/* Moves a net that fits into the blocked layout: each spatial layer gets
 * cb, convs and pools their oneDNN state (conv.c's scratch goes), batchnorm
 * its sums (and no normalized copy of its input), a flatten its copy. Run
 * twice: first measuring the gradient pool (gp->buf NULL), then moving the
 * layers and pointing their gradients into it. 0, or -1 when oneDNN
 * refuses a layer or memory runs out. */
static int layout_convert(nn_net *n, int cb, int top, int depth, int role, grad_pool *gp)
{
    for (int i = 0; i < n->nlayers; i++) {
        nn_layer *l = &n->layers[i];
        size_t in = (size_t)n->batch * nn_layer_in_size(l), out = (size_t)n->batch * nn_layer_out_size(l);
        if (l->kind == NN_FLATTEN && l->h * l->w == 1)
            return 0; /* it stays the same memory, and the rest of the net is (B, n) */
        if (pool_take(gp, depth, role, i % 2, in, &l->dx))
            return -1;
        if (gp->buf) /* from here its dx (and g) are the pool's: nn_net_free must not free them, even if
                      * a later layer fails and the net is freed half moved */
            l->pooled = 1;
        if (l->kind == NN_BLOCK && top) {
            /* its dy is the next layer's gradient in this net's pair (or a
             * dense layer's own, after a 1x1 flatten), read by nothing after
             * it (the net ends in (B, n), so never the caller's): g in place */
            if (gp->buf)
                free(l->g), l->g = NULL, l->g_in_dy = 1;
        } else if ((l->kind == NN_BLOCK || l->kind == NN_CONCAT) && pool_take(gp, depth, ROLE_G, 0, out, &l->g)) {
            return -1;
        }
        switch (l->kind) {
        case NN_BLOCK:
            if (gp->buf) { /* the sum in place of the main path's last output, when its backward does not read it */
                nn_layer *last = &l->main->layers[l->main->nlayers - 1];
                if ((last->kind == NN_BATCHNORM || last->kind == NN_CONV) && !last->relu) {
                    free(l->y);
                    l->y = last->y, l->y_shared = 1;
                }
            }
            if (layout_convert(l->main, cb, 0, depth + 1, ROLE_NET, gp) ||
                (l->shortcut && layout_convert(l->shortcut, cb, 0, depth + 1, ROLE_NET, gp)))
                return -1;
            break;
        case NN_CONCAT:
            for (int p = 0; p < l->npaths; p++)
                if (layout_convert(l->paths[p], cb, 0, depth + 1, ROLE_NET, gp))
                    return -1;
            break;
        }
        if (!gp->buf) {
            if (l->kind == NN_FLATTEN || l->kind == NN_GAP)
                return 0;
            continue;
        }
        l->cb = cb;
        l->plain_in = top && i == 0;
        switch (l->kind) {
        case NN_CONV:
            free(l->col), free(l->dcol), free(l->ybuf), free(l->dwbuf), free(l->dbbuf);
            l->col = l->dcol = l->ybuf = l->dwbuf = NULL, l->dbbuf = NULL;
            /* fall through */
        case NN_MAXPOOL:
        case NN_AVGPOOL:
            free(l->arg), l->arg = NULL;
            if (nn_onednn_prepare(l, n->batch))
                return -1;
            break;
        case NN_BATCHNORM:
            free(l->xhat), l->xhat = NULL;
            if (!(l->bnsum = malloc((2 * (size_t)n->batch * l->c + 2 * (size_t)l->c + 1) * sizeof(double))))
                return -1;
            break;
        case NN_FLATTEN:
            return (l->y = activation_alloc(in * sizeof(float))) ? 0 : -1; /* its NCHW copy; the rest of the net is (B, n) */
        case NN_GAP: return 0;
        }
    }
    return 0;
}

/* Both passes of layout_convert on a whole net; the pool becomes n's. */
static int layout_move(nn_net *n, int cb)
{
    grad_pool gp = {0};
    if (layout_convert(n, cb, 1, 0, ROLE_NET, &gp))
        return -1;
    if (!(n->grad_pool = calloc(NN_GRAD_SLOTS, sizeof *n->grad_pool)))
        return -1;
    for (int s = 0; s < NN_GRAD_SLOTS; s++) {
        if (gp.need[s] && !(n->grad_pool[s] = activation_alloc(gp.need[s] * sizeof(float))))
            return -1;
        n->grad_pool_floats[s] = gp.need[s];
    }
    gp.buf = n->grad_pool;
    return layout_convert(n, cb, 1, 0, ROLE_NET, &gp);
}

int nn_net_layout_block(const nn_net *n) { return n->nlayers ? n->layers[0].cb : 0; }

static int build_depth;  /* nn_net_build's nesting: 0 for a whole net */
static int build_plain;  /* a whole net is being built again in NCHW after oneDNN refused it */

static nn_net *net_build(const char *model, const nn_spec *specs, int count, int c, int h, int w, int classes,
                         int batch, nn_rng *rng, sp_err *err);

nn_net *nn_net_build(const char *model, const nn_spec *specs, int count, int c, int h, int w, int classes, int batch,
                     nn_rng *rng, sp_err *err)
{
    if (build_depth)
        return net_build(model, specs, count, c, h, w, classes, batch, rng, err);
    nn_rng start = *rng;
    build_depth++;
    nn_net *n = net_build(model, specs, count, c, h, w, classes, batch, rng, err);
    build_depth--;
    int cb = build_plain ? 0 : nn_layout_block();
    if (!n || !cb || !layout_fits(n, cb, 1) || layout_move(n, cb) == 0)
        return n;
    nn_net_free(n); /* oneDNN refused a layer: the same net in NCHW, from the same random numbers */
    *rng = start;
    build_plain = 1;
    n = nn_net_build(model, specs, count, c, h, w, classes, batch, rng, err);
    build_plain = 0;
    return n;
}

static nn_net *net_build(const char *model, const nn_spec *specs, int count, int c, int h, int w, int classes,
                         int batch, nn_rng *rng, sp_err *err)
{
    /* the inner nets of blocks have more channels than an input may have */
    if (check_limits(model, c > NN_MAX_CHANNELS ? 1 : c, h, w, classes, batch, err))
        return NULL;
    if (c > 65536) {
        sp_fail(err, SP_EXIT_DATA, "model %s: cannot take %d channels", model, c);
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

void nn_net_need_dx(nn_net *n)
{
    for (int i = 0; i < n->nlayers; i++) {
        nn_layer *l = &n->layers[i];
        l->need_dx = 1;
        if (l->main)
            nn_net_need_dx(l->main);
        if (l->shortcut)
            nn_net_need_dx(l->shortcut);
        for (int p = 0; p < l->npaths; p++)
            nn_net_need_dx(l->paths[p]);
    }
}

void nn_net_free(nn_net *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->nlayers; i++) {
        nn_layer *l = &n->layers[i];
        if ((l->kind != NN_FLATTEN || (l->cb && l->h * l->w > 1)) && !l->y_shared) /* a flatten's own copy in a blocked net */
            free(l->y);
        if (l->kind != NN_FLATTEN && !l->pooled) /* else the top net's grad_pool holds it */
            free(l->dx);
        nn_onednn_free(l), free(l->bnsum);
        if (l->kind != NN_BLOCK) /* a block's parameters are its paths' */
            param_free(l->weight), param_free(l->bias);
        nn_net_free(l->main), nn_net_free(l->shortcut);
        if (!l->pooled)
            free(l->g);
        for (int p = 0; p < l->npaths; p++)
            nn_net_free(l->paths[p]);
        free(l->paths);
        free(l->col), free(l->dcol), free(l->ybuf), free(l->dwbuf), free(l->dbbuf);
        free(l->arg), free(l->mask), free(l->run_mean), free(l->run_var), free(l->mean), free(l->istd), free(l->xhat);
    }
    for (int s = 0; n->grad_pool && s < NN_GRAD_SLOTS; s++)
        free(n->grad_pool[s]);
    free(n->grad_pool);
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

/* The largest output of a conv with a fused relu in a blocked net, in
 * floats: onednn.c's one buffer for the gradient through it. */
static double relu_scratch_floats(const nn_net *n)
{
    double most = 0;
    for (int i = 0; i < n->nlayers; i++) {
        const nn_layer *l = &n->layers[i];
        double v = l->kind == NN_CONV && l->dn && l->relu ? (double)n->batch * (double)nn_layer_out_size(l) : 0;
        if (l->main)
            v = fmax(v, relu_scratch_floats(l->main));
        if (l->shortcut)
            v = fmax(v, relu_scratch_floats(l->shortcut));
        for (int p = 0; p < l->npaths; p++)
            v = fmax(v, relu_scratch_floats(l->paths[p]));
        most = fmax(most, v);
    }
    return most;
}

static double net_floats(const nn_net *n)
{
    double floats = 0, B = n->batch;
    for (int i = 0; i < n->nlayers; i++) {
        const nn_layer *l = &n->layers[i];
        double in = B * (double)nn_layer_in_size(l), out = B * (double)nn_layer_out_size(l);
        if (l->kind == NN_FLATTEN) { /* the same memory, or its NCHW copy in a blocked net */
            floats += l->cb && l->h * l->w > 1 ? in : 0;
            continue;
        }
        floats += (l->y_shared ? 0 : out) + (l->pooled ? 0 : in); /* y, dx */
        floats += (double)nn_onednn_bytes(l) / 4;
        if (l->kind == NN_CONV && !l->dn) { /* im2col scratch, per-thread gradient shares */
            double per = (double)l->c * l->k * l->kw * l->oh * l->ow * l->group * l->threads;
            floats += 2 * per + (double)l->oc * l->oh * l->ow * l->group * l->threads +
                      (double)l->threads * ((double)l->weight->n + l->oc);
        }
        if (l->kind == NN_MAXPOOL && !l->dn)
            floats += out; /* int32 indices */
        if (l->kind == NN_DROPOUT)
            floats += in; /* mask */
        if (l->kind == NN_BATCHNORM) /* normalized input (NCHW) or per-sample sums (blocked, doubles); statistics */
            floats += (l->xhat ? in : 0) + (l->bnsum ? 2.0 * (2.0 * B * l->c + 2.0 * l->c + 1) : 0) + 4.0 * l->c;
        if (l->kind == NN_BLOCK || l->kind == NN_CONCAT) /* g; the paths hold their own parameters */
            floats += l->pooled ? 0 : out;
        if (l->kind == NN_BLOCK)
            floats += net_floats(l->main) + (l->shortcut ? net_floats(l->shortcut) : 0);
        else if (l->kind == NN_CONCAT)
            for (int p = 0; p < l->npaths; p++)
                floats += net_floats(l->paths[p]);
        else
            floats += 4.0 * ((l->weight ? (double)l->weight->n : 0) + (l->bias ? (double)l->bias->n : 0));
    }
    for (int s = 0; n->grad_pool && s < NN_GRAD_SLOTS; s++)
        floats += (double)n->grad_pool_floats[s];
    return floats;
}

double nn_net_bytes(const nn_net *n)
{
    return 4 * (net_floats(n) + relu_scratch_floats(n));
}

/* ---------------- forward, backward ---------------- */

const float *nn_forward(nn_net *n, const float *x, int B, int train, nn_rng *rng, sp_err *err)
{
    for (int i = 0; i < n->nlayers; i++) {
        if (nn_layer_forward(&n->layers[i], x, B, i < n->frozen ? 0 : train, rng, err))
            return NULL;
        x = n->layers[i].y;
    }
    return x;
}

int nn_backward_each(nn_net *n, const float *dlogits, int B, void (*done)(void *ctx, int first), void *ctx,
                     sp_err *err)
{
    const float *g = dlogits;
    int first = n->nparams; /* layer i's parameters are params[first..), the layers' in order */
    for (int i = n->nlayers - 1; i >= n->frozen; i--) {
        if (nn_layer_backward(&n->layers[i], g, B, err))
            return -1;
        g = n->layers[i].dx;
        first -= layer_nparams(&n->layers[i]);
        if (done)
            done(ctx, first);
    }
    return 0;
}

int nn_backward(nn_net *n, const float *dlogits, int B, sp_err *err)
{
    return nn_backward_each(n, dlogits, B, NULL, NULL, err);
}
