/* Image resampling as PIL 9 does it (Pillow's Resample.c), so results match
 * Image.resize bit for bit: separable, horizontal pass then vertical, both
 * on 8-bit data with 22-bit fixed-point coefficients, each pass rounded and
 * clipped to 8 bits. When shrinking, the filter's support widens with the
 * scale factor (antialiasing).
 *
 * Filters (support): box/area (0.5), bilinear (1), bicubic (2, a = -0.5),
 * lanczos3 (3).
 *
 * An output window can be asked for: the pixels [x0, x0+w) x [y0, y0+h) of
 * the full out_w x out_h result, computed without the rest, equal to
 * resizing fully and cropping (what torchvision's Resize + CenterCrop does).
 */
#ifndef SP_RESAMPLE_H
#define SP_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

enum sp_filter { SP_FILTER_BOX = 0, SP_FILTER_BILINEAR, SP_FILTER_BICUBIC, SP_FILTER_LANCZOS3, SP_FILTER_COUNT };
const char *sp_filter_name(int f);  /* "area", "bilinear", "bicubic", "lanczos3" */
int sp_filter_from_name(const char *s); /* -1 when unknown; "box" = "area" */

/* Reusable scratch (coefficients, intermediate rows); zero-initialise, then
 * sp_resampler_free. Not shared between threads. */
typedef struct sp_resampler {
    int *bounds_x, *bounds_y; /* xmin, count per output column / row */
    int32_t *k_x, *k_y;       /* fixed-point coefficients */
    int ksize_x, ksize_y;
    size_t cap_bx, cap_by, cap_kx, cap_ky;
    int16_t *k16_x;           /* k_x split in 16-bit halves for the vector path */
    int *plan_x;              /* per output column: first byte, tap pairs */
    int fast_w;               /* columns the vector path takes */
    int split;                /* k16_x, plan_x and fast_w are for the coefficients */
    size_t cap_k16, cap_plan;
    uint8_t *tmp;             /* the horizontal pass's output */
    size_t cap_tmp;
    int32_t *acc;             /* a row of vertical-pass sums */
    size_t cap_acc;
    int key[8];               /* the geometry the coefficients are for */
} sp_resampler;
void sp_resampler_free(sp_resampler *r);

/* Resamples in (in_w x in_h x c, HWC, c = 1..4) to the window (x0, y0, w, h)
 * of an out_w x out_h result, into out (w x h x c). Returns 0, or -1 when
 * out of memory or the window is outside the result. */
int sp_resample(sp_resampler *r, const uint8_t *in, int in_w, int in_h, int c, int out_w, int out_h, int x0,
                int y0, int w, int h, int filter, uint8_t *out);

/* sp_resample on rows in_stride bytes apart (>= in_w * c): a part of a
 * larger image, resampled as if cut out first. Same bytes as sp_resample. */
int sp_resample_rows(sp_resampler *r, const uint8_t *in, size_t in_stride, int in_w, int in_h, int c, int out_w,
                     int out_h, int x0, int y0, int w, int h, int filter, uint8_t *out);

/* The source pixels [box[0], box[2]) x [box[1], box[3]) that sp_resample
 * with these arguments reads: the union of the filter supports of the
 * window's outputs (all of a row or column with no pass in that direction
 * is the window's own span). The vector path may load a few bytes past a
 * span, multiplied by zero coefficients. */
void sp_resample_source_box(int in_w, int in_h, int out_w, int out_h, int x0, int y0, int w, int h, int filter,
                            int box[4]);

/* The instructions the passes use: 0 plain C, 1 SSE4.1, 2 AVX2; the best the
 * CPU has unless set lower (always 0 in a build without the x86 paths: not
 * x86-64, or SP_NO_X86_SIMD). Every level gives the same bytes (the tests
 * compare them). Returns the level now in effect, which is never above what
 * the CPU has; call it before any thread resamples. */
int sp_resample_set_level(int level);

#endif
