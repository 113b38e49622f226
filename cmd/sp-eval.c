/* sp-eval: evaluate a trained checkpoint on a split of a shard set. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sp_atomic.h"
#include "common/sp_cli.h"
#include "common/sp_draw.h"
#include "shards/manifest.h"
#include "nn/data.h"
#include "nn/metrics.h"
#include "nn/nn.h"
#include "shards/verify.h"


static const char about[] =
    "Evaluate the model in CKPT (written by sp-train) on a split of the shard set\n"
    "SHARDS and print on stdout: accuracy, top-5 accuracy where there are more\n"
    "than 5 classes, per-class precision, recall and F1, their macro and weighted\n"
    "averages, and the confusion matrix (rows: true class, columns: predicted).\n";

static const char notes[] =
    "A class's prediction is the first of its record's highest logits; a record\n"
    "counts for top-5 when fewer than 5 other classes score at least its label's\n"
    "logit (ties count against). Averages are scikit-learn's: macro over the\n"
    "classes alike, weighted by each class's records; a class never predicted has\n"
    "precision 0. Shards that do not verify, a corrupt checkpoint, or one made for\n"
    "other shapes or classes are bad input (status 1).\n";

/* What the command line sets. */
typedef struct options {
    const char *dir, *ckpt, *json; /* json: NULL, a file, or "-" for stdout */
    const char *heatmap;           /* --heatmap FILE.png, or NULL */
    const char *logits;            /* NULL, or a file for every record's logits */
    int split;                     /* index into split_names; -1: test, or val when there is no test split */
    int batch, threads, no_verify;
} options;

static const char *const split_names[] = {"test", "val", "train", NULL};

static json_t *to_json(const nn_metrics *m, nn_data *d, const char *split, const char *ckpt, const char *model)
{
    int k = m->classes;
    json_t *per = json_array(), *conf = json_array();
    for (int c = 0; c < k; c++) {
        json_t *row = json_array();
        for (int j = 0; j < k; j++)
            json_array_append_new(row, json_integer((json_int_t)m->confusion[(size_t)c * k + j]));
        const char *name = spr_class_name(d->set, c);
        json_array_append_new(per, json_pack("{s:i, s:s, s:I, s:f, s:f, s:f}", "class", c, "name", name ? name : "",
                                             "records", (json_int_t)nn_metrics_class_records(m, c), "precision",
                                             nn_metrics_precision(m, c), "recall", nn_metrics_recall(m, c), "f1",
                                             nn_metrics_f1(m, c)));
        json_array_append_new(conf, row);
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:f, s:o, s:o}", "checkpoint", ckpt, "model", model, "split", split,
                          "records", (json_int_t)m->n, "accuracy", nn_metrics_accuracy(m), "per_class", per,
                          "confusion", conf);
    if (k > 5)
        json_object_set_new(j, "top5_accuracy", json_real(nn_metrics_top5(m)));
    nn_metrics_avg macro, weighted;
    nn_metrics_averages(m, &macro, &weighted);
    json_object_set_new(j, "macro_avg", json_pack("{s:f, s:f, s:f}", "precision", macro.precision, "recall",
                                                  macro.recall, "f1", macro.f1));
    json_object_set_new(j, "weighted_avg", json_pack("{s:f, s:f, s:f}", "precision", weighted.precision, "recall",
                                                     weighted.recall, "f1", weighted.f1));
    return j;
}

