/* Convolutions and pooling on oneDNN (the library PyTorch's CPU convolutions run on) in a channel-blocked layout. */
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layer_kinds.h"
#include "nn/onednn.h"

/* One primitive and its descriptor (queried for each argument's layout). */
typedef struct op {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
} op;

/* A layer's oneDNN state, for batches of B. Convolution: fwd (with the
 * relu as a post-op when l->relu), bwd_data, bwd_w; the weights reordered
 * from PyTorch's (oc, c, k, kw) into fwd's and bwd_data's layouts where
 * they differ from it (w_fwd, w_bwd; NULL primitives where not), and
 * bwd_w's weight gradient back (dw_out). Pooling: fwd and bwd, and max
 * pooling's workspace (where each maximum came from). */
struct nn_onednn {
    int B;
    op fwd, bwd_data, bwd_w, w_fwd, w_bwd, dw_out;
    void *ws;
    size_t ws_bytes;
};

/* The weights (or their gradient) in oneDNN's layout, for the moment a
 * primitive runs: one buffer for every layer, as layers run one at a time
 * (a conv's weights are reordered again for its backward rather than kept
 * from its forward: a reorder of the weights is small beside the
 * convolution, and one buffer in place of three per conv saved 0.3 GB on
 * resnet50). Like masked_buf below, not for nets run from several threads
 * at once. */
static float *w_scratch;
static size_t w_scratch_have;

static dnnl_engine_t engine;
static dnnl_stream_t stream;

/* Test hook (tests/tools/test_nn_faults.sh): the environment variable
 * SP_NN_FAULT names one failure to force where it would happen, as oneDNN or
 * the allocator would give it: "forward" or "backward" (every primitive of
 * that pass fails to run, with dnnl_runtime_error), "batch" (a layer's
 * primitives for another batch size cannot be made), "oom" (the buffer of
 * the gradient through a fused relu cannot grow). Read once; unset, it
 * costs a test of one pointer. */
static int fault(const char *what)
{
    static const char *want;
    static int read;
    if (!read)
        want = getenv("SP_NN_FAULT"), read = 1;
    return want && !strcmp(want, what);
}

/* Fails with SP_EXIT_SYSTEM: "a convolution 16x32x32 -> 32x16x16 on a
 * batch of B: " and the reason. */
static int layer_fail(const nn_layer *l, int B, sp_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int layer_fail(const nn_layer *l, int B, sp_err *err, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *kind = l->kind == NN_CONV ? "a convolution" : l->kind == NN_MAXPOOL ? "a max pooling" : "an average pooling";
    return sp_fail(err, SP_EXIT_SYSTEM, "%s %dx%dx%d -> %dx%dx%d on a batch of %d: %s", kind, l->c, l->h, l->w, l->oc,
                   l->oh, l->ow, B, why);
}

static const char *status_name(dnnl_status_t st)
{
    switch (st) {
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_runtime_error: return "runtime error";
    default: return "error";
    }
}

static int ready(void)
{
    static int state; /* 0 not tried, 1 ready, -1 failed */
    if (!state)
        state = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success &&
                        dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) == dnnl_success
                    ? 1
                    : -1;
    return state > 0;
}

