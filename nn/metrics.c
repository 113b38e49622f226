/* Evaluation metrics of a net over a split (nn/metrics.h). */
#include <stdlib.h>
#include <string.h>

#include "nn/metrics.h"

int nn_metrics_init(nn_metrics *m, int classes, int with_confusion, sp_err *err)
{
    memset(m, 0, sizeof *m);
    m->classes = classes;
    if (with_confusion && !(m->confusion = calloc((size_t)classes * (size_t)classes, sizeof *m->confusion)))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory for a %dx%d confusion matrix", classes, classes);
    return 0;
}

void nn_metrics_free(nn_metrics *m)
{
    free(m->confusion);
    m->confusion = NULL;
}

void nn_metrics_add(nn_metrics *m, const float *logits, const int32_t *labels, int B)
{
    int k = m->classes;
    m->loss_sum += (double)nn_softmax_xent(logits, labels, B, k, NULL, NULL) * B;
    m->top5 += (uint64_t)nn_topk_correct(logits, labels, B, k, 5);
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * k;
        int best = 0;
        for (int i = 1; i < k; i++)
            if (z[i] > z[best])
                best = i;
        m->top1 += best == labels[b];
        if (m->confusion)
            m->confusion[(size_t)labels[b] * k + best]++;
    }
    m->n += (uint64_t)B;
}

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0.0; }

double nn_metrics_accuracy(const nn_metrics *m) { return ratio(m->top1, m->n); }
double nn_metrics_top5(const nn_metrics *m) { return ratio(m->top5, m->n); }

uint64_t nn_metrics_class_records(const nn_metrics *m, int c)
{
    uint64_t actual = 0;
    for (int j = 0; j < m->classes; j++)
        actual += m->confusion[(size_t)c * m->classes + j];
    return actual;
}

/* the records predicted c */
static uint64_t class_predicted(const nn_metrics *m, int c)
{
    uint64_t predicted = 0;
    for (int j = 0; j < m->classes; j++)
        predicted += m->confusion[(size_t)j * m->classes + c];
    return predicted;
}

int nn_metrics_present(const nn_metrics *m, int c)
{
    return nn_metrics_class_records(m, c) > 0 || class_predicted(m, c) > 0;
}

double nn_metrics_precision(const nn_metrics *m, int c)
{
    return ratio(m->confusion[(size_t)c * m->classes + c], class_predicted(m, c));
}

double nn_metrics_recall(const nn_metrics *m, int c)
{
    return ratio(m->confusion[(size_t)c * m->classes + c], nn_metrics_class_records(m, c));
}

double nn_metrics_f1(const nn_metrics *m, int c)
{
    double p = nn_metrics_precision(m, c), r = nn_metrics_recall(m, c);
    return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}

int nn_metrics_averages(const nn_metrics *m, int all_classes, nn_metrics_avg *macro, nn_metrics_avg *weighted)
{
    memset(macro, 0, sizeof *macro), memset(weighted, 0, sizeof *weighted);
    uint64_t total = 0;
    int over = 0;
    for (int c = 0; c < m->classes; c++) {
        if (!all_classes && !nn_metrics_present(m, c))
            continue; /* nothing to average: 0 in every figure, and weight 0 */
        double p = nn_metrics_precision(m, c), r = nn_metrics_recall(m, c), f = nn_metrics_f1(m, c);
        double n = (double)nn_metrics_class_records(m, c);
        macro->precision += p, macro->recall += r, macro->f1 += f;
        weighted->precision += n * p, weighted->recall += n * r, weighted->f1 += n * f;
        total += nn_metrics_class_records(m, c);
        over++;
    }
    if (over)
        macro->precision /= over, macro->recall /= over, macro->f1 /= over;
    if (total)
        weighted->precision /= (double)total, weighted->recall /= (double)total, weighted->f1 /= (double)total;
    return over;
}

int nn_evaluate(nn_net *net, nn_data *d, const char *dir, float *x, int32_t *labels, nn_metrics *m, sp_err *err)
{
    return nn_evaluate_each(net, d, dir, x, labels, m, 0, NULL, NULL, err);
}

int nn_evaluate_each(nn_net *net, nn_data *d, const char *dir, float *x, int32_t *labels, nn_metrics *m,
                     long max_batches,
                     int (*each)(void *ctx, const float *logits, const int32_t *labels, int B, sp_err *err),
                     void *ctx, sp_err *err)
{
    if (nn_data_start(d, 0, 0, NN_AUG_NONE, err))
        return -1;
    int n = 0;
    for (long k = 0; (max_batches <= 0 || k < max_batches) && (n = nn_data_next(d, x, labels, err)) > 0; k++) {
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= m->classes)
                return sp_fail(err, SP_EXIT_DATA, "%s: %s: a record has label %d, outside 0..%d", dir, d->split,
                               labels[i], m->classes - 1);
        const float *logits = nn_forward(net, x, n, 0, NULL, err);
        if (!logits)
            return sp_fail_context(err, "%s: evaluating %s", dir, d->split);
        nn_metrics_add(m, logits, labels, n);
        if (each && each(ctx, logits, labels, n, err))
            return -1;
    }
    return n < 0 ? -1 : 0;
}