static void print_text(const nn_metrics *m, nn_data *d, const char *split, const char *model, FILE *f)
{
    int k = m->classes;
    fprintf(f, "model %s on %s: %llu records\naccuracy %.4f\n", model, split, (unsigned long long)m->n,
            nn_metrics_accuracy(m));
    if (k > 5)
        fprintf(f, "top-5 accuracy %.4f\n", nn_metrics_top5(m));
    fprintf(f, "\n%5s  %-24s %8s %9s %7s %7s\n", "class", "name", "records", "precision", "recall", "f1");
    for (int c = 0; c < k; c++) {
        const char *name = spr_class_name(d->set, c);
        fprintf(f, "%5d  %-24.24s %8llu %9.4f %7.4f %7.4f\n", c, name ? name : "",
                (unsigned long long)nn_metrics_class_records(m, c), nn_metrics_precision(m, c),
                nn_metrics_recall(m, c), nn_metrics_f1(m, c));
    }
    nn_metrics_avg macro, weighted;
    nn_metrics_averages(m, &macro, &weighted);
    fprintf(f, "%5s  %-24s %8llu %9.4f %7.4f %7.4f\n", "", "macro avg", (unsigned long long)m->n, macro.precision,
            macro.recall, macro.f1);
    fprintf(f, "%5s  %-24s %8llu %9.4f %7.4f %7.4f\n", "", "weighted avg", (unsigned long long)m->n,
            weighted.precision, weighted.recall, weighted.f1);
    fprintf(f, "\nconfusion (rows: true class, columns: predicted)\n");
    /* every column as wide as the widest count or class number in the matrix */
    uint64_t most = (uint64_t)(k - 1);
    for (size_t i = 0; i < (size_t)k * (size_t)k; i++)
        most = m->confusion[i] > most ? m->confusion[i] : most;
    int wd = snprintf(NULL, 0, "%llu", (unsigned long long)most);
    fprintf(f, "%5s  %-16s", "", "");
    for (int j = 0; j < k; j++)
        fprintf(f, " %*d", wd, j);
    fputc('\n', f);
    for (int c = 0; c < k; c++) {
        const char *name = spr_class_name(d->set, c);
        fprintf(f, "%5d  %-16.16s", c, name ? name : "");
        for (int j = 0; j < k; j++)
            fprintf(f, " %*llu", wd, (unsigned long long)m->confusion[(size_t)c * k + j]);
        fputc('\n', f);
    }
}

/* The confusion matrix as a PNG heat map: a cell per (true, predicted)
 * pair, coloured by the share of the true class's records it holds (the
 * row normalised: the diagonal is each class's recall), its count written
 * in it when it fits; rows labelled "N name", columns N. */
static int draw_heatmap(const char *path, const nn_metrics *m, nn_data *d, const char *title, sp_err *err)
{
    int k = m->classes, S = k <= 40 ? 2 : 1;
    int cell = k <= 12 ? 56 : k <= 40 ? 28 : k <= 200 ? 12 : 4;
    int name_w = 0;
    char label[96];
    for (int c = 0; c < k && cell >= 12; c++) {
        const char *name = spr_class_name(d->set, c);
        snprintf(label, sizeof label, "%d %.20s", c, name ? name : "");
        int w = sp_text_width(label, S);
        name_w = w > name_w ? w : name_w;
    }
    int L = name_w + 16, T = 3 * sp_text_height(2) + (cell >= 12 ? sp_text_height(S) + 8 : 0) + 8;
    int W = L + k * cell + 16, H = T + k * cell + 16;
    if (W < 360)
        W = 360;
    sp_canvas cv;
    if (sp_canvas_init(&cv, W, H, 0xffffff, err))
        return -1;
    sp_draw_text(&cv, 8, 6, title, 2, 0x000000);
    sp_draw_text(&cv, 8, 6 + sp_text_height(2), "rows: true class, columns: predicted", 2, 0x000000);
    for (int c = 0; c < k; c++) {
        uint64_t row = nn_metrics_class_records(m, c);
        for (int j = 0; j < k; j++) {
            uint64_t v = m->confusion[(size_t)c * k + j];
            double share = row ? (double)v / (double)row : 0;
            uint32_t rgb = sp_color_ramp(share);
            int x = L + j * cell, y = T + c * cell;
            sp_draw_rect(&cv, x, y, cell - (cell > 4), cell - (cell > 4), rgb);
            snprintf(label, sizeof label, "%llu", (unsigned long long)v);
            int tw = sp_text_width(label, S);
            if (cell >= 12 && tw <= cell - 4)
                sp_draw_text(&cv, x + (cell - tw) / 2, y + (cell - sp_text_height(S)) / 2 + S, label, S,
                             share > 0.6 ? 0x000000 : 0xffffff);
        }
        if (cell >= 12) {
            const char *name = spr_class_name(d->set, c);
            snprintf(label, sizeof label, "%d %.20s", c, name ? name : "");
            sp_draw_text(&cv, 8, T + c * cell + (cell - sp_text_height(S)) / 2 + S, label, S, 0x000000);
            snprintf(label, sizeof label, "%d", c);
            sp_draw_text(&cv, L + c * cell + (cell - sp_text_width(label, S)) / 2, T - sp_text_height(S) - 4, label,
                         S, 0x000000);
        }
    }
    int rc = sp_canvas_write_png(&cv, path, err);
    sp_canvas_free(&cv);
    return rc;
}

