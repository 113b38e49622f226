/* The relu layer, and the gradient through a relu that the layers with one fused (conv, oneDNN's conv, blocks) share. */
#include "nn/layer_kinds.h"

/* clang reports an `omp simd` loop it leaves scalar (as it does under the
 * sanitizers of `make fuzz`) as a warning; the loops are elementwise, so the
 * results are the same either way. */
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

/* (local restrict pointers: through l's fields the loops would not vectorise) */
void nn_relu_forward(nn_layer *l, const float *restrict x, int B)
{
    size_t n = (size_t)B * nn_layer_in_size(l);
    float *restrict y = l->y;
#pragma omp parallel for simd schedule(static) num_threads(l->threads)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : 0;
}

void nn_relu_gradient(const float *v, const float *dy, float *out, size_t n, int threads)
{
#pragma omp parallel for simd schedule(static) num_threads(threads)
    for (size_t i = 0; i < n; i++) {
        float g = dy[i]; /* loaded either way, so the select vectorises */
        out[i] = v[i] > 0 ? g : 0.0f;
    }
}

void nn_relu_backward(nn_layer *l, const float *dy, int B)
{
    nn_relu_gradient(l->x, dy, l->dx, (size_t)B * nn_layer_in_size(l), l->threads);
}
