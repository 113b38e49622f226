/* sp-train: train a model of the reference trainer on a shard set. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sp_cli.h"
#include "common/sp_xxh.h"
#include "nn/data.h"
#include "nn/nn.h"
#include "shards/verify.h"


static const char usage[] =
    "Usage: sp-train SHARDS [OPTION]...\n"
    "Train a model on the train split of the shard set SHARDS (a directory with\n"
    "manifest.json) and evaluate it after every epoch on the test split (or val,\n"
    "when there is no test split). Input shape and class count come from the\n"
    "shards; uint8 pixels are normalized with the parameters the shards record\n"
    "(sp-normalize), or scaled to [0, 1] when they record none.\n"
    "\n"
    "  -m, --model NAME         mlp (flatten, dense 128, relu, dense N), cnn\n"
    "                           (3 x [conv3x3 32/64/128, relu, maxpool 2], dense 128,\n"
    "                           relu, dense N), resnet18, resnet34, resnet50 (for\n"
    "                           224x224, as torchvision's) or resnet20 (for 32x32)\n"
    "                           (default mlp)\n"
    "  -e, --epochs N           train until epoch N (default 5)\n"
    "  -b, --batch N            batch size (default 64)\n"
    "      --lr X               learning rate (default 0.001)\n"
    "      --optimizer NAME     adam or sgd (default adam)\n"
    "      --momentum X         SGD momentum (default 0.9)\n"
    "      --weight-decay X     L2 weight decay added to the gradients (default 0)\n"
    "      --schedule NAME      the learning rate over the steps: constant, step\n"
    "                           (times --gamma every --step-size epochs) or cosine\n"
    "                           (to 0 at the last step) (default constant)\n"
    "      --warmup N           first rise linearly to --lr over N epochs (default 0)\n"
    "      --step-size N        step schedule: epochs between decays (default 30)\n"
    "      --gamma X            step schedule: the decay (default 0.1)\n"
    "      --label-smoothing X  cross-entropy against (1-X) on the label plus X/N on\n"
    "                           every class (default 0)\n"
    "      --augment NAME       on the training images: none, flip (horizontal, half\n"
    "                           of them) or crop-flip (a random-resized crop back to\n"
    "                           the image size, then the flip); evaluation sees the\n"
    "                           images as stored (default crop-flip for the resnets,\n"
    "                           else none)\n"
    "      --crop-scale X       crop-flip: the smallest crop area (default 0.08)\n"
    "      --seed N             seeds the weights, the epochs' record order,\n"
    "                           augmentation and dropout (default 0)\n"
    "  -o, --out CKPT           write a checkpoint after every epoch (replaced\n"
    "                           atomically): model, weights, optimizer state, epoch\n"
    "      --resume CKPT        continue from a checkpoint: model, optimizer and its\n"
    "                           state, seed, batch, schedule, smoothing and\n"
    "                           augmentation come from it; the run ends, epoch for\n"
    "                           epoch, where an uninterrupted one would\n"
    "      --json FILE          write a summary: per-epoch figures, test_accuracy,\n"
    "                           train_seconds\n"
    "  -j, --threads N          threads sharing out each batch (default 1)\n"
    "      --no-verify          skip checking the shards against their manifest first\n"
    "  -q, --quiet              report nothing but errors\n"
    "  -v, --verbose            report more\n"
    "  -h, --help               show this help and exit\n"
    "  -V, --version            show the version and exit\n"
    "\n"
    "Every epoch prints its loss, train and test accuracy (and top-5 with more than\n"
    "10 classes), learning rate and images per second on stderr. Before any\n"
    "training step the shards are verified (sp-verify's checks), the splits must\n"
    "agree in shape and classes, and a resumed checkpoint must fit the shards.\n"
    "\n"
    "Exit status: 0 success; 1 bad input (shards that do not verify, shapes that\n"
    "differ, a corrupt or unfitting checkpoint); 2 usage error; 3 system error.\n";

/* What shapes a run besides the weights: kept in the checkpoint, so that a
 * resumed run goes on exactly as the uninterrupted one would. */
