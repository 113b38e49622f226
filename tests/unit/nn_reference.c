/* The nn library against PyTorch, and against finite differences.
 *
 * usage: nn_reference FIXTURES   (written by tests/fixtures/make_nn_fixtures.py)
 *        nn_reference --net MODEL train|eval FIXTURES   (tests/fixtures/torchvision_fixtures.py)
 *        nn_reference --plan MODEL SIZE CLASSES   (prints the parameters of a net for SIZExSIZE RGB)
 *
 * Every layer's output, input gradient and parameter gradients must be within
 * LAYER_ATOL + LAYER_RTOL * |reference| of PyTorch's; the mlp's, the cnn's
 * (the seed's Keras CIFAR net, padding 0, under SGD and under Adam 1e-3) and
 * cnn-same's logits, loss, every gradient and every weight after each of two
 * optimizer steps within MODEL_ATOL + MODEL_RTOL * |reference|. The finite-difference checks compare each layer's backward with
 * central differences of sum(y * r): relative (root-mean-square) error
 * under FD_TOL. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "tests/unit/check.h"

#define LAYER_ATOL 1e-5
#define LAYER_RTOL 1e-4
#define MODEL_ATOL 2e-5
#define MODEL_RTOL 1e-3
#define FD_TOL 1e-3

typedef struct fix {
    char name[64];
    int ndim, dims[8];
    size_t n;
    float *data;
} fix;

static fix *fixes;
static int nfixes;

static int load(const char *path)
{
    FILE *f = fopen(path, "rb");
    char magic[8];
    if (!f || fread(magic, 1, 8, f) != 8 || memcmp(magic, "SPNNFIX1", 8)) {
        fprintf(stderr, "%s: not a fixture file\n", path);
        return -1;
    }
    uint32_t len;
    while (fread(&len, 4, 1, f) == 1) {
        fix *grown = realloc(fixes, (size_t)(nfixes + 1) * sizeof *fixes);
        if (!grown || len >= sizeof grown->name)
            return -1;
        fixes = grown;
        fix *x = &fixes[nfixes++];
        memset(x, 0, sizeof *x);
        uint32_t nd, d;
        if (fread(x->name, 1, len, f) != len || fread(&nd, 4, 1, f) != 1 || nd > 8)
            return -1;
        x->ndim = (int)nd;
        x->n = 1;
        for (uint32_t i = 0; i < nd; i++) {
            if (fread(&d, 4, 1, f) != 1)
                return -1;
            x->dims[i] = (int)d;
            x->n *= d;
        }
        x->data = malloc((x->n ? x->n : 1) * sizeof(float));
        if (!x->data || fread(x->data, sizeof(float), x->n, f) != x->n)
            return -1;
    }
    fclose(f);
    return 0;
}

static const fix *get(const char *name)
{
    for (int i = 0; i < nfixes; i++)
        if (!strcmp(fixes[i].name, name))
            return &fixes[i];
    fprintf(stderr, "fixture %s missing\n", name);
    exit(2);
}

/* nn_forward and nn_backward, ending the test on a failure. */
static const float *fwd(nn_net *n, const float *x, int B, int train, nn_rng *rng)
{
    sp_err err = {0};
    const float *y = nn_forward(n, x, B, train, rng, &err);
    if (!y) {
        fprintf(stderr, "nn_forward: %s\n", err.msg);
        exit(1);
    }
    return y;
}

static void bwd(nn_net *n, const float *dy, int B)
{
    sp_err err = {0};
    if (nn_backward(n, dy, B, &err)) {
        fprintf(stderr, "nn_backward: %s\n", err.msg);
        exit(1);
    }
}

/* Fills every gradient with NaN: nn_backward must set each one, and a
 * gradient it left alone fails its comparison. */
static void poison_grads(nn_net *n)
{
    for (int i = 0; i < n->nparams; i++)
        for (size_t j = 0; j < n->params[i]->n; j++)
            n->params[i]->g[j] = NAN;
}

static const float *getf(const char *prefix, const char *what)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    return get(name)->data;
}

/* got against the fixture prefix.what, element by element. */
static void compare(const char *prefix, const char *what, const float *got, double atol, double rtol)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    const fix *want = get(name);
    double worst = 0;
    size_t bad = 0, at = 0;
    for (size_t i = 0; i < want->n; i++) {
        double d = fabs((double)got[i] - want->data[i]), lim = atol + rtol * fabs(want->data[i]);
        if (!(d <= lim))
            bad++;
        if (!(d <= worst))
            worst = d, at = i;
    }
    CHECK(bad == 0, "%s: %zu of %zu values off (worst %.3g at %zu: %.8g, PyTorch %.8g)", name, bad, want->n, worst, at,
          got[at], want->data[at]);
    printf("  %-22s %8zu values, max |difference| %.3g\n", name, want->n, worst);
}

/* A net of one layer for an input shaped like the fixture prefix.x. */
static nn_net *one_layer(const char *prefix, nn_spec spec, nn_rng *rng)
{
    char name[96];
    snprintf(name, sizeof name, "%s.x", prefix);
    const fix *x = get(name);
    int B = x->dims[0], c = x->dims[1], h = x->ndim == 4 ? x->dims[2] : 1, w = x->ndim == 4 ? x->dims[3] : 1;
    sp_err err = {0};
    nn_net *n = nn_net_build(prefix, &spec, 1, c, h, w, 2, B, rng, &err);
    if (!n) {
        fprintf(stderr, "%s: %s\n", prefix, err.msg);
        exit(2);
    }
    n->layers[0].need_dx = 1;
    return n;
}

