/* The optimizers: SGD with momentum and Adam, stepped over every parameter of a net as torch.optim does. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "nn/nn.h"

/* Part t of nt of a parameter's values for the threads of the optimizer
 * step, cut at multiples of 16 values (whole cache lines); no value's update
 * depends on another's, so their number changes no result. */
static void param_slice(const nn_param *p, int t, int nt, size_t *lo, size_t *hi)
{
    *lo = p->n * (size_t)t / (size_t)nt & ~(size_t)15;
    *hi = t + 1 == nt ? p->n : p->n * (size_t)(t + 1) / (size_t)nt & ~(size_t)15;
}

/* Whether the parameters are many enough to share out over threads. */
static int params_shared(const nn_net *n) { return nn_get_threads() > 1 && nn_net_param_count(n) >= 16384; }

/* ---------------- optimizers ---------------- */

void nn_opt_init(nn_opt *o, int kind, float lr)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = lr;
    o->beta1 = 0.9f, o->beta2 = 0.999f, o->eps = 1e-8f;
}

/* The update loops, one pass over each parameter, built for the widest
 * vectors the CPU has (chosen at load time): memory-bound, they cost as much
 * as the mlp's matrix work when left scalar. */
#if defined(__x86_64__) && !defined(SP_NO_X86_SIMD)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

VECTOR_CLONES static void sgd_update(float *restrict w, const float *restrict g, float *restrict buf, size_t n,
                                     float lr, float momentum, float wd, int first)
{
    for (size_t j = 0; j < n; j++) {
        float d = g[j] + wd * w[j];
        float b = momentum != 0 && !first ? momentum * buf[j] + d : d; /* torch: the first step's buffer is d */
        buf[j] = b;
        w[j] -= lr * b;
    }
}

VECTOR_CLONES static void adam_update(float *restrict w, const float *restrict g, float *restrict m,
                                      float *restrict v, size_t n, float wd, float beta1, float beta2,
                                      float step_size, float inv_bc2_sqrt, float eps)
{
    for (size_t j = 0; j < n; j++) {
        float d = g[j] + wd * w[j];
        m[j] = beta1 * m[j] + (1 - beta1) * d;
        v[j] = beta2 * v[j] + (1 - beta2) * d * d;
        w[j] -= step_size * m[j] / (sqrtf(v[j]) * inv_bc2_sqrt + eps);
    }
}

void nn_opt_step(nn_opt *o, nn_net *n)
{
    o->step++;
    /* Adam as torch.optim.Adam computes it (not fused): bias corrections
     * applied to the step size and to sqrt(v). torch divides sqrt(v) by
     * sqrt(bc2); multiplying by its inverse rounds the denominator at most
     * one unit apart and saves one of the two divisions that bound the
     * update's speed (measured in docs/nn.md) */
    float bc1 = 1.0f - powf(o->beta1, (float)o->step), bc2 = 1.0f - powf(o->beta2, (float)o->step);
    float step_size = o->lr / bc1, inv_bc2_sqrt = (float)(1.0 / sqrt((double)bc2));
#pragma omp parallel num_threads(nn_get_threads()) if (params_shared(n))
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int i = 0; i < n->nparams; i++) {
            nn_param *p = n->params[i];
            if (p->frozen)
                continue;
            size_t lo, hi;
            param_slice(p, t, nt, &lo, &hi);
            if (hi <= lo)
                continue;
            int skip = (p->role == NN_ROLE_BN && (o->wd_skip & NN_WD_SKIP_BN)) ||
                       (p->role == NN_ROLE_BIAS && (o->wd_skip & NN_WD_SKIP_BIAS));
            float wd = skip ? 0.0f : o->weight_decay;
            if (o->kind == NN_SGD)
                sgd_update(p->w + lo, p->g + lo, p->m + lo, hi - lo, o->lr, o->momentum, wd, o->step == 1);
            else
                adam_update(p->w + lo, p->g + lo, p->m + lo, p->v + lo, hi - lo, wd, o->beta1, o->beta2, step_size,
                            inv_bc2_sqrt, o->eps);
        }
    }
}
