/* Encoded images to 8-bit RGB pixels, recognised by content, never by name.
 *
 * JPEG (libjpeg-turbo): baseline and progressive, any chroma subsampling;
 * grayscale is expanded to RGB; CMYK and YCCK are converted to RGB as PIL 9
 * does: on the stored values of an Adobe (inverted) file R = C*K/255, G =
 * M*K/255, B = Y*K/255 (rounded), on a plain CMYK file R = (255-C)(255-K)/255.
 * libjpeg warnings mean damaged data and reject the image, except "extraneous
 * bytes before marker", which libjpeg skips without loss.
 * PNG (libpng): gray, gray+alpha, palette, RGB, RGBA, 1 to 16 bits,
 * interlaced; 16-bit samples are scaled to 8 bits (rounded, v*255/65535);
 * alpha (and tRNS transparency) is dropped: the colour values are kept as
 * stored, not composited on a background, as PIL's convert("RGB") does.
 *
 * The pixel count is checked against a limit from the header, before any
 * pixel memory is allocated.
 */
#ifndef SP_IMAGE_H
#define SP_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"

enum { SP_IMAGE_NONE = 0, SP_IMAGE_JPEG = 1, SP_IMAGE_PNG = 2 };

/* Why an image was rejected, for counting by reason. */
enum sp_reject {
    SP_REJECT_NONE = 0,
    SP_REJECT_TRUNCATED,   /* the data ends early */
    SP_REJECT_CORRUPT,     /* the decoder found damaged data */
    SP_REJECT_TOO_LARGE,   /* width x height over the limit */
    SP_REJECT_NOT_IMAGE,   /* not a JPEG or PNG by content */
    SP_REJECT_UNLABELED,   /* (used by sp-decode) no label for the image */
    SP_REJECT_UNSUPPORTED, /* an image of a format not read here: BMP, TIFF, WebP, GIF */
    SP_REJECT_COUNT
};
const char *sp_reject_name(int reason); /* "truncated", "corrupt", "too-large", ... */

/* The default limit of a source image's width x height, and the one a reader
 * applies to a set that records none (sp-decode --max-pixels above it is
 * recorded in the stream's metadata as "max_pixels"). */
#define SP_IMAGE_MAX_PIXELS 100000000ull

typedef struct sp_image_opts {
    uint64_t max_pixels; /* width * height limit (default SP_IMAGE_MAX_PIXELS) */
    /* JPEG only: decode at the smallest DCT scale (1/2, 1/4, 1/8) that keeps
     * both sides at least min_w x min_h, like PIL's draft(); 0 = full size */
    uint32_t min_w, min_h;
    /* JPEG only, optional: called once the decoded size w x h is known, puts
     * in box the part the caller will read, [box[0], box[2]) x [box[1],
     * box[3]). Only that part and a margin of SP_IMAGE_REGION_MARGIN pixels
     * is decoded (libjpeg's partial decompression; the rest of the file is
     * still entropy-decoded, so damage anywhere is still found); the other
     * pixels of the image are left unset. */
    void (*region)(void *ctx, uint32_t w, uint32_t h, int box[4]);
    void *region_ctx;
} sp_image_opts;
/* Fancy upsampling reads one chroma sample past a region's edge: with this
 * margin the region's pixels equal a full decode's (checked by the tests). */
#define SP_IMAGE_REGION_MARGIN 8
void sp_image_opts_default(sp_image_opts *o);

/* An RGB image; pixels owned by the struct (grown as needed, reused). */
typedef struct sp_image {
    uint32_t w, h;     /* the decoded size (after any DCT scaling) */
    uint32_t src_w, src_h; /* the size in the file */
    uint8_t *pixels;   /* h * w * 3 bytes, HWC */
    size_t cap;
} sp_image;
void sp_image_free(sp_image *img);

/* SP_IMAGE_JPEG, SP_IMAGE_PNG or SP_IMAGE_NONE from the first bytes. */
int sp_image_sniff(const uint8_t *p, size_t n);
/* The name of an image format torchvision's ImageFolder loads (through PIL)
 * that is not read here, from the first bytes: "BMP", "TIFF", "WebP", "GIF";
 * else NULL. sp_image_decode rejects such an image as
 * SP_REJECT_UNSUPPORTED, naming its format. */
const char *sp_image_other_format(const uint8_t *p, size_t n);
/* Decodes data into img. Returns 0, or an enum sp_reject with err saying
 * what the decoder found. */
int sp_image_decode(const uint8_t *data, size_t len, const sp_image_opts *o, sp_image *img, sp_err *err);

#endif
