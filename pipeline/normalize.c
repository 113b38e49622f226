/* The normalize stage's arithmetic: per-channel statistics, and uint8 to normalized float32 or float16. */
#include "pipeline/normalize.h"

#include <math.h>
#include <string.h>

const double sp_imagenet_mean[3] = {0.485, 0.456, 0.406};
const double sp_imagenet_std[3] = {0.229, 0.224, 0.225};

void sp_stats_add(sp_channel_stats *s, const uint8_t *px, size_t n, int c)
{
    if (!s->channels)
        s->channels = c;
    uint64_t sum[SP_NORM_MAX_CHANNELS] = {0}, sq[SP_NORM_MAX_CHANNELS] = {0};
    /* 64-bit partial sums cannot overflow within one image (n * 65025 < 2^64) */
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < c; k++) {
            unsigned v = px[i * (size_t)c + (size_t)k];
            sum[k] += v;
            sq[k] += v * v;
        }
    for (int k = 0; k < c; k++) {
        s->sum[k] += sum[k];
        s->sumsq[k] += sq[k];
    }
    s->count += n;
}

json_t *sp_stats_json(const sp_channel_stats *s)
{
    json_t *mean = json_array(), *std = json_array();
    for (int k = 0; k < s->channels; k++) {
        /* var = (N*sumsq - sum^2) / N^2, in exact integers until the division */
        unsigned __int128 n = s->count, num = n * s->sumsq[k] - (unsigned __int128)s->sum[k] * s->sum[k];
        double m = s->count ? (double)s->sum[k] / (double)s->count : 0.0;
        double var = s->count ? (double)num / ((double)s->count * (double)s->count) : 0.0;
        json_array_append_new(mean, json_real(m / 255.0));
        json_array_append_new(std, json_real(sqrt(var) / 255.0));
    }
    return json_pack("{s:I, s:o, s:o}", "count", (json_int_t)s->count, "mean", mean, "std", std);
}

/* out[k][x] = ((x / 255 - mean[k]) / std[k]), computed in double, rounded to float */
static void table(int c, const double *mean, const double *std, float lut[][256])
{
    for (int k = 0; k < c; k++)
        for (int x = 0; x < 256; x++)
            lut[k][x] = (float)(((double)x / 255.0 - mean[k]) / std[k]);
}

void sp_normalize_f32(const uint8_t *px, size_t n, int c, const double *mean, const double *std, float *out)
{
    float lut[SP_NORM_MAX_CHANNELS][256];
    table(c, mean, std, lut);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < c; k++)
            out[i * (size_t)c + (size_t)k] = lut[k][px[i * (size_t)c + (size_t)k]];
}

uint16_t sp_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xFF, man = x & 0x7FFFFF;
    if (exp == 0xFF) /* inf, nan */
        return (uint16_t)(sign | 0x7C00 | (man ? 0x200 : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7C00);
    if (e <= 0) { /* subnormal or zero */
        if (e < -10)
            return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++; /* may carry into the exponent: still correct, up to inf */
    return (uint16_t)half;
}

void sp_normalize_f16(const uint8_t *px, size_t n, int c, const double *mean, const double *std, uint16_t *out)
{
    float lut[SP_NORM_MAX_CHANNELS][256];
    uint16_t half[SP_NORM_MAX_CHANNELS][256];
    table(c, mean, std, lut);
    for (int k = 0; k < c; k++)
        for (int x = 0; x < 256; x++)
            half[k][x] = sp_float_to_half(lut[k][x]);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < c; k++)
            out[i * (size_t)c + (size_t)k] = half[k][px[i * (size_t)c + (size_t)k]];
}
