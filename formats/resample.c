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
    free(r->acc);
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

/* out row = horizontal resampling of in row; c channels. in_w bounds the
 * reads: the vector path loads 4 bytes a pixel and must not pass the row. */
static void horizontal_scalar(const uint8_t *in, uint8_t *out, int w, int c, const int *bounds, const int32_t *kk,
                              int ksize)
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

#if defined(__x86_64__)
#include <immintrin.h>

/* RGB rows, four 32-bit lanes a pixel (R, G, B and a byte of the next pixel,
 * multiplied and then ignored). The same integer arithmetic as the scalar
 * path, so the same results. */
__attribute__((target("sse4.1"))) static void horizontal_rgb_sse41(const uint8_t *in, int in_w, uint8_t *out, int w,
                                                                   const int *bounds, const int32_t *kk, int ksize)
{
    const __m128i round = _mm_set1_epi32(1 << (PRECISION_BITS - 1));
    for (int xx = 0; xx < w; xx++) {
        int xmin = bounds[2 * xx], n = bounds[2 * xx + 1];
        const int32_t *k = kk + (size_t)xx * (size_t)ksize;
        const uint8_t *p = in + (size_t)xmin * 3;
        __m128i acc = round;
        int safe = xmin + n == in_w ? n - 1 : n; /* the row's last pixel: no 4-byte load */
        for (int x = 0; x < safe; x++) {
            int32_t v;
            memcpy(&v, p + 3 * x, 4);
            __m128i px = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(v));
            acc = _mm_add_epi32(acc, _mm_mullo_epi32(px, _mm_set1_epi32(k[x])));
        }
        int32_t lane[4];
        _mm_storeu_si128((__m128i *)(void *)lane, acc);
        if (safe < n) {
            const uint8_t *q = p + 3 * safe;
            lane[0] += q[0] * k[safe], lane[1] += q[1] * k[safe], lane[2] += q[2] * k[safe];
        }
        out[3 * xx] = clip8(lane[0]);
        out[3 * xx + 1] = clip8(lane[1]);
        out[3 * xx + 2] = clip8(lane[2]);
    }
}
#endif

/* Two output pixels a step in one 256-bit register: lanes 0-3 the first
 * pixel's R, G, B (and a spare), lanes 4-7 the second's. Taps past a pixel's
 * own count have zero coefficients; loads never pass the row's end. */
__attribute__((target("avx2"))) static void horizontal_rgb_avx2(const uint8_t *in, int in_w, uint8_t *out, int w,
                                                                const int *bounds, const int32_t *kk, int ksize)
{
    const __m256i round = _mm256_set1_epi32(1 << (PRECISION_BITS - 1));
    const uint8_t *end = in + (size_t)in_w * 3;
    int xx = 0;
    for (; xx + 1 < w; xx += 2) {
        int xa = bounds[2 * xx], na = bounds[2 * xx + 1], xb = bounds[2 * xx + 2], nb = bounds[2 * xx + 3];
        int n = na > nb ? na : nb;
        const int32_t *ka = kk + (size_t)xx * (size_t)ksize, *kb = ka + ksize;
        const uint8_t *pa = in + (size_t)xa * 3, *pb = in + (size_t)xb * 3;
        /* every 4-byte load must stay inside the row: else the scalar path */
        if (pa + 3 * (n - 1) + 4 > end || pb + 3 * (n - 1) + 4 > end || n > ksize)
            break;
        __m256i acc = round;
        const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
        for (int x = 0; x < n; x++) {
            int32_t va, vb;
            memcpy(&va, pa + 3 * x, 4);
            memcpy(&vb, pb + 3 * x, 4);
            __m256i px = _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, vb, va));
            /* coefficients past a pixel's own taps are 0 (see coeffs) */
            __m256i k = _mm256_permutevar8x32_epi32(_mm256_castsi128_si256(_mm_set_epi32(0, 0, kb[x], ka[x])), spread);
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(px, k));
        }
        int32_t lane[8];
        _mm256_storeu_si256((__m256i *)(void *)lane, acc);
        for (int ch = 0; ch < 3; ch++) {
            out[3 * xx + ch] = clip8(lane[ch]);
            out[3 * xx + 3 + ch] = clip8(lane[4 + ch]);
        }
    }
    if (xx < w) /* the last pixels, near the row's end */
        horizontal_rgb_sse41(in, in_w, out + 3 * xx, w - xx, bounds + 2 * xx, kk + (size_t)xx * (size_t)ksize, ksize);
}

