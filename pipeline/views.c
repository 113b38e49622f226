/* The load-time train and eval views: torchvision's RandomResizedCrop draws, partial scaled JPEG decode, resize. */
#include "pipeline/views.h"

#include <jerror.h>
#include <jpeglib.h>
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/resize.h"

/* formats/image.h's options with the scratch's pixel limit. */
static void image_opts(const sp_view_scratch *s, sp_image_opts *o)
{
    sp_image_opts_default(o);
    if (s->max_pixels)
        o->max_pixels = s->max_pixels;
}

void sp_view_scratch_free(sp_view_scratch *s)
{
    if (!s)
        return;
    sp_image_free(&s->img);
    free(s->rows);
    free(s->crop);
    sp_resampler_free(&s->resampler);
    memset(s, 0, sizeof *s);
}

/* ---------------- the draws ---------------- */

/* splitmix64's output function: a bijective mix of 64 bits. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A splitmix64 stream whose start depends on all three of (seed, epoch, record). */
typedef struct view_rng {
    uint64_t s;
} view_rng;

static void rng_seed(view_rng *r, uint64_t seed, uint64_t epoch, uint64_t record)
{
    uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ull);
    h = mix64(h ^ (epoch + 0x632be59bd9b4e019ull));
    h = mix64(h ^ (record + 0x85157af5ull));
    r->s = h;
}

static uint64_t rng_next(view_rng *r)
{
    r->s += 0x9e3779b97f4a7c15ull;
    return mix64(r->s);
}

/* Uniform in [0, 1), 53 bits. */
static double rng_unit(view_rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform integer in [0, n), n >= 1 (the bias, n / 2^53, is nil for image sides). */
static int rng_below(view_rng *r, int n)
{
    int v = (int)(rng_unit(r) * (double)n);
    return v < n ? v : n - 1;
}

/* Python's int(round(x)) for x >= 0: half to even (rint in the default rounding mode). */
static int round_half_even(double x) { return (int)nearbyint(x); }

sp_view_range sp_view_range_default(void) { return (sp_view_range){0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0}; }

void sp_view_train_box(uint32_t src_w, uint32_t src_h, uint64_t seed, uint64_t epoch, uint64_t record,
                       const sp_view_range *range, sp_view_box *box)
{
    sp_view_range g = range && range->scale_max > 0 ? *range : sp_view_range_default();
    const double scale_lo = g.scale_min, scale_hi = g.scale_max, ratio_lo = g.ratio_min, ratio_hi = g.ratio_max;
    const double log_lo = log(ratio_lo), log_hi = log(ratio_hi);
    int width = (int)src_w, height = (int)src_h;
    double area = (double)width * (double)height;
    view_rng r;
    rng_seed(&r, seed, epoch, record);
    memset(box, 0, sizeof *box);
    int found = 0;
    for (int attempt = 0; attempt < 10 && !found; attempt++) {
        double target_area = area * (scale_lo + (scale_hi - scale_lo) * rng_unit(&r));
        double aspect = exp(log_lo + (log_hi - log_lo) * rng_unit(&r));
        int w = round_half_even(sqrt(target_area * aspect));
        int h = round_half_even(sqrt(target_area / aspect));
        if (w > 0 && w <= width && h > 0 && h <= height) {
            box->h = h, box->w = w;
            box->y = rng_below(&r, height - h + 1);
            box->x = rng_below(&r, width - w + 1);
            found = 1;
        }
    }
    if (!found) { /* the centre crop, its ratio clamped to the range */
        double in_ratio = (double)width / (double)height;
        if (in_ratio < ratio_lo)
            box->w = width, box->h = round_half_even(width / ratio_lo);
        else if (in_ratio > ratio_hi)
            box->h = height, box->w = round_half_even(height * ratio_hi);
        else
            box->w = width, box->h = height;
        box->y = (height - box->h) / 2;
        box->x = (width - box->w) / 2;
        box->fallback = 1;
    }
    box->flip = rng_unit(&r) < 0.5;
}

/* ---------------- the crop, resized ---------------- */

static int grow(uint8_t **p, size_t *cap, size_t need, sp_err *err)
{
    void *q = *p;
    int rc = sp_grow(&q, cap, need);
    *p = q;
    return rc ? sp_fail(err, SP_EXIT_SYSTEM, "out of memory for %zu bytes of view scratch", need) : 0;
}

/* Resizes the cw x ch crop at in (rows stride bytes apart) to out (size x size x 3), mirrored when flip. */
static int resize_crop(sp_view_scratch *s, const uint8_t *in, size_t stride, int cw, int ch, uint32_t size, int flip,
                       uint8_t *out, sp_err *err)
{
    int n = (int)size;
    if (sp_resample_rows(&s->resampler, in, stride, cw, ch, 3, n, n, 0, 0, n, n, SP_FILTER_BILINEAR, out))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory resizing a %dx%d crop", cw, ch);
    if (flip) {
        for (int y = 0; y < n; y++) {
            uint8_t *row = out + (size_t)y * (size_t)n * 3;
            for (int a = 0, b = n - 1; a < b; a++, b--) {
                uint8_t t0 = row[3 * a], t1 = row[3 * a + 1], t2 = row[3 * a + 2];
                row[3 * a] = row[3 * b], row[3 * a + 1] = row[3 * b + 1], row[3 * a + 2] = row[3 * b + 2];
                row[3 * b] = t0, row[3 * b + 1] = t1, row[3 * b + 2] = t2;
            }
        }
    }
    return 0;
}

/* Prefixes err's message with the reject reason's name. Returns -1. */
static int reject(sp_err *err, int reason)
{
    if (err && err->code != SP_EXIT_SYSTEM)
        sp_fail_context(err, "%s", sp_reject_name(reason));
    return -1;
}

/* Train view through a whole decode (PNG, CMYK JPEG). */
static int train_whole(const uint8_t *bytes, size_t n, uint32_t size, uint64_t seed, uint64_t epoch,
                       uint64_t record, uint8_t *out, sp_view_box *box, sp_view_scratch *s, sp_err *err)
{
    sp_image_opts o;
    image_opts(s, &o);
    int reason = sp_image_decode(bytes, n, &o, &s->img, err);
    if (reason)
        return reject(err, reason);
    sp_view_train_box(s->img.w, s->img.h, seed, epoch, record, &s->range, box);
    size_t stride = (size_t)s->img.w * 3;
    const uint8_t *in = s->img.pixels + (size_t)box->y * stride + (size_t)box->x * 3;
    return resize_crop(s, in, stride, box->w, box->h, size, box->flip, out, err);
}

/* libjpeg's errors and warnings: a warning is damaged data (stop), but for
 * extraneous bytes before a marker, skipped without loss (formats/image.c's rule). */
typedef struct view_jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int truncated;
    char msg[JMSG_LENGTH_MAX];
} view_jerr;

