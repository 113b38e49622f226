/* sp-eval: evaluate a trained checkpoint on a split of a shard set. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sp_atomic.h"
#include "common/sp_cli.h"
#include "common/sp_draw.h"
#include "shards/manifest.h"
#include "nn/class_names.h"
#include "pipeline/datasets.h"
#include "nn/data.h"
#include "nn/metrics.h"
#include "nn/nn.h"
#include "shards/shard.h"
#include "shards/verify.h"


static const char about[] =
    "Evaluate the model in CKPT (written by sp-train) on a split of the shard set\n"
    "SHARDS and print on stdout: accuracy, top-5 accuracy where there are more\n"
    "than 5 classes, per-class precision, recall and F1, their macro and weighted\n"
    "averages, and the confusion matrix (rows: true class, columns: predicted).\n"
    "With --predict, also write each record's most likely classes, by name,\n"
    "labelled or not: a new image set converted with sp-decode --unlabeled.\n";

static const char notes[] =
    "A class's prediction is the first of its record's highest logits; a record\n"
    "counts for top-5 when fewer than 5 other classes score at least its label's\n"
    "logit (ties count against). Averages are scikit-learn's: macro over the\n"
    "classes alike, weighted by each class's records; a class never predicted has\n"
    "precision 0. The per-class figures, the matrix and the averages cover the\n"
    "classes present in the labels or the predictions, as scikit-learn's labels =\n"
    "unique(y_true | y_pred) (an evaluation on a subset of 1000 classes shows its\n"
    "own); --all-classes covers every class of the model. Each shard is checked\n"
    "as it is first opened and each record as it is read (--verify full:\n"
    "sp-verify's checks of the whole set first). Shards that fail a check, a\n"
    "corrupt checkpoint, or one made for other shapes or classes are bad input\n"
    "(status 1): a checkpoint names its classes, and they must be the set's, in\n"
    "the same order (one from before the names were kept is held to the class\n"
    "count only).\n"
    "--predict writes a JSON line per record in the split's manifest order:\n"
    "  {\"key\": ..., \"label\": CLASS or null, \"top\": [[CLASS, P], ...]}\n"
    "the --top classes by their softmax probability P, highest first (ties: the\n"
    "lower class first), named as the checkpoint names them (else as the set\n"
    "does, else by number). Records without a label are predicted, not scored;\n"
    "the figures cover the labelled ones (none: no figures). Without --split it\n"
    "takes test, else val, else train. With --predict -, stdout holds the\n"
    "predictions only (the figures go to --json FILE if asked).\n";

/* What the command line sets. */
typedef struct options {
    const char *dir, *ckpt, *json; /* json: NULL, a file, or "-" for stdout */
    const char *heatmap;           /* --heatmap FILE.png, or NULL */
    const char *logits;            /* NULL, or a file for every record's logits */
    const char *predict;           /* NULL, a file for every record's top classes, or "-" for stdout */
    int top;                       /* --predict: classes a line (0: 5, or the class count when fewer) */
    int split;                     /* index into split_names; -1: test, or val when there is no test split */
    int batch, threads, no_verify, verify;
    int all_classes;               /* --all-classes: every class of the model, not only those present */
} options;

static const char *const split_names[] = {"test", "val", "train", NULL};
static const char *const verify_modes[] = {"open", "full", NULL};

/* The classes a report shows and averages over: those present in the
 * labels or the predictions (nn_metrics_present, scikit-learn's default), or
 * all of the model's with --all-classes. */
typedef struct class_view {
    int all;   /* --all-classes */
    int n;     /* classes shown */
    int *c;    /* n class numbers, ascending (owned) */
    int total; /* the model's classes */
} class_view;

static int class_view_init(class_view *v, const nn_metrics *m, int all, sp_err *err)
{
    v->all = all, v->n = 0, v->total = m->classes;
    if (!(v->c = malloc((size_t)m->classes * sizeof *v->c)))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    for (int c = 0; c < m->classes; c++)
        if (all || nn_metrics_present(m, c))
            v->c[v->n++] = c;
    return 0;
}

/* What the macro average is over, in words: "the 3 classes present in the
 * labels or the predictions (of 1000)", or "all 1000 classes". */
static const char *averaged_over(const class_view *v, char *buf, size_t n)
{
    if (v->all)
        snprintf(buf, n, "all %d classes (--all-classes)", v->total);
    else
        snprintf(buf, n, "the %d class%s present in the labels or the predictions (of %d; --all-classes: all)",
                 v->n, v->n == 1 ? "" : "es", v->total);
    return buf;
}

