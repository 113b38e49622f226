/* nn: the small neural-network library of the reference trainer.
 *
 * Tensors are float32, batch first, channels before pixels: activations of a
 * layer are (B, C, H, W) contiguous, as in PyTorch, so weights and fixtures
 * compare element for element. A dense layer sees (B, C*H*W).
 *
 * A network is a list of layers, each with its forward and backward side by
 * side. Forward keeps what backward needs (the input pointer, a
 * mask, pool indices, batch statistics); backward takes dL/dy and writes
 * dL/dx and sets dL/dparams (the gradients of that batch alone, nothing
 * accumulated across calls). Matrix work goes through cblas_sgemm.
 *
 * Files: rng.c (random numbers), layers.c (threads, dropout, flatten, blocks,
 * concatenated branches, the dispatch by kind), relu.c (relu and the gradient
 * through one), dense.c, conv.c, pool.c (max, average and global average),
 * norm.c (batchnorm) (each kind's forward next to its backward, declared in
 * layer_kinds.h), loss.c (cross-entropy, top-k), models.c (building nets, the
 * models by name, forward and backward through a net), optim.c (SGD, Adam),
 * checkpoint.c (saving and loading), data.c (batches from shards, data.h),
 * train.c (the training loop, train.h), metrics.c (evaluation, metrics.h).
 *
 * Ownership: a net owns every buffer of its layers; inputs passed to
 * nn_forward are borrowed until the matching nn_backward returns. Functions
 * that can fail return 0 or -1 with a message in err (never exit or print). */
#ifndef SP_NN_H
#define SP_NN_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"

/* ---------------- random numbers ---------------- */
/* xoshiro256** seeded through splitmix64: the same stream on every machine. */
typedef struct nn_rng {
    uint64_t s[4];
} nn_rng;
void nn_rng_seed(nn_rng *r, uint64_t seed);
float nn_rng_uniform(nn_rng *r);                       /* [0, 1) */
float nn_rng_normal(nn_rng *r);                        /* mean 0, sd 1 (Box-Muller) */

/* ---------------- parameters ---------------- */
enum nn_param_role { NN_ROLE_WEIGHT, NN_ROLE_BIAS /* dense, conv */, NN_ROLE_BN /* batchnorm's gamma, beta */ };
/* nn_opt.wd_skip: the parameters weight decay leaves alone */
enum { NN_WD_SKIP_BN = 1u << 0, NN_WD_SKIP_BIAS = 1u << 1 };

/* A learnable tensor: values, gradients and the optimizer's state, n each. */
typedef struct nn_param {
    float *w, *g, *m, *v; /* values, gradients, first and second moments (or momentum in m) */
    size_t n;
    int role;             /* enum nn_param_role: what weight decay may leave alone (nn_opt.wd_skip) */
    int frozen;           /* part of a frozen base (nn_net_freeze_base): the optimizer leaves it as it is */
} nn_param;

/* ---------------- layers ---------------- */
enum nn_kind {
    NN_DENSE = 1,  /* y = x W^T + b; W (out, in), b (out) */
    NN_CONV,       /* 2-D convolution; W (oc, ic, k, k), b (oc); stride, pad; and a relu when
                    * the spec says so (fused: one pass less over the activations each way) */
    NN_MAXPOOL,    /* k x k window, stride */
    NN_RELU,
    NN_FLATTEN,    /* (B, C, H, W) -> (B, C*H*W): the same memory */
    NN_DROPOUT,    /* zeroes with probability rate in training, scales the rest by 1/(1-rate) */
    NN_BATCHNORM,  /* per channel over (B, H, W); gamma, beta; running mean/var (momentum 0.1) */
    NN_GAP,        /* global average pool: (B, C, H, W) -> (B, C) */
    NN_BLOCK,      /* a residual block: y = relu(main(x) + shortcut(x)), the shortcut the
                    * identity or a strided 1x1 conv and batchnorm (see nn_spec) */
    NN_AVGPOOL,    /* k x k window, stride, pad; the padding counts as zeros (PyTorch's
                    * count_include_pad): every output is its window's sum / (k * k) */
    NN_CONCAT,     /* branches: each path a net on the same input, their outputs (of one
                    * height and width) concatenated along the channels in path order, as
                    * torch.cat(..., 1); Inception v3's mixed blocks (see nn_spec) */
};

