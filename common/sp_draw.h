/* A small raster canvas for the pictures the tools write (heat maps, training curves, contact sheets): rectangles, lines, 5x7 text, PNG out. */
#ifndef SP_DRAW_H
#define SP_DRAW_H

#include <stdint.h>

#include "common/sp_common.h"

/* An RGB image, 8 bits a channel, rows top to bottom: pixels is (h, w, 3). */
typedef struct sp_canvas {
    int w, h;
    uint8_t *pixels; /* owned */
} sp_canvas;

/* The largest canvas side: pictures are for people, bigger is a mistake. */
#define SP_CANVAS_MAX_SIDE 16384

/* Allocates a w x h canvas filled with rgb (0xRRGGBB). -1 with err for a
 * side outside 1..SP_CANVAS_MAX_SIDE (SP_EXIT_DATA) or out of memory. */
int sp_canvas_init(sp_canvas *c, int w, int h, uint32_t rgb, sp_err *err);
void sp_canvas_free(sp_canvas *c); /* accepts a zeroed canvas */

/* Drawing clips at the canvas's edges; coordinates may lie outside it. */
void sp_draw_rect(sp_canvas *c, int x, int y, int w, int h, uint32_t rgb);
/* A line from (x0, y0) to (x1, y1), width pixels wide (1 or more). */
void sp_draw_line(sp_canvas *c, int x0, int y0, int x1, int y1, int width, uint32_t rgb);
/* Text in the built-in 5x7 font (g, j, p, q, y reach two rows below the
 * baseline), each font pixel scale x scale, top left at (x, y); a character
 * cell is 6 x 10 font pixels. Bytes outside printable
 * ASCII (UTF-8 included) draw as '?'. Returns the width drawn, in pixels. */
int sp_draw_text(sp_canvas *c, int x, int y, const char *s, int scale, uint32_t rgb);
/* The width sp_draw_text would draw, and the height of one line. */
int sp_text_width(const char *s, int scale);
int sp_text_height(int scale);
/* A colour of the "viridis"-like ramp used by the heat maps, t in [0, 1]
 * (dark blue to yellow; clamped). */
uint32_t sp_color_ramp(double t);

/* Writes the canvas as a PNG at path, atomically (sp_atomic: a failed write
 * leaves no partial file); -1 with err naming path and the reason. */
int sp_canvas_write_png(const sp_canvas *c, const char *path, sp_err *err);
/* The same for any w x h RGB buffer. */
int sp_write_png_rgb(const char *path, const uint8_t *rgb, int w, int h, sp_err *err);

/* Writes h x w x c uint8 pixels (c: 1 grey, 2 grey and alpha, 3 RGB, 4 RGBA)
 * as a PNG to the open fd (not closed: stdout); -1 with err (what names the
 * output in the message). */
int sp_write_png_fd(int fd, const char *what, const uint8_t *px, int w, int h, int c, sp_err *err);
/* The same into out (its bytes replaced; the caller frees it). */
int sp_png_encode(const char *what, const uint8_t *px, int w, int h, int c, sp_buf *out, sp_err *err);

#endif
