/* JPEG (libjpeg-turbo) and PNG (libpng) decoding to 8-bit pixels, with a pixel limit checked from the header. */
#include "formats/image.h"

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

const char *sp_reject_name(int reason)
{
    static const char *const names[SP_REJECT_COUNT] = {"none", "truncated", "corrupt", "too-large", "not-an-image",
                                                      "unlabeled", "unsupported"};
    return reason >= 0 && reason < SP_REJECT_COUNT ? names[reason] : "unknown";
}

void sp_image_opts_default(sp_image_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_pixels = SP_IMAGE_MAX_PIXELS;
}

void sp_image_free(sp_image *img)
{
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

int sp_image_sniff(const uint8_t *p, size_t n)
{
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return SP_IMAGE_JPEG;
    if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
        return SP_IMAGE_PNG;
    return SP_IMAGE_NONE;
}

const char *sp_image_other_format(const uint8_t *p, size_t n)
{
    if (n >= 14 && p[0] == 'B' && p[1] == 'M')
        return "BMP";
    if (n >= 8 && (!memcmp(p, "II*\0", 4) || !memcmp(p, "MM\0*", 4)))
        return "TIFF";
    if (n >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4))
        return "WebP";
    if (n >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6)))
        return "GIF";
    return NULL;
}

static int reserve(sp_image *img, uint32_t w, uint32_t h, sp_err *err)
{
    size_t need = (size_t)w * h * 3;
    if (need > img->cap) {
        uint8_t *p = realloc(img->pixels, need);
        if (!p)
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory for a %ux%u image", w, h);
        img->pixels = p;
        img->cap = need;
    }
    img->w = w, img->h = h;
    return 0;
}

static int too_large(uint64_t w, uint64_t h, const sp_image_opts *o, sp_err *err)
{
    if (w == 0 || h == 0) {
        sp_fail(err, SP_EXIT_DATA, "image of %llux%llu pixels", (unsigned long long)w, (unsigned long long)h);
        return SP_REJECT_CORRUPT;
    }
    if (w * h > o->max_pixels) {
        sp_fail(err, SP_EXIT_DATA, "%llux%llu is %.1f megapixels, over the limit of %.1f", (unsigned long long)w,
                (unsigned long long)h, (double)(w * h) / 1e6, (double)o->max_pixels / 1e6);
        return SP_REJECT_TOO_LARGE;
    }
    return 0;
}

/* (a*b)/255 rounded, exactly as PIL's MULDIV255. */
static inline uint8_t muldiv255(unsigned a, unsigned b)
{
    unsigned t = a * b + 128;
    return (uint8_t)((t + (t >> 8)) >> 8);
}

/* ---------------- JPEG ---------------- */

typedef struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int truncated;
    char msg[JMSG_LENGTH_MAX];
} jerr;

