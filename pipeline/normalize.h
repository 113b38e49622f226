/* The normalize stage's arithmetic.
 *
 * Statistics: exact per-channel sums of x and x^2 over uint8 pixels in 64-bit
 * (and 128-bit) integers, per split and over everything; mean and standard
 * deviation (population, ddof 0) in units of x/255, as torchvision's
 * Normalize expects them.
 *
 * Applying: y = (x/255 - mean[c]) / std[c], computed in double and rounded
 * to float32, or from that float32 to float16 (IEEE half, nearest even). */
#ifndef SP_NORMALIZE_H
#define SP_NORMALIZE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SP_NORM_MAX_CHANNELS 4

typedef struct sp_channel_stats {
    int channels;
    uint64_t count; /* values per channel */
    uint64_t sum[SP_NORM_MAX_CHANNELS];
    unsigned __int128 sumsq[SP_NORM_MAX_CHANNELS];
} sp_channel_stats;

/* Adds n pixels of c channels (HWC). c must match earlier calls (or be the first). */
void sp_stats_add(sp_channel_stats *s, const uint8_t *px, size_t n, int c);
/* {"count": N, "mean": [...], "std": [...]} in x/255 units; a new reference. */
json_t *sp_stats_json(const sp_channel_stats *s);

/* The ImageNet preset: mean 0.485 0.456 0.406, std 0.229 0.224 0.225. */
extern const double sp_imagenet_mean[3], sp_imagenet_std[3];

/* Normalizes n pixels of c channels to float32 (out holds n*c floats). */
void sp_normalize_f32(const uint8_t *px, size_t n, int c, const double *mean, const double *std, float *out);
/* The same to IEEE half floats (bits in out). */
void sp_normalize_f16(const uint8_t *px, size_t n, int c, const double *mean, const double *std, uint16_t *out);
/* IEEE binary16 bits of f, rounded to nearest even. */
uint16_t sp_float_to_half(float f);

#endif