typedef struct nn_layer {
    int kind;
    int c, h, w;        /* input shape per sample */
    int oc, oh, ow;     /* output shape per sample */
    int k, stride, pad; /* conv, maxpool, avgpool: the window's height (its width too but for a conv), padding rows */
    int kw, padw;       /* conv: the window's width and padding columns (k and pad but for 1x7, 7x1 and the like) */
    float rate;         /* dropout */
    int relu;           /* conv, batchnorm: y = relu(layer(x)) */
    nn_param *weight, *bias; /* dense, conv (weight, bias; no bias for a conv built without);
                              * batchnorm (gamma, beta) */
    struct nn_net *main, *shortcut; /* block: its two paths (shortcut NULL: the identity, or option A) */
    int option_a;       /* block: the shortcut is He et al.'s option A, without parameters: x at every
                         * stride-th row and column, its c channels zero-padded to oc, (oc - c) / 2
                         * zero channels before them and the rest after */
    struct nn_net **paths; /* concat: its npaths paths, owned */
    int npaths;
    float *g;           /* block: dL/d(main + shortcut), (B x out); concat: dy split per path,
                         * path p's (B x its out) at B times the outputs of the paths before it */
    float eps;          /* batchnorm: added to the variance (1e-5; Inception v3's 1e-3) */
    float *run_mean, *run_var; /* batchnorm, c each: saved in checkpoints */
    const float *x;     /* the input of the last forward (borrowed) */
    float *y, *dx;      /* output (B x out) and input gradient (B x in), owned */
    int threads;        /* the layer's share-out of a batch (nn_set_threads when it was built) */
    int per_sample;     /* conv: one gemm per sample, straight into y (NN_CONV_PER_SAMPLE) */
    int group;          /* conv: samples unrolled together, so each gemm is large */
    /* conv scratch, one slot per thread: */
    float *col;         /* im2col of a group, (ic*k*k, group*oh*ow) */
    float *dcol;        /* its gradient */
    float *ybuf;        /* a group's output or its gradient as the gemm has it, (oc, group*oh*ow) */
    float *dwbuf, *dbbuf; /* each thread's share of dW and db, summed in thread order: deterministic */
    int32_t *arg;       /* maxpool: the input index of each output's maximum */
    float *mask;        /* dropout: the scale of each element (0 or 1/(1-rate)) */
    float *mean, *istd, *xhat; /* batchnorm: batch mean, 1/sqrt(var+eps), normalized input (NCHW only) */
    double *bnsum;      /* batchnorm of a blocked net: per-sample partial sums and their totals */
    int cb;             /* the channel block of the blocked layout its tensors are in (nn/onednn.h),
                         * 0: NCHW */
    int plain_in;       /* blocked net: this layer (its first) reads its input in NCHW */
    struct nn_onednn *dn; /* conv, maxpool, avgpool of a blocked net: oneDNN's state, owned */
    int pooled;         /* blocked net: dx (and g) point into the top net's grad_pool, not owned */
    int g_in_dy;        /* block of a blocked whole net (not of a path): g is made in place of its
                         * dy, a buffer nothing reads after its backward; no g of its own */
    int y_shared;       /* block of a blocked net: y is its main path's last output, the sum made
                         * in place (that layer, a conv or batchnorm without relu, does not read
                         * its output in backward), not owned */
    int need_dx;        /* 0 for the first layer: nothing wants dL/dinput */
    int trained;        /* the last forward was in training mode */
} nn_layer;

/* Threads for the layers of nets built from now on: each layer shares a
 * batch out over them (OpenMP), and every gemm runs single-threaded inside
 * (one thread pool: OpenBLAS's own threads spinning beside OpenMP's were
 * measured slower than either alone). Results depend on the thread count
 * only through the order in which per-thread gradient shares are summed,
 * which is fixed. 1 by default. */
