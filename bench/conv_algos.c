/* The two convolution algorithms of nn/ (NN_CONV_GROUPED, NN_CONV_PER_SAMPLE)
 * timed on the conv layer shapes of the models, forward and backward, one
 * thread and two: the measurements behind the by-shape choice
 * (NN_CONV_PER_SAMPLE_PIXELS in nn/nn.h).
 *
 * usage: conv_algos   (prints a table on stdout) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nn/nn.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Milliseconds per forward + backward of a batch of B, best of reps. */
static double time_conv(int algo, int threads, const nn_spec *spec, int B, int c, int h, int w)
{
    nn_set_threads(threads);
    nn_set_conv_algo(algo);
    nn_rng rng;
    nn_rng_seed(&rng, 1);
    sp_err err = {0};
    nn_net *n = nn_net_build("conv", spec, 1, c, h, w, 2, B, &rng, &err);
    if (!n) {
        fprintf(stderr, "conv_algos: %s\n", err.msg);
        exit(1);
    }
    n->layers[0].need_dx = 1;
    size_t in = (size_t)B * c * h * w, out = (size_t)B * nn_layer_out_size(&n->layers[0]);
    float *x = malloc(in * sizeof *x), *dy = malloc(out * sizeof *dy);
    for (size_t i = 0; i < in; i++)
        x[i] = nn_rng_normal(&rng);
    for (size_t i = 0; i < out; i++)
        dy[i] = nn_rng_normal(&rng);
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t = now();
        if (!nn_forward(n, x, B, 1, &rng, &err) || nn_backward(n, dy, B, &err)) {
            fprintf(stderr, "conv_algos: %s\n", err.msg);
            exit(1);
        }
        t = now() - t;
        best = t < best ? t : best;
    }
    free(x), free(dy);
    nn_net_free(n);
    return best * 1e3;
}

int main(void)
{
    static const struct {
        const char *where;
        int c, h, w, out, k, stride, pad, batch;
    } shapes[] = {
        {"cnn conv1", 3, 32, 32, 32, 3, 1, 1, 64},           {"cnn conv2", 32, 16, 16, 64, 3, 1, 1, 64},
        {"cnn conv3", 64, 8, 8, 128, 3, 1, 1, 64},           {"resnet20 stage 1", 16, 32, 32, 16, 3, 1, 1, 64},
        {"resnet20 stage 2", 32, 16, 16, 32, 3, 1, 1, 64},   {"resnet20 stage 3", 64, 8, 8, 64, 3, 1, 1, 64},
        {"resnet stem 7x7/2", 3, 224, 224, 64, 7, 2, 3, 16}, {"resnet 56x56 3x3", 64, 56, 56, 64, 3, 1, 1, 16},
        {"resnet50 56x56 1x1", 64, 56, 56, 256, 1, 1, 0, 16}, {"resnet 28x28 3x3", 128, 28, 28, 128, 3, 1, 1, 16},
        {"resnet50 28x28 1x1", 512, 28, 28, 128, 1, 1, 0, 16}, {"resnet 14x14 3x3", 256, 14, 14, 256, 3, 1, 1, 16},
        {"resnet50 14x14 1x1", 1024, 14, 14, 256, 1, 1, 0, 16}, {"resnet 7x7 3x3", 512, 7, 7, 512, 3, 1, 1, 16},
    };
    printf("%-22s %8s %6s  %21s  %21s\n", "conv (input, filters)", "out px", "batch", "1 thread: grouped/per",
           "2 threads: grouped/per");
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        nn_spec spec = {.kind = NN_CONV, .out = shapes[i].out, .k = shapes[i].k, .stride = shapes[i].stride,
                        .pad = shapes[i].pad, .nobias = 1};
        int oh = (shapes[i].h + 2 * shapes[i].pad - shapes[i].k) / shapes[i].stride + 1;
        double t[4];
        for (int j = 0; j < 4; j++)
            t[j] = time_conv(j % 2 ? NN_CONV_PER_SAMPLE : NN_CONV_GROUPED, j < 2 ? 1 : 2, &spec, shapes[i].batch,
                             shapes[i].c, shapes[i].h, shapes[i].w);
        printf("%-22s %8d %6d  %8.2f %8.2f ms %s  %8.2f %8.2f ms %s\n", shapes[i].where, oh * oh, shapes[i].batch,
               t[0], t[1], t[1] < t[0] ? "P" : "G", t[2], t[3], t[3] < t[2] ? "P" : "G");
    }
    return 0;
}
