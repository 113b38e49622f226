/* The resize stage's geometry and options: the plan (scale, then crop) for each input size, and resizing one image. */
#include "pipeline/resize.h"

#include <stdio.h>
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

int sp_resize_keeps_aspect(const sp_resize_opts *o)
{
    return o->mode == SP_RESIZE_SHORTER || o->mode == SP_RESIZE_LONGER;
}

void sp_resize_out_size(const sp_resize_opts *o, int in_w, int in_h, int *out_w, int *out_h)
{
    if (!sp_resize_keeps_aspect(o)) {
        *out_w = o->w, *out_h = o->h;
        return;
    }
    int shorter = o->mode == SP_RESIZE_SHORTER, wide = in_w >= in_h;
    int s = wide ? in_h : in_w, l = wide ? in_w : in_h; /* the shorter and longer sides */
    if ((shorter ? s : l) <= o->w) {                    /* within SIZE: kept */
        *out_w = in_w, *out_h = in_h;
        return;
    }
    int ns, nl;
    if (shorter)
        ns = o->w, nl = (int)((long long)o->w * l / s);
    else
        nl = o->w, ns = (int)((long long)o->w * s / l);
    if (ns < 1)
        ns = 1;
    *out_w = wide ? nl : ns;
    *out_h = wide ? ns : nl;
}

void sp_resize_plan_for(const sp_resize_opts *o, int in_w, int in_h, sp_resize_plan *p)
{
    memset(p, 0, sizeof *p);
    if (sp_resize_keeps_aspect(o)) {
        sp_resize_out_size(o, in_w, in_h, &p->sw, &p->sh);
        p->ww = p->sw, p->wh = p->sh;
        return;
    }
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

void sp_resize_source_box(const sp_resize_opts *o, int in_w, int in_h, int box[4])
{
    int ow, oh;
    sp_resize_out_size(o, in_w, in_h, &ow, &oh);
    if (in_w == ow && in_h == oh) {
        box[0] = box[1] = 0, box[2] = in_w, box[3] = in_h;
        return;
    }
    sp_resize_plan p;
    sp_resize_plan_for(o, in_w, in_h, &p);
    sp_resample_source_box(in_w, in_h, p.sw, p.sh, p.x0, p.y0, p.ww, p.wh, o->filter, box);
}

int sp_resize_pixels(sp_resampler *r, const sp_resize_opts *o, const uint8_t *in, int in_w, int in_h, int c,
                     uint8_t *out)
{
    sp_resize_plan p;
    sp_resize_plan_for(o, in_w, in_h, &p);
    int ow, oh;
    sp_resize_out_size(o, in_w, in_h, &ow, &oh);
    size_t row = (size_t)ow * (size_t)c;
    int direct = p.dx == 0 && p.dy == 0 && p.ww == ow && p.wh == oh;
    if (!direct)
        memset(out, o->pad_value, row * (size_t)oh);
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

static int parse_uint(const char *s, long max, long *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -1;
    long v = strtol(s, &end, 10);
    if (*end || v > max)
        return -1;
    *out = v;
    return 0;
}

int sp_resize_opts_set(sp_resize_opts *o, const char *name, const char *value, char *why, size_t why_len)
{
    long a, b;
    if (!strcmp(name, "size")) {
        const char *x = strchr(value, 'x');
        char first[32];
        snprintf(first, sizeof first, "%.*s", x ? (int)(x - value < 31 ? x - value : 31) : 31, value);
        if (parse_uint(first, 65536, &a) || !a || (x && (parse_uint(x + 1, 65536, &b) || !b)))
            return snprintf(why, why_len, "not a size (SIZE or WxH): %s", value), -1;
        o->w = (int)a;
        o->h = x ? (int)b : (int)a;
    } else if (!strcmp(name, "mode")) {
        if (!strcmp(value, "crop"))
            o->mode = SP_RESIZE_CROP;
        else if (!strcmp(value, "squash"))
            o->mode = SP_RESIZE_SQUASH;
        else if (!strcmp(value, "pad"))
            o->mode = SP_RESIZE_PAD;
        else if (!strcmp(value, "shorter"))
            o->mode = SP_RESIZE_SHORTER;
        else if (!strcmp(value, "longer"))
            o->mode = SP_RESIZE_LONGER;
        else
            return snprintf(why, why_len, "--mode: crop, squash, pad, shorter or longer, not %s", value), -1;
    } else if (!strcmp(name, "filter")) {
        if ((o->filter = sp_filter_from_name(value)) < 0)
            return snprintf(why, why_len, "--filter: bilinear, bicubic, lanczos3 or area, not %s", value), -1;
    } else if (!strcmp(name, "resize-to")) {
        if (parse_uint(value, 65536, &a) || !a)
            return snprintf(why, why_len, "--resize-to: not a size: %s", value), -1;
        o->resize_to = (int)a;
    } else if (!strcmp(name, "pad-value")) {
        if (parse_uint(value, 255, &a))
            return snprintf(why, why_len, "--pad-value: 0 to 255, not %s", value), -1;
        o->pad_value = (int)a;
    } else if (!strcmp(name, "jpeg-quality")) {
        if (parse_uint(value, 100, &a) || !a)
            return snprintf(why, why_len, "--jpeg-quality: 1 to 100, not %s", value), -1;
        o->jpeg_quality = (int)a;
    } else {
        return snprintf(why, why_len, "unknown resize option %s", name), -1;
    }
    return 0;
}

int sp_resize_opts_check(const sp_resize_opts *o, char *why, size_t why_len)
{
    if (!o->w || !o->h)
        return snprintf(why, why_len, "no size given (SIZE or WxH)"), -1;
    if (o->resize_to && o->mode != SP_RESIZE_CROP)
        return snprintf(why, why_len, "--resize-to goes with --mode crop"), -1;
    if (sp_resize_keeps_aspect(o) && o->w != o->h)
        return snprintf(why, why_len, "--mode %s takes one SIZE, not WxH",
                        o->mode == SP_RESIZE_SHORTER ? "shorter" : "longer"), -1;
    return 0;
}
