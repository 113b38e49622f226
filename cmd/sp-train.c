/* sp-train: train a model of the reference trainer on a shard set. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sp_cli.h"
#include "shards/manifest.h"
#include "nn/data.h"
#include "nn/dist.h"
#include "nn/nn.h"
#include "nn/train.h"


static const char about[] =
    "Train a model on the train split of the shard set SHARDS (a directory with\n"
    "manifest.json) and evaluate it after every epoch on the test split (or val,\n"
    "when there is no test split). Input shape and class count come from the\n"
    "shards; uint8 pixels are normalized with the parameters the shards record\n"
    "(sp-normalize), or scaled to [0, 1] when they record none.\n";

static const char notes[] =
    "Every epoch prints its loss, train and test accuracy (and top-5 with more than\n"
    "10 classes), learning rate and images per second on stderr; within an epoch a\n"
    "progress line (on a terminal) counts the records and the MB of float32 input\n"
    "trained on. Before any training step the shards are verified (sp-verify's\n"
    "checks), the splits must agree in shape and classes, and a resumed checkpoint\n"
    "must fit the shards: shards that do not verify, shapes that differ, or a\n"
    "corrupt or unfitting checkpoint are bad input (status 1).\n"
    "Started by mpirun or srun with several ranks, the ranks train one model on\n"
    "shares of each global batch (--batch) and sum their gradients (Open MPI,\n"
    "loaded at run time); rank 0 alone prints and writes -o and --json.\n";

/* What the command line sets: the library's options, plus the values the
 * table parses into their own types before they become nn_train_options'. */
typedef struct options {
    nn_train_options t;
    const char *json;  /* --json FILE, or NULL */
    int model;         /* index into model_names */
    int optimizer;     /* index into optimizer_kinds */
    int augment;       /* enum nn_augment; -1: the model's default */
    int batch, no_verify, sync_bn;
} options;

static const char *const model_names[] = {"mlp", "cnn", "resnet18", "resnet34", "resnet50", "resnet20", NULL};
static const char *const optimizer_names[] = {"adam", "sgd", NULL};
static const int optimizer_kinds[] = {NN_ADAM, NN_SGD};
/* in the order of enum nn_schedule and enum nn_augment (nn_schedule_from_name, nn_augment_from_name) */
static const char *const schedule_names[] = {"constant", "step", "cosine", NULL};
static const char *const augment_names[] = {"none", "flip", "crop-flip", NULL};

static void format_bound(char *buf, size_t n, double v)
{
    snprintf(buf, n, v == floor(v) && fabs(v) < 1e15 ? "%.0f" : "%g", v);
}

/* The float options (the recipe holds float32): a finite number whose float32
 * value lies in [opt->min, opt->max] -- above opt->min with SP_OPT_ABOVE_MIN,
 * below opt->max when below_max -- stored into the float at opt->dest. Checked
 * as float32, so 1e-50 is not above 0 and 0.9999999999 not below 1. */
static int set_float_in(const sp_opt *opt, const char *arg, int below_max, char *why, size_t why_len)
{
    char *end, lo[32], hi[32];
    double v = strtod(arg, &end);
    float f = (float)v;
    int above_min = (opt->flags & SP_OPT_ABOVE_MIN) != 0;
    if (end == arg || *end || !isfinite(v) || !isfinite(f) || (above_min ? !(f > opt->min) : !(f >= opt->min)) ||
        (below_max ? !(f < opt->max) : !(f <= opt->max))) {
        format_bound(lo, sizeof lo, opt->min), format_bound(hi, sizeof hi, opt->max);
        snprintf(why, why_len, "not a number %s %s and %s %s: %s", above_min ? "above" : "of at least", lo,
                 below_max ? "below" : "at most", hi, arg);
        return -1;
    }
    *(float *)opt->dest = f;
    return 0;
}

static int set_float(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    return set_float_in(opt, arg, 0, why, why_len);
}

/* --momentum, --label-smoothing: the upper bound excluded */
static int set_float_below_max(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    return set_float_in(opt, arg, 1, why, why_len);
}

/* ---- reporting: the library's callbacks ---- */

/* The progress line of the epoch in flight: its clock starts at the epoch's
 * first batch; batches is the number of batches an epoch has. */
typedef struct progress_state {
    const char *dir;
    sp_progress line;
    int drawing;
    uint32_t batch;
    uint64_t batches;
} progress_state;

static void report_start(void *ctx, const nn_train_info *i)
{
    progress_state *ps = ctx;
    ps->batch = i->batch;
    ps->batches = (i->train_records + i->batch - 1) / i->batch;
    sp_info("%s: %s, %zu parameters, %.0f MB for batches of %u; train %llu records %ux%ux%u, %d classes%s%s",
            ps->dir, i->model, i->params, i->bytes / 1e6, i->batch, (unsigned long long)i->train_records, i->h,
            i->w, i->c, i->classes, i->test_split ? "; evaluating on " : "", i->test_split ? i->test_split : "");
}