void nn_set_threads(int n);
int nn_get_threads(void);

/* How a convolution runs, chosen per layer shape when the net is built:
 *   NN_CONV_GROUPED: im2col of a group of samples into one matrix, one gemm,
 *     the output laid back out per sample (small images: one big product);
 *   NN_CONV_PER_SAMPLE: a gemm per sample writing its output in place, on
 *     the input itself for 1x1 stride-1 convs (no im2col at all), else on
 *     that sample's im2col (large images: no copies of the output).
 * By shape (NN_CONV_BY_SHAPE, the default): per sample when the output has
 * at least NN_CONV_PER_SAMPLE_PIXELS pixels, where bench/conv_algos.c found
 * per sample faster or level on the models' shapes (the figures are in
 * docs/nn.md); a fixed rule, not a timing at run time, so runs stay
 * reproducible.
 * Forcing one is for tests and that benchmark; both give the same results
 * within float rounding. Call before building nets. */
enum { NN_CONV_BY_SHAPE, NN_CONV_GROUPED, NN_CONV_PER_SAMPLE };
#define NN_CONV_PER_SAMPLE_PIXELS 256
void nn_set_conv_algo(int algo);
/* The channel block of the blocked layout nets built now take where they
 * fit (nn/onednn.h; models.c says which do), 0 when none will: no oneDNN
 * kernels for this CPU, the environment variable SP_NN_NO_ONEDNN set, or a
 * forced algorithm (nn_set_conv_algo keeps every net in NCHW). */
int nn_layout_block(void);
/* The channel block of the layout n runs in, 0 for NCHW. */
int nn_net_layout_block(const struct nn_net *n);
/* Whether a conv with an oh x ow output runs per sample, as things are set. */
int nn_conv_per_sample(int oh, int ow);

static inline size_t nn_layer_in_size(const nn_layer *l) { return (size_t)l->c * l->h * l->w; }     /* c*h*w */
static inline size_t nn_layer_out_size(const nn_layer *l) { return (size_t)l->oc * l->oh * l->ow; } /* oc*oh*ow */
/* y = layer(x) for a batch of B (x is B x in). train: dropout active and
 * batchnorm on batch statistics (updating the running ones). 0, or -1 with
 * err (SP_EXIT_SYSTEM) when a layer on oneDNN fails (nn/onednn.h: its
 * primitives for this B cannot be made, one fails to run, out of memory);
 * the outputs are then undefined. */
int nn_layer_forward(nn_layer *l, const float *x, int B, int train, nn_rng *rng, sp_err *err);
/* From dy (B x out): l->dx (B x in) and the parameter gradients (set, not
 * added). 0, or -1 with err as nn_layer_forward; the gradients are then
 * undefined. */
int nn_layer_backward(nn_layer *l, const float *dy, int B, sp_err *err);

/* Softmax cross-entropy, mean over the batch. logits (B, n); labels in 0..n-1.
 * Writes dlogits (B, n) when not NULL; returns the loss; *correct (may be
 * NULL) gets how many argmax predictions equal the label. */
float nn_softmax_xent(const float *logits, const int32_t *labels, int B, int n, float *dlogits, int *correct);
/* The same with label smoothing eps (0 <= eps < 1), as PyTorch's
 * cross_entropy(label_smoothing=eps): the target is (1 - eps) on the label
 * plus eps / n on every class. */
float nn_softmax_xent_smooth(const float *logits, const int32_t *labels, int B, int n, float eps, float *dlogits,
                             int *correct);
/* How many of the B rows of logits (B, n) rank their label among the k
 * highest (ties counted against). */
int nn_topk_correct(const float *logits, const int32_t *labels, int B, int n, int k);

