/* sp-eval: evaluate a trained checkpoint on a split of a shard set. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sp_cli.h"
#include "nn/data.h"
#include "nn/metrics.h"
#include "nn/nn.h"
#include "shards/verify.h"


static const char usage[] =
    "Usage: sp-eval SHARDS --checkpoint CKPT [OPTION]...\n"
    "Evaluate the model in CKPT (written by sp-train) on a split of the shard set\n"
    "SHARDS and print on stdout: accuracy, top-5 accuracy where there are more\n"
    "than 10 classes, per-class precision and recall, and the confusion matrix\n"
    "(rows: true class, columns: predicted).\n"
    "\n"
    "  -c, --checkpoint CKPT   the checkpoint to evaluate\n"
    "  -s, --split NAME        test (default; val when there is no test split),\n"
    "                          val or train\n"
    "      --json FILE         also write the figures as JSON (- for stdout,\n"
    "                          instead of the text)\n"
    "  -b, --batch N           records per forward pass (default 256)\n"
    "  -j, --threads N         threads sharing out each batch (default 1)\n"
    "      --no-verify         skip checking the shards against their manifest\n"
    "  -q, --quiet             report nothing but errors on stderr\n"
    "  -h, --help              show this help and exit\n"
    "  -V, --version           show the version and exit\n"
    "\n"
    "Exit status: 0 success; 1 bad input (shards that do not verify, a corrupt\n"
    "checkpoint, or one made for other shapes or classes); 2 usage error; 3 system\n"
    "error.\n";

static json_t *to_json(const nn_metrics *m, nn_data *d, const char *split, const char *ckpt, const char *model)
{
    int k = m->classes;
    json_t *per = json_array(), *conf = json_array();
    for (int c = 0; c < k; c++) {
        json_t *row = json_array();
        for (int j = 0; j < k; j++)
            json_array_append_new(row, json_integer((json_int_t)m->confusion[(size_t)c * k + j]));
        const char *name = spr_class_name(d->set, c);
        json_array_append_new(per, json_pack("{s:i, s:s, s:I, s:f, s:f}", "class", c, "name", name ? name : "",
                                             "records", (json_int_t)nn_metrics_class_records(m, c), "precision",
                                             nn_metrics_precision(m, c), "recall", nn_metrics_recall(m, c)));
        json_array_append_new(conf, row);
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:f, s:o, s:o}", "checkpoint", ckpt, "model", model, "split", split,
                          "records", (json_int_t)m->n, "accuracy", nn_metrics_accuracy(m), "per_class", per,
                          "confusion", conf);
    if (k > 10)
        json_object_set_new(j, "top5_accuracy", json_real(nn_metrics_top5(m)));
    return j;
}

static void print_text(const nn_metrics *m, nn_data *d, const char *split, const char *model, FILE *f)
{
    int k = m->classes;
    fprintf(f, "model %s on %s: %llu records\naccuracy %.4f\n", model, split, (unsigned long long)m->n,
            nn_metrics_accuracy(m));
    if (k > 10)
        fprintf(f, "top-5 accuracy %.4f\n", nn_metrics_top5(m));
    fprintf(f, "\n%5s  %-24s %8s %9s %7s\n", "class", "name", "records", "precision", "recall");
    for (int c = 0; c < k; c++) {
        const char *name = spr_class_name(d->set, c);
        fprintf(f, "%5d  %-24.24s %8llu %9.4f %7.4f\n", c, name ? name : "",
                (unsigned long long)nn_metrics_class_records(m, c), nn_metrics_precision(m, c),
                nn_metrics_recall(m, c));
    }
    fprintf(f, "\nconfusion (rows: true class, columns: predicted)\n");
    for (int c = 0; c < k; c++) {
        for (int j = 0; j < k; j++)
            fprintf(f, "%s%llu", j ? " " : "", (unsigned long long)m->confusion[(size_t)c * k + j]);
        fputc('\n', f);
    }
}

int main(int argc, char **argv)
{
    sp_cli_init(argc, argv);
    static const struct option lo[] = {
        {"checkpoint", required_argument, 0, 'c'}, {"split", required_argument, 0, 's'},
        {"json", required_argument, 0, 'J'},       {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 'j'},    {"no-verify", no_argument, 0, 'N'},
        {"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},          {0, 0, 0, 0},
    };
    const char *ckpt = NULL, *split = NULL, *json = NULL;
    uint64_t batch = 256, threads = 1;
    int verify = 1, c;
    while ((c = getopt_long(argc, argv, "c:s:b:j:qhV", lo, NULL)) != -1) {
        switch (c) {
        case 'c': ckpt = optarg; break;
        case 's':
            if (strcmp(optarg, "test") && strcmp(optarg, "val") && strcmp(optarg, "train"))
                return sp_cli_usage_error("--split: test, val or train, not %s", optarg);
            split = optarg;
            break;
        case 'J': json = optarg; break;
        case 'b':
            if (sp_parse_u64(optarg, &batch) || batch < 1 || batch > 65536)
                return sp_cli_usage_error("--batch: 1 to 65536, not %s", optarg);
            break;
        case 'j':
            if (sp_parse_u64(optarg, &threads) || threads < 1 || threads > 256)
                return sp_cli_usage_error("--threads: 1 to 256, not %s", optarg);
            break;
        case 'N': verify = 0; break;
        default: {
            int status = sp_cli_common_option(c, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (optind != argc - 1)
        return sp_cli_usage_error(optind == argc ? "no shard directory given" : "one shard directory, please");
    if (!ckpt)
        return sp_cli_usage_error("no checkpoint (--checkpoint CKPT)");
    const char *dir = argv[optind];
    nn_set_threads((int)threads);
    sp_err err = {0};
    nn_net *net = NULL;
    nn_opt opt;
    nn_rng rng;
    int epoch;
    nn_data d = {0};
    nn_metrics r = {0};
    float *x = NULL;
    int32_t *labels = NULL;
    int rc = -1;
    if (verify && sp_verify_or_fail(dir, &err))
        goto out;
    if (nn_checkpoint_load(ckpt, (int)batch, &net, &opt, &epoch, &rng, NULL, &err))
        goto out;
    if (!split && !(split = nn_data_eval_split(dir, &err))) {
        if (!err.code)
            sp_fail(&err, SP_EXIT_DATA, "%s: neither a test nor a val split (name one with --split)", dir);
        goto out;
    }
    if (nn_data_open(&d, dir, split, (uint32_t)batch, &err))
        goto out;
    if (net->c != (int)d.c || net->h != (int)d.h || net->w != (int)d.w || net->classes != d.classes) {
        sp_fail(&err, SP_EXIT_DATA, "%s: a %s for %dx%dx%d inputs and %d classes; the %s split holds %ux%ux%u and %d",
                ckpt, net->model, net->h, net->w, net->c, net->classes, split, d.h, d.w, d.c, d.classes);
        goto out;
    }
    if (nn_metrics_init(&r, net->classes, 1, &err))
        goto out;
    x = malloc((size_t)batch * d.c * d.h * d.w * sizeof *x);
    labels = malloc((size_t)batch * sizeof *labels);
    if (!x || !labels) {
        sp_fail(&err, SP_EXIT_SYSTEM, "out of memory");
        goto out;
    }
    if (nn_evaluate(net, &d, dir, x, labels, &r, &err))
        goto out;
    json_t *j = to_json(&r, &d, split, ckpt, net->model);
    if (json && strcmp(json, "-") && json_dump_file(j, json, JSON_INDENT(2) | JSON_SORT_KEYS)) {
        json_decref(j);
        sp_fail(&err, SP_EXIT_SYSTEM, "%s: cannot write", json);
        goto out;
    }
    if (json && !strcmp(json, "-")) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
    } else {
        print_text(&r, &d, split, net->model, stdout);
    }
    json_decref(j);
    rc = fflush(stdout) ? sp_fail(&err, SP_EXIT_SYSTEM, "stdout: write failed") : 0;
out:
    free(x), free(labels);
    nn_metrics_free(&r);
    nn_net_free(net);
    nn_data_close(&d);
    return rc ? sp_report(&err) : SP_EXIT_OK;
}
