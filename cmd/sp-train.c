/* sp-train: train a model of the reference trainer on a shard set. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sp_atomic.h"
#include "common/sp_cli.h"
#include "common/sp_draw.h"
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
    "5 classes), learning rate and images per second on stderr; within an epoch a\n"
    "progress line names the batch in flight of the epoch's, the ETA of the epoch\n"
    "and the mean loss so far, then the records and the MB of float32 input trained\n"
    "on (redrawn on a terminal; a plain line every --progress-interval seconds\n"
    "otherwise). --metrics appends the epoch's figures to a JSON Lines file as each\n"
    "epoch ends (flushed: a running job can be followed), --curves draws them.\n"
    "--threads defaults to the CPUs the process may use (sched_getaffinity), or\n"
    "OMP_NUM_THREADS, or SLURM_CPUS_PER_TASK, when set; -v says which. Each shard is checked as it is first\n"
    "opened (its records and shape against the manifest) and every record as it\n"
    "is read (its checksum, its label in the class list), so the start costs the\n"
    "same whatever the set's size; --verify full runs all of sp-verify's checks\n"
    "(every shard's sha256 included) before the first step. The splits must agree\n"
    "in shape and classes, and a resumed checkpoint must fit the shards: shards\n"
    "that fail a check, shapes that differ, or a corrupt or unfitting checkpoint\n"
    "are bad input (status 1).\n"
    "Started by mpirun or srun with several ranks, the ranks train one model on\n"
    "shares of each global batch (--batch) and sum their gradients (Open MPI,\n"
    "loaded at run time); rank 0 alone prints and writes -o and --json.\n"
    "--mix DIR:WEIGHT (repeated) trains on several sets at once, each global batch\n"
    "drawn from them by weight in the elastic order (docs/elastic-order.md); the\n"
    "checkpoint records the mix and a resume must give the same, under any number\n"
    "of ranks.\n"
    "On SIGTERM (Slurm's pre-emption or time limit, scancel) the step in progress\n"
    "ends, -o is written with the position inside the epoch, a line says where\n"
    "the run stopped and how to resume it, and the status is 143; a run resumed\n"
    "from that checkpoint ends with the uninterrupted run's weights and figures\n"
    "bit for bit. Under MPI the ranks stop at the same step.\n";

/* The sets --mix names (at most MAX_MIX): each one's directory, weight and
 * policy (SPR_MIX_STOP or SPR_MIX_REPEAT). */
#define MAX_MIX 16
typedef struct mix_list {
    int n;
    char dir[MAX_MIX][4096];
    const char *dirs[MAX_MIX];
    double weights[MAX_MIX];
    int policies[MAX_MIX];
} mix_list;

/* What the command line sets: the library's options, plus the values the
 * table parses into their own types before they become nn_train_options'. */
typedef struct options {
    nn_train_options t;
    const char *json;  /* --json FILE, or NULL */
    const char *metrics, *curves; /* --metrics FILE.jsonl, --curves FILE.png, or NULL */
    const char *threads_from;     /* where the thread count came from */
    int model;         /* index into model_names */
    int optimizer;     /* index into optimizer_kinds */
    int augment;       /* enum nn_augment; -1: the model's default */
    int batch, no_verify, verify, sync_bn;
    int freeze;        /* index into freeze_names */
    int steps_per_epoch, eval_steps; /* 0: whole passes */
    int checkpoint_every;            /* 0: at epoch ends only */
    mix_list mix;                    /* --mix DIR:WEIGHT[:POLICY], in the order given */
    int mix_classes;                 /* index into mix_class_names */
} options;

/* Set by SIGTERM; nn_train reads it after each step. */
static volatile sig_atomic_t terminated;

static void on_sigterm(int sig)
{
    (void)sig;
    terminated = 1;
}

/* SIGTERM sets `terminated` (system calls in progress restart). */
static int watch_sigterm(sp_err *err)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL))
        return sp_fail(err, SP_EXIT_SYSTEM, "cannot catch SIGTERM: %s", strerror(errno));
    return 0;
}

static const char *const model_names[] = {"mlp",          "cnn",          "cnn-same",       "resnet18",
                                           "resnet34",     "resnet50",     "resnet20",       "resnet32",
                                           "resnet44",     "resnet56",     "resnet110",      "inception_v3",
                                           "vgg11",        "vgg11_bn",     "vgg16",          "vgg16_bn",
                                           "vgg11-cifar",  "vgg11_bn-cifar", "vgg16-cifar",  "vgg16_bn-cifar",
                                           NULL};