/* records: those trained on so far this epoch, before the batch about to
 * run; bytes: their float32 input */
static void report_progress(void *ctx, uint64_t records, uint64_t bytes)
{
    progress_state *ps = ctx;
    if (!ps->drawing)
        sp_progress_init(&ps->line), ps->drawing = 1;
    char where[64];
    snprintf(where, sizeof where, "batch %llu/%llu", (unsigned long long)(records / ps->batch + 1),
             (unsigned long long)ps->batches);
    sp_progress_update_at(&ps->line, where, records, bytes);
}

static void report_progress_done(void *ctx)
{
    progress_state *ps = ctx;
    if (ps->drawing)
        sp_progress_done(&ps->line), ps->drawing = 0;
}

static void report_epoch(void *ctx, const nn_epoch_report *r)
{
    (void)ctx;
    if (sp_verbosity < 1)
        return;
    char t[96] = "";
    if (r->test_split)
        snprintf(t, sizeof t, ", %s accuracy %.4f", r->test_split, r->test_accuracy);
    if (r->test_split && r->has_top5)
        snprintf(t + strlen(t), sizeof t - strlen(t), " (top-5 %.4f)", r->test_top5);
    sp_msg("epoch %d/%d: loss %.4f, train accuracy %.4f%s, lr %.3g, %.0f images/s, %.1f s", r->epoch, r->epochs,
           r->loss, r->train_accuracy, t, r->lr, r->images_per_second, r->seconds);
}

static int run(options *o, sp_err *err)
{
    progress_state ps = {.dir = o->t.dir};
    o->t.on_start = report_start, o->t.ctx = &ps;
    o->t.on_progress = report_progress, o->t.on_progress_done = report_progress_done;
    o->t.on_epoch = report_epoch;
    nn_train_result res;
    if (nn_train(&o->t, &res, err))
        return -1;
    int rc = 0;
    if (o->json && sp_write_json_file(o->json, res.summary, err))
        rc = -1;
    json_decref(res.summary);
    return rc;
}