static void view_error_exit(j_common_ptr c)
{
    view_jerr *e = (view_jerr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

static void view_emit(j_common_ptr c, int level)
{
    view_jerr *e = (view_jerr *)c->err;
    if (level >= 0 || c->err->msg_code == JWRN_EXTRANEOUS_DATA)
        return;
    e->truncated = c->err->msg_code == JWRN_JPEG_EOF;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

/* Round-half-up of a / d for a >= 0: a source coordinate on the 1/d image. */
static int scaled(int a, int d) { return (2 * a + d) / (2 * d); }

/* The decode of one JPEG's crop, after its header: the crop's cw x ch pixels
 * at *crop, rows *stride bytes apart (inside s->crop); or *whole set when
 * the file needs formats/image.c's whole decode (CMYK, YCCK). */
static int train_jpeg(struct jpeg_decompress_struct *ci, uint32_t size, uint64_t seed, uint64_t epoch,
                      uint64_t record, unsigned flags, sp_view_box *box, const uint8_t **crop, size_t *stride_out,
                      int *cw_out, int *ch_out, int *whole, sp_view_scratch *s, sp_err *err)
{
    jpeg_read_header(ci, TRUE);
    uint64_t W = ci->image_width, H = ci->image_height;
    sp_image_opts lim;
    image_opts(s, &lim);
    if (W == 0 || H == 0)
        return sp_fail(err, SP_EXIT_DATA, "corrupt: image of %llux%llu pixels", (unsigned long long)W,
                       (unsigned long long)H);
    if (W * H > lim.max_pixels)
        return sp_fail(err, SP_EXIT_DATA, "too-large: %llux%llu is %.1f megapixels, over the limit of %.1f",
                       (unsigned long long)W, (unsigned long long)H, (double)(W * H) / 1e6,
                       (double)lim.max_pixels / 1e6);
    if (ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK) {
        *whole = 1;
        return 0;
    }
    sp_view_train_box((uint32_t)W, (uint32_t)H, seed, epoch, record, &s->range, box);
    int d = 1;
    if (!(flags & SP_VIEW_FULL_SCALE))
        for (int k = 8; k >= 2; k /= 2)
            if ((uint32_t)box->w >= size * (uint32_t)k && (uint32_t)box->h >= size * (uint32_t)k) {
                d = k;
                break;
            }
    ci->scale_num = 1;
    ci->scale_denom = (unsigned)d;
    ci->out_color_space = JCS_RGB; /* grayscale expands to three equal channels */
    jpeg_start_decompress(ci);
    int ow = (int)ci->output_width, oh = (int)ci->output_height;
    /* the box on the 1/d image */
    int x0 = scaled(box->x, d), y0 = scaled(box->y, d);
    int x1 = scaled(box->x + box->w, d), y1 = scaled(box->y + box->h, d);
    x1 = x1 > ow ? ow : x1, y1 = y1 > oh ? oh : y1;
    x1 = x1 <= x0 ? x0 + 1 : x1, y1 = y1 <= y0 ? y0 + 1 : y1;
    if (x1 > ow || y1 > oh)
        return sp_fail(err, SP_EXIT_DATA, "corrupt: a %dx%d image decodes to %dx%d", (int)W, (int)H, ow, oh);
    int cw = x1 - x0, ch = y1 - y0;
    /* the columns and rows decoded: the box, and a margin for the chroma
     * upsampling's context when the chroma is subsampled */
    int m = ci->max_h_samp_factor == 1 && ci->max_v_samp_factor == 1 ? 0 : SP_IMAGE_REGION_MARGIN;
    int dx0 = x0 - m < 0 ? 0 : x0 - m, dx1 = x1 + m > ow ? ow : x1 + m;
    int dy0 = y0 - m < 0 ? 0 : y0 - m;
    JDIMENSION xoff = 0, xw = (JDIMENSION)ow;
    if (dx0 > 0 || dx1 < ow) {
        xoff = (JDIMENSION)dx0, xw = (JDIMENSION)(dx1 - dx0);
        jpeg_crop_scanline(ci, &xoff, &xw); /* widened to whole iMCUs */
    }
    /* the crop's rows decoded in place, rows stride bytes apart; the margin
     * rows above it, and the last row when checking all, into s->rows */
    size_t stride = (size_t)ci->output_width * 3;
    if (grow(&s->rows, &s->cap_rows, stride, err) || grow(&s->crop, &s->cap_crop, stride * (size_t)ch, err))
        return -1;
    if (dy0 > 0)
        jpeg_skip_scanlines(ci, (JDIMENSION)dy0);
    while ((int)ci->output_scanline < y0) {
        JSAMPROW row[1] = {s->rows};
        jpeg_read_scanlines(ci, row, 1);
    }
    while ((int)ci->output_scanline < y1) {
        enum { BATCH = 16 }; /* several rows a call: fewer calls, the same pixels */
        JSAMPROW rows[BATCH];
        int first = (int)ci->output_scanline, k = y1 - first;
        k = k > BATCH ? BATCH : k;
        for (int i = 0; i < k; i++)
            rows[i] = s->crop + (size_t)(first - y0 + i) * stride;
        jpeg_read_scanlines(ci, rows, (JDIMENSION)k);
    }
    if (flags & SP_VIEW_CHECK_ALL) {
        /* the rest entropy-decoded, so damage there is found; a skip to the
         * very end stops without reading, so the last row is read */
        JDIMENSION rest = ci->output_height - ci->output_scanline;
        if (rest > 1)
            jpeg_skip_scanlines(ci, rest - 1);
        if (rest > 0) {
            JSAMPROW last[1] = {s->rows};
            jpeg_read_scanlines(ci, last, 1);
        }
        jpeg_finish_decompress(ci);
    } else {
        jpeg_abort_decompress(ci);
    }
    *crop = s->crop + (size_t)(x0 - (int)xoff) * 3;
    *stride_out = stride;
    *cw_out = cw, *ch_out = ch;
    return 0;
}

/* The JPEG part of the train view: train_jpeg's crop, or *whole set for a
 * file that needs the whole decode; libjpeg's errors and warnings caught. */
static int train_jpeg_guarded(const uint8_t *bytes, size_t n, uint32_t size, uint64_t seed, uint64_t epoch,
                              uint64_t record, unsigned flags, sp_view_box *box, const uint8_t **crop, size_t *stride,
                              int *cw, int *ch, int *whole, sp_view_scratch *s, sp_err *err)
{
    struct jpeg_decompress_struct ci;
    view_jerr e;
    memset(&e, 0, sizeof e);
    ci.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = view_error_exit;
    e.pub.emit_message = view_emit;
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&ci);
        return sp_fail(err, SP_EXIT_DATA, "%s: JPEG: %s",
                       sp_reject_name(e.truncated ? SP_REJECT_TRUNCATED : SP_REJECT_CORRUPT), e.msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, bytes, (unsigned long)n);
    int rc = train_jpeg(&ci, size, seed, epoch, record, flags, box, crop, stride, cw, ch, whole, s, err);
    jpeg_destroy_decompress(&ci);
    return rc;
}

int sp_view_train_ex(const uint8_t *bytes, size_t n, uint32_t size, uint64_t seed, uint64_t epoch, uint64_t record,
                     unsigned flags, uint8_t *out, sp_view_box *box, sp_view_scratch *s, sp_err *err)
{
    sp_view_box own;
    sp_view_box *b = box ? box : &own;
    if (size == 0 || size > SP_VIEW_MAX_SIZE)
        return sp_fail(err, SP_EXIT_SYSTEM, "view size %u is not in 1..%d", size, SP_VIEW_MAX_SIZE);
    if (sp_image_sniff(bytes, n) != SP_IMAGE_JPEG)
        return train_whole(bytes, n, size, seed, epoch, record, out, b, s, err);
    const uint8_t *crop = NULL;
    size_t stride = 0;
    int cw = 0, ch = 0, whole = 0;
    if (train_jpeg_guarded(bytes, n, size, seed, epoch, record, flags, b, &crop, &stride, &cw, &ch, &whole, s, err))
        return -1;
    if (whole)
        return train_whole(bytes, n, size, seed, epoch, record, out, b, s, err);
    return resize_crop(s, crop, stride, cw, ch, size, b->flip, out, err);
}

int sp_view_train(const uint8_t *bytes, size_t n, uint32_t size, uint64_t seed, uint64_t epoch, uint64_t record,
                  uint8_t *out, sp_view_scratch *scratch, sp_err *err)
{
    return sp_view_train_ex(bytes, n, size, seed, epoch, record, 0, out, NULL, scratch, err);
}

/* ---------------- eval ---------------- */

static void eval_region(void *ctx, uint32_t w, uint32_t h, int box[4])
{
    sp_resize_source_box(ctx, (int)w, (int)h, box);
}

int sp_view_eval(const uint8_t *bytes, size_t n, uint32_t size, uint8_t *out, sp_view_scratch *s, sp_err *err)
{
    if (size == 0 || size > SP_VIEW_MAX_SIZE)
        return sp_fail(err, SP_EXIT_SYSTEM, "view size %u is not in 1..%d", size, SP_VIEW_MAX_SIZE);
    sp_resize_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.w = ro.h = (int)size;
    ro.mode = SP_RESIZE_CROP;
    ro.filter = SP_FILTER_BILINEAR;
    ro.resize_to = (int)(size * 8 / 7); /* floor(size / 0.875) */
    sp_image_opts o;
    image_opts(s, &o);
    o.region = eval_region;
    o.region_ctx = &ro;
    int reason = sp_image_decode(bytes, n, &o, &s->img, err);
    if (reason)
        return reject(err, reason);
    if (sp_resize_pixels(&s->resampler, &ro, s->img.pixels, (int)s->img.w, (int)s->img.h, 3, out))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory resizing a %ux%u image", s->img.w, s->img.h);
    return 0;
}