int nn_onednn_block(void)
{
    static int block = -1;
    if (block < 0) {
        dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
        block = !ready() ? 0
                : (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core ? 16
                : (isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2               ? 8
                                                                               : 0;
        if (getenv("SP_NN_NO_ONEDNN")) /* documented in docs/nn.md: every net in NCHW on our own kernels */
            block = 0;
    }
    return block;
}

static void op_free(op *o)
{
    if (o->p)
        dnnl_primitive_destroy(o->p);
    if (o->pd)
        dnnl_primitive_desc_destroy(o->pd);
    o->p = NULL, o->pd = NULL;
}

static int op_make(op *o, const void *desc, const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint)
{
    if (dnnl_primitive_desc_create(&o->pd, desc, attr, engine, hint) != dnnl_success) {
        o->pd = NULL;
        return -1;
    }
    if (dnnl_primitive_create(&o->p, o->pd) != dnnl_success) {
        o->p = NULL;
        return -1;
    }
    return 0;
}

/* A reorder from one layout to another; no primitive (0) when they are the same. */
static int reorder_make(op *o, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to)
{
    if (dnnl_memory_desc_equal(from, to))
        return 0;
    if (dnnl_reorder_primitive_desc_create(&o->pd, from, engine, to, engine, NULL) != dnnl_success) {
        o->pd = NULL;
        return -1;
    }
    return dnnl_primitive_create(&o->p, o->pd) == dnnl_success ? 0 : -1;
}

static const dnnl_memory_desc_t *arg_md(const op *o, int arg)
{
    return dnnl_primitive_desc_query_md(o->pd, dnnl_query_exec_arg_md, arg);
}

/* Runs o, a primitive of l's pass ("forward" or "backward") for its current
 * batch, on the buffers ptrs[i] for arguments args[i], each in the layout o
 * wants for it. 0, or -1 with err naming l, the pass and oneDNN's status. */
static int run(const op *o, int n, const int *args, void *const *ptrs, const nn_layer *l, const char *pass,
               sp_err *err)
{
    dnnl_exec_arg_t a[6];
    dnnl_memory_t m[6] = {0};
    dnnl_status_t st = dnnl_success;
    for (int i = 0; i < n && st == dnnl_success; i++) {
        if ((st = dnnl_memory_create(&m[i], arg_md(o, args[i]), engine, ptrs[i])) != dnnl_success)
            m[i] = NULL;
        a[i].arg = args[i], a[i].memory = m[i];
    }
    if (st == dnnl_success)
        st = fault(pass) ? dnnl_runtime_error : dnnl_primitive_execute(o->p, stream, n, a);
    if (st == dnnl_success)
        st = dnnl_stream_wait(stream);
    for (int i = 0; i < n; i++)
        if (m[i])
            dnnl_memory_destroy(m[i]);
    if (st != dnnl_success)
        return layer_fail(l, l->dn->B, err, "oneDNN failed to run its %s pass (%s)", pass, status_name(st));
    return 0;
}

static int reorder_run(const op *o, const void *from, void *to, const nn_layer *l, const char *pass, sp_err *err)
{
    return run(o, 2, (const int[]){DNNL_ARG_FROM, DNNL_ARG_TO}, (void *const[]){(void *)from, to}, l, pass, err);
}

static void md4(dnnl_memory_desc_t *md, int a, int b, int c, int d, dnnl_format_tag_t tag)
{
    dnnl_dims_t dims = {a, b, c, d};
    dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag);
}

static dnnl_format_tag_t blocked_tag(int cb) { return cb == 16 ? dnnl_aBcd16b : dnnl_aBcd8b; }

static void state_clear(struct nn_onednn *d)
{
    op *ops[] = {&d->fwd, &d->bwd_data, &d->bwd_w, &d->w_fwd, &d->w_bwd, &d->dw_out};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        op_free(ops[i]);
    d->B = 0;
}

static int conv_prepare(nn_layer *l, struct nn_onednn *d, int B)
{
    dnnl_memory_desc_t src, wei, wei_user, bias, dst, any_wei;
    md4(&src, B, l->c, l->h, l->w, l->plain_in ? dnnl_nchw : blocked_tag(l->cb));
    md4(&dst, B, l->oc, l->oh, l->ow, blocked_tag(l->cb));
    md4(&wei_user, l->oc, l->c, l->k, l->kw, dnnl_oihw);
    md4(&any_wei, l->oc, l->c, l->k, l->kw, dnnl_format_tag_any);
    dnnl_dims_t oc = {l->oc};
    dnnl_memory_desc_init_by_tag(&bias, 1, oc, dnnl_f32, dnnl_x);
    dnnl_dims_t strides = {l->stride, l->stride}, pad = {l->pad, l->padw};
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    int rc = -1;
    if (l->relu && (dnnl_primitive_attr_create(&attr) != dnnl_success || dnnl_post_ops_create(&po) != dnnl_success ||
                    dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f) != dnnl_success ||
                    dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success))
        goto out;
    if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &src, &any_wei,
                                           l->bias ? &bias : NULL, &dst, strides, pad, pad) != dnnl_success ||
        op_make(&d->fwd, &cd, attr, NULL))
        goto out;
    wei = *arg_md(&d->fwd, DNNL_ARG_WEIGHTS);
    if (reorder_make(&d->w_fwd, &wei_user, &wei))
        goto out;
    /* made whether or not need_dx is set now: tests set it after building */
    if (dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &src, &any_wei, &dst, strides, pad,
                                                 pad) != dnnl_success ||
        op_make(&d->bwd_data, &cd, NULL, d->fwd.pd) ||
        reorder_make(&d->w_bwd, &wei_user, arg_md(&d->bwd_data, DNNL_ARG_WEIGHTS)))
        goto out;
    if (dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &src, &any_wei,
                                                    l->bias ? &bias : NULL, &dst, strides, pad, pad) != dnnl_success ||
        op_make(&d->bwd_w, &cd, NULL, d->fwd.pd) ||
        reorder_make(&d->dw_out, arg_md(&d->bwd_w, DNNL_ARG_DIFF_WEIGHTS), &wei_user))
        goto out;
    /* every layout of the weights holds them in at most this (blocked ones pad) */
    size_t wb = dnnl_memory_desc_get_size(&wei);
    if (dnnl_memory_desc_get_size(arg_md(&d->bwd_data, DNNL_ARG_WEIGHTS)) > wb)
        wb = dnnl_memory_desc_get_size(arg_md(&d->bwd_data, DNNL_ARG_WEIGHTS));
    if (dnnl_memory_desc_get_size(arg_md(&d->bwd_w, DNNL_ARG_DIFF_WEIGHTS)) > wb)
        wb = dnnl_memory_desc_get_size(arg_md(&d->bwd_w, DNNL_ARG_DIFF_WEIGHTS));
    if (sp_grow((void **)&w_scratch, &w_scratch_have, wb))
        goto out;
    rc = 0;
