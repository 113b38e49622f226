/* Softmax cross-entropy (plain and label-smoothed) and top-k counting over a batch of logits. */
#include <math.h>

#include "nn/nn.h"

float nn_softmax_xent(const float *logits, const int32_t *labels, int B, int n, float *dlogits, int *correct)
{
    return nn_softmax_xent_smooth(logits, labels, B, n, 0.0f, dlogits, correct);
}

int nn_topk_correct(const float *logits, const int32_t *labels, int B, int n, int k)
{
    int right = 0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * n;
        int y = labels[b], higher = 0;
        for (int i = 0; i < n; i++)
            higher += i != y && z[i] >= z[y];
        right += higher < k;
    }
    return right;
}

float nn_softmax_xent_smooth(const float *logits, const int32_t *labels, int B, int n, float eps, float *dlogits,
                             int *correct)
{
    double loss = 0;
    int right = 0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * n;
        int best = 0;
        for (int i = 1; i < n; i++)
            if (z[i] > z[best])
                best = i;
        right += best == labels[b];
        /* softmax = exp(z - max) / sum; the exponentials wait in dlogits */
        float *d = dlogits ? dlogits + (size_t)b * n : NULL;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double e = exp((double)z[i] - z[best]);
            sum += e;
            if (d)
                d[i] = (float)e;
        }
        double logsum = log(sum) + z[best], mean_nll = 0;
        for (int i = 0; eps > 0 && i < n; i++)
            mean_nll += (logsum - z[i]) / n;
        loss += (1 - eps) * (logsum - z[labels[b]]) + eps * mean_nll;
        for (int i = 0; d && i < n; i++)
            d[i] = (float)(((double)d[i] / sum - (1 - eps) * (i == labels[b]) - eps / n) / B);
    }
    if (correct)
        *correct = right;
    return (float)(loss / B);
}
