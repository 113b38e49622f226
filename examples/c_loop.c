/* c_loop: a training loop in plain C over libshardpipe-reader. Softmax
 * regression (one dense layer, cross-entropy, SGD) on the train split of a
 * pixel shard set, a line per epoch with the mean training loss, then the
 * accuracy on the test split (or val).
 *
 *   cc -std=c11 -O2 c_loop.c $(pkg-config --cflags --libs shardpipe-reader) -lm -o c_loop
 *   ./c_loop ~/shards/fmnist [EPOCHS [LR]]
 *
 * Everything the model sees comes through the library: batches shuffled by
 * a seed per epoch on a reader thread (spr_iter_open), normalized to float32
 * NCHW with the shards' own statistics (spr_normalize_hw). Exit status 0, or
 * 1 with "c_loop: what: why" on stderr. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shardpipe/reader.h>

enum { BATCH = 64 };

/* The model: logits = W x + b, W is (K, D) row-major, b is (K). */
typedef struct {
    int k;       /* classes */
    size_t d;    /* inputs: H * W * C */
    float *w, *b;
} model;

static void die(const char *what, const char *why) {
    fprintf(stderr, "c_loop: %s: %s\n", what, why);
    exit(1);
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n, size);
    if (!p)
        die("calloc", "out of memory");
    return p;
}

/* logits (K) of one input x (D) into z, then softmax in place; returns the
 * cross-entropy of label y. */
static double forward(const model *m, const float *x, int y, float *z) {
    float top = -INFINITY;
    for (int j = 0; j < m->k; j++) {
        const float *row = m->w + (size_t)j * m->d;
        float s = m->b[j];
        for (size_t i = 0; i < m->d; i++)
            s += row[i] * x[i];
        z[j] = s;
        if (s > top)
            top = s;
    }
    double sum = 0;
    for (int j = 0; j < m->k; j++)
        sum += exp((double)(z[j] - top));
    for (int j = 0; j < m->k; j++)
        z[j] = (float)(exp((double)(z[j] - top)) / sum);
    return -log(fmax((double)z[y], 1e-30));
}

/* One SGD step on a batch: x is (n, D) float32, y (n); returns the batch's
 * mean loss. gw (K, D) and gb (K) are the caller's scratch. */
static double step(model *m, const float *x, const int32_t *y, uint32_t n, float lr, float *gw, float *gb,
                   float *z) {
    double loss = 0;
    memset(gw, 0, (size_t)m->k * m->d * sizeof *gw);
    memset(gb, 0, (size_t)m->k * sizeof *gb);
    for (uint32_t s = 0; s < n; s++) {
        const float *xs = x + (size_t)s * m->d;
        loss += forward(m, xs, y[s], z);
        for (int j = 0; j < m->k; j++) {
            float g = z[j] - (j == y[s]); /* d loss / d logit j */
            float *row = gw + (size_t)j * m->d;
            for (size_t i = 0; i < m->d; i++)
                row[i] += g * xs[i];
            gb[j] += g;
        }
    }
    float scale = lr / (float)n;
    for (size_t i = 0; i < (size_t)m->k * m->d; i++)
        m->w[i] -= scale * gw[i];
    for (int j = 0; j < m->k; j++)
        m->b[j] -= scale * gb[j];
    return loss / n;
}

/* Opens split of dir, or returns NULL when the set has no such split. */
static spr_set *open_split(const char *dir, const char *split) {
    char err[512];
    int code;
    spr_set *s = spr_open_ex(dir, split, err, sizeof err, &code);
    if (!s && code != SPR_ERR_DATA)
        die(dir, err);
    return s;
}

/* One pass over set in batches: trains (lr > 0; returns the mean loss) or
 * evaluates (lr == 0; returns the accuracy). */
static double pass(spr_set *set, model *m, uint64_t seed, float lr) {
    uint32_t h, w, c, n;
    spr_shape(set, &h, &w, &c);
    spr_iter_options o = {.batch = BATCH, .seed = seed, .flags = lr > 0 ? SPR_SHUFFLE : 0, .threads = 1};
    spr_iter *it = spr_iter_open(set, &o, sizeof o);
    if (!it)
        die("spr_iter_open", spr_error(set));
    unsigned char *pixels = xcalloc(BATCH, spr_iter_record_bytes(it));
    int32_t *labels = xcalloc(BATCH, sizeof *labels);
    float *x = xcalloc((size_t)BATCH * m->d, sizeof *x);
    float *gw = xcalloc((size_t)m->k * m->d, sizeof *gw), *gb = xcalloc((size_t)m->k, sizeof *gb);
    float *z = xcalloc((size_t)m->k, sizeof *z);
    double total = 0;
    uint64_t records = 0;
    int got;
    while ((got = spr_iter_next(it, pixels, labels, &n)) > 0) {
        if (spr_normalize_hw(set, pixels, n, h, w, x) < 0)
            die("spr_normalize_hw", spr_error(set));
        for (uint32_t s = 0; s < n; s++)
            if (labels[s] < 0 || labels[s] >= m->k)
                die("labels", "a record without a class (an unlabelled set?)");
        if (lr > 0) {
            total += step(m, x, labels, n, lr, gw, gb, z) * n;
        } else {
            for (uint32_t s = 0; s < n; s++) {
                forward(m, x + (size_t)s * m->d, labels[s], z);
                int best = 0;
                for (int j = 1; j < m->k; j++)
                    if (z[j] > z[best])
                        best = j;
                total += best == labels[s];
            }
        }
        records += n;
    }
    if (got < 0)
        die("spr_iter_next", spr_iter_error(it));
    spr_iter_free(it);
    free(pixels), free(labels), free(x), free(gw), free(gb), free(z);
    return records ? total / (double)records : 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: c_loop SHARDS [EPOCHS [LR]]\n");
        return 2;
    }
    int epochs = argc > 2 ? atoi(argv[2]) : 3;
    float lr = argc > 3 ? strtof(argv[3], NULL) : 0.1f;
    if (epochs < 1 || !(lr > 0))
        die("arguments", "EPOCHS must be at least 1 and LR above 0");
    spr_set *train = open_split(argv[1], "train");
    if (!train)
        die(argv[1], "no train split");
    if (spr_kind(train) != SPR_PIXELS || spr_dtype(train) != SPR_UINT8)
        die(argv[1], "this example reads uint8 pixel sets only");
    spr_set *test = open_split(argv[1], "test");
    if (!test)
        test = open_split(argv[1], "val");
    uint32_t h, w, c;
    spr_shape(train, &h, &w, &c);
    model m = {.k = spr_num_classes(train), .d = (size_t)h * w * c};
    m.w = xcalloc((size_t)m.k * m.d, sizeof *m.w);
    m.b = xcalloc((size_t)m.k, sizeof *m.b);
    printf("%llu train records of %ux%ux%u, %d classes\n", (unsigned long long)spr_count(train), h, w, c, m.k);
    for (int e = 0; e < epochs; e++)
        printf("epoch %d: loss %.4f\n", e + 1, pass(train, &m, (uint64_t)e, lr));
    if (test)
        printf("test accuracy %.4f\n", pass(test, &m, 0, 0));
    spr_close(test);
    spr_close(train);
    free(m.w), free(m.b);
    return 0;
}