static const char *const optimizer_names[] = {"adam", "sgd", NULL};
static const char *const verify_modes[] = {"open", "full", NULL};
static const char *const freeze_names[] = {"none", "base", NULL};
static const char *const mix_class_names[] = {"same", "union", NULL};
static const int optimizer_kinds[] = {NN_ADAM, NN_SGD};
/* in the order of enum nn_schedule and enum nn_augment (nn_schedule_from_name, nn_augment_from_name) */
static const char *const schedule_names[] = {"constant", "step", "cosine", "multistep", NULL};
static const char *const augment_names[] = {"none", "flip", "crop-flip", "pad-crop-flip", NULL};

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

/* --milestones E1,E2,... (epochs) and --milestones-steps S1,S2,... (steps)
 * into the recipe at opt->dest; one of the two only. */
static int set_milestones(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    nn_recipe *r = opt->dest;
    int steps = !strcmp(opt->name, "milestones-steps");
    if (r->milestones_n && r->milestones_steps != steps) {
        snprintf(why, why_len, "not with --%s: the milestones are in epochs or in steps",
                 steps ? "milestones" : "milestones-steps");
        return -1;
    }
    return nn_milestones_parse(arg, steps, r, why, why_len);
}

/* --mix DIR:WEIGHT[:repeat|stop] appended to the mix_list at opt->dest
 * (the fields are split at the last colons: DIR may hold colons, a URL's). */
static int add_mix(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    mix_list *m = opt->dest;
    if (m->n >= MAX_MIX) {
        snprintf(why, why_len, "at most %d sets", MAX_MIX);
        return -1;
    }
    size_t end = strlen(arg), colon = end;
    int policy = SPR_MIX_STOP;
    while (colon > 0 && arg[colon - 1] != ':')
        colon--;
    if (colon && (!strcmp(arg + colon, "repeat") || !strcmp(arg + colon, "stop"))) {
        policy = !strcmp(arg + colon, "repeat") ? SPR_MIX_REPEAT : SPR_MIX_STOP;
        for (end = --colon; colon > 0 && arg[colon - 1] != ':';)
            colon--;
    }
    char num[64], *rest;
    if (!colon || colon == 1 || end - colon >= sizeof num || colon - 1 >= sizeof m->dir[0]) {
        snprintf(why, why_len, "not DIR:WEIGHT or DIR:WEIGHT:repeat|stop: %s", arg);
        return -1;
    }
    memcpy(num, arg + colon, end - colon);
    num[end - colon] = 0;
    double w = strtod(num, &rest);
    if (!num[0] || *rest || !(w > 0) || !isfinite(w)) {
        snprintf(why, why_len, "weight %s: a number above 0", num);
        return -1;
    }
    memcpy(m->dir[m->n], arg, colon - 1);
    m->dir[m->n][colon - 1] = 0;
    m->dirs[m->n] = m->dir[m->n], m->weights[m->n] = w, m->policies[m->n] = policy;
    m->n++;
    return 0;
}

/* --wd-skip LIST into the unsigned at opt->dest */
static int set_wd_skip(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    if (nn_wd_skip_parse(arg, opt->dest)) {
        snprintf(why, why_len, "not none or a list of bn and bias split by commas: %s", arg);
        return -1;
    }
    return 0;
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
    double loss;            /* the epoch's running loss, once a batch is done */
    int threads;
    const char *threads_from;
    /* --metrics and --curves */
    FILE *metrics;
    const char *metrics_path, *curves_path;
    int metrics_errno;      /* the first failed write's errno, reported at the end */
    sp_err curves_err;      /* the first failed picture, reported at the end */
    json_t *history;        /* the epochs of this run, as --metrics writes them */
    char title[160];        /* the curves': "DIR: MODEL" */
} progress_state;

static void report_start(void *ctx, const nn_train_info *i)
{
    progress_state *ps = ctx;
    snprintf(ps->title, sizeof ps->title, "%.100s: %s", ps->dir, i->model);
    ps->batch = i->batch;
    ps->batches = (i->train_records + i->batch - 1) / i->batch;
    sp_info("%s: %s, %zu parameters, %.0f MB for batches of %u; train %llu records %ux%ux%u, %d classes%s%s",
            ps->dir, i->model, i->params, i->bytes / 1e6, i->batch, (unsigned long long)i->train_records, i->h,
            i->w, i->c, i->classes, i->test_split ? "; evaluating on " : "", i->test_split ? i->test_split : "");
    sp_info("%d thread%s (%s)", ps->threads, ps->threads == 1 ? "" : "s", ps->threads_from);
    if (i->layout_block)
        sp_info("layout: channels in blocks of %d, convolutions and pooling on oneDNN", i->layout_block);
    else
        sp_info("layout: NCHW, products on OpenBLAS");
}