typedef struct recipe {
    uint64_t seed;
    uint32_t batch;
    float lr;                /* the base learning rate; the schedule scales it per step */
    int schedule;            /* SCHED_* */
    int warmup;              /* epochs of linear warm-up */
    int step_size;           /* step schedule: epochs between decays */
    float gamma;             /* step schedule: the decay */
    float label_smoothing;
    int augment;             /* enum nn_augment */
    float crop_scale;
} recipe;

enum { SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE };
static const char *const schedule_names[] = {"constant", "step", "cosine"};
static const char *const augment_names[] = {"none", "flip", "crop-flip"};

typedef struct options {
    const char *dir, *model, *out, *resume, *json;
    int epochs, threads, verify, optimizer, augment_set;
    float momentum, weight_decay;
    recipe r;
} options;

static json_t *recipe_json(const recipe *r)
{
    return json_pack("{s:I, s:i, s:f, s:s, s:i, s:i, s:f, s:f, s:s, s:f}", "seed", (json_int_t)r->seed, "batch",
                     (int)r->batch, "lr", (double)r->lr, "schedule", schedule_names[r->schedule], "warmup",
                     r->warmup, "step_size", r->step_size, "gamma", (double)r->gamma, "label_smoothing",
                     (double)r->label_smoothing, "augment", augment_names[r->augment], "crop_scale",
                     (double)r->crop_scale);
}

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

/* The recipe a checkpoint's header recorded; -1 when it lacks one. */
static int recipe_from_json(const json_t *j, recipe *r)
{
    r->seed = (uint64_t)json_integer_value(json_object_get(j, "seed"));
    r->batch = (uint32_t)json_integer_value(json_object_get(j, "batch"));
    r->lr = (float)json_number_value(json_object_get(j, "lr"));
    r->schedule = name_index(schedule_names, 3, json_string_value(json_object_get(j, "schedule")));
    r->warmup = (int)json_integer_value(json_object_get(j, "warmup"));
    r->step_size = (int)json_integer_value(json_object_get(j, "step_size"));
    r->gamma = (float)json_number_value(json_object_get(j, "gamma"));
    r->label_smoothing = (float)json_number_value(json_object_get(j, "label_smoothing"));
    r->augment = name_index(augment_names, 3, json_string_value(json_object_get(j, "augment")));
    r->crop_scale = (float)json_number_value(json_object_get(j, "crop_scale"));
    return r->batch < 1 || r->lr <= 0 || r->schedule < 0 || r->augment < 0 || r->step_size < 1 || r->gamma <= 0 ||
                   r->crop_scale <= 0
               ? -1
               : 0;
}

/* The learning rate of global step s (0-based) of a run of total steps,
 * steps_per_epoch a epoch: linear warm-up over the first warmup epochs, then
 * the schedule. */
