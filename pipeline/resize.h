/* The resize stage: pixel records to one size.
 *
 * Modes, for a target of W x H:
 *   crop    scale so the image covers W x H (for a square target: the shorter
 *           side to SIZE, as torchvision's Resize(SIZE)), then take the centre
 *           W x H (CenterCrop; offsets rounded half to even, as Python's round)
 *   squash  scale to exactly W x H, ignoring the aspect ratio
 *   pad     scale to fit inside W x H, then centre it on a W x H canvas of
 *           pad_value
 * resize_to > 0 (crop mode): first the shorter side to resize_to, then the
 * centre W x H: the "256, then crop 224" recipe.
 * Modes that keep the aspect ratio, and so give images of many sizes (for
 * encoded records, which the reader decodes and crops at load; SIZE only):
 *   shorter shrink so the shorter side is SIZE (torchvision's Resize(SIZE),
 *           shrinking only): the longer side int(SIZE * long / short)
 *   longer  shrink so the longer side is at most SIZE (FFCV's max_resolution):
 *           the shorter side int(SIZE * short / long), at least 1
 *   An image already within SIZE keeps its size (never enlarged).
 * Sizes after scaling are truncated as torchvision's int() does. A record
 * already at its output size passes through untouched. uint8 only, 1 to 4
 * channels.
 *
 * jpeg_quality > 0: the output is encoded records (formats/recstream.md), the
 * resized pixels as a JPEG of that quality (formats/jpeg_encode.h).
 */
#ifndef SP_RESIZE_H
#define SP_RESIZE_H

#include "formats/recstream.h"
#include "formats/resample.h"

enum sp_resize_mode { SP_RESIZE_CROP = 0, SP_RESIZE_SQUASH, SP_RESIZE_PAD, SP_RESIZE_SHORTER, SP_RESIZE_LONGER };

typedef struct sp_resize_opts {
    int w, h;       /* the target */
    int mode;       /* enum sp_resize_mode */
    int filter;     /* enum sp_filter */
    int resize_to;  /* crop mode: the shorter side first goes to this (0 = no) */
    int pad_value;  /* pad mode: 0..255 */
    int jpeg_quality; /* 1..100: encode the output as JPEG; 0: pixels */
} sp_resize_opts;
/* 1 for the modes that keep the aspect ratio (shorter, longer). */
int sp_resize_keeps_aspect(const sp_resize_opts *o);

/* Sets one option by name ("size" SIZE|WxH, "mode", "filter", "resize-to",
 * "pad-value", "jpeg-quality") from its command-line text. 0, or -1 with why saying what is
 * wrong (why_len bytes). */
int sp_resize_opts_set(sp_resize_opts *o, const char *name, const char *value, char *why, size_t why_len);
/* Checks the combination (a size was given, resize-to only with crop, one
 * SIZE (not WxH) for shorter and longer). */
int sp_resize_opts_check(const sp_resize_opts *o, char *why, size_t why_len);

/* Where an in_w x in_h image goes: the scaled size (sw x sh), the window of
 * it kept (x0, y0, ww x wh), and where that window lands in the output (dx, dy). */
typedef struct sp_resize_plan {
    int sw, sh, x0, y0, ww, wh, dx, dy;
} sp_resize_plan;
void sp_resize_plan_for(const sp_resize_opts *o, int in_w, int in_h, sp_resize_plan *p);

/* The size an in_w x in_h image comes out at: W x H, or for shorter and
 * longer the scaled size (in_w x in_h when already within SIZE). */
void sp_resize_out_size(const sp_resize_opts *o, int in_w, int in_h, int *out_w, int *out_h);

/* The part of an in_w x in_h image that sp_resize_pixels reads:
 * [box[0], box[2]) x [box[1], box[3]) (the whole image when it is already
 * the target's size and passes through). */
void sp_resize_source_box(const sp_resize_opts *o, int in_w, int in_h, int box[4]);

/* Resizes pixels (in_w x in_h x c) into out (sp_resize_out_size's out_w x
 * out_h x c bytes). 0 or -1. */
int sp_resize_pixels(sp_resampler *r, const sp_resize_opts *o, const uint8_t *in, int in_w, int in_h, int c,
                     uint8_t *out);

#endif