static void layer_case(const char *prefix, nn_spec spec, int train, nn_rng *rng)
{
    nn_net *n = one_layer(prefix, spec, rng);
    nn_layer *l = &n->layers[0];
    if (l->weight) {
        memcpy(l->weight->w, getf(prefix, "weight"), l->weight->n * sizeof(float));
        memcpy(l->bias->w, getf(prefix, "bias"), l->bias->n * sizeof(float));
    }
    const float *y = fwd(n, getf(prefix, "x"), n->batch, train, rng);
    compare(prefix, "y", y, LAYER_ATOL, LAYER_RTOL);
    poison_grads(n);
    bwd(n, getf(prefix, "dy"), n->batch);
    compare(prefix, "dx", l->dx, LAYER_ATOL, LAYER_RTOL);
    if (l->weight) {
        compare(prefix, "dweight", l->weight->g, LAYER_ATOL, LAYER_RTOL);
        compare(prefix, "dbias", l->bias->g, LAYER_ATOL, LAYER_RTOL);
    }
    nn_net_free(n);
}

static void batchnorm_cases(nn_rng *rng)
{
    nn_spec bn = {.kind = NN_BATCHNORM};
    nn_net *n = one_layer("bn_train", bn, rng);
    nn_layer *l = &n->layers[0];
    memcpy(l->run_mean, get("bn.running_mean0")->data, (size_t)l->c * sizeof(float));
    memcpy(l->run_var, get("bn.running_var0")->data, (size_t)l->c * sizeof(float));
    memcpy(l->weight->w, getf("bn_train", "weight"), (size_t)l->c * sizeof(float));
    memcpy(l->bias->w, getf("bn_train", "bias"), (size_t)l->c * sizeof(float));
    for (int mode = 1; mode >= 0; mode--) { /* training, then evaluation on the updated running statistics */
        const char *prefix = mode ? "bn_train" : "bn_eval";
        const float *y = fwd(n, getf(prefix, "x"), n->batch, mode, rng);
        compare(prefix, "y", y, LAYER_ATOL, LAYER_RTOL);
        poison_grads(n);
        bwd(n, getf(prefix, "dy"), n->batch);
        compare(prefix, "dx", l->dx, LAYER_ATOL, LAYER_RTOL);
        compare(prefix, "dweight", l->weight->g, LAYER_ATOL, LAYER_RTOL);
        compare(prefix, "dbias", l->bias->g, LAYER_ATOL, LAYER_RTOL);
        if (mode) {
            compare("bn", "running_mean1", l->run_mean, LAYER_ATOL, LAYER_RTOL);
            compare("bn", "running_var1", l->run_var, LAYER_ATOL, LAYER_RTOL);
        }
    }
    nn_net_free(n);
}

static void xent_case(void)
{
    const fix *lg = get("xent.logits");
    int B = lg->dims[0], k = lg->dims[1];
    int32_t labels[16];
    float dl[160];
    for (int i = 0; i < B; i++)
        labels[i] = (int32_t)getf("xent", "labels")[i];
    float loss = nn_softmax_xent(lg->data, labels, B, k, dl, NULL);
    compare("xent", "loss", &loss, LAYER_ATOL, LAYER_RTOL);
    compare("xent", "dlogits", dl, LAYER_ATOL, LAYER_RTOL);
    loss = nn_softmax_xent_smooth(lg->data, labels, B, k, 0.1f, dl, NULL); /* label smoothing 0.1 */
    compare("xent_ls", "loss", &loss, LAYER_ATOL, LAYER_RTOL);
    compare("xent_ls", "dlogits", dl, LAYER_ATOL, LAYER_RTOL);
}

/* PyTorch's parameters prefix.p0, p1, ... into n's, in order; -1 (a failed
 * check) when a size differs. */
static int load_params(const char *prefix, nn_net *n)
{
    char name[96];
    for (int i = 0; i < n->nparams; i++) {
        snprintf(name, sizeof name, "%s.p%d", prefix, i);
        const fix *p = get(name);
        CHECK(p->n == n->params[i]->n, "%s: %zu values, ours %zu", name, p->n, n->params[i]->n);
        if (p->n != n->params[i]->n)
            return -1;
        memcpy(n->params[i]->w, p->data, p->n * sizeof(float));
    }
    return 0;
}

/* The model from PyTorch's initial weights (fixtures prefix.*), two
 * optimizer steps on one batch: each step's logits, loss, every gradient,
 * and every weight after the step. */
static void model_case(const char *prefix, const char *model, int c, int h, int w, nn_opt *opt, nn_rng *rng)
{
    char name[64];
    snprintf(name, sizeof name, "%s.x", prefix);
    const fix *x = get(name);
    int B = x->dims[0];
    sp_err err = {0};
    nn_net *n = nn_net_create(model, c, h, w, 10, B, rng, &err);
    CHECK(n != NULL, "%s", err.msg);
    if (!n)
        return;
    if (load_params(prefix, n)) {
        nn_net_free(n);
        return;
    }
    int32_t labels[64];
    float dlogits[640];
    for (int i = 0; i < B; i++)
        labels[i] = (int32_t)getf(prefix, "labels")[i];
    for (int s = 0; s < 2; s++) {
        poison_grads(n);
        const float *logits = fwd(n, x->data, B, 1, rng);
        snprintf(name, sizeof name, "step%d.logits", s);
        compare(prefix, name, logits, MODEL_ATOL, MODEL_RTOL);
        float loss = nn_softmax_xent(logits, labels, B, 10, dlogits, NULL);
        bwd(n, dlogits, B);
        for (int i = 0; i < n->nparams; i++) {
            snprintf(name, sizeof name, "step%d.g%d", s, i);
            compare(prefix, name, n->params[i]->g, MODEL_ATOL, MODEL_RTOL);
        }
        nn_opt_step(opt, n);
        snprintf(name, sizeof name, "loss%d", s);
        compare(prefix, name, &loss, MODEL_ATOL, MODEL_RTOL);
        for (int i = 0; i < n->nparams; i++) {
            snprintf(name, sizeof name, "step%d.p%d", s, i);
            compare(prefix, name, n->params[i]->w, MODEL_ATOL, MODEL_RTOL);
        }
    }
    nn_net_free(n);
}

