#define _DEFAULT_SOURCE /* M_PI */
#include "formats/resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

const char *sp_filter_name(int f)
{
    static const char *const names[] = {"area", "bilinear", "bicubic", "lanczos3"};
    return f >= 0 && f < SP_FILTER_COUNT ? names[f] : "unknown";
}

int sp_filter_from_name(const char *s)
{
    if (!strcmp(s, "box"))
        return SP_FILTER_BOX;
    for (int f = 0; f < SP_FILTER_COUNT; f++)
        if (!strcmp(s, sp_filter_name(f)))
            return f;
    return -1;
}

static double box(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

static double bilinear(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double lanczos(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0; }

static const struct {
    double (*fn)(double);
    double support;
} filters[SP_FILTER_COUNT] = {{box, 0.5}, {bilinear, 1.0}, {bicubic, 2.0}, {lanczos, 3.0}};

void sp_resampler_free(sp_resampler *r)
{
    free(r->bounds_x);
    free(r->bounds_y);
    free(r->k_x);
    free(r->k_y);
    free(r->tmp);
    memset(r, 0, sizeof *r);
}

static int grow(void **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    void *q = realloc(*p, need);
    if (!q)
        return -1;
    *p = q;
    *cap = need;
    return 0;
}

/* Coefficients of output positions [first, first+n) of an in_size -> out_size
 * resampling (Pillow's precompute_coeffs + normalize_coeffs_8bpc). */
static int coeffs(int in_size, int out_size, int first, int n, int filter, int **bounds, size_t *cap_b,
                  int32_t **kk, size_t *cap_k, int *ksize_out)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filters[filter].support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *pre = malloc((size_t)ksize * sizeof *pre);
    if (!pre || grow((void **)bounds, cap_b, (size_t)n * 2 * sizeof **bounds) ||
        grow((void **)kk, cap_k, (size_t)n * (size_t)ksize * sizeof **kk)) {
        free(pre);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int xx = first + i;
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0)
            xmin = 0;
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = filters[filter].fn((x + xmin - center + 0.5) * ss);
            pre[x] = w;
            ww += w;
        }
        int32_t *k = *kk + (size_t)i * (size_t)ksize;
        for (int x = 0; x < ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? pre[x] / ww : pre[x]) : 0.0;
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        (*bounds)[2 * i] = xmin;
        (*bounds)[2 * i + 1] = xmax;
    }
    free(pre);
    *ksize_out = ksize;
    return 0;
}

static inline uint8_t clip8(int32_t v)
{
    if (v >= (1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* out row = horizontal resampling of in row; c channels. */
static void horizontal(const uint8_t *in, uint8_t *out, int w, int c, const int *bounds, const int32_t *kk, int ksize)
{
    for (int xx = 0; xx < w; xx++) {
        int xmin = bounds[2 * xx], n = bounds[2 * xx + 1];
        const int32_t *k = kk + (size_t)xx * (size_t)ksize;
        const uint8_t *p = in + (size_t)xmin * (size_t)c;
        for (int ch = 0; ch < c; ch++) {
            int32_t ss = 1 << (PRECISION_BITS - 1);
            for (int x = 0; x < n; x++)
                ss += p[x * c + ch] * k[x];
            out[xx * c + ch] = clip8(ss);
        }
    }
}

/* out row = vertical resampling of rows[ymin .. ymin+n) of src (stride). */
static void vertical(const uint8_t *src, size_t stride, uint8_t *out, int len, int ymin, int n, const int32_t *k)
{
    for (int i = 0; i < len; i++) {
        int32_t ss = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < n; y++)
            ss += src[(size_t)(ymin + y) * stride + (size_t)i] * k[y];
        out[i] = clip8(ss);
    }
}

int sp_resample(sp_resampler *r, const uint8_t *in, int in_w, int in_h, int c, int out_w, int out_h, int x0,
                int y0, int w, int h, int filter, uint8_t *out)
{
    if (filter < 0 || filter >= SP_FILTER_COUNT || c < 1 || c > 4 || x0 < 0 || y0 < 0 || w < 1 || h < 1 ||
        x0 + w > out_w || y0 + h > out_h || in_w < 1 || in_h < 1)
        return -1;
    int key[8] = {in_w, in_h, out_w, out_h, x0, y0, w * 16 + filter, h};
    if (memcmp(key, r->key, sizeof key)) {
        if (coeffs(in_w, out_w, x0, w, filter, &r->bounds_x, &r->cap_bx, &r->k_x, &r->cap_kx, &r->ksize_x) ||
            coeffs(in_h, out_h, y0, h, filter, &r->bounds_y, &r->cap_by, &r->k_y, &r->cap_ky, &r->ksize_y))
            return -1;
        memcpy(r->key, key, sizeof key);
    }
    int need_h = out_w != in_w, need_v = out_h != in_h;
    /* the source rows the window's output rows read */
    int ybox_first = r->bounds_y[0], ybox_last = r->bounds_y[2 * (h - 1)] + r->bounds_y[2 * (h - 1) + 1];
    const uint8_t *src = in;
    size_t stride = (size_t)in_w * (size_t)c;
    int yshift = 0;
    if (need_h) {
        int rows = ybox_last - ybox_first;
        if (!need_v) /* only the window's own rows */
            ybox_first = y0, rows = h;
        size_t row = (size_t)w * (size_t)c;
        if (grow((void **)&r->tmp, &r->cap_tmp, row * (size_t)rows))
            return -1;
        for (int y = 0; y < rows; y++)
            horizontal(in + (size_t)(ybox_first + y) * stride, r->tmp + (size_t)y * row, w, c, r->bounds_x, r->k_x,
                       r->ksize_x);
        src = r->tmp;
        stride = row;
        yshift = ybox_first;
    } else {
        src = in + (size_t)x0 * (size_t)c; /* no horizontal pass: the window's columns */
    }
    size_t out_row = (size_t)w * (size_t)c;
    for (int yy = 0; yy < h; yy++) {
        if (need_v) {
            vertical(src, stride, out + (size_t)yy * out_row, (int)out_row, r->bounds_y[2 * yy] - yshift,
                     r->bounds_y[2 * yy + 1], r->k_y + (size_t)yy * (size_t)r->ksize_y);
        } else {
            int sy = y0 + yy - yshift;
            memcpy(out + (size_t)yy * out_row, src + (size_t)sy * stride, out_row);
        }
    }
    return 0;
}
