#include "nn/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int nn_data_open(nn_data *d, const char *dir, const char *split, uint32_t batch, sp_err *err)
{
    memset(d, 0, sizeof *d);
    char msg[512];
    snprintf(d->split, sizeof d->split, "%s", split);
    d->set = spr_open(dir, split, msg, sizeof msg);
    if (!d->set)
        return sp_fail(err, SP_EXIT_DATA, "%s", msg);
    spr_shape(d->set, &d->h, &d->w, &d->c);
    d->dtype = spr_dtype(d->set);
    d->classes = spr_num_classes(d->set);
    d->count = spr_count(d->set);
    d->batch = batch;
    if (d->c > 4) {
        nn_data_close(d);
        return sp_fail(err, SP_EXIT_DATA, "%s: %s: %u channels; the trainer takes 1 to 4", dir, split, d->c);
    }
    double mean[4], std[4];
    int applied = 0, n = spr_normalization(d->set, mean, std, &applied);
    d->normalized = n == (int)d->c;
    for (uint32_t c = 0; c < d->c; c++) {
        double m = d->normalized ? mean[c] : 0.0, s = d->normalized ? std[c] : 1.0;
        if (d->dtype != SPR_UINT8 || s <= 0) /* floats: normalized already, or raw values kept */
            m = 0, s = 1;
        double unit = d->dtype == SPR_UINT8 ? 1.0 / 255.0 : 1.0;
        d->scale[c] = (float)(unit / s);
        d->shift[c] = (float)(-m / s);
    }
    d->raw = malloc((size_t)batch * spr_record_bytes(d->set));
    d->labels = malloc((size_t)batch * sizeof *d->labels);
    if (!d->raw || !d->labels) {
        nn_data_close(d);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    return 0;
}

int nn_data_start(nn_data *d, uint64_t seed, int shuffle, sp_err *err)
{
    spr_iter_free(d->it);
    d->it = spr_iter_new(d->set, d->batch, seed, (shuffle ? SPR_SHUFFLE : 0) | SPR_PREFETCH, 0);
    if (!d->it)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s", spr_error(d->set));
    return 0;
}

static float half_to_float(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024), e - 25);
    return h & 0x8000 ? -v : v;
}

int nn_data_next(nn_data *d, float *x, int32_t *labels, sp_err *err)
{
    uint32_t n = 0;
    if (spr_iter_next(d->it, d->raw, d->labels, &n) < 0)
        return sp_fail(err, SP_EXIT_DATA, "%s", spr_error(d->set));
    size_t hw = (size_t)d->h * d->w;
    for (uint32_t b = 0; b < n; b++) { /* (H, W, C) records -> (C, H, W) */
        float *out = x + (size_t)b * d->c * hw;
        size_t base = (size_t)b * hw * d->c;
        for (uint32_t c = 0; c < d->c; c++) {
            float sc = d->scale[c], sh = d->shift[c];
            float *plane = out + c * hw;
            if (d->dtype == SPR_UINT8) {
                const uint8_t *p = (const uint8_t *)d->raw + base + c;
                for (size_t i = 0; i < hw; i++)
                    plane[i] = (float)p[i * d->c] * sc + sh;
            } else if (d->dtype == SPR_FLOAT32) {
                const float *p = (const float *)d->raw + base + c;
                for (size_t i = 0; i < hw; i++)
                    plane[i] = p[i * d->c] * sc + sh;
            } else {
                const uint16_t *p = (const uint16_t *)d->raw + base + c;
                for (size_t i = 0; i < hw; i++)
                    plane[i] = half_to_float(p[i * d->c]) * sc + sh;
            }
        }
        labels[b] = d->labels[b];
    }
    return (int)n;
}

void nn_data_close(nn_data *d)
{
    spr_iter_free(d->it);
    spr_close(d->set);
    free(d->raw);
    free(d->labels);
    memset(d, 0, sizeof *d);
}
