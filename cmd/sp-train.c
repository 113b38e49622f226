/* sp-train: train a model of the reference trainer on a shard set. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sp_cli.h"
#include "nn/data.h"
#include "nn/nn.h"
#include "nn/train.h"


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

typedef struct options {
    nn_train_options t;
    const char *json;
    int augment_set;
} options;

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

/* ---- reporting: the library's callbacks ---- */

static void report_start(void *ctx, const nn_train_info *i)
{
    const char *dir = ctx;
    sp_info("%s: %s, %zu parameters, %.0f MB for batches of %u; train %llu records %ux%ux%u, %d classes%s%s", dir,
            i->model, i->params, i->bytes / 1e6, i->batch, (unsigned long long)i->train_records, i->h, i->w, i->c,
            i->classes, i->test_split ? "; evaluating on " : "", i->test_split ? i->test_split : "");
}

static sp_progress progress;
static int progress_on;

static void report_progress(void *ctx, uint64_t records, uint64_t bytes)
{
    (void)ctx;
    if (!progress_on)
        sp_progress_init(&progress), progress_on = 1;
    sp_progress_update(&progress, records, bytes);
}

static void report_progress_done(void *ctx)
{
    (void)ctx;
    if (progress_on)
        sp_progress_done(&progress), progress_on = 0;
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
    o->t.on_start = report_start, o->t.ctx = (void *)o->t.dir;
    o->t.on_progress = report_progress, o->t.on_progress_done = report_progress_done;
    o->t.on_epoch = report_epoch;
    nn_train_result res;
    if (nn_train(&o->t, &res, err))
        return -1;
    int rc = 0;
    if (o->json && json_dump_file(res.summary, o->json, JSON_INDENT(2) | JSON_SORT_KEYS))
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot write", o->json);
    json_decref(res.summary);
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
    options o = {.t = {.model = "mlp", .epochs = 5, .threads = 1, .verify = 1, .optimizer = NN_ADAM,
                       .momentum = 0.9f,
                       .recipe = {.batch = 64, .lr = 1e-3f, .step_size = 30, .gamma = 0.1f, .crop_scale = 0.08f}}};
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "m:e:b:o:j:qvhV", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o.t.model = optarg; break;
        case 'e':
            if (sp_parse_u64(optarg, &v) || v < 1 || v > 100000)
                return sp_cli_usage_error("--epochs: 1 to 100000, not %s", optarg);
            o.t.epochs = (int)v;
            break;
        case 'b':
            if (sp_parse_u64(optarg, &v) || v < 1 || v > 65536)
                return sp_cli_usage_error("--batch: 1 to 65536, not %s", optarg);
            o.t.recipe.batch = (uint32_t)v;
            break;
        case 'j':
            if (sp_parse_u64(optarg, &v) || v < 1 || v > 256)
                return sp_cli_usage_error("--threads: 1 to 256, not %s", optarg);
            o.t.threads = (int)v;
            break;
        case 'L':
            if (parse_float(optarg, &o.t.recipe.lr) || o.t.recipe.lr <= 0)
                return sp_cli_usage_error("--lr: a positive number, not %s", optarg);
            break;
        case 'M':
            if (parse_float(optarg, &o.t.momentum) || o.t.momentum >= 1)
                return sp_cli_usage_error("--momentum: 0 to 1, not %s", optarg);
            break;
        case 'W':
            if (parse_float(optarg, &o.t.weight_decay))
                return sp_cli_usage_error("--weight-decay: a number >= 0, not %s", optarg);
            break;
        case 'O':
            if (!strcmp(optarg, "adam"))
                o.t.optimizer = NN_ADAM;
            else if (!strcmp(optarg, "sgd"))
                o.t.optimizer = NN_SGD;
            else
                return sp_cli_usage_error("--optimizer: adam or sgd, not %s", optarg);
            break;
        case 'S':
            if (sp_parse_u64(optarg, &o.t.recipe.seed))
                return sp_cli_usage_error("--seed: not a number: %s", optarg);
            break;
        case 's':
            if ((o.t.recipe.schedule = nn_schedule_from_name(optarg)) < 0)
                return sp_cli_usage_error("--schedule: constant, step or cosine, not %s", optarg);
            break;
        case 'w':
            if (sp_parse_u64(optarg, &v) || v > 100000)
                return sp_cli_usage_error("--warmup: a number of epochs, not %s", optarg);
            o.t.recipe.warmup = (int)v;
            break;
        case 'z':
            if (sp_parse_u64(optarg, &v) || v < 1 || v > 100000)
                return sp_cli_usage_error("--step-size: a positive number of epochs, not %s", optarg);
            o.t.recipe.step_size = (int)v;
            break;
        case 'g':
            if (parse_float(optarg, &o.t.recipe.gamma) || o.t.recipe.gamma <= 0 || o.t.recipe.gamma > 1)
                return sp_cli_usage_error("--gamma: more than 0, at most 1, not %s", optarg);
            break;
        case 'l':
            if (parse_float(optarg, &o.t.recipe.label_smoothing) || o.t.recipe.label_smoothing >= 1)
                return sp_cli_usage_error("--label-smoothing: 0 to 1, not %s", optarg);
            break;
        case 'a':
            if ((o.t.recipe.augment = nn_augment_from_name(optarg)) < 0)
                return sp_cli_usage_error("--augment: none, flip or crop-flip, not %s", optarg);
            o.augment_set = 1;
            break;
        case 'c':
            if (parse_float(optarg, &o.t.recipe.crop_scale) || o.t.recipe.crop_scale <= 0 || o.t.recipe.crop_scale > 1)
                return sp_cli_usage_error("--crop-scale: more than 0, at most 1, not %s", optarg);
            break;
        case 'o': o.t.out = optarg; break;
        case 'R': o.t.resume = optarg; break;
        case 'J': o.json = optarg; break;
        case 'N': o.t.verify = 0; break;
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
    int model = name_index(models, 6, o.t.model);
    if (model < 0)
        return sp_cli_usage_error("--model: mlp, cnn, resnet18, resnet34, resnet50 or resnet20, not %s", o.t.model);
    if (!o.augment_set)
        o.t.recipe.augment = model >= 2 ? NN_AUG_CROP_FLIP : NN_AUG_NONE;
    o.t.dir = argv[optind];
    sp_err err = {0};
    return run(&o, &err) ? sp_report(&err) : SP_EXIT_OK;
}