/* --wd-skip bn,bias: after an SGD step with weight decay, batchnorm's
 * parameters and the biases are bit for bit those of a step without it; the
 * weights are not (resnet20 from the resnet20_wdskip fixture). */
static void wd_skip_case(nn_rng *rng)
{
    const fix *x = get("resnet20_wdskip.x");
    int B = x->dims[0];
    int32_t labels[64];
    float dlogits[640];
    for (int i = 0; i < B; i++)
        labels[i] = (int32_t)getf("resnet20_wdskip", "labels")[i];
    nn_net *n[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        sp_err err = {0};
        nn_opt o;
        nn_opt_init(&o, NN_SGD, 0.05f);
        o.momentum = 0.9f, o.weight_decay = k ? 0.0f : 0.05f, o.wd_skip = NN_WD_SKIP_BN | NN_WD_SKIP_BIAS;
        n[k] = nn_net_create("resnet20", 3, 32, 32, 10, B, rng, &err);
        CHECK(n[k] != NULL, "%s", err.msg);
        if (!n[k] || load_params("resnet20_wdskip", n[k]))
            break;
        nn_rng r;
        nn_rng_seed(&r, 1);
        nn_softmax_xent(fwd(n[k], x->data, B, 1, &r), labels, B, 10, dlogits, NULL);
        bwd(n[k], dlogits, B);
        nn_opt_step(&o, n[k]);
    }
    int same[3] = {0, 0, 0}, count[3] = {0, 0, 0}; /* per role: tensors equal to the run without decay */
    for (int i = 0; n[0] && n[1] && i < n[0]->nparams; i++) {
        const nn_param *a = n[0]->params[i], *b = n[1]->params[i];
        count[a->role]++;
        same[a->role] += !memcmp(a->w, b->w, a->n * sizeof *a->w);
    }
    CHECK(count[NN_ROLE_BN] > 0 && same[NN_ROLE_BN] == count[NN_ROLE_BN], "wd_skip: %d of %d batchnorm tensors "
          "equal to the step without decay", same[NN_ROLE_BN], count[NN_ROLE_BN]);
    CHECK(count[NN_ROLE_BIAS] > 0 && same[NN_ROLE_BIAS] == count[NN_ROLE_BIAS], "wd_skip: %d of %d biases equal "
          "to the step without decay", same[NN_ROLE_BIAS], count[NN_ROLE_BIAS]);
    CHECK(count[NN_ROLE_WEIGHT] > 0 && same[NN_ROLE_WEIGHT] == 0, "wd_skip: %d of %d weights untouched by the "
          "decay", same[NN_ROLE_WEIGHT], count[NN_ROLE_WEIGHT]);
    printf("  %-22s %d batchnorm tensors and %d biases as without decay, %d weights decayed\n", "wd_skip bn,bias",
           same[NN_ROLE_BN], same[NN_ROLE_BIAS], count[NN_ROLE_WEIGHT]);
    nn_net_free(n[0]), nn_net_free(n[1]);
}

/* The batchnorm running statistics of n (blocks' paths included, in order)
 * against the fixtures prefix.r0, r1, ...: the largest difference into *worst. */
static void running_stats(const nn_net *n, const char *prefix, int *j, double *worst)
{
    char name[96];
    for (int i = 0; i < n->nlayers; i++) {
        const nn_layer *l = &n->layers[i];
        if (l->kind == NN_BLOCK) {
            running_stats(l->main, prefix, j, worst);
            if (l->shortcut)
                running_stats(l->shortcut, prefix, j, worst);
        }
        for (int p = 0; p < l->npaths; p++)
            running_stats(l->paths[p], prefix, j, worst);
        if (l->kind != NN_BATCHNORM)
            continue;
        snprintf(name, sizeof name, "%s.r%d", prefix, (*j)++);
        const fix *r = get(name);
        for (int c = 0; c < l->c; c++)
            *worst = fmax(*worst, fmax(fabs(l->run_mean[c] - r->data[c]), fabs(l->run_var[c] - r->data[l->c + c])));
    }
}

/* A block or a whole network in training mode against net_case's fixtures:
 * the output, the loss (for a network), the input and parameter gradients,
 * and the batchnorm running statistics. */