/* --logits: each batch's logits appended to the file as little-endian
 * float32, (records, classes) in the split's manifest order. */
typedef struct logits_file {
    sp_atomic_file file; /* written under a temporary name, renamed into place once complete */
    const char *path;
    int classes;
} logits_file;

static int write_logits(void *ctx, const float *logits, const int32_t *labels, int B, sp_err *err)
{
    logits_file *lf = ctx;
    (void)labels;
    size_t n = (size_t)B * (size_t)lf->classes;
    if (sp_write_all(lf->file.fd, logits, n * sizeof(float)))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", lf->path, strerror(errno));
    return 0;
}

/* Evaluates o->ckpt on the split and prints the figures; 0, or -1 with err. */
static int run(const options *o, sp_err *err)
{
    const char *dir = o->dir, *ckpt = o->ckpt, *split = o->split >= 0 ? split_names[o->split] : NULL;
    uint32_t batch = (uint32_t)o->batch;
    nn_set_threads(o->threads);
    nn_net *net = NULL;
    nn_opt opt;
    nn_rng rng;
    int epoch;
    nn_data d = {0};
    nn_metrics r = {0};
    float *x = NULL;
    int32_t *labels = NULL;
    int rc = -1;
    logits_file lf = {.file = {.fd = -1}};
    if (sp_cli_input_exists(dir, err))
        goto out;
    /* outputs that cannot be written fail now, not after the evaluation */
    if ((o->json && strcmp(o->json, "-") && sp_atomic_check(o->json, err)) ||
        (o->logits && sp_atomic_check(o->logits, err)) || (o->heatmap && sp_atomic_check(o->heatmap, err)))
        goto out;
    if (!o->no_verify && sp_verify_or_fail(dir, err))
        goto out;
    if (nn_checkpoint_load(ckpt, (int)batch, &net, &opt, &epoch, &rng, NULL, err))
        goto out;
    if (!split && !(split = nn_data_eval_split(dir, err))) {
        if (!err->code)
            sp_fail(err, SP_EXIT_DATA, "%s: neither a test nor a val split (name one with --split)", dir);
        goto out;
    }
    if (nn_data_open_view(&d, dir, split, batch, (uint32_t)net->h, err)) /* encoded sets: the model's input size */
        goto out;
    if (net->c != (int)d.c || net->h != (int)d.h || net->w != (int)d.w || net->classes != d.classes) {
        sp_fail(err, SP_EXIT_DATA, "%s: a %s for %dx%dx%d inputs and %d classes; the %s split holds %ux%ux%u and %d",
                ckpt, net->model, net->h, net->w, net->c, net->classes, split, d.h, d.w, d.c, d.classes);
        goto out;
    }
    if (nn_metrics_init(&r, net->classes, 1, err))
        goto out;
    x = malloc((size_t)batch * d.c * d.h * d.w * sizeof *x);
    labels = malloc((size_t)batch * sizeof *labels);
    if (!x || !labels) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        goto out;
    }
    if (o->logits && sp_atomic_open(&lf.file, o->logits, err))
        goto out;
    lf.path = o->logits, lf.classes = net->classes;
    if (nn_evaluate_each(net, &d, dir, x, labels, &r, 0, o->logits ? write_logits : NULL, &lf, err) ||
        (o->logits && sp_atomic_commit(&lf.file, err)))
        goto out;
    sp_info("%s: %s, epoch %d, on the %s split of %s", ckpt, net->model, epoch, split, dir);
    json_t *j = to_json(&r, &d, split, ckpt, net->model);
    const char *json = o->json;
    if (json && strcmp(json, "-") && sp_write_json_text(json, j, err)) {
        json_decref(j);
        goto out;
    }
    char title[160];
    snprintf(title, sizeof title, "%.60s on %s: accuracy %.4f", net->model, split, nn_metrics_accuracy(&r));
    if (o->heatmap && draw_heatmap(o->heatmap, &r, &d, title, err)) {
        json_decref(j);
        goto out;
    }
    if (json && !strcmp(json, "-")) {
        char *text = sp_json_text(j, 2);
        if (text)
            puts(text);
        free(text);
    } else {
        print_text(&r, &d, split, net->model, stdout);
    }
    json_decref(j);
    rc = fflush(stdout) ? sp_fail(err, SP_EXIT_SYSTEM, "stdout: write failed: %s", strerror(errno)) : 0;