/* records: those trained on so far this epoch, before the batch about to
 * run; bytes: their float32 input */
static void report_progress(void *ctx, uint64_t records, uint64_t bytes)
{
    progress_state *ps = ctx;
    if (!ps->drawing)
        sp_progress_init(&ps->line), ps->drawing = 1, ps->loss = NAN;
    char where[96];
    uint64_t i = records / ps->batch + 1;
    int n = snprintf(where, sizeof where, "batch %llu/%llu", (unsigned long long)i, (unsigned long long)ps->batches);
    double el = sp_now() - ps->line.start;
    if (i > 1 && el > 0) /* the batches done so far, at their pace */
        n += snprintf(where + n, sizeof where - (size_t)n, ", ETA %.0f s",
                      el / (double)(i - 1) * (double)(ps->batches - (i - 1)));
    if (!isnan(ps->loss))
        snprintf(where + n, sizeof where - (size_t)n, ", loss %.4f", ps->loss);
    sp_progress_update_at(&ps->line, where, records, bytes);
}

static void report_running_loss(void *ctx, double loss) { ((progress_state *)ctx)->loss = loss; }

/* The training curves of the epochs in history (objects with epoch, loss,
 * train_accuracy and maybe test_accuracy) as a PNG: the loss on the left
 * axis, the accuracies on the right one, from 0 to 1. */
/* split: the evaluated split's name, where history's entries do not say it. */
static int draw_curves(const char *path, const json_t *history, const char *title, const char *split, sp_err *err)
{
    enum { W = 800, H = 480, L = 70, R = 70, T = 56, B = 56, S = 2 };
    size_t n = json_array_size(history);
    double max_loss = 0;
    int last_epoch = 1, has_test = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(history, i);
        double l = json_number_value(json_object_get(e, "loss"));
        max_loss = l > max_loss ? l : max_loss;
        last_epoch = (int)json_integer_value(json_object_get(e, "epoch"));
        has_test |= json_is_number(json_object_get(e, "test_accuracy"));
    }
    /* the loss axis: 0 to a round number above the largest loss */
    double step = 1e-3;
    while (max_loss / step > 5)
        step *= max_loss / step > 25 ? 10 : max_loss / step > 10 ? 5 : 2;
    double top = ceil(max_loss / step) * step;
    if (top <= 0)
        top = 1;
    sp_canvas c;
    if (sp_canvas_init(&c, W, H, 0xffffff, err))
        return -1;
    int pw = W - L - R, ph = H - T - B, first_epoch = n ? (int)json_integer_value(json_object_get(json_array_get(history, 0), "epoch")) : 1;
    int span = last_epoch > first_epoch ? last_epoch - first_epoch : 1;
    char label[64];
    /* grid and axes: accuracy ticks every 0.2 on the right, loss ticks on the left */
    for (int k = 0; k <= 5; k++) {
        int y = T + ph - ph * k / 5;
        sp_draw_rect(&c, L, y, pw, 1, 0xe0e0e0);
        snprintf(label, sizeof label, "%.1f", k / 5.0);
        sp_draw_text(&c, L + pw + 6, y - 7, label, S, 0x1f77b4);
        snprintf(label, sizeof label, "%.3g", top * k / 5);
        sp_draw_text(&c, L - 6 - sp_text_width(label, S), y - 7, label, S, 0xd62728);
    }
    int every = span > 10 ? (span + 9) / 10 : 1;
    for (int e = first_epoch; e <= last_epoch; e += every) {
        int x = L + (int)((long)pw * (e - first_epoch) / span);
        sp_draw_rect(&c, x, T + ph, 1, 6, 0x000000);
        snprintf(label, sizeof label, "%d", e);
        sp_draw_text(&c, x - sp_text_width(label, S) / 2, T + ph + 10, label, S, 0x000000);
    }
    sp_draw_rect(&c, L, T, 1, ph + 1, 0x000000);
    sp_draw_rect(&c, L + pw, T, 1, ph + 1, 0x000000);
    sp_draw_rect(&c, L, T + ph, pw + 1, 1, 0x000000);
    sp_draw_text(&c, L + pw / 2 - sp_text_width("epoch", S) / 2, H - 22, "epoch", S, 0x000000);
    sp_draw_text(&c, 4, H - 22, "loss", S, 0xd62728);
    sp_draw_text(&c, W - 4 - sp_text_width("accuracy", S), H - 22, "accuracy", S, 0x1f77b4);
    sp_draw_text(&c, L, 8, title, S, 0x000000);
    /* the curves, a dot on each epoch */
    static const char *const keys[] = {"loss", "train_accuracy", "test_accuracy"};
    static const uint32_t colors[] = {0xd62728, 0x1f77b4, 0x2ca02c};
    for (size_t i = 0; i < n; i++) /* the legend names the split the run evaluated (test, or val) */
        if (json_string_value(json_object_get(json_array_get(history, i), "test_split")))
            split = json_string_value(json_object_get(json_array_get(history, i), "test_split"));
    char eval_name[64];
    snprintf(eval_name, sizeof eval_name, "%s accuracy", split ? split : "test");
    const char *const names[] = {"loss", "train accuracy", eval_name};
    int lx = L;
    for (int k = 0; k < 3; k++) {
        if (k == 2 && !has_test)
            continue;
        int px = -1, py = -1;
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(history, i), *v = json_object_get(e, keys[k]);
            if (!json_is_number(v))
                continue;
            double f = json_number_value(v) / (k == 0 ? top : 1.0);
            int x = L + (int)((long)pw * ((int)json_integer_value(json_object_get(e, "epoch")) - first_epoch) / span);
            int y = T + ph - (int)lround(f * ph);
            if (px >= 0)
                sp_draw_line(&c, px, py, x, y, 3, colors[k]);
            sp_draw_rect(&c, x - 3, y - 3, 7, 7, colors[k]);
            px = x, py = y;
        }
        sp_draw_rect(&c, lx, 32, 14, 14, colors[k]);
        lx += 20 + sp_draw_text(&c, lx + 20, 32, names[k], S, 0x000000) + 24;
    }
    int rc = sp_canvas_write_png(&c, path, err);
    sp_canvas_free(&c);
    return rc;
}