static void net_case(const char *prefix, nn_net *n, int with_loss, double atol, double rtol, int grad_by_scale)
{
    char name[96];
    if (load_params(prefix, n))
        return;
    snprintf(name, sizeof name, "%s.p%d", prefix, n->nparams);
    for (int i = 0; i < nfixes; i++)
        CHECK(strcmp(fixes[i].name, name), "%s: PyTorch has more parameters than our %d", prefix, n->nparams);
    nn_layer *first = &n->layers[0];
    first->need_dx = 1;
    if (first->kind == NN_BLOCK) { /* a lone block: its paths must pass the gradient back too */
        first->main->layers[0].need_dx = 1;
        if (first->shortcut)
            first->shortcut->layers[0].need_dx = 1;
    }
    if (first->kind == NN_CONCAT) /* a lone concat: every layer of its paths passes gradients back */
        nn_net_need_dx(n);
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    const float *y = fwd(n, getf(prefix, "x"), n->batch, 1, &rng);
    compare(prefix, "y", y, atol, rtol);
    poison_grads(n);
    if (with_loss) {
        int32_t labels[8];
        float dl[8 * 16];
        for (int i = 0; i < n->batch; i++)
            labels[i] = (int32_t)getf(prefix, "labels")[i];
        float loss = nn_softmax_xent(y, labels, n->batch, n->classes, dl, NULL);
        compare(prefix, "loss", &loss, atol, rtol);
        bwd(n, dl, n->batch);
    } else {
        bwd(n, getf(prefix, "dy"), n->batch);
    }
    compare(prefix, "dx", n->layers[0].dx, atol, rtol);
    double worst = 0;
    for (int i = 0; i < n->nparams; i++) { /* every gradient, one line for them all */
        snprintf(name, sizeof name, "%s.g%d", prefix, i);
        const fix *g = get(name);
        size_t bad = 0, at = 0;
        double scale = 0; /* grad_by_scale: rtol of the tensor's largest |value| */
        for (size_t j = 0; grad_by_scale && j < g->n; j++)
            scale = fmax(scale, fabs(g->data[j]));
        for (size_t j = 0; j < g->n; j++) {
            double d = fabs((double)n->params[i]->g[j] - g->data[j]);
            if (!(d <= atol + rtol * (grad_by_scale ? scale : fabs(g->data[j]))) && bad++ == 0)
                at = j;
            worst = d > worst ? d : worst;
        }
        CHECK(bad == 0, "%s: %zu of %zu values off (first at %zu: %.8g, PyTorch %.8g)", name, bad, g->n, at,
              n->params[i]->g[at], g->data[at]);
    }
    printf("  %-22s %8d tensors, max |difference| %.3g\n", "  parameter gradients", n->nparams, worst);
    /* running statistics, in layer order through the blocks */
    int j = 0;
    worst = 0;
    running_stats(n, prefix, &j, &worst);
    CHECK(worst <= atol + rtol, "%s: running statistics off by %.3g", prefix, worst);
    printf("  %-22s %8d layers, max |difference| %.3g\n", "  running statistics", j, worst);
}

static void residual_cases(void)
{
    nn_rng rng;
    nn_rng_seed(&rng, 2);
    sp_err err = {0};
    struct {
        const char *prefix;
        nn_spec spec;
    } blocks[] = {
        {"basic", {.kind = NN_BLOCK, .out = 16, .stride = 2}},
        {"basic_id", {.kind = NN_BLOCK, .out = 8, .stride = 1}},
        {"basic_a", {.kind = NN_BLOCK, .out = 16, .stride = 2, .option_a = 1}},
        {"bottleneck", {.kind = NN_BLOCK, .out = 4, .stride = 2, .bottleneck = 1}},
    };
    for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s.x", blocks[i].prefix);
        const fix *x = get(name);
        nn_net *n = nn_net_build(blocks[i].prefix, &blocks[i].spec, 1, x->dims[1], x->dims[2], x->dims[3], 2,
                                 x->dims[0], &rng, &err);
        CHECK(n != NULL, "%s: %s", blocks[i].prefix, err.msg);
        if (n)
            net_case(blocks[i].prefix, n, 0, LAYER_ATOL, LAYER_RTOL, 0);
        nn_net_free(n);
    }
    struct {
        const char *prefix;
        nn_spec spec;
    } mixed[] = {
        {"mixed_a", {.kind = NN_CONCAT, .mixed = 'A', .out = 8}}, {"mixed_b", {.kind = NN_CONCAT, .mixed = 'B'}},
        {"mixed_c", {.kind = NN_CONCAT, .mixed = 'C', .out = 8}}, {"mixed_d", {.kind = NN_CONCAT, .mixed = 'D'}},
        {"mixed_e", {.kind = NN_CONCAT, .mixed = 'E'}}, {"mixed_e2", {.kind = NN_CONCAT, .mixed = 'E'}},
    };
    /* torchvision's Inception blocks: ten to fourteen layers deep, where a few
     * of a gradient tensor's smallest values (batchnorm over few values per
     * channel) are off by more than MODEL_RTOL of themselves: their
     * gradients are held to MODEL_RTOL of the tensor's largest |value| */
    for (size_t i = 0; i < sizeof mixed / sizeof *mixed; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s.x", mixed[i].prefix);
        const fix *x = get(name);
        nn_net *n = nn_net_build(mixed[i].prefix, &mixed[i].spec, 1, x->dims[1], x->dims[2], x->dims[3], 2,
                                 x->dims[0], &rng, &err);
        CHECK(n != NULL, "%s: %s", mixed[i].prefix, err.msg);
        if (n)
            net_case(mixed[i].prefix, n, 0, MODEL_ATOL, MODEL_RTOL, 1);
        nn_net_free(n);
    }
    static const struct {
        const char *model;
        int size;
    } models[] = {{"resnet20", 32}, {"resnet32", 32}, {"resnet44", 32}, {"resnet56", 32}};
    /* (resnet18, 34, 50: against torchvision's own, --net) */
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        nn_net *n = nn_net_create(models[i].model, 3, models[i].size, models[i].size, 10, 2, &rng, &err);
        CHECK(n != NULL, "%s: %s", models[i].model, err.msg);
        if (n)
            net_case(models[i].model, n, 1, MODEL_ATOL, MODEL_RTOL, 0);
        nn_net_free(n);
    }
    /* resnet110: its output and loss (its gradients at batch 2 move by more
     * than the tolerance under float32's rounding: make_nn_fixtures.py) */
    nn_net *n = nn_net_create("resnet110", 3, 32, 32, 10, 2, &rng, &err);
    CHECK(n != NULL, "resnet110: %s", err.msg);
    if (n && !load_params("resnet110", n)) {
        nn_rng r;
        nn_rng_seed(&r, 1);
        const float *y = fwd(n, getf("resnet110", "x"), 2, 1, &r);
        compare("resnet110", "y", y, MODEL_ATOL, MODEL_RTOL);
        int32_t labels[2] = {(int32_t)getf("resnet110", "labels")[0], (int32_t)getf("resnet110", "labels")[1]};
        float dl[2 * 10], loss = nn_softmax_xent(y, labels, 2, 10, dl, NULL);
        compare("resnet110", "loss", &loss, MODEL_ATOL, MODEL_RTOL);
    }
    nn_net_free(n);
}

