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

double nn_metrics_precision(const nn_metrics *m, int c)
{
    uint64_t predicted = 0;
    for (int j = 0; j < m->classes; j++)
        predicted += m->confusion[(size_t)j * m->classes + c];
    return ratio(m->confusion[(size_t)c * m->classes + c], predicted);
}

double nn_metrics_recall(const nn_metrics *m, int c)
{
    return ratio(m->confusion[(size_t)c * m->classes + c], nn_metrics_class_records(m, c));
}

int nn_evaluate(nn_net *net, nn_data *d, const char *dir, float *x, int32_t *labels, nn_metrics *m, sp_err *err)
{
    if (nn_data_start(d, 0, 0, NN_AUG_NONE, err))
        return -1;
    int n;
    while ((n = nn_data_next(d, x, labels, err)) > 0) {
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= m->classes)
                return sp_fail(err, SP_EXIT_DATA, "%s: %s: a record has label %d, outside 0..%d", dir, d->split,
                               labels[i], m->classes - 1);
        nn_metrics_add(m, nn_forward(net, x, n, 0, NULL), labels, n);
    }
    return n < 0 ? -1 : 0;
}