static json_t *to_json(const nn_metrics *m, const class_view *v, nn_data *d, const char *split, const char *ckpt,
                       const char *model)
{
    int k = m->classes;
    json_t *per = json_array(), *conf = json_array(), *shown = json_array();
    for (int i = 0; i < v->n; i++) {
        int c = v->c[i];
        json_t *row = json_array();
        for (int j = 0; j < v->n; j++)
            json_array_append_new(row, json_integer((json_int_t)m->confusion[(size_t)c * k + v->c[j]]));
        json_array_append_new(shown, json_integer(c));
        const char *name = spr_class_name(d->set, c);
        json_array_append_new(per, json_pack("{s:i, s:s, s:I, s:f, s:f, s:f}", "class", c, "name", name ? name : "",
                                             "records", (json_int_t)nn_metrics_class_records(m, c), "precision",
                                             nn_metrics_precision(m, c), "recall", nn_metrics_recall(m, c), "f1",
                                             nn_metrics_f1(m, c)));
        json_array_append_new(conf, row);
    }
    char over[160];
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:f, s:o, s:o, s:o, s:i, s:s}", "checkpoint", ckpt, "model", model,
                          "split", split, "records", (json_int_t)m->n, "accuracy", nn_metrics_accuracy(m), "per_class",
                          per, "confusion", conf, "confusion_classes", shown, "model_classes", k, "averaged_over",
                          averaged_over(v, over, sizeof over));
    if (k >= NN_TOP5_MIN_CLASSES)
        json_object_set_new(j, "top5_accuracy", json_real(nn_metrics_top5(m)));
    nn_metrics_avg macro, weighted;
    int n = nn_metrics_averages(m, v->all, &macro, &weighted);
    json_object_set_new(j, "macro_avg", json_pack("{s:f, s:f, s:f, s:i}", "precision", macro.precision, "recall",
                                                  macro.recall, "f1", macro.f1, "classes", n));
    json_object_set_new(j, "weighted_avg", json_pack("{s:f, s:f, s:f}", "precision", weighted.precision, "recall",
                                                     weighted.recall, "f1", weighted.f1));
    return j;
}

static void print_text(const nn_metrics *m, const class_view *v, nn_data *d, const char *split, const char *model,
                       FILE *f)
{
    int k = m->classes;
    fprintf(f, "model %s on %s: %llu records\naccuracy %.4f\n", model, split, (unsigned long long)m->n,
            nn_metrics_accuracy(m));
    if (k >= NN_TOP5_MIN_CLASSES)
        fprintf(f, "top-5 accuracy %.4f\n", nn_metrics_top5(m));
    fprintf(f, "\n%5s  %-24s %8s %9s %7s %7s\n", "class", "name", "records", "precision", "recall", "f1");
    for (int i = 0; i < v->n; i++) {
        int c = v->c[i];
        const char *name = spr_class_name(d->set, c);
        fprintf(f, "%5d  %-24.24s %8llu %9.4f %7.4f %7.4f\n", c, name ? name : "",
                (unsigned long long)nn_metrics_class_records(m, c), nn_metrics_precision(m, c),
                nn_metrics_recall(m, c), nn_metrics_f1(m, c));
    }
    nn_metrics_avg macro, weighted;
    nn_metrics_averages(m, v->all, &macro, &weighted);
    fprintf(f, "%5s  %-24s %8llu %9.4f %7.4f %7.4f\n", "", "macro avg", (unsigned long long)m->n, macro.precision,
            macro.recall, macro.f1);
    fprintf(f, "%5s  %-24s %8llu %9.4f %7.4f %7.4f\n", "", "weighted avg", (unsigned long long)m->n,
            weighted.precision, weighted.recall, weighted.f1);
    char over[160];
    fprintf(f, "(shown and averaged: %s)\n", averaged_over(v, over, sizeof over));
    fprintf(f, "\nconfusion (rows: true class, columns: predicted)\n");
    /* every column as wide as the widest count or class number in the matrix */
    uint64_t most = v->n ? (uint64_t)v->c[v->n - 1] : 0;
    for (int i = 0; i < v->n; i++)
        for (int j = 0; j < v->n; j++)
            most = m->confusion[(size_t)v->c[i] * k + v->c[j]] > most ? m->confusion[(size_t)v->c[i] * k + v->c[j]]
                                                                       : most;
    int wd = snprintf(NULL, 0, "%llu", (unsigned long long)most);
    fprintf(f, "%5s  %-16s", "", "");
    for (int j = 0; j < v->n; j++)
        fprintf(f, " %*d", wd, v->c[j]);
    fputc('\n', f);
    for (int i = 0; i < v->n; i++) {
        int c = v->c[i];
        const char *name = spr_class_name(d->set, c);
        fprintf(f, "%5d  %-16.16s", c, name ? name : "");
        for (int j = 0; j < v->n; j++)
            fprintf(f, " %*llu", wd, (unsigned long long)m->confusion[(size_t)c * k + v->c[j]]);
        fputc('\n', f);
    }
}