/* ---------------- finite differences ---------------- */

/* sum(y * r) for the net's single layer at x (training mode, fixed rng for dropout). */
static double objective(nn_net *n, const float *x, const float *r, int train, uint64_t seed)
{
    nn_rng rng;
    nn_rng_seed(&rng, seed);
    const float *y = fwd(n, x, n->batch, train, &rng);
    double s = 0;
    size_t m = (size_t)n->batch * nn_layer_out_size(&n->layers[0]);
    for (size_t i = 0; i < m; i++)
        s += (double)y[i] * r[i];
    return s;
}

/* Relative error between analytic and numeric gradients over sampled entries
 * of v (the input or a parameter). */
static double fd_error(nn_net *n, float *x, const float *r, float *v, const float *analytic, size_t count, int train,
                       float step)
{
    double num2 = 0, diff2 = 0;
    size_t stride = count / 40 + 1;
    for (size_t i = 0; i < count; i += stride) {
        float keep = v[i], h = step * (fabsf(keep) > 1 ? fabsf(keep) : 1);
        v[i] = keep + h;
        double up = objective(n, x, r, train, 3);
        v[i] = keep - h;
        double down = objective(n, x, r, train, 3);
        v[i] = keep;
        double numeric = (up - down) / (2.0 * h);
        num2 += numeric * numeric + (double)analytic[i] * analytic[i];
        diff2 += (numeric - analytic[i]) * (numeric - analytic[i]);
    }
    return num2 > 0 ? sqrt(diff2 / num2) : 0;
}

/* step: the relative perturbation; small where a relu's kink is near (a
 * perturbation that moves an output across zero is not a derivative). */
static void fd_case(const char *what, nn_spec spec, int B, int c, int h, int w, int train, float step)
{
    nn_rng rng;
    nn_rng_seed(&rng, 11);
    sp_err err = {0};
    nn_net *n = nn_net_build(what, &spec, 1, c, h, w, 2, B, &rng, &err);
    CHECK(n != NULL, "%s: %s", what, err.msg);
    if (!n)
        return;
    nn_layer *l = &n->layers[0];
    l->need_dx = 1;
    size_t in = (size_t)B * nn_layer_in_size(l), out = (size_t)B * nn_layer_out_size(l);
    float *x = malloc(in * sizeof *x), *r = malloc(out * sizeof *r);
    for (size_t i = 0; i < in; i++) { /* away from relu's kink and maxpool's ties */
        float u = nn_rng_normal(&rng);
        x[i] = u + (u >= 0 ? 0.1f : -0.1f) + (float)i * 1e-4f;
    }
    for (size_t i = 0; i < out; i++)
        r[i] = nn_rng_normal(&rng);
    if (l->weight)
        for (size_t i = 0; i < l->bias->n; i++)
            l->bias->w[i] = 0.1f * nn_rng_normal(&rng);
    objective(n, x, r, train, 3);
    poison_grads(n);
    bwd(n, r, B);
    float *dx = malloc(in * sizeof *dx);
    memcpy(dx, l->dx, in * sizeof *dx);
    double ex = fd_error(n, x, r, x, dx, in, train, step);
    CHECK(ex < FD_TOL, "%s: input gradient off finite differences by %.3g", what, ex);
    printf("  finite differences %-12s dx %.2e", what, ex);
    if (l->weight) {
        float *dw = malloc(l->weight->n * sizeof *dw), *db = malloc(l->bias->n * sizeof *db);
        memcpy(dw, l->weight->g, l->weight->n * sizeof *dw);
        memcpy(db, l->bias->g, l->bias->n * sizeof *db);
        double ew = fd_error(n, x, r, l->weight->w, dw, l->weight->n, train, step);
        double eb = fd_error(n, x, r, l->bias->w, db, l->bias->n, train, step);
        CHECK(ew < FD_TOL && eb < FD_TOL, "%s: parameter gradients off finite differences by %.3g, %.3g", what, ew,
              eb);
        printf(", dweight %.2e, dbias %.2e", ew, eb);
        free(dw), free(db);
    }
    printf("\n");
    free(x), free(r), free(dx);
    nn_net_free(n);
}

/* Dropout has no PyTorch twin (another generator): its contract instead. */
static void dropout_case(void)
{
    nn_rng rng;
    nn_rng_seed(&rng, 5);
    nn_spec spec = {.kind = NN_DROPOUT, .rate = 0.25f};
    sp_err err = {0};
    nn_net *n = nn_net_build("dropout", &spec, 1, 1, 100, 100, 2, 2, &rng, &err);
    float *x = malloc(20000 * sizeof *x);
    for (int i = 0; i < 20000; i++)
        x[i] = 1.0f + (float)(i % 7);
    const float *y = fwd(n, x, 2, 0, &rng);
    int same = 1;
    for (int i = 0; i < 20000; i++)
        same &= y[i] == x[i];
    CHECK(same, "dropout in evaluation mode changed its input");
    y = fwd(n, x, 2, 1, &rng);
    int zeros = 0, scaled = 1;
    for (int i = 0; i < 20000; i++) {
        zeros += y[i] == 0;
        scaled &= y[i] == 0 || fabsf(y[i] - x[i] / 0.75f) < 1e-5f;
    }
    CHECK(zeros > 4700 && zeros < 5300 && scaled, "dropout 0.25: %d of 20000 zeroed, kept ones scaled: %d", zeros,
          scaled);
    nn_net_free(n);
    free(x);
    printf("  dropout 0.25: %d of 20000 zeroed, the rest scaled by 1/0.75\n", zeros);
}

