/* sp-train: train a model of the reference trainer on a shard set. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <getopt.h>
#include <jansson.h>
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
    "  -m, --model NAME         mlp (flatten, dense 128, relu, dense N) or cnn\n"
    "                           (3 x [conv3x3 32/64/128, relu, maxpool 2], dense 128,\n"
    "                           relu, dense N) (default mlp)\n"
    "  -e, --epochs N           train until epoch N (default 5)\n"
    "  -b, --batch N            batch size (default 64)\n"
    "      --lr X               learning rate (default 0.001)\n"
    "      --optimizer NAME     adam or sgd (default adam)\n"
    "      --momentum X         SGD momentum (default 0.9)\n"
    "      --weight-decay X     L2 weight decay added to the gradients (default 0)\n"
    "      --seed N             seeds the weights, the epochs' record order and\n"
    "                           dropout (default 0)\n"
    "  -o, --out CKPT           write a checkpoint after every epoch (replaced\n"
    "                           atomically): model, weights, optimizer state, epoch\n"
    "      --resume CKPT        continue from a checkpoint: model, optimizer, seed\n"
    "                           and batch come from it; the run ends, epoch for epoch,\n"
    "                           where an uninterrupted one would\n"
    "      --json FILE          write a summary: per-epoch figures, test_accuracy,\n"
    "                           train_seconds\n"
    "  -j, --threads N          threads sharing out each batch (default 1)\n"
    "      --no-verify          skip checking the shards against their manifest first\n"
    "  -q, --quiet              report nothing but errors\n"
    "  -v, --verbose            report more\n"
    "  -h, --help               show this help and exit\n"
    "  -V, --version            show the version and exit\n"
    "\n"
    "Every epoch prints its loss, train and test accuracy and images per second on\n"
    "stderr. Before any training step the shards are verified (sp-verify's checks),\n"
    "the splits must agree in shape and classes, and a resumed checkpoint must fit\n"
    "the shards.\n"
    "\n"
    "Exit status: 0 success; 1 bad input (shards that do not verify, shapes that\n"
    "differ, a corrupt or unfitting checkpoint); 2 usage error; 3 system error.\n";

typedef struct options {
    const char *dir, *model, *out, *resume, *json;
    int epochs, threads, verify, optimizer;
    uint32_t batch;
    float lr, momentum, weight_decay;
    uint64_t seed;
} options;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void first_problem(void *ctx, const char *problem)
{
    char *dst = ctx;
    if (!dst[0])
        snprintf(dst, 512, "%s", problem);
}

/* sp-verify's checks; the first problem as the error. */
static int verify_shards(const char *dir, sp_err *err)
{
    char problem[512] = "";
    sp_verify_hooks hooks = {.report = first_problem, .ctx = problem};
    sp_verify_stats st;
    int rc = sp_verify_dir(dir, &hooks, &st, err);
    if (rc > 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: the shards do not verify: %s (run sp-verify %s)", dir, problem, dir);
    return rc;
}

/* Accuracy and mean loss of net over a whole split, in manifest order. */
static int evaluate(nn_net *net, nn_data *d, float *x, int32_t *labels, double *acc, double *loss, sp_err *err)
{
    if (nn_data_start(d, 0, 0, err))
        return -1;
    uint64_t seen = 0, right = 0;
    double total = 0;
    int n;
    while ((n = nn_data_next(d, x, labels, err)) > 0) {
        int correct;
        const float *logits = nn_forward(net, x, n, 0, NULL);
        total += (double)nn_softmax_xent(logits, labels, n, net->classes, NULL, &correct) * n;
        right += (uint64_t)correct;
        seen += (uint64_t)n;
    }
    if (n < 0)
        return -1;
    *acc = seen ? (double)right / (double)seen : 0;
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
    if (o->verify && verify_shards(o->dir, err))
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
    uint64_t seed = o->seed;
    uint32_t batch = o->batch;
    if (o->resume) {
        char *extra = NULL;
        /* the batch is the checkpoint's: read it from there first */
        if (nn_checkpoint_load(o->resume, 1, &net, &opt, &start_epoch, &rng, &extra, err))
            goto out;
        json_t *ex = extra ? json_loads(extra, JSON_DECODE_ANY, NULL) : NULL;
        free(extra);
        batch = (uint32_t)json_integer_value(json_object_get(ex, "batch"));
        seed = (uint64_t)json_integer_value(json_object_get(ex, "seed"));
        json_t *old = json_object_get(ex, "epochs");
        if (json_is_array(old))
            json_array_extend(epochs_json, old);
        json_decref(ex);
        nn_net_free(net);
        net = NULL;
        if (batch < 1) {
            sp_fail(err, SP_EXIT_DATA, "%s: the checkpoint does not record its batch size", o->resume);
            goto out;
        }
        if (nn_checkpoint_load(o->resume, (int)batch, &net, &opt, &start_epoch, &rng, NULL, err))
            goto out;
        if (start_epoch >= o->epochs) {
            sp_fail(err, SP_EXIT_USAGE, "%s: already trained %d epochs; ask for more with --epochs", o->resume,
                    start_epoch);
            goto out;
        }
    }
    if (nn_data_open(&tr, o->dir, "train", batch, err))
        goto out;
    const char *test_split = NULL;
    for (int i = 0; i < 2 && !test_split; i++) {
        const char *name = i == 0 ? "test" : "val";
        sp_err e2 = {0};
        if (nn_data_open(&te, o->dir, name, batch, &e2) == 0)
            test_split = name, have_test = 1;
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
        nn_rng_seed(&rng, seed);
        if (!(net = nn_net_create(o->model, (int)tr.c, (int)tr.h, (int)tr.w, tr.classes, (int)batch, &rng, err)))
            goto out;
        nn_opt_init(&opt, o->optimizer, o->lr);
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
    sp_info("%s: %s, %zu parameters; train %llu records %ux%ux%u, %d classes%s%s", o->dir, net->model,
            nn_net_param_count(net), (unsigned long long)tr.count, tr.h, tr.w, tr.c, tr.classes,
            have_test ? "; evaluating on " : "", have_test ? test_split : "");
    double train_seconds = 0, test_acc = -1, train_acc = 0, loss = 0;
    for (int e = start_epoch; e < o->epochs; e++) {
        double t0 = now();
        if (nn_data_start(&tr, epoch_seed(seed, e), 1, err))
            goto out;
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
            nn_zero_grad(net);
            const float *logits = nn_forward(net, x, n, 1, &rng);
            total += (double)nn_softmax_xent(logits, labels, n, net->classes, dlogits, &correct) * n;
            nn_backward(net, dlogits, n);
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
        if (have_test && evaluate(net, &te, x, labels, &test_acc, &test_loss, err))
            goto out;
        double ips = (double)seen / secs;
        if (sp_verbosity >= 1) {
            char t[64] = "";
            if (have_test)
                snprintf(t, sizeof t, ", %s accuracy %.4f", test_split, test_acc);
            sp_msg("epoch %d/%d: loss %.4f, train accuracy %.4f%s, %.0f images/s, %.1f s", e + 1, o->epochs, loss,
                   train_acc, t, ips, secs);
        }
        json_t *ej = json_pack("{s:i, s:f, s:f, s:f, s:f}", "epoch", e + 1, "loss", loss, "train_accuracy", train_acc,
                               "seconds", secs, "images_per_second", ips);
        if (have_test)
            json_object_set_new(ej, "test_accuracy", json_real(test_acc));
        json_array_append_new(epochs_json, ej);
        if (o->out) {
            json_t *ex = json_pack("{s:I, s:i, s:O}", "seed", (json_int_t)seed, "batch", (int)batch, "epochs",
                                   epochs_json);
            char *exs = json_dumps(ex, JSON_COMPACT);
            json_decref(ex);
            int bad = nn_checkpoint_save(o->out, net, &opt, e + 1, &rng, exs, err);
            free(exs);
            if (bad)
                goto out;
        }
    }
    if (o->json) {
        summary = json_pack("{s:s, s:s, s:i, s:i, s:s, s:f, s:I, s:f, s:f, s:f, s:O}", "shards", o->dir, "model",
                            net->model, "epochs", o->epochs, "batch", (int)batch, "optimizer",
                            opt.kind == NN_SGD ? "sgd" : "adam", "lr", (double)opt.lr, "seed", (json_int_t)seed,
                            "loss", loss, "train_accuracy", train_acc, "train_seconds", train_seconds, "per_epoch",
                            epochs_json);
        json_object_set_new(summary, "test_accuracy", have_test && test_acc >= 0 ? json_real(test_acc) : json_null());
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
        {"verbose", no_argument, 0, 'v'},      {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},      {0, 0, 0, 0},
    };
    options o = {.model = "mlp", .epochs = 5, .threads = 1, .verify = 1, .optimizer = NN_ADAM, .batch = 64,
                 .lr = 1e-3f, .momentum = 0.9f};
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
            o.batch = (uint32_t)v;
            break;
        case 'j':
            if (sp_parse_u64(optarg, &v) || v < 1 || v > 256)
                return sp_cli_usage_error("--threads: 1 to 256, not %s", optarg);
            o.threads = (int)v;
            break;
        case 'L':
            if (parse_float(optarg, &o.lr) || o.lr <= 0)
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
            if (sp_parse_u64(optarg, &o.seed))
                return sp_cli_usage_error("--seed: not a number: %s", optarg);
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
    if (strcmp(o.model, "mlp") && strcmp(o.model, "cnn"))
        return sp_cli_usage_error("--model: mlp or cnn, not %s", o.model);
    o.dir = argv[optind];
    sp_err err = {0};
    return train(&o, &err) ? sp_report(&err) : SP_EXIT_OK;
}