out:
    sp_atomic_abort(&lf.file); /* a temporary left by a failed pass */
    free(x), free(labels);
    nn_metrics_free(&r);
    nn_net_free(net);
    nn_data_close(&d);
    return rc;
}

int main(int argc, char **argv)
{
    options o = {.split = -1, .batch = 256, .threads = 1};
    const sp_opt table[] = {
        {"checkpoint", 'c', SP_OPT_STRING, &o.ckpt, .arg = "CKPT",
         .help = "the checkpoint to evaluate"},
        {"split", 's', SP_OPT_CHOICE, &o.split, .choices = split_names, .arg = "NAME",
         .help = "test (default; val when there is no test split),\nval or train"},
        {"json", 0, SP_OPT_STRING, &o.json, .arg = "FILE", .flags = SP_OPT_NO_RECIPE,
         .help = "also write the figures as JSON (- for stdout,\ninstead of the text)"},
        {"heatmap", 0, SP_OPT_STRING, &o.heatmap, .arg = "FILE.png", .flags = SP_OPT_NO_RECIPE,
         .help = "also draw the confusion matrix as a PNG heat map (each\nrow coloured by its share of the true class)"},
        {"logits", 0, SP_OPT_STRING, &o.logits, .arg = "FILE", .flags = SP_OPT_NO_RECIPE,
         .help = "also write every record's logits: float32\n"
                 "(records, classes), little-endian, in the split's\n"
                 "manifest order"},
        {"batch", 'b', SP_OPT_INT, &o.batch, .min = 1, .max = NN_MAX_BATCH, .arg = "N", .flags = SP_OPT_NO_RECIPE,
         .help = "records per forward pass (default 256)"},
        {"threads", 'j', SP_OPT_INT, &o.threads, .min = 1, .max = 256, .arg = "N", .flags = SP_OPT_NO_RECIPE,
         .help = "threads sharing out each batch (default 1)"},
        {"no-verify", 0, SP_OPT_FLAG, &o.no_verify, .flags = SP_OPT_NO_RECIPE,
         .help = "skip checking the shards against their manifest"},
        {0},
    };
    const sp_cli_tool cli = {"sp-eval", "SHARDS --checkpoint CKPT [OPTION]...", about, table, notes};
    int status = sp_cli_parse_one(&cli, argc, argv, "shard directory", &o.dir);
    if (status >= 0)
        return status;
    if (!o.ckpt)
        return sp_cli_usage_error("no checkpoint (--checkpoint CKPT)");
    sp_err err = {0};
    return sp_cli_exit(run(&o, &err) ? &err : NULL);
}