/* ---------------- networks ---------------- */
/* The limits every net is held to, whether built for shards or from a
 * checkpoint's header: beyond them nn_net_create and nn_net_plan refuse
 * (SP_EXIT_DATA); nn_net_build, which also builds the inner nets of blocks,
 * holds all but the channel limit (up to 65536 there). Within them every shape product the
 * layers compute in int (oh * ow, c * h * w, oc * oh * ow) stays in range. */
#define NN_MAX_SIDE 4096            /* input height and width */
#define NN_MAX_CHANNELS 64          /* input channels */
#define NN_MAX_CLASSES 65536        /* output classes */
#define NN_MAX_BATCH 65536          /* samples a batch */
#define NN_MAX_PARAMS (1ull << 30)  /* learnable values of a named model */
typedef struct nn_net {
    char model[32];
    int c, h, w, classes; /* input shape per sample and output classes */
    nn_layer *layers;
    int nlayers;
    int batch;            /* the largest batch the buffers hold */
    nn_param **params;
    int nparams;
    /* The base of a named model: its first base_layers layers, holding its
     * first base_params parameters; the layers after them are its
     * classifier (the head), which --head replaces and --init may
     * initialise anew (0, 0 for nets built from specs). */
    int base_layers, base_params;
    int frozen;           /* leading layers frozen (nn_net_freeze_base), 0 for none */
#define NN_GRAD_SLOTS 32
    float **grad_pool;    /* a blocked whole net: the input-gradient buffers its layers share
                           * (NN_GRAD_SLOTS, models.c), owned; NULL otherwise */
    size_t grad_pool_floats[NN_GRAD_SLOTS];
} nn_net;

/* A layer of a network to build: kind, and for dense and conv the outputs
 * (-1: the class count), for conv and maxpool the window, stride and
 * padding, for dropout the rate. */
typedef struct nn_spec {
    int kind, out, k, stride, pad;
    int kw, padw;   /* conv: a k x kw window padded by pad rows and padw columns; kw 0: square (k, pad) */
    float rate;
    int relu;       /* conv, batchnorm: a relu fused after it */
    int nobias;     /* conv: no bias (a batchnorm follows) */
    int bottleneck; /* block: 1x1 (out), 3x3 (out, stride), 1x1 (4 out), each with batchnorm;
                     * else basic: 3x3 (out, stride), 3x3 (out). The shortcut is a 1x1 conv
                     * with stride and batchnorm when the shape changes, as torchvision's,
                     * unless option_a */
    int option_a;   /* block: where the shape changes, the parameter-free shortcut of He et
                     * al.'s CIFAR nets (see nn_layer.option_a) in place of the projection */
    float eps;      /* batchnorm: 0 for 1e-5 */
    int mixed;      /* concat: which of torchvision's Inception v3 blocks, 'A' (out: the pool
                     * branch's filters), 'B', 'C' (out: the 7x7 branches' width), 'D', 'E',
                     * or 'e' (E's split of a branch into 1x3 and 3x1 convs of out filters) */
} nn_spec;

/* A network of the given layers after an input of (c, h, w), named model;
 * weights initialised as below. NULL with err set when a shape does not fit. */
nn_net *nn_net_build(const char *model, const nn_spec *specs, int count, int c, int h, int w, int classes, int batch,
                     nn_rng *rng, sp_err *err);
/* The models by name: "mlp" (flatten, dense 128, relu, dense classes);
 * "cnn", the seed's Keras CIFAR net (conv3x3 32, relu, maxpool 2, conv3x3
 * 64, relu, maxpool 2, conv3x3 128, relu, maxpool 2, dense 128, relu, dense
 * classes; padding 0, "valid": 32x32 becomes 2x2, 512 into the dense 128;
 * each conv's relu fused into it); "cnn-same", the same with padding 1
 * (32x32 becomes 4x4, 2048 into the dense 128); "resnet18", "resnet34" (basic blocks) and
 * "resnet50" (bottleneck blocks) as torchvision builds them for 224x224
 * (conv7x7/2, maxpool3x3/2, four stages, global average pool, dense);
 * "resnet20", "resnet32", "resnet44", "resnet56" and "resnet110", He et al.'s
 * CIFAR family of depth 6n+2 (conv3x3 16, three stages of n basic blocks
 * with 16, 32, 64 filters, global average pool, dense; option A shortcuts:
 * 269,722 to 1,727,962 parameters for 10 classes). Input
 * (c, h, w), weights He-uniform (Glorot-uniform for the last layer), biases
 * zero, from rng. NULL with err set for an unknown name or a shape the
 * model cannot take. */