int main(int argc, char **argv)
{
    options o = {.t = {.epochs = 5, .threads = 1, .momentum = 0.9f,
                       .recipe = {.lr = 1e-3f, .step_size = 30, .gamma = 0.1f, .crop_scale = 0.08f}},
                 .augment = -1, .batch = 64};
    const sp_opt table[] = {
        {"model", 'm', SP_OPT_CHOICE, &o.model, .choices = model_names, .arg = "NAME",
         .help = "mlp (flatten, dense 128, relu, dense N), cnn\n"
                 "(3 x [conv3x3 32/64/128, relu, maxpool 2], dense 128,\n"
                 "relu, dense N), resnet18, resnet34, resnet50 (for\n"
                 "224x224, as torchvision's) or resnet20 (for 32x32)\n"
                 "(default mlp)"},
        {"epochs", 'e', SP_OPT_INT, &o.t.epochs, .min = 1, .max = NN_MAX_EPOCHS, .arg = "N",
         .help = "train until epoch N (default 5)"},
        {"batch", 'b', SP_OPT_INT, &o.batch, .min = 1, .max = NN_MAX_BATCH, .arg = "N",
         .help = "batch size (default 64)"},
        {"lr", 0, SP_OPT_CALL, &o.t.recipe.lr, .call = set_float, .min = 0, .max = 1e6,
         .flags = SP_OPT_ABOVE_MIN, .arg = "X",
         .help = "learning rate (default 0.001)"},
        {"optimizer", 0, SP_OPT_CHOICE, &o.optimizer, .choices = optimizer_names, .arg = "NAME",
         .help = "adam or sgd (default adam)"},
        {"momentum", 0, SP_OPT_CALL, &o.t.momentum, .call = set_float_below_max,
         .min = 0, .max = 1, .arg = "X",
         .help = "SGD momentum, in [0, 1) (default 0.9)"},
        {"weight-decay", 0, SP_OPT_CALL, &o.t.weight_decay, .call = set_float, .min = 0, .max = 1e6, .arg = "X",
         .help = "L2 weight decay added to the gradients (default 0)"},
        {"schedule", 0, SP_OPT_CHOICE, &o.t.recipe.schedule, .choices = schedule_names, .arg = "NAME",
         .help = "the learning rate over the steps: constant, step\n"
                 "(times --gamma every --step-size epochs) or cosine\n"
                 "(to 0 at the last step) (default constant)"},
        {"warmup", 0, SP_OPT_INT, &o.t.recipe.warmup, .min = 0, .max = NN_MAX_EPOCHS, .arg = "N",
         .help = "first rise linearly to --lr over N epochs (default 0)"},
        {"step-size", 0, SP_OPT_INT, &o.t.recipe.step_size, .min = 1, .max = NN_MAX_EPOCHS, .arg = "N",
         .help = "step schedule: epochs between decays (default 30)"},
        {"gamma", 0, SP_OPT_CALL, &o.t.recipe.gamma, .call = set_float, .min = 0, .max = 1,
         .flags = SP_OPT_ABOVE_MIN, .arg = "X",
         .help = "step schedule: the decay (default 0.1)"},
        {"label-smoothing", 0, SP_OPT_CALL, &o.t.recipe.label_smoothing, .call = set_float_below_max,
         .min = 0, .max = 1, .arg = "X",
         .help = "cross-entropy against (1-X) on the label plus X/N on\n"
                 "every class, X in [0, 1) (default 0)"},
        {"augment", 0, SP_OPT_CHOICE, &o.augment, .choices = augment_names, .arg = "NAME",
         .help = "on the training images: none, flip (horizontal, half\n"
                 "of them) or crop-flip (a random-resized crop back to\n"
                 "the image size, then the flip); evaluation sees the\n"
                 "images as stored (default crop-flip for the resnets,\n"
                 "else none)"},
        {"view-size", 0, SP_OPT_INT, &o.t.view_size, .min = 1, .max = 4096, .arg = "N",
         .help = "encoded shards (JPEGs decoded at load): the side of\n"
                 "the images the model sees; crop-flip is then the\n"
                 "reader's RandomResizedCrop of the whole source image,\n"
                 "evaluation its Resize(N/0.875) + CenterCrop(N)\n"
                 "(default 224)"},
        {"crop-scale", 0, SP_OPT_CALL, &o.t.recipe.crop_scale, .call = set_float, .min = 0, .max = 1,
         .flags = SP_OPT_ABOVE_MIN, .arg = "X",
         .help = "crop-flip: the smallest crop area (default 0.08)"},
        {"seed", 0, SP_OPT_U64, &o.t.recipe.seed, .arg = "N",
         .help = "seeds the weights, the epochs' record order,\n"
                 "augmentation and dropout (default 0)"},
        {"out", 'o', SP_OPT_STRING, &o.t.out, .arg = "CKPT", .flags = SP_OPT_NO_RECIPE,
         .help = "write a checkpoint after every epoch (replaced\n"
                 "atomically): model, weights, optimizer state, epoch"},
        {"resume", 0, SP_OPT_STRING, &o.t.resume, .arg = "CKPT",
         .help = "continue from a checkpoint: model, optimizer and its\n"
                 "state, seed, batch, schedule, smoothing and\n"
                 "augmentation come from it; the run ends, epoch for\n"
                 "epoch, where an uninterrupted one would"},
        {"json", 0, SP_OPT_STRING, &o.json, .arg = "FILE", .flags = SP_OPT_NO_RECIPE,
         .help = "write a summary: per-epoch figures, test_accuracy,\n"
                 "train_seconds"},
        {"threads", 'j', SP_OPT_INT, &o.t.threads, .min = 1, .max = 256, .arg = "N", .flags = SP_OPT_NO_RECIPE,
         .help = "threads sharing out each batch (default 1)"},
        {"sync-bn", 0, SP_OPT_FLAG, &o.sync_bn, .flags = SP_OPT_NO_RECIPE,
         .help = "under MPI (mpirun/srun with several ranks): batchnorm\n"
                 "statistics over the global batch, not each rank's part"},
        {"no-verify", 0, SP_OPT_FLAG, &o.no_verify, .flags = SP_OPT_NO_RECIPE,
         .help = "skip checking the shards against their manifest first"},
        {0},
    };
    const sp_cli_tool cli = {"sp-train", "SHARDS [OPTION]...", about, table, notes};
    int status = sp_cli_parse_one(&cli, argc, argv, "shard directory", &o.t.dir);
    if (status >= 0)
        return status;
    o.t.model = model_names[o.model];
    o.t.optimizer = optimizer_kinds[o.optimizer];
    o.t.verify = !o.no_verify;
    o.t.recipe.batch = (uint32_t)o.batch;
    o.t.recipe.augment = o.augment >= 0 ? o.augment : o.model >= 2 ? NN_AUG_CROP_FLIP : NN_AUG_NONE;
    sp_err err = {0};
    /* Under mpirun/srun with several ranks: rank 0 alone prints, writes -o and
     * --json; every rank prints its own fatal error. */
    if (nn_dist_init(&err))
        return sp_cli_exit(&err);
    nn_dist_set_sync_bn(o.sync_bn);
    if (nn_dist_rank() != 0)
        sp_verbosity = 0, o.t.out = NULL, o.json = NULL;
    if (sp_cli_input_exists(o.t.dir, &err) || run(&o, &err))
        return sp_cli_exit(&err);
    nn_dist_finalize();
    return sp_cli_exit(NULL);
}