out:
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}

static int pool_prepare(nn_layer *l, struct nn_onednn *d, int B)
{
    dnnl_memory_desc_t src, dst;
    md4(&src, B, l->c, l->h, l->w, blocked_tag(l->cb));
    md4(&dst, B, l->oc, l->oh, l->ow, blocked_tag(l->cb));
    dnnl_dims_t strides = {l->stride, l->stride}, kernel = {l->k, l->k}, pad = {l->pad, l->pad};
    dnnl_alg_kind_t alg = l->kind == NN_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_include_padding;
    dnnl_pooling_desc_t pdsc;
    if (dnnl_pooling_forward_desc_init(&pdsc, dnnl_forward_training, alg, &src, &dst, strides, kernel, pad, pad) !=
            dnnl_success ||
        op_make(&d->fwd, &pdsc, NULL, NULL))
        return -1;
    if (dnnl_pooling_backward_desc_init(&pdsc, alg, &src, &dst, strides, kernel, pad, pad) != dnnl_success ||
        op_make(&d->bwd_data, &pdsc, NULL, d->fwd.pd))
        return -1;
    if (l->kind == NN_MAXPOOL &&
        sp_grow(&d->ws, &d->ws_bytes, dnnl_memory_desc_get_size(arg_md(&d->fwd, DNNL_ARG_WORKSPACE))))
        return -1;
    return 0;
}

int nn_onednn_prepare(nn_layer *l, int B)
{
    if (!ready())
        return -1;
    struct nn_onednn *d = l->dn;
    if (!d && !(d = l->dn = calloc(1, sizeof *d)))
        return -1;
    if (d->B == B)
        return 0;
    state_clear(d);
    omp_set_num_threads(l->threads); /* oneDNN plans its work for the threads it sees now */
    int rc = l->kind == NN_CONV ? conv_prepare(l, d, B) : pool_prepare(l, d, B);
    if (rc) {
        state_clear(d);
        return -1;
    }
    d->B = B;
    return 0;
}