nn_net *nn_net_create(const char *model, int c, int h, int w, int classes, int batch, nn_rng *rng, sp_err *err);
/* Any model name may end in "+headN" (N in 1..NN_MAX_CLASSES): the model's
 * base, then the seed's head in place of its classifier: global average
 * pool, dense N, relu, dense classes. nn_model_with_head writes that name
 * for model and head (0: model itself) into out (size n): 0, or -1 with err
 * (SP_EXIT_USAGE) when it does not fit. */
int nn_model_with_head(char *out, size_t n, const char *model, int head, sp_err *err);
/* Freezes the base of a named model (its first base_layers layers): they
 * then run as in evaluation (batchnorm on its running statistics, which stay
 * as they are; no dropout), nn_backward stops at the first layer after them
 * (their gradients are left as they were) and nn_opt_step skips their
 * parameters, so they stay bit for bit as they are. -1 with err
 * (SP_EXIT_USAGE) for a net without a base. */
int nn_net_freeze_base(nn_net *n, sp_err *err);
/* Initialises n from the checkpoint at path (sp-train --init; a converted
 * torchvision state_dict, or any checkpoint): its model's base (the name
 * before any "+head") must be n's and its input channels n's. The base's
 * weights and batchnorm running statistics are copied; the head's too when
 * the models are the same, head included, with the same class count and
 * every parameter of the same size (*whole = 1), else the head keeps n's
 * fresh initialisation (*whole = 0). Optimizer state is not copied. 0, or
 * -1 with err (SP_EXIT_DATA naming path for a file that does not fit). */
int nn_net_init_from(nn_net *n, const char *path, int *whole, sp_err *err);
/* What nn_net_create would build, without allocating anything: *params
 * learnable values and *running batchnorm running-statistic values. 0, or -1
 * with err set for an unknown name, a shape beyond the limits above or too
 * small for the model, or more than NN_MAX_PARAMS parameters. */
int nn_net_plan(const char *model, int c, int h, int w, int classes, size_t *params, size_t *running, sp_err *err);
void nn_net_free(nn_net *n); /* accepts NULL */
/* Makes every layer of n (its blocks' and concats' paths included) compute
 * its input gradient: for a net whose input gradient is wanted (a path of a
 * block or concat that passes gradients back, or a net under test). */
void nn_net_need_dx(nn_net *n);
size_t nn_net_param_count(const nn_net *n);
/* The logits (B, classes), owned by the net. A frozen base runs as in
 * evaluation whatever train says. NULL with err (SP_EXIT_SYSTEM, naming the
 * layer, its shape and the batch) when a layer fails (nn_layer_forward);
 * the net's outputs are then undefined, the net still safe to run again or
 * free. */
const float *nn_forward(nn_net *n, const float *x, int B, int train, nn_rng *rng, sp_err *err);
/* Sets the gradient of every parameter from dlogits (B, classes): the
 * gradients of this batch alone, whatever they held before (a frozen base's
 * parameters excepted: their gradients are left alone). 0, or -1 with err
 * as nn_forward; the gradients are then undefined. */
int nn_backward(nn_net *n, const float *dlogits, int B, sp_err *err);
/* nn_backward that calls done(ctx, first) after each layer's backward, as
 * the layers finish last to first: from then on params[first..nparams)
 * hold their final gradients (first: the layer's first parameter, or where
 * it would be for a layer without any). done may be NULL. */
int nn_backward_each(nn_net *n, const float *dlogits, int B, void (*done)(void *ctx, int first), void *ctx,
                     sp_err *err);
