/* Load-time views of an encoded image (JPEG or PNG bytes) as uint8 HWC size x size x 3:
 * torchvision's train view (RandomResizedCrop + horizontal flip) and eval view
 * (Resize(size / 0.875) + CenterCrop(size)).
 *
 * Train: the crop box (i, j, h, w) is drawn as torchvision's
 * RandomResizedCrop.get_params, scale (0.08, 1), ratio (3/4, 4/3): up to 10
 * attempts of an area fraction uniform in the scale range and a log-uniform
 * aspect ratio, sides rounded half to even; the first that fits is placed
 * uniformly; else the centre crop of the whole image with its ratio clamped
 * to the range. A flip follows with probability 1/2. The draws come from a
 * PRNG seeded by (seed, epoch, record) alone, so one (seed, epoch, record)
 * always gives the same view, on any thread and in any order.
 * A JPEG is decoded at the largest libjpeg DCT scale-down (1/2, 1/4, 1/8)
 * that keeps both sides of the crop at least size, and only the crop's rows
 * and columns (and, with subsampled chroma, an 8-pixel margin) are
 * decoded (jpeg_crop_scanline, jpeg_skip_scanlines); the box is carried to
 * the scaled image rounded to whole pixels. The crop is resized to size x size with PIL's antialiased
 * bilinear filter (formats/resample.h), as torchvision's default on PIL.
 * With no scale-down (SP_VIEW_FULL_SCALE, or a crop under 2 x size) the
 * result equals torchvision's on a PIL image of the same bytes with the same
 * box and flip, bit for bit; a scaled decode differs by libjpeg's reduced
 * IDCT and the box's rounding (the tests measure it).
 * Unless SP_VIEW_CHECK_ALL, decoding stops after the crop's last row: data
 * damage below it is not seen (shards are checksummed, and their images were
 * decoded whole when written); damage in what is read is an error.
 * CMYK/YCCK JPEGs and PNGs are decoded whole (formats/image.h) and cropped.
 *
 * Eval: the shorter side to floor(size / 0.875) (256 for 224), the other
 * side truncated as torchvision's Resize, then the centre size x size
 * (pipeline/resize.h's crop plan), antialiased bilinear on a full-scale
 * decode of the rows and columns the filter reads: equal to torchvision
 * Resize(256) + CenterCrop(224) on PIL, bit for bit.
 *
 * Grayscale becomes 3 equal channels, as PIL's convert("RGB"); alpha is
 * dropped (formats/image.h). Both views are reentrant: no globals; every
 * buffer lives in the caller's scratch, one per thread.
 */
#ifndef SP_VIEWS_H
#define SP_VIEWS_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"
#include "formats/image.h"
#include "formats/resample.h"

/* Reusable buffers of one thread's views, and its pixel limit; zero-initialise
 * (then set max_pixels if wanted), and end with sp_view_scratch_free, which
 * leaves it zeroed (max_pixels too). Grown as needed, never shared between
 * threads. */
/* RandomResizedCrop's ranges: the crop's share of the source's area in
 * [scale_min, scale_max], its aspect ratio (w/h) in [ratio_min, ratio_max];
 * all 0 stands for sp_view_range_default(), torchvision's (0.08, 1) and
 * (3/4, 4/3). The caller checks 0 < min <= max (scale_max <= 1). */
typedef struct sp_view_range {
    double scale_min, scale_max, ratio_min, ratio_max;
} sp_view_range;
sp_view_range sp_view_range_default(void);

typedef struct sp_view_scratch {
    uint64_t max_pixels;   /* the source's width x height limit; 0: formats/image.h's default, 100 million */
    sp_view_range range;   /* the train view's crop ranges (all 0: the defaults) */
    sp_image img;          /* a whole decode (eval, PNG, CMYK) */
    uint8_t *rows;         /* one decoded row dropped: the margin above a crop, the last row when checking all */
    size_t cap_rows;
    uint8_t *crop;         /* the crop's rows as decoded (as wide as libjpeg's iMCU-aligned span), HWC */
    size_t cap_crop;
    sp_resampler resampler;
} sp_view_scratch;
void sp_view_scratch_free(sp_view_scratch *s);

/* A drawn train view in the source image's pixels: rows [y, y + h), columns
 * [x, x + w) (torchvision's i = y, j = x), flipped or not, and whether the
 * draw fell back to the centre crop after 10 attempts. */
typedef struct sp_view_box {
    int x, y, w, h;
    int flip;
    int fallback;
} sp_view_box;

/* The train view's draws for an src_w x src_h image (both > 0), within
 * range (NULL, or all 0: the defaults). */
void sp_view_train_box(uint32_t src_w, uint32_t src_h, uint64_t seed, uint64_t epoch, uint64_t record,
                       const sp_view_range *range, sp_view_box *box);

enum {
    SP_VIEW_FULL_SCALE = 1, /* no DCT scale-down: torchvision's pixels exactly */
    SP_VIEW_CHECK_ALL = 2,  /* entropy-decode the whole JPEG, so damage anywhere is an error */
};

/* Limits: size in 1..4096; the source at most scratch->max_pixels. */
#define SP_VIEW_MAX_SIZE 4096

/* The train view of bytes[0..n) into out (size * size * 3 bytes, HWC).
 * Returns 0, or -1 with err saying why: a message that starts with the
 * reason ("truncated: ", "corrupt: ", "too-large: ", "not-an-image: ", "unsupported: ") and
 * code SP_EXIT_DATA, or SP_EXIT_SYSTEM when out of memory. out is then
 * unspecified. box, when not NULL, receives the draws (in source pixels).
 * flags: SP_VIEW_* or 0. */
int sp_view_train(const uint8_t *bytes, size_t n, uint32_t size, uint64_t seed, uint64_t epoch, uint64_t record,
                  uint8_t *out, sp_view_scratch *scratch, sp_err *err);
int sp_view_train_ex(const uint8_t *bytes, size_t n, uint32_t size, uint64_t seed, uint64_t epoch, uint64_t record,
                     unsigned flags, uint8_t *out, sp_view_box *box, sp_view_scratch *scratch, sp_err *err);

/* The eval view of bytes[0..n) into out (size * size * 3 bytes, HWC); errors
 * as sp_view_train's (the whole file is always decoded, so damage anywhere
 * is found). */
int sp_view_eval(const uint8_t *bytes, size_t n, uint32_t size, uint8_t *out, sp_view_scratch *scratch, sp_err *err);

#endif