/* Sets every dropout rate of n (its paths' included) to 0: the fixtures'
 * dropout is off too, the two generators being different. */
static void dropout_off(nn_net *n)
{
    for (int i = 0; i < n->nlayers; i++) {
        nn_layer *l = &n->layers[i];
        if (l->kind == NN_DROPOUT)
            l->rate = 0;
        for (int p = 0; p < l->npaths; p++)
            dropout_off(l->paths[p]);
    }
}

/* got (n values) against the float64 reference prefix.what, as relative
 * L2 errors (|got - ref| / |ref|). A deep net's float32 gradients stray
 * from float64 by up to a few percent in some tensors, PyTorch's as well as
 * ours (batchnorm over few values per channel and relu masks that flip on
 * rounding amplify it), unevenly from tensor to tensor; a wrong op is off by
 * about the gradient itself (relative error near 1). So each tensor is held
 * within TV_TENSOR of float64 (or TV_FACTOR times PyTorch's error on it,
 * where that is more), and the whole (every tensor of a kind
 * together: the sums below) within TV_FACTOR times PyTorch's own float32
 * error (the fixture's prefix.e.what, the L2 norm of its difference), or
 * TV_FLOOR. Returns our relative error; adds the squares to *d2, *r2, *t2
 * (ours, the reference's, PyTorch's) when not NULL. */
#define TV_TENSOR 0.05
#define TV_FACTOR 4.0
#define TV_FLOOR 1e-4
static double tv_compare(const char *prefix, const char *what, const float *got, size_t n, int quiet, double *sums)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    const fix *want = get(name);
    snprintf(name, sizeof name, "%s.e.%s", prefix, what);
    double torch_err = get(name)->data[0], d2 = 0, r2 = 0;
    CHECK(want->n == n, "%s.%s: %zu values, ours %zu", prefix, what, want->n, n);
    for (size_t i = 0; i < n && i < want->n; i++) {
        double d = (double)got[i] - want->data[i];
        d2 += d * d, r2 += (double)want->data[i] * want->data[i];
    }
    double norm = sqrt(r2), ours = norm > 0 ? sqrt(d2) / norm : sqrt(d2);
    double theirs = norm > 0 ? torch_err / norm : torch_err;
    if (sums) { /* a kind's tensors together: the check is the caller's */
        sums[0] += d2, sums[1] += r2, sums[2] += torch_err * torch_err;
        CHECK(ours <= TV_TENSOR || ours <= TV_FACTOR * theirs,
              "%s.%s: relative L2 error from float64 %.3g (PyTorch float32's %.3g)", prefix, what, ours, theirs);
        return ours;
    }
    CHECK(ours <= TV_FACTOR * theirs || ours <= TV_FLOOR,
          "%s.%s: relative L2 error from float64 %.3g, PyTorch float32's %.3g", prefix, what, ours, theirs);
    if (!quiet)
        printf("  %-24s %9zu values, relative L2 error from float64 %.3g (PyTorch float32 %.3g)\n", what, n, ours,
               theirs);
    return ours;
}

/* The whole of a kind (sums from tv_compare) within TV_FACTOR of PyTorch's. */
static void tv_total(const char *prefix, const char *kind, int count, const double *sums, double worst)
{
    if (count == 0) /* a vgg without batchnorm: no running statistics */
        return;
    double ours = sqrt(sums[0] / sums[1]), theirs = sqrt(sums[2] / sums[1]);
    CHECK(ours <= TV_FACTOR * theirs || ours <= TV_FLOOR,
          "%s: %s together: relative L2 error from float64 %.3g, PyTorch float32's %.3g", prefix, kind, ours, theirs);
    printf("  %-24s %9d tensors, relative L2 error from float64 %.3g (PyTorch float32 %.3g), at worst %.3g in one\n",
           kind, count, ours, theirs, worst);
}

/* The running statistics of n in layer order (blocks' and concats' paths
 * included) against prefix.r{j}. */
static void tv_running(const nn_net *n, const char *prefix, int *j, double *worst, double *sums)
{
    char what[32];
    for (int i = 0; i < n->nlayers; i++) {
        const nn_layer *l = &n->layers[i];
        if (l->main)
            tv_running(l->main, prefix, j, worst, sums);
        if (l->shortcut)
            tv_running(l->shortcut, prefix, j, worst, sums);
        for (int p = 0; p < l->npaths; p++)
            tv_running(l->paths[p], prefix, j, worst, sums);
        if (l->kind != NN_BATCHNORM)
            continue;
        float *both = malloc(2 * (size_t)l->c * sizeof *both);
        memcpy(both, l->run_mean, (size_t)l->c * sizeof *both);
        memcpy(both + l->c, l->run_var, (size_t)l->c * sizeof *both);
        snprintf(what, sizeof what, "r%d", (*j)++);
        *worst = fmax(*worst, tv_compare(prefix, what, both, 2 * (size_t)l->c, 1, sums));
        free(both);
    }
}