/* The bytes the net holds for its batch: activations and their gradients,
 * per-layer scratch (for a blocked net, oneDNN's workspaces and the buffer
 * the gradient through a fused relu takes; not the one buffer of weights in
 * oneDNN's layout, at most the largest conv's weights, nor oneDNN's own
 * scratchpads),
 * and parameters with gradients and optimizer state. */
double nn_net_bytes(const nn_net *n);

/* ---------------- optimizers ---------------- */
enum nn_opt_kind { NN_SGD = 1, NN_ADAM };
typedef struct nn_opt {
    int kind;
    float lr, momentum, weight_decay; /* SGD: momentum; both: L2 weight decay added to gradients */
    float beta1, beta2, eps;          /* Adam */
    int64_t step;                     /* steps taken (Adam's bias correction) */
    unsigned wd_skip;                 /* NN_WD_SKIP_*: no weight decay on those parameters (0: on every
                                       * one, as torch.optim without parameter groups) */
} nn_opt;
void nn_opt_init(nn_opt *o, int kind, float lr); /* PyTorch's defaults for the rest */
/* One step on every parameter of the net, as torch.optim.SGD / Adam do it. */
void nn_opt_step(nn_opt *o, nn_net *n);

/* ---------------- checkpoints ---------------- */
/* A checkpoint file: magic "\x89SPCKPT\n", u32 version, u32 header length,
 * the header (JSON: model, input shape, classes, optimizer and its
 * hyper-parameters and step, epoch, rng state, and whatever the caller adds
 * in extra), then every parameter's values and optimizer state and the
 * batchnorm running statistics as little-endian float32, and last the XXH3-64
 * of everything before it. Written through sp_atomic_write (temporary name,
 * fsync, rename, fsync of the directory): the path holds the old checkpoint
 * or the whole new one. */
int nn_checkpoint_save(const char *path, const nn_net *n, const nn_opt *o, int epoch, const nn_rng *rng,
                       const char *extra_json, sp_err *err);
/* Whether a checkpoint can be saved at path: removes the temporaries of
 * path that a killed save left (.NAME.tmp-XXXXXX), then creates and removes
 * a new one, so a missing or read-only directory is found before any work.
 * 0, or -1 with err (SP_EXIT_SYSTEM) naming the path. */
int nn_checkpoint_check_writable(const char *path, sp_err *err);
/* Loads path into a new net (*out) and *o, *epoch, *rng; extra_json (may be
 * NULL) gets the caller's header member (malloc'd). The file is untrusted:
 * before anything is allocated by its size, the header's length is bounded
 * (NN_CKPT_MAX_HEADER), every field is checked for type and range (the
 * net's limits above; epoch 0..NN_MAX_EPOCHS; optimizer step 0..2^53; a
 * finite positive learning rate and eps, momentum and betas in [0, 1), a
 * finite weight decay >= 0; a nonzero rng state) and the file's size must
 * be exactly what the header implies. Any failure: -1 with err
 * (SP_EXIT_DATA) naming the file and the field or reason; nothing is kept. */
#define NN_CKPT_MAX_HEADER (1u << 20)
/* The checks of one header field v (named field in messages) that the
 * loader and the recipe's reader (train.c) share: an integer in lo..hi, or a
 * finite number between lo and hi, each end open or closed (an open lower
 * end holds for its float too). 0, or -1 with err (SP_EXIT_DATA):
 * "PATH: header field FIELD: VALUE is out of range LO..HI" or "... is
 * outside (LO, HI]", or "missing or not an integer/a number". */
struct json_t;
int nn_header_int(const char *path, const struct json_t *v, const char *field, long long lo, long long hi,
                  long long *out, sp_err *err);
int nn_header_real(const char *path, const struct json_t *v, const char *field, double lo, int lo_open, double hi,
                   int hi_open, float *out, sp_err *err);
#define NN_MAX_EPOCHS 100000
int nn_checkpoint_load(const char *path, int batch, nn_net **out, nn_opt *o, int *epoch, nn_rng *rng,
                       char **extra_json, sp_err *err);

#endif