static void report_progress_done(void *ctx)
{
    progress_state *ps = ctx;
    if (ps->drawing)
        sp_progress_done(&ps->line), ps->drawing = 0;
}

/* One epoch's figures as --metrics writes them (a new object). */
static json_t *epoch_json(const nn_epoch_report *r)
{
    json_t *j = json_pack("{s:i, s:i, s:f, s:f}", "epoch", r->epoch, "epochs", r->epochs, "loss", r->loss,
                          "train_accuracy", r->train_accuracy);
    if (r->test_split) {
        json_object_set_new(j, "test_split", json_string(r->test_split));
        json_object_set_new(j, "test_accuracy", json_real(r->test_accuracy));
        if (r->has_top5)
            json_object_set_new(j, "test_top5_accuracy", json_real(r->test_top5));
    }
    json_object_set_new(j, "lr", json_real((double)(float)r->lr));
    json_object_set_new(j, "seconds", json_real(r->seconds));
    json_object_set_new(j, "images_per_second", json_real(r->images_per_second));
    return j;
}

static void report_epoch(void *ctx, const nn_epoch_report *r)
{
    progress_state *ps = ctx;
    if (ps->metrics || ps->curves_path) {
        json_t *j = epoch_json(r);
        char *line = j ? sp_json_text(j, 0) : NULL;
        if (ps->metrics && !ps->metrics_errno &&
            (!line || fprintf(ps->metrics, "%s\n", line) < 0 || fflush(ps->metrics)))
            ps->metrics_errno = line ? errno ? errno : EIO : ENOMEM;
        free(line);
        if (j && ps->curves_path) {
            json_array_append(ps->history, j);
            if (!ps->curves_err.code)
                draw_curves(ps->curves_path, ps->history, ps->title, NULL, &ps->curves_err);
        }
        json_decref(j);
    }
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

static void report_note(void *ctx, const char *note)
{
    (void)ctx;
    sp_msg("%s", note);
}

/* Which of sp-train's options the command line gave (enum nn_given), read
 * from the options sp_cli_parse recorded; --sync-bn, not recorded, from its
 * flag. */
static unsigned given_options(const options *o)
{
    static const struct {
        const char *name;
        char letter;
        unsigned bit;
    } map[] = {
        {"model", 'm', NN_GIVEN_MODEL},         {"head", 0, NN_GIVEN_HEAD},
        {"init", 0, NN_GIVEN_INIT},             {"batch", 'b', NN_GIVEN_BATCH},
        {"optimizer", 0, NN_GIVEN_OPTIMIZER},   {"momentum", 0, NN_GIVEN_MOMENTUM},
        {"weight-decay", 0, NN_GIVEN_WEIGHT_DECAY}, {"seed", 0, NN_GIVEN_SEED},
        {"augment", 0, NN_GIVEN_AUGMENT},       {"crop-scale", 0, NN_GIVEN_CROP_SCALE},
        {"pad", 0, NN_GIVEN_PAD},               {"milestones", 0, NN_GIVEN_MILESTONES},
        {"milestones-steps", 0, NN_GIVEN_MILESTONES}, {"wd-skip", 0, NN_GIVEN_WD_SKIP},
        {"label-smoothing", 0, NN_GIVEN_SMOOTHING}, {"freeze", 0, NN_GIVEN_FREEZE},
        {"steps-per-epoch", 0, NN_GIVEN_STEPS}, {"view-size", 0, NN_GIVEN_VIEW_SIZE},
        {"lr", 0, NN_GIVEN_LR},                 {"schedule", 0, NN_GIVEN_SCHEDULE},
        {"warmup", 0, NN_GIVEN_WARMUP},         {"step-size", 0, NN_GIVEN_STEP_SIZE},
        {"gamma", 0, NN_GIVEN_GAMMA},           {"eval-steps", 0, NN_GIVEN_EVAL_STEPS},
    };
    sp_err err = {0};
    const json_t *args = json_object_get(sp_cli_recipe(&err), "args");
    unsigned given = o->sync_bn ? NN_GIVEN_SYNC_BN : 0;
    for (size_t i = 0; i < json_array_size(args); i++) {
        const char *a = json_string_value(json_array_get(args, i));
        for (size_t k = 0; a && k < sizeof map / sizeof *map; k++)
            if ((a[0] == '-' && a[1] == '-' && !strcmp(a + 2, map[k].name)) ||
                (map[k].letter && a[0] == '-' && a[1] == map[k].letter && !a[2]))
                given |= map[k].bit;
    }
    return given;
}

/* 0, 1 when SIGTERM stopped the run (its line printed), or -1 with err. */
static int run(options *o, sp_err *err)
{
    progress_state ps = {.dir = o->t.dir, .threads = o->t.threads, .threads_from = o->threads_from,
                         .metrics_path = o->metrics, .curves_path = o->curves, .history = json_array()};
    o->t.on_start = report_start, o->t.ctx = &ps;
    o->t.on_progress = report_progress, o->t.on_progress_done = report_progress_done;
    o->t.on_running_loss = report_running_loss;
    o->t.on_epoch = report_epoch;
    o->t.on_note = report_note;
    if (!ps.history)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    /* a picture or summary that cannot be written fails now, not after the training */
    if ((o->curves && sp_atomic_check(o->curves, err)) || (o->json && sp_atomic_check(o->json, err))) {
        json_decref(ps.history);
        return -1;
    }
    /* appended to, so that a resumed run's lines follow the first run's */
    if (o->metrics && !(ps.metrics = fopen(o->metrics, "a"))) {
        json_decref(ps.history);
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot open: %s", o->metrics, strerror(errno));
    }
    nn_train_result res = {0};
    int rc = nn_train(&o->t, &res, err);
    if (rc == 0 && res.stopped && nn_dist_rank() == 0) {
        char where[128];
        snprintf(where, sizeof where, "stopped by SIGTERM after step %ld of %ld of epoch %d/%d", res.stop_step,
                 res.epoch_steps, res.stop_epoch, o->t.epochs);
        if (res.saved)
            sp_msg("%s; %s holds that point: go on with sp-train %s --resume %s -o %s --epochs %d", where, o->t.out,
                   o->t.dir, o->t.out, o->t.out, o->t.epochs);
        else
            sp_msg("%s; nothing saved (no -o): keep the position with -o CKPT next time", where);
    }
    if (ps.metrics && fclose(ps.metrics) && !ps.metrics_errno)
        ps.metrics_errno = errno;
    if (rc == 0 && ps.metrics_errno)
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot write: %s", o->metrics, strerror(ps.metrics_errno));
    if (rc == 0 && ps.curves_err.code)
        *err = ps.curves_err, rc = -1;
    /* the curves of every epoch, those of the runs it resumed included */
    if (rc == 0 && o->curves && res.summary && draw_curves(o->curves, json_object_get(res.summary, "per_epoch"), ps.title,
                                         json_string_value(json_object_get(res.summary, "test_split")), err))
        rc = -1;
    if (rc == 0 && o->json && res.summary && sp_write_json_text(o->json, res.summary, err))
        rc = -1;
    json_decref(res.summary);
    json_decref(ps.history);
    return rc == 0 && res.stopped ? 1 : rc;
}

int main(int argc, char **argv)
{
    options o = {.t = {.epochs = 5, .threads = 0, .momentum = 0.9f,
                       .recipe = {.lr = 1e-3f, .step_size = 30, .gamma = 0.1f, .crop_scale = 0.08f, .pad = 4}},
                 .augment = -1, .batch = 64};
    const sp_opt table[] = {
        {"model", 'm', SP_OPT_CHOICE, &o.model, .choices = model_names, .arg = "NAME",
         .help = "mlp (flatten, dense 128, relu, dense N), cnn (the\n"
                 "seed's Keras net: 3 x [conv3x3 32/64/128 unpadded,\n"
                 "relu, maxpool 2], dense 128, relu, dense N), cnn-same\n"
                 "(the same padded), resnet18, resnet34, resnet50 (for\n"
                 "224x224, as torchvision's), resnet20, resnet32,\n"
                 "resnet44, resnet56, resnet110 (He et al.'s CIFAR\n"
                 "nets for 32x32, option A shortcuts),\n"
                 "inception_v3 (torchvision's without the auxiliary\n"
                 "classifier; 299x299, or any size from 75x75), vgg11,\n"
                 "vgg16, vgg11_bn, vgg16_bn (torchvision's, for\n"
                 "224x224) and their -cifar variants (for 32x32: dense\n"
                 "512, 512, N) (default mlp)"},
        {"head", 0, SP_OPT_INT, &o.t.head, .min = 1, .max = NN_MAX_CLASSES, .arg = "N",
         .help = "replace the model's classifier by the seed's head:\n"
                 "global average pool, dense N, relu, dense classes"},
        {"init", 0, SP_OPT_STRING, &o.t.init, .arg = "CKPT",
         .help = "start from the weights in CKPT (scripts/torch2ckpt.py\n"
                 "converts a torchvision state_dict): the base always,\n"
                 "the classifier when model, head and classes match\n"
                 "(else it is initialised anew)"},
        {"freeze", 0, SP_OPT_CHOICE, &o.freeze, .choices = freeze_names, .arg = "WHAT",
         .help = "none, or base: train only the classifier; the base\n"
                 "runs as in evaluation and its weights and batchnorm\n"
                 "statistics stay bit for bit (default none)"},
        {"mix", 0, SP_OPT_CALL, &o.mix, .call = add_mix, .arg = "DIR:WEIGHT[:repeat|stop]",
         .help = "train on the train splits of several sets mixed by\n"
                 "weight (repeat the option, one set each); SHARDS is\n"
                 "then the set evaluated on. A set that runs out ends\n"
                 "the epoch (stop, the default), or starts its next\n"
                 "pass (repeat); an epoch ends with the first stop-set\n"
                 "(all repeat: the slowest set's pass)"},
        {"mix-classes", 0, SP_OPT_CHOICE, &o.mix_classes, .choices = mix_class_names, .arg = "HOW",
         .help = "same: the mixed sets must have one class list\n"
                 "(default); union: their labels are mapped into the\n"
                 "union of their class names, sorted by byte"},
        {"steps-per-epoch", 0, SP_OPT_INT, &o.steps_per_epoch, .min = 1, .max = 1000000000, .arg = "N",
         .help = "an epoch is N batches, the passes over the train\n"
                 "split following one another (Keras' steps_per_epoch)\n"
                 "(default: one pass)"},
        {"eval-steps", 0, SP_OPT_INT, &o.eval_steps, .min = 1, .max = 1000000000, .arg = "N",
         .help = "evaluate after each epoch on the first N batches of\n"
                 "the test split (default: all of it)"},
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
        {"wd-skip", 0, SP_OPT_CALL, &o.t.recipe.wd_skip, .call = set_wd_skip, .arg = "LIST",
         .help = "parameters the weight decay leaves alone: bn\n"
                 "(batchnorm's scale and shift), bias (of dense and\n"
                 "conv layers), bn,bias, or none (default none: every\n"
                 "parameter decays, as torch.optim without parameter\n"
                 "groups)"},
        {"schedule", 0, SP_OPT_CHOICE, &o.t.recipe.schedule, .choices = schedule_names, .arg = "NAME",
         .help = "the learning rate over the steps: constant, step\n"
                 "(times --gamma every --step-size epochs), cosine\n"
                 "(to 0 at the last step) or multistep (times --gamma\n"
                 "at each of --milestones or --milestones-steps)\n"
                 "(default constant)"},
        {"warmup", 0, SP_OPT_INT, &o.t.recipe.warmup, .min = 0, .max = NN_MAX_EPOCHS, .arg = "N",
         .help = "first rise linearly to --lr over N epochs (default 0)"},
        {"step-size", 0, SP_OPT_INT, &o.t.recipe.step_size, .min = 1, .max = NN_MAX_EPOCHS, .arg = "N",
         .help = "step schedule: epochs between decays (default 30)"},
        {"gamma", 0, SP_OPT_CALL, &o.t.recipe.gamma, .call = set_float, .min = 0, .max = 1,
         .flags = SP_OPT_ABOVE_MIN, .arg = "X",
         .help = "step and multistep schedules: the decay (default 0.1)"},
        {"milestones", 0, SP_OPT_CALL, &o.t.recipe, .call = set_milestones, .arg = "E1,E2,...",
         .help = "multistep: the epochs (counted from 0) from which the\n"
                 "rate is multiplied by --gamma once more, increasing"},
        {"milestones-steps", 0, SP_OPT_CALL, &o.t.recipe, .call = set_milestones, .arg = "S1,S2,...",
         .help = "multistep: the same in optimizer steps (batches,\n"
                 "counted from 0 over the whole run)"},
        {"label-smoothing", 0, SP_OPT_CALL, &o.t.recipe.label_smoothing, .call = set_float_below_max,
         .min = 0, .max = 1, .arg = "X",
         .help = "cross-entropy against (1-X) on the label plus X/N on\n"
                 "every class, X in [0, 1) (default 0)"},
        {"augment", 0, SP_OPT_CHOICE, &o.augment, .choices = augment_names, .arg = "NAME",
         .help = "on the training images: none, flip (horizontal, half\n"
                 "of them), crop-flip (a random-resized crop back to\n"
                 "the image size, then the flip) or pad-crop-flip\n"
                 "(CIFAR's: padded by --pad pixels of value 0 on every\n"
                 "side, a random crop of the image size, then the\n"
                 "flip, as torchvision's RandomCrop(size, padding));\n"
                 "evaluation sees the images as stored (default none\n"
                 "for mlp and the cnns, else crop-flip)"},
        {"view-size", 0, SP_OPT_INT, &o.t.view_size, .min = 1, .max = 4096, .arg = "N",
         .help = "encoded shards (JPEGs decoded at load): the side of\n"
                 "the images the model sees; crop-flip is then the\n"
                 "reader's RandomResizedCrop of the whole source image,\n"
                 "evaluation its Resize(N/0.875) + CenterCrop(N)\n"
                 "(default 224)"},
        {"crop-scale", 0, SP_OPT_CALL, &o.t.recipe.crop_scale, .call = set_float, .min = 0, .max = 1,
         .flags = SP_OPT_ABOVE_MIN, .arg = "X",
         .help = "crop-flip: the smallest crop area (default 0.08)"},
        {"pad", 0, SP_OPT_INT, &o.t.recipe.pad, .min = 0, .max = NN_MAX_PAD, .arg = "N",
         .help = "pad-crop-flip: the padding in pixels (default 4)"},
        {"seed", 0, SP_OPT_U64, &o.t.recipe.seed, .arg = "N",
         .help = "seeds the weights, the epochs' record order,\n"
                 "augmentation and dropout (default 0)"},
        {"out", 'o', SP_OPT_STRING, &o.t.out, .arg = "CKPT", .flags = SP_OPT_NO_RECIPE,
         .help = "write a checkpoint after every epoch (replaced\n"
                 "atomically): model, weights, optimizer state, epoch"},
        {"checkpoint-every", 0, SP_OPT_INT, &o.checkpoint_every, .min = 1, .max = 1000000000, .arg = "N",
         .flags = SP_OPT_NO_RECIPE,
         .help = "also write -o after every N-th step of the run (counted\n"
                 "from its first step), with the position inside the\n"
                 "epoch; --resume goes on from there"},
        {"resume", 0, SP_OPT_STRING, &o.t.resume, .arg = "CKPT",
         .help = "continue from a checkpoint: model, optimizer and its\n"
                 "state, seed, batch, schedule, smoothing, augmentation\n"
                 "and --sync-bn come from it (given otherwise: a usage\n"
                 "error, but --lr and the schedule's options change from\n"
                 "here on); the run ends, epoch for epoch, where an\n"
                 "uninterrupted one would"},
        {"json", 0, SP_OPT_STRING, &o.json, .arg = "FILE", .flags = SP_OPT_NO_RECIPE,
         .help = "write a summary at the end: per-epoch figures,\n"
                 "test_accuracy, train_seconds"},
        {"metrics", 0, SP_OPT_STRING, &o.metrics, .arg = "FILE", .flags = SP_OPT_NO_RECIPE,
         .help = "append one JSON line per epoch as it ends (epoch, loss,\n"
                 "train and test accuracy, lr, seconds, images/s), flushed"},
        {"curves", 0, SP_OPT_STRING, &o.curves, .arg = "FILE.png", .flags = SP_OPT_NO_RECIPE,
         .help = "draw the loss and the train and test accuracy per\n"
                 "epoch as a PNG, redrawn after every epoch"},
        {"threads", 'j', SP_OPT_INT, &o.t.threads, .min = 1, .max = 256, .arg = "N", .flags = SP_OPT_NO_RECIPE,
         .help = "threads sharing out each batch (default: the CPUs the\n"
                 "process may use, or OMP_NUM_THREADS or\n"
                 "SLURM_CPUS_PER_TASK when set)"},
        {"sync-bn", 0, SP_OPT_FLAG, &o.sync_bn, .flags = SP_OPT_NO_RECIPE,
         .help = "under MPI (mpirun/srun with several ranks): batchnorm\n"
                 "statistics over the global batch, not each rank's part"},
        {"verify", 0, SP_OPT_CHOICE, &o.verify, .choices = verify_modes, .arg = "open|full",
         .flags = SP_OPT_NO_RECIPE,
         .help = "open (default): check each shard as it is first opened\n"
                 "and each record as it is read; full: sp-verify's checks\n"
                 "of the whole set (every byte's sha256) first"},
        {"no-verify", 0, SP_OPT_FLAG, &o.no_verify, .flags = SP_OPT_NO_RECIPE,
         .help = "--verify open (the default; kept for old scripts)"},
        SP_CLI_CACHE_OPTS,
        {0},
    };
    const sp_cli_tool cli = {"sp-train", "SHARDS [OPTION]...", about, table, notes};
    int status = sp_cli_parse_one(&cli, argc, argv, "shard directory", &o.t.dir);
    if (status >= 0)
        return status;
    o.threads_from = "--threads";
    if (!o.t.threads)
        o.t.threads = sp_cli_default_threads(&o.threads_from);
    o.t.model = model_names[o.model];
    o.t.optimizer = optimizer_kinds[o.optimizer];
    o.t.verify = o.verify == 1 && !o.no_verify; /* 1: full */
    o.t.recipe.batch = (uint32_t)o.batch;
    o.t.recipe.freeze = o.freeze;
    o.t.recipe.steps_per_epoch = o.steps_per_epoch, o.t.recipe.eval_steps = o.eval_steps;
    o.t.recipe.sync_bn = o.sync_bn;
    o.t.given = given_options(&o);
    int small_model = !strcmp(o.t.model, "mlp") || !strncmp(o.t.model, "cnn", 3); /* no augmentation by default */
    o.t.recipe.augment = o.augment >= 0 ? o.augment : small_model ? NN_AUG_NONE : NN_AUG_CROP_FLIP;
    sp_err err = {0};
    o.t.checkpoint_every = o.checkpoint_every;
    if (o.mix_classes && !o.mix.n) {
        sp_fail(&err, SP_EXIT_USAGE, "--mix-classes: only with --mix");
        return sp_cli_exit(&err);
    }
    o.t.mix_dirs = o.mix.dirs, o.t.mix_weights = o.mix.weights, o.t.mix_policies = o.mix.policies;
    o.t.nmix = o.mix.n, o.t.mix_union = o.mix_classes == 1;
    if (o.checkpoint_every && !o.t.out) {
        sp_fail(&err, SP_EXIT_USAGE, "--checkpoint-every: needs -o CKPT to write to");
        return sp_cli_exit(&err);
    }
    o.t.stop = &terminated;
    if (watch_sigterm(&err))
        return sp_cli_exit(&err);
    /* Under mpirun/srun with several ranks: rank 0 alone prints, writes -o and
     * --json; every rank prints its own fatal error. */
    if (nn_dist_init(&err))
        return sp_cli_exit(&err);
    if (nn_dist_rank() != 0)
        sp_verbosity = 0, o.t.out = NULL, o.json = NULL;
    int rc = sp_cli_input_exists(o.t.dir, &err) ? -1 : run(&o, &err);
    if (rc < 0)
        return sp_cli_exit(&err);
    nn_dist_finalize();
    return rc ? 128 + SIGTERM : sp_cli_exit(NULL);
}