/* What the CPU has, found once at start-up (before any thread): 0 none, 1
 * SSE4.1, 2 AVX2. */
static int level;
__attribute__((constructor)) static void find_level(void)
{
    __builtin_cpu_init();
    level = __builtin_cpu_supports("avx2") ? 2 : __builtin_cpu_supports("sse4.1") ? 1 : 0;
}

static void horizontal(const uint8_t *in, int in_w, uint8_t *out, int w, int c, const int *bounds, const int32_t *kk,
                       int ksize)
{
#if defined(__x86_64__)
    if (c == 3 && level == 2) {
        horizontal_rgb_avx2(in, in_w, out, w, bounds, kk, ksize);
        return;
    }
    if (c == 3 && level == 1) {
        horizontal_rgb_sse41(in, in_w, out, w, bounds, kk, ksize);
        return;
    }
#endif
    (void)in_w;
    horizontal_scalar(in, out, w, c, bounds, kk, ksize);
}

/* out row = vertical resampling of rows[ymin .. ymin+n) of src (stride),
 * accumulated a whole row at a time (vectorisable: one coefficient a row).
 * Cloned for AVX2 and chosen at load time (an ifunc), except under
 * ThreadSanitizer, whose runtime is not up when ifuncs are resolved. */
#if defined(__SANITIZE_THREAD__)
#define SP_CLONES
#else
#define SP_CLONES __attribute__((target_clones("avx2", "default")))
#endif
SP_CLONES static void vertical(const uint8_t *restrict src, size_t stride,
                                                                       uint8_t *restrict out, int len, int ymin, int n,
                                                                       const int32_t *restrict k,
                                                                       int32_t *restrict acc)
{
    for (int i = 0; i < len; i++)
        acc[i] = 1 << (PRECISION_BITS - 1);
    for (int y = 0; y < n; y++) {
        const uint8_t *restrict row = src + (size_t)(ymin + y) * stride;
        int32_t ky = k[y];
        for (int i = 0; i < len; i++)
            acc[i] += row[i] * ky;
    }
    for (int i = 0; i < len; i++) {
        int32_t v = acc[i] >> PRECISION_BITS; /* clip8, written to vectorise */
        out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
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
            horizontal(in + (size_t)(ybox_first + y) * stride, in_w, r->tmp + (size_t)y * row, w, c, r->bounds_x,
                       r->k_x, r->ksize_x);
        src = r->tmp;
        stride = row;
        yshift = ybox_first;
    } else {
        src = in + (size_t)x0 * (size_t)c; /* no horizontal pass: the window's columns */
    }
    size_t out_row = (size_t)w * (size_t)c;
    if (need_v && grow((void **)&r->acc, &r->cap_acc, out_row * sizeof *r->acc))
        return -1;
    for (int yy = 0; yy < h; yy++) {
        if (need_v) {
            vertical(src, stride, out + (size_t)yy * out_row, (int)out_row, r->bounds_y[2 * yy] - yshift,
                     r->bounds_y[2 * yy + 1], r->k_y + (size_t)yy * (size_t)r->ksize_y, r->acc);
        } else {
            int sy = y0 + yy - yshift;
            memcpy(out + (size_t)yy * out_row, src + (size_t)sy * stride, out_row);
        }
    }
    return 0;
}