/* One of torchvision's models (tests/fixtures/torchvision_fixtures.py)
 * against nn_net_create's model of that name, its weights PyTorch's: the
 * logits, loss, input gradient, every parameter gradient and every
 * batchnorm running statistic of a training-mode step, each within
 * tv_compare's tolerance of the float64 reference. */
/* Evaluation mode: the running statistics of n (in layer order through the
 * paths) set from prefix.r{j}, which the step left as they were. */
static void tv_set_running(nn_net *n, const char *prefix, int *j)
{
    for (int i = 0; i < n->nlayers; i++) {
        nn_layer *l = &n->layers[i];
        if (l->main)
            tv_set_running(l->main, prefix, j);
        if (l->shortcut)
            tv_set_running(l->shortcut, prefix, j);
        for (int p = 0; p < l->npaths; p++)
            tv_set_running(l->paths[p], prefix, j);
        if (l->kind != NN_BATCHNORM)
            continue;
        char name[96];
        snprintf(name, sizeof name, "%s.r%d", prefix, (*j)++);
        const float *r = get(name)->data;
        memcpy(l->run_mean, r, (size_t)l->c * sizeof(float));
        memcpy(l->run_var, r + l->c, (size_t)l->c * sizeof(float));
    }
}

static int torchvision_case(const char *model, int train, const char *path)
{
    if (load(path))
        return 2;
    char name[96];
    snprintf(name, sizeof name, "%s.x", model);
    const fix *x = get(name);
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    sp_err err = {0};
    nn_set_threads(2);
    int B = x->dims[0];
    nn_net *n = nn_net_create(model, x->dims[1], x->dims[2], x->dims[3], 10, B, &rng, &err);
    CHECK(n != NULL, "%s: %s", model, err.msg);
    if (!n || load_params(model, n))
        return CHECK_DONE("nn_reference");
    snprintf(name, sizeof name, "%s.p%d", model, n->nparams);
    for (int i = 0; i < nfixes; i++)
        CHECK(strcmp(fixes[i].name, name), "%s: PyTorch has more parameters than our %d", model, n->nparams);
    dropout_off(n);
    n->layers[0].need_dx = 1;
    int j = 0;
    if (!train)
        tv_set_running(n, model, &j);
    printf("  %s against torchvision's in %s mode, %dx%dx%dx%d, %zu parameters:\n", model,
           train ? "training" : "evaluation", B, x->dims[1], x->dims[2], x->dims[3], nn_net_param_count(n));
    if (nn_net_layout_block(n)) /* for the tests to check which path ran */
        printf("  layout: blocked, %d channels a block (oneDNN)\n", nn_net_layout_block(n));
    else
        printf("  layout: NCHW\n");
    const float *y = fwd(n, x->data, B, train, &rng);
    tv_compare(model, "y", y, (size_t)B * 10, 0, NULL);
    int32_t labels[64];
    float dl[64 * 10];
    for (int i = 0; i < B && i < 64; i++)
        labels[i] = (int32_t)getf(model, "labels")[i];
    float loss = nn_softmax_xent(y, labels, B, 10, dl, NULL);
    tv_compare(model, "loss", &loss, 1, 0, NULL);
    poison_grads(n);
    bwd(n, dl, B);
    tv_compare(model, "dx", n->layers[0].dx, (size_t)B * nn_layer_in_size(&n->layers[0]), 0, NULL);
    double worst = 0, sums[3] = {0};
    for (int i = 0; i < n->nparams; i++) {
        char what[32];
        snprintf(what, sizeof what, "g%d", i);
        worst = fmax(worst, tv_compare(model, what, n->params[i]->g, n->params[i]->n, 1, sums));
    }
    tv_total(model, "parameter gradients", n->nparams, sums, worst);
    if (train) { /* evaluation leaves them as they were */
        double rs[3] = {0};
        j = 0, worst = 0;
        tv_running(n, model, &j, &worst, rs);
        tv_total(model, "running statistics", j, rs, worst);
    }
    nn_net_free(n);
    return CHECK_DONE("nn_reference");
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--plan")) { /* MODEL SIZE CLASSES: the parameters of a 3-channel net */
        size_t params, running;
        sp_err err = {0};
        if (nn_net_plan(argv[2], 3, atoi(argv[3]), atoi(argv[3]), atoi(argv[4]), &params, &running, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        printf("%zu\n", params);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--layout-block")) { /* what nets that fit get here: 0 for NCHW */
        printf("%d\n", nn_layout_block());
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "--net") && (!strcmp(argv[3], "train") || !strcmp(argv[3], "eval")))
        return torchvision_case(argv[2], !strcmp(argv[3], "train"), argv[4]);
    if (argc != 2 || load(argv[1])) {
        fprintf(stderr, "usage: nn_reference FIXTURES\n       nn_reference --net MODEL train|eval FIXTURES\n");
        return 2;
    }
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    layer_case("dense", (nn_spec){.kind = NN_DENSE, .out = 7}, 1, &rng);
    layer_case("conv_s1p1", (nn_spec){.kind = NN_CONV, .out = 5, .k = 3, .stride = 1, .pad = 1}, 1, &rng);
    layer_case("conv_s2p1", (nn_spec){.kind = NN_CONV, .out = 4, .k = 3, .stride = 2, .pad = 1}, 1, &rng);
    layer_case("conv_k1", (nn_spec){.kind = NN_CONV, .out = 4, .k = 1, .stride = 1, .pad = 0}, 1, &rng);
    layer_case("maxpool", (nn_spec){.kind = NN_MAXPOOL, .k = 2, .stride = 2}, 1, &rng);
    layer_case("maxpool_odd", (nn_spec){.kind = NN_MAXPOOL, .k = 2, .stride = 2}, 1, &rng);
    layer_case("relu", (nn_spec){.kind = NN_RELU}, 1, &rng);
    layer_case("gap", (nn_spec){.kind = NN_GAP}, 1, &rng);
    batchnorm_cases(&rng);
    xent_case();
    nn_opt adam, sgd;
    nn_opt_init(&adam, NN_ADAM, 1e-3f);
    model_case("mlp", "mlp", 1, 28, 28, &adam, &rng);
    nn_opt_init(&sgd, NN_SGD, 0.05f);
    sgd.momentum = 0.9f, sgd.weight_decay = 5e-4f;
    model_case("cnn", "cnn", 3, 32, 32, &sgd, &rng);
    nn_opt_init(&sgd, NN_SGD, 0.05f);
    sgd.momentum = 0.9f, sgd.weight_decay = 5e-4f;
    model_case("cnn-same", "cnn-same", 3, 32, 32, &sgd, &rng);
    nn_opt_init(&adam, NN_ADAM, 1e-3f);
    model_case("cnn_adam", "cnn", 3, 32, 32, &adam, &rng);
    nn_opt_init(&sgd, NN_SGD, 0.05f);
    sgd.momentum = 0.9f, sgd.weight_decay = 0.05f, sgd.wd_skip = NN_WD_SKIP_BN | NN_WD_SKIP_BIAS;
    model_case("resnet20_wdskip", "resnet20", 3, 32, 32, &sgd, &rng);
    wd_skip_case(&rng);
    layer_case("maxpool3p1", (nn_spec){.kind = NN_MAXPOOL, .k = 3, .stride = 2, .pad = 1}, 1, &rng);
    layer_case("conv_1x7", (nn_spec){.kind = NN_CONV, .out = 4, .k = 1, .kw = 7, .stride = 1, .padw = 3}, 1, &rng);
    layer_case("conv_7x1", (nn_spec){.kind = NN_CONV, .out = 4, .k = 7, .kw = 1, .stride = 1, .pad = 3}, 1, &rng);
    layer_case("conv_3x1s2", (nn_spec){.kind = NN_CONV, .out = 4, .k = 3, .kw = 1, .stride = 2, .pad = 1}, 1, &rng);
    layer_case("avgpool3", (nn_spec){.kind = NN_AVGPOOL, .k = 3, .stride = 1, .pad = 1}, 1, &rng);
    residual_cases();
    /* the same with the batch shared out over two threads */
    printf("  with 2 threads:\n");
    nn_set_threads(2);
    layer_case("conv_s2p1", (nn_spec){.kind = NN_CONV, .out = 4, .k = 3, .stride = 2, .pad = 1}, 1, &rng);
    layer_case("bn_train", (nn_spec){.kind = NN_BATCHNORM}, 1, &rng);
    nn_opt_init(&adam, NN_ADAM, 1e-3f);
    model_case("mlp", "mlp", 1, 28, 28, &adam, &rng);
    nn_opt_init(&sgd, NN_SGD, 0.05f);
    sgd.momentum = 0.9f, sgd.weight_decay = 5e-4f;
    model_case("cnn", "cnn", 3, 32, 32, &sgd, &rng);
    residual_cases();
    /* and with every convolution run per sample (the other algorithm) */
    printf("  convolutions per sample, 2 threads:\n");
    nn_set_conv_algo(NN_CONV_PER_SAMPLE);
    layer_case("conv_s1p1", (nn_spec){.kind = NN_CONV, .out = 5, .k = 3, .stride = 1, .pad = 1}, 1, &rng);
    layer_case("conv_s2p1", (nn_spec){.kind = NN_CONV, .out = 4, .k = 3, .stride = 2, .pad = 1}, 1, &rng);
    layer_case("conv_k1", (nn_spec){.kind = NN_CONV, .out = 4, .k = 1, .stride = 1, .pad = 0}, 1, &rng);
    nn_opt_init(&sgd, NN_SGD, 0.05f);
    sgd.momentum = 0.9f, sgd.weight_decay = 5e-4f;
    model_case("cnn", "cnn", 3, 32, 32, &sgd, &rng);
    residual_cases();
    nn_set_conv_algo(NN_CONV_BY_SHAPE);
    nn_set_threads(1);

    fd_case("dense", (nn_spec){.kind = NN_DENSE, .out = 6}, 3, 10, 1, 1, 1, 1e-2f);
    fd_case("conv", (nn_spec){.kind = NN_CONV, .out = 3, .k = 3, .stride = 2, .pad = 1}, 2, 2, 7, 6, 1, 1e-2f);
    fd_case("conv+relu", (nn_spec){.kind = NN_CONV, .out = 3, .k = 3, .stride = 1, .pad = 1, .relu = 1}, 2, 2, 5, 6, 1, 1e-3f);
    fd_case("maxpool", (nn_spec){.kind = NN_MAXPOOL, .k = 2, .stride = 2}, 2, 2, 6, 6, 1, 1e-2f);
    fd_case("relu", (nn_spec){.kind = NN_RELU}, 2, 3, 4, 4, 1, 1e-2f);
    fd_case("batchnorm", (nn_spec){.kind = NN_BATCHNORM}, 4, 2, 3, 3, 1, 1e-2f);
    fd_case("bn-eval", (nn_spec){.kind = NN_BATCHNORM}, 4, 2, 3, 3, 0, 1e-2f);
    fd_case("gap", (nn_spec){.kind = NN_GAP}, 2, 3, 4, 5, 1, 1e-2f);
    fd_case("dropout", (nn_spec){.kind = NN_DROPOUT, .rate = 0.3f}, 2, 3, 4, 4, 1, 1e-2f);
    dropout_case();
    return CHECK_DONE("nn_reference");
}
