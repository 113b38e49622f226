#include "pipeline/resize.h"

#include <stdlib.h>
#include <string.h>

/* Python's round() of x/2 for an integer x: half to even. */
static int half_even(int x)
{
    int q = x / 2;
    if (x % 2 && q % 2) /* exactly .5 and q odd: round up to even */
        q += 1;
    return q;
}

/* Scale so that (w, h) covers (W, H) (cover = 1) or fits inside it (cover = 0). */
static void scale_to(int w, int h, int W, int H, int cover, int *sw, int *sh)
{
    /* compare w/h with W/H without floating point */
    int wider = (long long)w * H > (long long)h * W;
    if (wider != cover) { /* width is the limit */
        *sw = W;
        *sh = (int)((long long)W * h / w);
    } else {
        *sh = H;
        *sw = (int)((long long)H * w / h);
    }
    if (*sw < 1)
        *sw = 1;
    if (*sh < 1)
        *sh = 1;
}

void sp_resize_plan_for(const sp_resize_opts *o, int in_w, int in_h, sp_resize_plan *p)
{
    memset(p, 0, sizeof *p);
    if (o->mode == SP_RESIZE_SQUASH) {
        p->sw = p->ww = o->w;
        p->sh = p->wh = o->h;
        return;
    }
    if (o->mode == SP_RESIZE_PAD) {
        scale_to(in_w, in_h, o->w, o->h, 0, &p->sw, &p->sh);
        p->ww = p->sw, p->wh = p->sh;
        p->dx = (o->w - p->sw) / 2;
        p->dy = (o->h - p->sh) / 2;
        return;
    }
    if (o->resize_to > 0) /* shorter side to resize_to, as torchvision's Resize(N) */
        scale_to(in_w, in_h, o->resize_to, o->resize_to, 1, &p->sw, &p->sh);
    else
        scale_to(in_w, in_h, o->w, o->h, 1, &p->sw, &p->sh);
    p->ww = o->w < p->sw ? o->w : p->sw;
    p->wh = o->h < p->sh ? o->h : p->sh;
    p->x0 = half_even(p->sw - p->ww);
    p->y0 = half_even(p->sh - p->wh);
    /* a scaled image smaller than the target (resize_to < size): centred, padded */
    p->dx = (o->w - p->ww) / 2;
    p->dy = (o->h - p->wh) / 2;
}

int sp_resize_pixels(sp_resampler *r, const sp_resize_opts *o, const uint8_t *in, int in_w, int in_h, int c,
                     uint8_t *out)
{
    sp_resize_plan p;
    sp_resize_plan_for(o, in_w, in_h, &p);
    size_t row = (size_t)o->w * (size_t)c;
    int direct = p.dx == 0 && p.dy == 0 && p.ww == o->w && p.wh == o->h;
    if (!direct)
        memset(out, o->pad_value, row * (size_t)o->h);
    if (direct)
        return sp_resample(r, in, in_w, in_h, c, p.sw, p.sh, p.x0, p.y0, p.ww, p.wh, o->filter, out);
    /* into a window of the canvas: resample to scratch, then place the rows */
    uint8_t *tmp = malloc((size_t)p.ww * (size_t)p.wh * (size_t)c);
    if (!tmp)
        return -1;
    int rc = sp_resample(r, in, in_w, in_h, c, p.sw, p.sh, p.x0, p.y0, p.ww, p.wh, o->filter, tmp);
    for (int y = 0; rc == 0 && y < p.wh; y++)
        memcpy(out + (size_t)(p.dy + y) * row + (size_t)p.dx * (size_t)c, tmp + (size_t)y * p.ww * (size_t)c,
               (size_t)p.ww * (size_t)c);
    free(tmp);
    return rc;
}
