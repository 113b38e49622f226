/* JPEG encoding of RGB pixels (libjpeg-turbo), and the header test that says whether a JPEG's
 * bytes can be stored as shipped (it decodes straight to RGB).
 *
 * Errors: -1 with err filled (SP_EXIT_SYSTEM: out of memory or a libjpeg failure); nothing is
 * printed. */
#ifndef SP_JPEG_ENCODE_H
#define SP_JPEG_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/sp_common.h"

#define SP_JPEG_QUALITY_DEFAULT 90

/* Encodes the w x h x 3 RGB pixels (HWC, rows of w*3 bytes) as a baseline JFIF JPEG at quality
 * 1..100: 4:2:0 chroma subsampling, optimized Huffman tables, the slow accurate integer DCT.
 * out is emptied and receives the file's bytes (the caller owns out). Same pixels and quality,
 * same bytes. */
#define SP_JPEG_MAX_SIDE 65500u /* libjpeg's JPEG_MAX_DIMENSION: no side of an encoded JPEG is longer */
int sp_jpeg_encode(const uint8_t *rgb, uint32_t w, uint32_t h, int quality, sp_buf *out, sp_err *err);

/* 1 if data is a JPEG whose components libjpeg-turbo decodes directly to RGB, the same pixels as
 * PIL's convert("RGB"): 3 components in YCbCr or RGB, or 1 (grayscale). 0 for CMYK, YCCK, any
 * other component count, a header libjpeg refuses, or not a JPEG at all. Reads the header only. */
int sp_jpeg_keepable(const uint8_t *data, size_t len);

#endif