static void j_error_exit(j_common_ptr c)
{
    jerr *e = (jerr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

/* Warnings are damaged data: stop at the first, but for extraneous bytes
 * before a marker, which libjpeg skips without losing image data. */
static void j_emit(j_common_ptr c, int level)
{
    jerr *e = (jerr *)c->err;
    if (level >= 0 || c->err->msg_code == JWRN_EXTRANEOUS_DATA)
        return;
    e->truncated = c->err->msg_code == JWRN_JPEG_EOF;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

static int decode_jpeg(const uint8_t *data, size_t len, const sp_image_opts *o, sp_image *img, sp_err *err)
{
    struct jpeg_decompress_struct ci;
    jerr e = {0};
    uint8_t *volatile row = NULL;
    ci.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = j_error_exit;
    e.pub.emit_message = j_emit;
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&ci);
        free(row);
        sp_fail(err, SP_EXIT_DATA, "JPEG: %s", e.msg);
        return e.truncated ? SP_REJECT_TRUNCATED : SP_REJECT_CORRUPT;
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, data, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    int reason = too_large(ci.image_width, ci.image_height, o, err);
    if (reason) {
        jpeg_destroy_decompress(&ci);
        return reason;
    }
    img->src_w = ci.image_width, img->src_h = ci.image_height;
    int cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    ci.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    if (o->min_w || o->min_h) {
        /* the smallest of 1/8, 1/4, 1/2 that keeps both sides at least the size
         * asked for (sides round up, as libjpeg's). libjpeg-turbo also scales
         * by 3/8, 5/8, ..., but without SIMD: measured no faster than a full
         * decode on ImageNet-sized files, so those are not used. */
        for (unsigned d = 8; d >= 2; d /= 2) {
            if ((ci.image_width + d - 1) / d >= o->min_w && (ci.image_height + d - 1) / d >= o->min_h) {
                ci.scale_num = 1;
                ci.scale_denom = d;
                break;
            }
        }
    }
    jpeg_start_decompress(&ci);
    if (reserve(img, ci.output_width, ci.output_height, err)) {
        jpeg_destroy_decompress(&ci);
        return SP_REJECT_TOO_LARGE;
    }
    size_t stride = (size_t)img->w * 3;
    if (cmyk) {
        row = malloc((size_t)img->w * 4);
        if (!row) {
            jpeg_destroy_decompress(&ci);
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory"), SP_REJECT_TOO_LARGE;
        }
    }
    int inverted = ci.saw_Adobe_marker;
    /* the rows [0, y1) and the columns from x0 to decode: all, or the
     * caller's region and a margin */
    JDIMENSION x0 = 0, y1 = ci.output_height;
    if (o->region && !cmyk) {
        int box[4];
        o->region(o->region_ctx, img->w, img->h, box);
        int m = SP_IMAGE_REGION_MARGIN, bx0 = box[0] - m, by0 = box[1] - m, bx1 = box[2] + m, by1 = box[3] + m;
        bx0 = bx0 < 0 ? 0 : bx0, by0 = by0 < 0 ? 0 : by0;
        bx1 = bx1 > (int)img->w ? (int)img->w : bx1, by1 = by1 > (int)img->h ? (int)img->h : by1;
        if (bx1 > bx0 && by1 > by0) {
            if (bx0 > 0 || bx1 < (int)img->w) { /* libjpeg widens the span to whole iMCUs */
                JDIMENSION cw = (JDIMENSION)(bx1 - bx0);
                x0 = (JDIMENSION)bx0;
                jpeg_crop_scanline(&ci, &x0, &cw);
            }
            if (by0 > 0)
                jpeg_skip_scanlines(&ci, (JDIMENSION)by0);
            y1 = (JDIMENSION)by1;
        }
    }
    while (!cmyk && ci.output_scanline < y1) {
        /* several rows a call: fewer calls, the same pixels */
        JSAMPROW rows[16];
        JDIMENSION first = ci.output_scanline, n = y1 - first;
        if (n > 16)
            n = 16;
        for (JDIMENSION i = 0; i < n; i++)
            rows[i] = img->pixels + (first + i) * stride + x0 * 3;
        jpeg_read_scanlines(&ci, rows, n);
    }
    if (!cmyk && ci.output_scanline < ci.output_height) {
        /* The rows after the region: skipped rows are still entropy-decoded,
         * so damage in them is found, but a skip to the very end stops without
         * reading, so the last row is read (into its own place). */
        JDIMENSION left = ci.output_height - ci.output_scanline;
        if (left > 1)
            jpeg_skip_scanlines(&ci, left - 1);
        JSAMPROW last[1] = {img->pixels + (size_t)(ci.output_height - 1) * stride + x0 * 3};
        jpeg_read_scanlines(&ci, last, 1);
    }
    while (cmyk && ci.output_scanline < ci.output_height) {
        uint8_t *out = img->pixels + ci.output_scanline * stride;
        JSAMPROW rows[1] = {row};
        jpeg_read_scanlines(&ci, rows, 1);
        for (uint32_t x = 0; x < img->w; x++) {
            const uint8_t *p = row + 4 * x;
            unsigned c = p[0], m = p[1], y = p[2], k = p[3];
            if (!inverted) /* plain CMYK: store as the inverted form */
                c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
            out[3 * x] = muldiv255(c, k);
            out[3 * x + 1] = muldiv255(m, k);
            out[3 * x + 2] = muldiv255(y, k);
        }
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(row);
    return 0;
}

/* ---------------- PNG ---------------- */

typedef struct psrc {
    const uint8_t *data;
    size_t len, pos;
    int truncated;
    char msg[256];
} psrc;

static void p_read(png_structp p, png_bytep out, png_size_t n)
{
    psrc *s = png_get_io_ptr(p);
    if (n > s->len - s->pos) {
        s->truncated = 1;
        png_error(p, "the file ends early");
    }
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

static void p_error(png_structp p, png_const_charp msg)
{
    psrc *s = png_get_error_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void p_warning(png_structp p, png_const_charp msg)
{
    (void)p, (void)msg; /* ancillary-chunk problems: the image itself is fine */
}

static int decode_png(const uint8_t *data, size_t len, const sp_image_opts *o, sp_image *img, sp_err *err)
{
    psrc s = {data, len, 0, 0, ""};
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, p_error, p_warning);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    png_bytep *volatile rows = NULL;
    if (!p || !info) {
        png_destroy_read_struct(&p, &info, NULL);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory"), SP_REJECT_CORRUPT;
    }
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_read_struct(&p, &info, NULL);
        free(rows);
        sp_fail(err, SP_EXIT_DATA, "PNG: %s", s.msg);
        return s.truncated ? SP_REJECT_TRUNCATED : SP_REJECT_CORRUPT;
    }
    png_set_read_fn(p, &s, p_read);
    png_read_info(p, info);
    png_uint_32 w, h;
    int depth, type, interlace;
    png_get_IHDR(p, info, &w, &h, &depth, &type, &interlace, NULL, NULL);
    int reason = too_large(w, h, o, err);
    if (reason) {
        png_destroy_read_struct(&p, &info, NULL);
        return reason;
    }
    img->src_w = w, img->src_h = h;
    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(p);
    if ((type & ~PNG_COLOR_MASK_ALPHA) == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(p);
    if (depth == 16)
        png_set_scale_16(p);
    /* a palette with a tRNS chunk expands to RGBA: its alpha goes as well */
    if ((type & PNG_COLOR_MASK_ALPHA) || png_get_valid(p, info, PNG_INFO_tRNS))
        png_set_strip_alpha(p);
    if ((type & ~PNG_COLOR_MASK_ALPHA) == PNG_COLOR_TYPE_GRAY)
        png_set_gray_to_rgb(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
    if (png_get_rowbytes(p, info) != (size_t)w * 3) {
        png_destroy_read_struct(&p, &info, NULL);
        return sp_fail(err, SP_EXIT_DATA, "PNG: unexpected row layout"), SP_REJECT_CORRUPT;
    }
    if (reserve(img, w, h, err)) {
        png_destroy_read_struct(&p, &info, NULL);
        return SP_REJECT_TOO_LARGE;
    }
    rows = malloc(h * sizeof *rows);
    if (!rows) {
        png_destroy_read_struct(&p, &info, NULL);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory"), SP_REJECT_TOO_LARGE;
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = img->pixels + (size_t)y * w * 3;
    png_read_image(p, rows);
    png_read_end(p, NULL);
    png_destroy_read_struct(&p, &info, NULL);
    free(rows);
    return 0;
}

int sp_image_decode(const uint8_t *data, size_t len, const sp_image_opts *o, sp_image *img, sp_err *err)
{
    switch (sp_image_sniff(data, len)) {
    case SP_IMAGE_JPEG: return decode_jpeg(data, len, o, img, err);
    case SP_IMAGE_PNG: return decode_png(data, len, o, img, err);
    default:
        if (sp_image_other_format(data, len)) {
            sp_fail(err, SP_EXIT_DATA, "a %s image: only JPEG and PNG are read (convert it to PNG first)",
                    sp_image_other_format(data, len));
            return SP_REJECT_UNSUPPORTED;
        }
        sp_fail(err, SP_EXIT_DATA, "not a JPEG or PNG image");
        return SP_REJECT_NOT_IMAGE;
    }
}
