/* Evaluation of a net on a split: accuracy, top-5, per-class precision and recall, the confusion matrix, mean loss. */
#ifndef SP_NN_METRICS_H
#define SP_NN_METRICS_H

#include <stdint.h>

#include "nn/data.h"
#include "nn/nn.h"

/* Counts over the records tallied so far. */
typedef struct nn_metrics {
    int classes;
    uint64_t n;          /* records */
    uint64_t top1;       /* the argmax (first of equal maxima) is the label */
    uint64_t top5;       /* the label among the 5 highest, ties counted against (nn_topk_correct) */
    double loss_sum;     /* cross-entropy summed over the records */
    uint64_t *confusion; /* classes x classes, [true][predicted]; NULL when not asked for */
} nn_metrics;

/* Zeroes m for classes (2..NN_MAX_CLASSES); with_confusion: allocates the
 * matrix (classes^2 counters). 0, or -1 (out of memory, err set). */
int nn_metrics_init(nn_metrics *m, int classes, int with_confusion, sp_err *err);
void nn_metrics_free(nn_metrics *m); /* accepts a zeroed m */
/* Tallies a batch: logits (B, classes), labels (B) in 0..classes-1. */
void nn_metrics_add(nn_metrics *m, const float *logits, const int32_t *labels, int B);

double nn_metrics_accuracy(const nn_metrics *m);      /* top1 / n, 0 with no records */
double nn_metrics_top5(const nn_metrics *m);          /* top5 / n */
/* Top-5 accuracy is reported (sp-train, sp-eval) for more than 5 classes: at
 * 5 or fewer every record is in its top 5. */
#define NN_TOP5_MIN_CLASSES 6
/* Class c's records (true c), precision (right among predicted c) and
 * recall (right among true c); 0 where the count divided by is 0. Needs the
 * confusion matrix. */
uint64_t nn_metrics_class_records(const nn_metrics *m, int c);
double nn_metrics_precision(const nn_metrics *m, int c);
double nn_metrics_recall(const nn_metrics *m, int c);
/* Class c's F1: 2 P R / (P + R), 0 where P + R is 0. */
double nn_metrics_f1(const nn_metrics *m, int c);
/* Whether class c is a label of some record or the prediction of one: the
 * classes scikit-learn reports and averages over by default (labels =
 * unique(y_true) | unique(y_pred)). Needs the confusion matrix. */
int nn_metrics_present(const nn_metrics *m, int c);
/* Averages of precision, recall and F1 over the classes present
 * (nn_metrics_present), or over all of them with all_classes: macro (each
 * class alike) and weighted (each by its records; 0 with no records), as
 * scikit-learn's classification_report computes them (a class never
 * predicted has precision 0). Returns the number of classes averaged over
 * (0: every figure 0). Needs the confusion matrix. */
typedef struct nn_metrics_avg {
    double precision, recall, f1;
} nn_metrics_avg;
int nn_metrics_averages(const nn_metrics *m, int all_classes, nn_metrics_avg *macro, nn_metrics_avg *weighted);

/* One pass of net over d in manifest order on the stored images (no
 * augmentation), tallied into m (initialised for net->classes). x and
 * labels hold a batch of d (d->batch x C*H*W floats, d->batch labels). A
 * label outside 0..classes-1 fails with SP_EXIT_DATA naming dir and the
 * split. 0 or -1 with err set. */
int nn_evaluate(nn_net *net, nn_data *d, const char *dir, float *x, int32_t *labels, nn_metrics *m, sp_err *err);
/* The same over the first max_batches batches (0: all), handing each
 * batch's logits (B, classes) and labels to each (when not NULL) after
 * tallying them; each returns 0, or -1 with err set, which stops the pass. */
int nn_evaluate_each(nn_net *net, nn_data *d, const char *dir, float *x, int32_t *labels, nn_metrics *m,
                     long max_batches,
                     int (*each)(void *ctx, const float *logits, const int32_t *labels, int B, sp_err *err),
                     void *ctx, sp_err *err);

#endif