/* The confusion matrix as a PNG heat map: a cell per (true, predicted)
 * pair, coloured by the share of the true class's records it holds (the
 * row normalised: the diagonal is each class's recall), its count written
 * in it when it fits; rows labelled "N name", columns N; a colour bar on
 * the right gives the scale (0 to 1 of the row). The picture is wide
 * enough for its title whatever the class count. */
static int draw_heatmap(const char *path, const nn_metrics *m, const class_view *v, nn_data *d, const char *title,
                        sp_err *err)
{
    int k = v->n, S = k <= 40 ? 2 : 1;
    int cell = k <= 12 ? 56 : k <= 40 ? 28 : k <= 200 ? 12 : 4;
    int name_w = 0;
    char label[96];
    for (int i = 0; i < k && cell >= 12; i++) {
        const char *name = spr_class_name(d->set, v->c[i]);
        snprintf(label, sizeof label, "%d %.20s", v->c[i], name ? name : "");
        int w = sp_text_width(label, S);
        name_w = w > name_w ? w : name_w;
    }
    int L = name_w + 16, T = 3 * sp_text_height(2) + (cell >= 12 ? sp_text_height(S) + 8 : 0) + 8;
    /* the colour bar: a ramp from 1 (top) to 0 beside the matrix, at least 100 pixels tall */
    int bar_h = k * cell > 100 ? k * cell : 100, bar_x = L + k * cell + 24, bar_w = 16;
    const char *sub = "rows: true class, columns: predicted";
    int W = bar_x + bar_w + 8 + sp_text_width("share of the row", 1) + 8, H = T + bar_h + 16;
    int title_w = 16 + (sp_text_width(title, 2) > sp_text_width(sub, 2) ? sp_text_width(title, 2) : sp_text_width(sub, 2));
    if (W < title_w)
        W = title_w;
    sp_canvas cv;
    if (sp_canvas_init(&cv, W, H, 0xffffff, err))
        return -1;
    sp_draw_text(&cv, 8, 6, title, 2, 0x000000);
    sp_draw_text(&cv, 8, 6 + sp_text_height(2), sub, 2, 0x000000);
    for (int y = 0; y < bar_h; y++)
        sp_draw_rect(&cv, bar_x, T + y, bar_w, 1, sp_color_ramp(1.0 - (double)y / (bar_h - 1)));
    sp_draw_text(&cv, bar_x + bar_w + 6, T, "1", 1, 0x000000);
    sp_draw_text(&cv, bar_x + bar_w + 6, T + bar_h - sp_text_height(1), "0", 1, 0x000000);
    sp_draw_text(&cv, bar_x + bar_w + 6, T + bar_h / 2 - sp_text_height(1) / 2, "share of the row", 1, 0x000000);
    for (int i = 0; i < k; i++) {
        int c = v->c[i];
        uint64_t row = nn_metrics_class_records(m, c);
        for (int j = 0; j < k; j++) {
            uint64_t count = m->confusion[(size_t)c * m->classes + v->c[j]];
            double share = row ? (double)count / (double)row : 0;
            uint32_t rgb = sp_color_ramp(share);
            int x = L + j * cell, y = T + i * cell;
            sp_draw_rect(&cv, x, y, cell - (cell > 4), cell - (cell > 4), rgb);
            snprintf(label, sizeof label, "%llu", (unsigned long long)count);
            int tw = sp_text_width(label, S);
            if (cell >= 12 && tw <= cell - 4)
                sp_draw_text(&cv, x + (cell - tw) / 2, y + (cell - sp_text_height(S)) / 2 + S, label, S,
                             share > 0.6 ? 0x000000 : 0xffffff);
        }
        if (cell >= 12) {
            const char *name = spr_class_name(d->set, c);
            snprintf(label, sizeof label, "%d %.20s", c, name ? name : "");
            sp_draw_text(&cv, 8, T + i * cell + (cell - sp_text_height(S)) / 2 + S, label, S, 0x000000);
            snprintf(label, sizeof label, "%d", c);
            sp_draw_text(&cv, L + i * cell + (cell - sp_text_width(label, S)) / 2, T - sp_text_height(S) - 4, label,
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

/* --predict: each batch's records as JSON lines, keyed from the split's
 * shards (opened one by one in manifest order, as the reader reads them). */
typedef struct predictor {
    int to_stdout;            /* 1: stdout, else f */
    sp_atomic_file f;         /* a file: written under a temporary name, renamed once complete */
    const char *path;
    json_t *manifest, *names; /* names: the class names lines use (borrowed) */
    const char *dir, *split;
    size_t next_entry;        /* the manifest's next shard entry to look at */
    sp_shard *shard;          /* the open shard, and its next record */
    uint64_t at;
    int classes, top;
    double *p;                /* classes probabilities */
    int *order;               /* classes indices */
} predictor;

/* The key of the next record of the split, or NULL with err. */
static const char *next_key(predictor *pr, sp_err *err)
{
    while (!pr->shard || pr->at >= sp_shard_count(pr->shard)) {
        sp_shard_close(pr->shard);
        pr->shard = NULL;
        json_t *shards = json_object_get(pr->manifest, "shards"), *e = NULL;
        while (pr->next_entry < json_array_size(shards)) {
            e = json_array_get(shards, pr->next_entry++);
            if (!strcmp(json_string_value(json_object_get(e, "split")), pr->split))
                break;
            e = NULL;
        }
        if (!e) {
            sp_fail(err, SP_EXIT_DATA, "%s: the %s split has more records than its shards' keys", pr->dir, pr->split);
            return NULL;
        }
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", pr->dir, json_string_value(json_object_get(e, "file")));
        if (!(pr->shard = sp_shard_open(path, err)))
            return NULL;
        pr->at = 0;
    }
    return sp_shard_key(pr->shard, pr->at++);
}

static const double *pred_sort_p;
static int by_probability(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    double x = pred_sort_p[i], y = pred_sort_p[j];
    return x > y ? -1 : x < y ? 1 : (i > j) - (i < j);
}

static int write_predictions(predictor *pr, const float *logits, const int32_t *labels, int B, sp_err *err)
{
    int k = pr->classes;
    for (int b = 0; b < B; b++) {
        const char *key = next_key(pr, err);
        if (!key)
            return -1;
        const float *z = logits + (size_t)b * k;
        double mx = z[0], sum = 0;
        for (int i = 1; i < k; i++)
            mx = z[i] > mx ? z[i] : mx;
        for (int i = 0; i < k; i++) {
            pr->p[i] = exp((double)z[i] - mx);
            sum += pr->p[i];
            pr->order[i] = i;
        }
        for (int i = 0; i < k; i++)
            pr->p[i] /= sum;
        pred_sort_p = pr->p; /* one thread writes the predictions */
        qsort(pr->order, (size_t)k, sizeof *pr->order, by_probability);
        json_t *top = json_array();
        for (int i = 0; i < pr->top; i++)
            json_array_append_new(top, json_pack("[O, f]", json_array_get(pr->names, (size_t)pr->order[i]),
                                                 pr->p[pr->order[i]]));
        json_t *label = labels[b] >= 0 && labels[b] < k ? json_incref(json_array_get(pr->names, (size_t)labels[b]))
                                                        : json_null();
        json_t *line = json_pack("{s:s, s:o, s:o}", "key", key, "label", label, "top", top);
        char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7)) : NULL;
        json_decref(line);
        if (!text)
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        int bad = pr->to_stdout ? fprintf(stdout, "%s\n", text) < 0
                                : sp_write_all(pr->f.fd, text, strlen(text)) || sp_write_all(pr->f.fd, "\n", 1);
        free(text);
        if (bad)
            return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot write: %s", pr->path, strerror(errno));
    }
    return 0;
}

/* The names prediction lines give the classes: the checkpoint's, else the
 * set's when it has as many, else "0".."k-1". A new reference. */
static json_t *prediction_names(json_t *ckpt_names, const nn_data *d, int k)
{
    if (ckpt_names)
        return json_incref(ckpt_names);
    return d->classes == k ? nn_data_class_names(d) : sp_numbered_classes(k);
}

/* The pass of --predict: every record predicted; those with a label scored
 * in r, when the set's classes fit the checkpoint (fits); a labelled record
 * of a set that does not fit is the error why_not. */
typedef struct predict_pass {
    predictor *pr;
    logits_file *lf; /* or NULL */
    nn_metrics *r;
    int fits;
    const sp_err *why_not;
} predict_pass;

static int predict_batch(predict_pass *pp, const float *logits, const int32_t *labels, int B, sp_err *err)
{
    int k = pp->r->classes;
    for (int b = 0; b < B; b++) {
        if (labels[b] < 0)
            continue;
        if (!pp->fits) {
            *err = *pp->why_not;
            return -1;
        }
        if (labels[b] >= k)
            return sp_fail(err, SP_EXIT_DATA, "%s: %s: a record has label %d, outside 0..%d", pp->pr->dir,
                           pp->pr->split, labels[b], k - 1);
        nn_metrics_add(pp->r, logits + (size_t)b * k, labels + b, 1);
    }
    return write_predictions(pp->pr, logits, labels, B, err) ||
           (pp->lf && write_logits(pp->lf, logits, labels, B, err));
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
    predictor pr = {.f = {.fd = -1}, .dir = dir};
    json_t *ckpt_names = NULL;
    char *extra = NULL;
    sp_err misfit = {0};
    class_view view = {0};
    int fits = 1;
    if (sp_cli_input_exists(dir, err))
        goto out;
    /* outputs that cannot be written fail now, not after the evaluation */
    if ((o->json && strcmp(o->json, "-") && sp_atomic_check(o->json, err)) ||
        (o->logits && sp_atomic_check(o->logits, err)) || (o->heatmap && sp_atomic_check(o->heatmap, err)) ||
        (o->predict && strcmp(o->predict, "-") && sp_atomic_check(o->predict, err)))
        goto out;
    if (o->verify == 1 && !o->no_verify && sp_verify_or_fail(dir, err)) /* 1: full */
        goto out;
    if (nn_checkpoint_load(ckpt, (int)batch, &net, &opt, &epoch, &rng, &extra, err))
        goto out;
    ckpt_names = nn_extra_class_names(extra);
    if (!split && !(split = nn_data_eval_split(dir, err))) {
        if (!err->code && o->predict) /* a set of new images: all of it train */
            split = "train";
        else {
            if (!err->code)
                sp_fail(err, SP_EXIT_DATA, "%s: neither a test nor a val split (name one with --split)", dir);
            goto out;
        }
    }
    if (nn_data_open_view(&d, dir, split, batch, (uint32_t)net->h, err)) /* encoded sets: the model's input size */
        goto out;
    if (net->c != (int)d.c || net->h != (int)d.h || net->w != (int)d.w ||
        (net->classes != d.classes && !o->predict)) {
        sp_fail(err, SP_EXIT_DATA, "%s: a %s for %dx%dx%d inputs and %d classes; the %s split holds %ux%ux%u and %d",
                ckpt, net->model, net->h, net->w, net->c, net->classes, split, d.h, d.w, d.c, d.classes);
        goto out;
    }
    if (net->classes != d.classes) /* --predict: only a labelled record needs the set's classes */
        fits = !sp_fail(&misfit, SP_EXIT_DATA, "%s: a model of %d classes; %s names %d", ckpt, net->classes, dir,
                        d.classes);
    else if (nn_class_names_check(ckpt_names, &d, ckpt, dir, o->predict ? &misfit : err)) {
        if (!o->predict)
            goto out;
        fits = 0;
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
    if (o->predict) {
        pr.path = strcmp(o->predict, "-") ? o->predict : "stdout";
        pr.split = split, pr.classes = net->classes;
        pr.top = o->top && o->top < net->classes ? o->top : net->classes < 5 ? net->classes : 5;
        pr.names = prediction_names(ckpt_names, &d, net->classes);
        pr.p = malloc((size_t)net->classes * sizeof *pr.p);
        pr.order = malloc((size_t)net->classes * sizeof *pr.order);
        if (!pr.names || !pr.p || !pr.order) {
            sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
            goto out;
        }
        if (!(pr.manifest = sp_manifest_read(dir, err)))
            goto out;
        pr.to_stdout = !strcmp(o->predict, "-");
        if (!pr.to_stdout && sp_atomic_open(&pr.f, o->predict, err))
            goto out;
        predict_pass pp = {&pr, o->logits ? &lf : NULL, &r, fits, &misfit};
        int n = 0;
        if (nn_data_start(&d, 0, 0, NN_AUG_NONE, err))
            goto out;
        while ((n = nn_data_next(&d, x, labels, err)) > 0) {
            const float *logits = nn_forward(net, x, n, 0, NULL, err);
            if (!logits || predict_batch(&pp, logits, labels, n, err))
                goto out;
        }
        if (n < 0 || (o->logits && sp_atomic_commit(&lf.file, err)))
            goto out;
        if (!pr.to_stdout && sp_atomic_commit(&pr.f, err))
            goto out;
        sp_info("%s: %s, epoch %d, predicted the %llu records of the %s split of %s (%llu labelled)", ckpt, net->model,
                epoch, (unsigned long long)d.count, split, dir, (unsigned long long)r.n);
        if (r.n == 0 || (!strcmp(o->predict, "-") && !o->json && !o->heatmap)) {
            rc = fflush(stdout) ? sp_fail(err, SP_EXIT_SYSTEM, "stdout: write failed: %s", strerror(errno)) : 0;
            goto out;
        }
    } else if (nn_evaluate_each(net, &d, dir, x, labels, &r, 0, o->logits ? write_logits : NULL, &lf, err) ||
               (o->logits && sp_atomic_commit(&lf.file, err)))
        goto out;
    sp_info("%s: %s, epoch %d, on the %s split of %s", ckpt, net->model, epoch, split, dir);
    if (class_view_init(&view, &r, o->all_classes, err))
        goto out;
    json_t *j = to_json(&r, &view, &d, split, ckpt, net->model);
    const char *json = o->json;
    if (json && strcmp(json, "-") && sp_write_json_text(json, j, err)) {
        json_decref(j);
        goto out;
    }
    char title[160];
    snprintf(title, sizeof title, "%.60s on %s: accuracy %.4f", net->model, split, nn_metrics_accuracy(&r));
    if (o->heatmap && draw_heatmap(o->heatmap, &r, &view, &d, title, err)) {
        json_decref(j);
        goto out;
    }
    if (json && !strcmp(json, "-")) {
        char *text = sp_json_text(j, 2);
        if (text)
            puts(text);
        free(text);
    } else if (!o->predict || strcmp(o->predict, "-")) {
        print_text(&r, &view, &d, split, net->model, stdout);
    }
    json_decref(j);
    rc = fflush(stdout) ? sp_fail(err, SP_EXIT_SYSTEM, "stdout: write failed: %s", strerror(errno)) : 0;
out:
    sp_atomic_abort(&lf.file); /* a temporary left by a failed pass */
    sp_atomic_abort(&pr.f);
    sp_shard_close(pr.shard);
    json_decref(pr.manifest);
    json_decref(pr.names);
    free(pr.p), free(pr.order);
    json_decref(ckpt_names);
    free(extra);
    free(view.c);
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
        {"predict", 0, SP_OPT_STRING, &o.predict, .arg = "FILE.jsonl", .flags = SP_OPT_NO_RECIPE,
         .help = "also write each record's top classes with their\n"
                 "probabilities as a JSON line (- for stdout, instead\n"
                 "of the figures); unlabelled records too"},
        {"top", 0, SP_OPT_INT, &o.top, .min = 1, .max = 1000000, .arg = "K",
         .help = "--predict: classes a line (default 5, or the class\ncount when fewer)"},
        {"all-classes", 0, SP_OPT_FLAG, &o.all_classes, .flags = SP_OPT_NO_RECIPE,
         .help = "show and average over every class of the model, not\n"
                 "only those in the labels or the predictions"},
        {"batch", 'b', SP_OPT_INT, &o.batch, .min = 1, .max = NN_MAX_BATCH, .arg = "N", .flags = SP_OPT_NO_RECIPE,
         .help = "records per forward pass (default 256)"},
        {"threads", 'j', SP_OPT_INT, &o.threads, .min = 1, .max = 256, .arg = "N", .flags = SP_OPT_NO_RECIPE,
         .help = "threads sharing out each batch (default 1)"},
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
    const sp_cli_tool cli = {"sp-eval", "SHARDS --checkpoint CKPT [OPTION]...", about, table, notes};
    int status = sp_cli_parse_one(&cli, argc, argv, "shard directory", &o.dir);
    if (status >= 0)
        return status;
    if (!o.ckpt)
        return sp_cli_usage_error("no checkpoint (--checkpoint CKPT)");
    sp_err err = {0};
    return sp_cli_exit(run(&o, &err) ? &err : NULL);
}