/* For a batch of another size than the last (the epoch's last batch): NULL
 * with err when oneDNN cannot make the layer's primitives for it. */
static struct nn_onednn *state_for(nn_layer *l, int B, sp_err *err)
{
    if (l->dn->B != B && (fault("batch") || nn_onednn_prepare(l, B))) {
        layer_fail(l, B, err, "oneDNN cannot make its primitives for this batch size");
        return NULL;
    }
    omp_set_num_threads(l->threads);
    return l->dn;
}

int nn_onednn_conv_forward(nn_layer *l, const float *x, int B, sp_err *err)
{
    struct nn_onednn *d = state_for(l, B, err);
    if (!d)
        return -1;
    float *w = l->weight->w;
    if (d->w_fwd.p) {
        if (reorder_run(&d->w_fwd, w, w_scratch, l, "forward", err))
            return -1;
        w = w_scratch;
    }
    float *bias = l->bias ? l->bias->w : NULL;
    return run(&d->fwd, bias ? 4 : 3, (const int[]){DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS},
               (void *const[]){(void *)x, l->y, w, bias}, l, "forward", err);
}

/* The gradient through a fused relu needs a buffer of the layer's output
 * size for a moment: one for every layer (layers run one at a time). */
static float *masked_buf;
static size_t masked_have;

int nn_onednn_conv_backward(nn_layer *l, const float *dy, int B, sp_err *err)
{
    struct nn_onednn *d = state_for(l, B, err);
    if (!d)
        return -1;
    size_t n = (size_t)B * nn_layer_out_size(l);
    if (l->relu) {
        if (fault("oom") || sp_grow((void **)&masked_buf, &masked_have, n * sizeof(float)))
            return layer_fail(l, B, err, "out of memory for the gradient through its relu (%zu bytes)",
                              n * sizeof(float));
        nn_relu_gradient(l->y, dy, masked_buf, n, l->threads);
        dy = masked_buf;
    }
    float *dw = d->dw_out.p ? w_scratch : l->weight->g, *db = l->bias ? l->bias->g : NULL;
    if (run(&d->bwd_w, db ? 4 : 3,
            (const int[]){DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS},
            (void *const[]){(void *)l->x, (void *)dy, dw, db}, l, "backward", err) ||
        (d->dw_out.p && reorder_run(&d->dw_out, w_scratch, l->weight->g, l, "backward", err)))
        return -1;
    if (!l->need_dx)
        return 0;
    float *w = l->weight->w;
    if (d->w_bwd.p) {
        if (reorder_run(&d->w_bwd, w, w_scratch, l, "backward", err))
            return -1;
        w = w_scratch;
    }
    return run(&d->bwd_data, 3, (const int[]){DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC},
               (void *const[]){(void *)dy, w, l->dx}, l, "backward", err);
}

int nn_onednn_pool_forward(nn_layer *l, const float *x, int B, sp_err *err)
{
    struct nn_onednn *d = state_for(l, B, err);
    if (!d)
        return -1;
    return run(&d->fwd, l->kind == NN_MAXPOOL ? 3 : 2, (const int[]){DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE},
               (void *const[]){(void *)x, l->y, d->ws}, l, "forward", err);
}

int nn_onednn_pool_backward(nn_layer *l, const float *dy, int B, sp_err *err)
{
    struct nn_onednn *d = state_for(l, B, err);
    if (!d)
        return -1;
    return run(&d->bwd_data, l->kind == NN_MAXPOOL ? 3 : 2,
               (const int[]){DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC, DNNL_ARG_WORKSPACE},
               (void *const[]){(void *)dy, l->dx, d->ws}, l, "backward", err);
}

size_t nn_onednn_bytes(const nn_layer *l)
{
    return l->dn ? l->dn->ws_bytes : 0;
}

void nn_onednn_free(nn_layer *l)
{
    if (!l->dn)
        return;
    state_clear(l->dn);
    free(l->dn->ws);
    free(l->dn);
    l->dn = NULL;
}