static float learning_rate(const recipe *r, long s, long steps_per_epoch, long total)
{
    long warm = (long)r->warmup * steps_per_epoch;
    if (s < warm)
        return r->lr * (float)(s + 1) / (float)warm;
    switch (r->schedule) {
    case SCHED_STEP: return r->lr * powf(r->gamma, (float)(s / steps_per_epoch / r->step_size));
    case SCHED_COSINE:
        return total > warm ? r->lr * 0.5f * (1.0f + cosf(3.14159265358979f * (float)(s - warm) / (float)(total - warm)))
                            : r->lr;
    default: return r->lr;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Top-1 and top-5 accuracy and mean loss of net over a whole split, in
 * manifest order, on the stored images (the centre view). */
static int evaluate(nn_net *net, nn_data *d, float *x, int32_t *labels, double *acc, double *top5, double *loss,
                    sp_err *err)
{
    if (nn_data_start(d, 0, 0, NN_AUG_NONE, err))
        return -1;
    uint64_t seen = 0, right = 0, right5 = 0;
    double total = 0;
    int n;
    while ((n = nn_data_next(d, x, labels, err)) > 0) {
        int correct;
        const float *logits = nn_forward(net, x, n, 0, NULL);
        total += (double)nn_softmax_xent(logits, labels, n, net->classes, NULL, &correct) * n;
        right += (uint64_t)correct;
        right5 += (uint64_t)nn_topk_correct(logits, labels, n, net->classes, 5);
        seen += (uint64_t)n;
    }
    if (n < 0)
        return -1;
    *acc = seen ? (double)right / (double)seen : 0;
    *top5 = seen ? (double)right5 / (double)seen : 0;
    *loss = seen ? total / (double)seen : 0;
    return 0;
}

/* The seed of epoch e's record order: the same for a resumed run. */
static uint64_t epoch_seed(uint64_t seed, int e)
{
    uint64_t v[2] = {seed, (uint64_t)e};
    return sp_xxh3(v, sizeof v);
}

static int check_labels(const int32_t *labels, int n, int classes, const char *dir, sp_err *err)
{
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return sp_fail(err, SP_EXIT_DATA, "%s: a train record has label %d, outside 0..%d", dir, labels[i],
                           classes - 1);
    return 0;
}

static int train(const options *o, sp_err *err)
{
    if (o->out && nn_checkpoint_check_writable(o->out, err))
        return -1;
    if (o->verify && sp_verify_or_fail(o->dir, err))
        return -1;
    nn_set_threads(o->threads);
    nn_data tr = {0}, te = {0};
    int have_test = 0;
    nn_net *net = NULL;
    nn_opt opt;
    nn_rng rng;
    float *x = NULL, *dlogits = NULL;
    int32_t *labels = NULL;
    json_t *epochs_json = json_array(), *summary = NULL;
    int start_epoch = 0, rc = -1;
    recipe r = o->r;
    if (o->resume) {
        char *extra = NULL;
        /* the batch is the checkpoint's: read it from there first */
        if (nn_checkpoint_load(o->resume, 1, &net, &opt, &start_epoch, &rng, &extra, err))
            goto out;
        json_t *ex = extra ? json_loads(extra, JSON_DECODE_ANY, NULL) : NULL;
        free(extra);
        int bad = recipe_from_json(json_object_get(ex, "recipe"), &r);
        json_t *old = json_object_get(ex, "epochs");
        if (json_is_array(old))
            json_array_extend(epochs_json, old);
        json_decref(ex);
        nn_net_free(net);
        net = NULL;
        if (bad) {
            sp_fail(err, SP_EXIT_DATA, "%s: the checkpoint does not record its training recipe", o->resume);
            goto out;
        }
        if (nn_checkpoint_load(o->resume, (int)r.batch, &net, &opt, &start_epoch, &rng, NULL, err))
            goto out;
        if (start_epoch >= o->epochs) {
            sp_fail(err, SP_EXIT_USAGE, "%s: already trained %d epochs; ask for more with --epochs", o->resume,
                    start_epoch);
            goto out;
        }
    }
    uint32_t batch = r.batch;
    if (nn_data_open(&tr, o->dir, "train", batch, err))
        goto out;
    tr.crop_scale = r.crop_scale;
    const char *test_split = nn_data_eval_split(o->dir, err);
    if (err->code)
        goto out;
    if (test_split) {
        if (nn_data_open(&te, o->dir, test_split, batch, err))
            goto out;
        have_test = 1;
    }
    if (have_test && (te.h != tr.h || te.w != tr.w || te.c != tr.c || te.classes != tr.classes)) {
        sp_fail(err, SP_EXIT_DATA, "%s: the %s split is %ux%ux%u with %d classes, train %ux%ux%u with %d", o->dir,
                test_split, te.h, te.w, te.c, te.classes, tr.h, tr.w, tr.c, tr.classes);
        goto out;
    }
    if (tr.classes < 2) {
        sp_fail(err, SP_EXIT_DATA, "%s: the shards name %d classes; training needs at least 2", o->dir, tr.classes);
        goto out;
    }
    if (net && (net->c != (int)tr.c || net->h != (int)tr.h || net->w != (int)tr.w || net->classes != tr.classes)) {
        sp_fail(err, SP_EXIT_DATA, "%s: a %s for %dx%dx%d inputs and %d classes; the shards hold %ux%ux%u and %d",
                o->resume, net->model, net->h, net->w, net->c, net->classes, tr.h, tr.w, tr.c, tr.classes);
        goto out;
    }
    if (!net) {
        nn_rng_seed(&rng, r.seed);
        if (!(net = nn_net_create(o->model, (int)tr.c, (int)tr.h, (int)tr.w, tr.classes, (int)batch, &rng, err)))
            goto out;
        nn_opt_init(&opt, o->optimizer, r.lr);
        opt.momentum = o->optimizer == NN_SGD ? o->momentum : 0;
        opt.weight_decay = o->weight_decay;
    }
    size_t in = (size_t)tr.c * tr.h * tr.w;
    x = malloc((size_t)batch * in * sizeof *x);
    dlogits = malloc((size_t)batch * (size_t)net->classes * sizeof *dlogits);
    labels = malloc((size_t)batch * sizeof *labels);
    if (!x || !dlogits || !labels || !epochs_json) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        goto out;
    }
    sp_info("%s: %s, %zu parameters, %.0f MB for batches of %u; train %llu records %ux%ux%u, %d classes%s%s", o->dir,
            net->model, nn_net_param_count(net), nn_net_bytes(net) / 1e6, batch, (unsigned long long)tr.count, tr.h, tr.w, tr.c, tr.classes,
            have_test ? "; evaluating on " : "", have_test ? test_split : "");
    double train_seconds = 0, test_acc = -1, test_top5 = -1, train_acc = 0, loss = 0;
    long steps_per_epoch = (long)((tr.count + batch - 1) / batch), total_steps = steps_per_epoch * o->epochs;
    int top5 = net->classes > 10;
    for (int e = start_epoch; e < o->epochs; e++) {
        double t0 = now();
        if (nn_data_start(&tr, epoch_seed(r.seed, e), 1, r.augment, err))
            goto out;
        long step = (long)e * steps_per_epoch;
        uint64_t seen = 0, right = 0;
        double total = 0;
        int n;
        sp_progress prog;
        sp_progress_init(&prog);
        while ((n = nn_data_next(&tr, x, labels, err)) > 0) {
            if (check_labels(labels, n, net->classes, o->dir, err)) {
                sp_progress_done(&prog);
                goto out;
            }
            sp_progress_update(&prog, seen, seen * in);
            int correct;
            const float *logits = nn_forward(net, x, n, 1, &rng);
            total += (double)nn_softmax_xent_smooth(logits, labels, n, net->classes, r.label_smoothing, dlogits,
                                                    &correct) *
                     n;
            nn_backward(net, dlogits, n);
            opt.lr = learning_rate(&r, step++, steps_per_epoch, total_steps);
            nn_opt_step(&opt, net);
            right += (uint64_t)correct;
            seen += (uint64_t)n;
        }
        sp_progress_done(&prog);
        if (n < 0)
            goto out;
        double secs = now() - t0;
        train_seconds += secs;
        loss = seen ? total / (double)seen : 0;
        train_acc = seen ? (double)right / (double)seen : 0;
        double test_loss = 0;
        if (have_test && evaluate(net, &te, x, labels, &test_acc, &test_top5, &test_loss, err))
            goto out;
        double ips = (double)seen / secs;
        if (sp_verbosity >= 1) {
            char t[96] = "";
            if (have_test)
                snprintf(t, sizeof t, ", %s accuracy %.4f", test_split, test_acc);
            if (have_test && top5)
                snprintf(t + strlen(t), sizeof t - strlen(t), " (top-5 %.4f)", test_top5);
            sp_msg("epoch %d/%d: loss %.4f, train accuracy %.4f%s, lr %.3g, %.0f images/s, %.1f s", e + 1, o->epochs,
                   loss, train_acc, t, (double)opt.lr, ips, secs);
        }
        json_t *ej = json_pack("{s:i, s:f, s:f, s:f, s:f, s:f}", "epoch", e + 1, "loss", loss, "train_accuracy",
                               train_acc, "seconds", secs, "images_per_second", ips, "lr", (double)opt.lr);
        if (have_test)
            json_object_set_new(ej, "test_accuracy", json_real(test_acc));
        if (have_test && top5)
            json_object_set_new(ej, "test_top5_accuracy", json_real(test_top5));
        json_array_append_new(epochs_json, ej);
        if (o->out) {
            json_t *ex = json_pack("{s:o, s:O}", "recipe", recipe_json(&r), "epochs", epochs_json);
            char *exs = json_dumps(ex, JSON_COMPACT);
            json_decref(ex);
            int bad = nn_checkpoint_save(o->out, net, &opt, e + 1, &rng, exs, err);
            free(exs);
            if (bad)
                goto out;
        }
    }
    if (o->json) {
        summary = json_pack("{s:s, s:s, s:i, s:i, s:s, s:f, s:I, s:f, s:f, s:f, s:O, s:o}", "shards", o->dir, "model",
                            net->model, "epochs", o->epochs, "batch", (int)batch, "optimizer",
                            opt.kind == NN_SGD ? "sgd" : "adam", "lr", (double)r.lr, "seed", (json_int_t)r.seed,
                            "loss", loss, "train_accuracy", train_acc, "train_seconds", train_seconds, "per_epoch",
                            epochs_json, "recipe", recipe_json(&r));
        json_object_set_new(summary, "test_accuracy", have_test && test_acc >= 0 ? json_real(test_acc) : json_null());
        if (top5)
            json_object_set_new(summary, "test_top5_accuracy",
                                have_test && test_top5 >= 0 ? json_real(test_top5) : json_null());
        if (have_test)
            json_object_set_new(summary, "test_split", json_string(test_split));
        if (json_dump_file(summary, o->json, JSON_INDENT(2) | JSON_SORT_KEYS)) {
            sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot write", o->json);
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(summary);
    json_decref(epochs_json);
    free(x), free(dlogits), free(labels);
    nn_net_free(net);
    nn_data_close(&tr);
    nn_data_close(&te);
    return rc;
}

static int parse_float(const char *s, float *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0) || v > 1e6)
        return -1;
    *out = (float)v;
    return 0;
}

int main(int argc, char **argv)
{
    sp_cli_init(argc, argv);
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'},  {"epochs", required_argument, 0, 'e'},
        {"batch", required_argument, 0, 'b'},  {"lr", required_argument, 0, 'L'},
        {"optimizer", required_argument, 0, 'O'}, {"momentum", required_argument, 0, 'M'},
        {"weight-decay", required_argument, 0, 'W'}, {"seed", required_argument, 0, 'S'},
        {"out", required_argument, 0, 'o'},    {"resume", required_argument, 0, 'R'},
        {"json", required_argument, 0, 'J'},   {"threads", required_argument, 0, 'j'},
        {"no-verify", no_argument, 0, 'N'},    {"quiet", no_argument, 0, 'q'},
        {"schedule", required_argument, 0, 's'}, {"warmup", required_argument, 0, 'w'},
        {"step-size", required_argument, 0, 'z'}, {"gamma", required_argument, 0, 'g'},
        {"label-smoothing", required_argument, 0, 'l'}, {"augment", required_argument, 0, 'a'},
        {"crop-scale", required_argument, 0, 'c'},
        {"verbose", no_argument, 0, 'v'},      {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},      {0, 0, 0, 0},
    };
    options o = {.model = "mlp", .epochs = 5, .threads = 1, .verify = 1, .optimizer = NN_ADAM, .momentum = 0.9f,
                 .r = {.batch = 64, .lr = 1e-3f, .step_size = 30, .gamma = 0.1f, .crop_scale = 0.08f}};
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "m:e:b:o:j:qvhV", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'e':
            if (sp_parse_u64(optarg, &v) || v < 1 || v > 100000)
                return sp_cli_usage_error("--epochs: 1 to 100000, not %s", optarg);
            o.epochs = (int)v;
            break;
        case 'b':
            if (sp_parse_u64(optarg, &v) || v < 1 || v > 65536)
                return sp_cli_usage_error("--batch: 1 to 65536, not %s", optarg);
            o.r.batch = (uint32_t)v;
            break;
        case 'j':
            if (sp_parse_u64(optarg, &v) || v < 1 || v > 256)
                return sp_cli_usage_error("--threads: 1 to 256, not %s", optarg);
            o.threads = (int)v;
            break;
        case 'L':
            if (parse_float(optarg, &o.r.lr) || o.r.lr <= 0)
                return sp_cli_usage_error("--lr: a positive number, not %s", optarg);
            break;
        case 'M':
            if (parse_float(optarg, &o.momentum) || o.momentum >= 1)
                return sp_cli_usage_error("--momentum: 0 to 1, not %s", optarg);
            break;
        case 'W':
            if (parse_float(optarg, &o.weight_decay))
                return sp_cli_usage_error("--weight-decay: a number >= 0, not %s", optarg);
            break;
        case 'O':
            if (!strcmp(optarg, "adam"))
                o.optimizer = NN_ADAM;
            else if (!strcmp(optarg, "sgd"))
                o.optimizer = NN_SGD;
            else
                return sp_cli_usage_error("--optimizer: adam or sgd, not %s", optarg);
            break;
        case 'S':
            if (sp_parse_u64(optarg, &o.r.seed))
                return sp_cli_usage_error("--seed: not a number: %s", optarg);
            break;
        case 's':
            if ((o.r.schedule = name_index(schedule_names, 3, optarg)) < 0)
                return sp_cli_usage_error("--schedule: constant, step or cosine, not %s", optarg);
            break;
        case 'w':
            if (sp_parse_u64(optarg, &v) || v > 100000)
                return sp_cli_usage_error("--warmup: a number of epochs, not %s", optarg);
            o.r.warmup = (int)v;
            break;
        case 'z':
            if (sp_parse_u64(optarg, &v) || v < 1 || v > 100000)
                return sp_cli_usage_error("--step-size: a positive number of epochs, not %s", optarg);
            o.r.step_size = (int)v;
            break;
        case 'g':
            if (parse_float(optarg, &o.r.gamma) || o.r.gamma <= 0 || o.r.gamma > 1)
                return sp_cli_usage_error("--gamma: more than 0, at most 1, not %s", optarg);
            break;
        case 'l':
            if (parse_float(optarg, &o.r.label_smoothing) || o.r.label_smoothing >= 1)
                return sp_cli_usage_error("--label-smoothing: 0 to 1, not %s", optarg);
            break;
        case 'a':
            if ((o.r.augment = name_index(augment_names, 3, optarg)) < 0)
                return sp_cli_usage_error("--augment: none, flip or crop-flip, not %s", optarg);
            o.augment_set = 1;
            break;
        case 'c':
            if (parse_float(optarg, &o.r.crop_scale) || o.r.crop_scale <= 0 || o.r.crop_scale > 1)
                return sp_cli_usage_error("--crop-scale: more than 0, at most 1, not %s", optarg);
            break;
        case 'o': o.out = optarg; break;
        case 'R': o.resume = optarg; break;
        case 'J': o.json = optarg; break;
        case 'N': o.verify = 0; break;
        default: {
            int status = sp_cli_common_option(c, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (optind != argc - 1)
        return sp_cli_usage_error(optind == argc ? "no shard directory given" : "one shard directory, please");
    static const char *const models[] = {"mlp", "cnn", "resnet18", "resnet34", "resnet50", "resnet20"};
    int model = name_index(models, 6, o.model);
    if (model < 0)
        return sp_cli_usage_error("--model: mlp, cnn, resnet18, resnet34, resnet50 or resnet20, not %s", o.model);
    if (!o.augment_set)
        o.r.augment = model >= 2 ? NN_AUG_CROP_FLIP : NN_AUG_NONE;
    o.dir = argv[optind];
    sp_err err = {0};
    return train(&o, &err) ? sp_report(&err) : SP_EXIT_OK;
}
