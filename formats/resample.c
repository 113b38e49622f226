/* PIL 9's resampling, bit for bit: coefficients, the horizontal and vertical passes, plain C and SSE4.1/AVX2 levels. */
#define _DEFAULT_SOURCE /* M_PI */
#include "formats/resample.h"

#include "common/sp_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The x86 vector paths (SSE4.1, AVX2; chosen at run time by what the CPU
 * has) exist only on x86-64 and not under SP_NO_X86_SIMD (the Makefile's
 * SIMD=none, which builds the scalar paths alone, as on any other CPU). */
#if defined(__x86_64__) && !defined(SP_NO_X86_SIMD)
#define SP_RESAMPLE_X86 1
#else
#define SP_RESAMPLE_X86 0
#endif

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
    free(r->k16_x);
    free(r->plan_x);
    free(r->tmp);
    free(r->acc);
    memset(r, 0, sizeof *r);
}

/* The source span [*lo, *hi) that output positions [first, first+n) of an
 * in_size -> out_size resampling read: from the first one's xmin to the last
 * one's xmax as coeffs bounds them (both grow with the position). */
static void source_span(int in_size, int out_size, int first, int n, int filter, int *lo, int *hi)
{
    if (in_size == out_size) { /* no pass: the window itself */
        *lo = first, *hi = first + n;
        return;
    }
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filters[filter].support * filterscale;
    int a = (int)((first + 0.5) * scale - support + 0.5), b = (int)((first + n - 1 + 0.5) * scale + support + 0.5);
    *lo = a < 0 ? 0 : a;
    *hi = b > in_size ? in_size : b;
}

void sp_resample_source_box(int in_w, int in_h, int out_w, int out_h, int x0, int y0, int w, int h, int filter,
                            int box[4])
{
    source_span(in_w, out_w, x0, w, filter, &box[0], &box[2]);
    source_span(in_h, out_h, y0, h, filter, &box[1], &box[3]);
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
    if (!pre || sp_grow((void **)bounds, cap_b, (size_t)n * 2 * sizeof **bounds) ||
        sp_grow((void **)kk, cap_k, (size_t)n * (size_t)ksize * sizeof **kk)) {
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

#if SP_RESAMPLE_X86
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

/* The horizontal pass on pmaddwd, still bit for bit PIL's. Each 22-bit
 * coefficient k splits exactly into k = hi * 2^11 + lo, hi = k >> 11 and
 * lo = k & 2047, both 16-bit; then sum(p * k) = (sum(p * hi) << 11) +
 * sum(p * lo), the same int32 PIL computes (no step overflows: |sum(p * k)|
 * stays under 2^31 as in PIL). One pmaddwd takes two taps of R, G and B.
 *
 * split_coeffs lays the halves out per tap pair j and output pixel i as
 * eight int16 [hi(2j) hi(2j+1)] x 3 channels + 2 zeros, his at
 * k16[(j * w + i) * 8], los after all the his; and, per output pixel, its
 * first byte in the row and its tap pairs (plan_x), and fast_w: the output
 * pixels before the first one whose 8-byte loads would pass the row's end.
 * All of it depends on the geometry alone, so it serves every row. */
static int split_coeffs(sp_resampler *r, int in_w, int w)
{
    int pairs = (r->ksize_x + 1) / 2;
    size_t plane = (size_t)pairs * (size_t)w * 8;
    if (sp_grow((void **)&r->k16_x, &r->cap_k16, 2 * plane * sizeof *r->k16_x) ||
        sp_grow((void **)&r->plan_x, &r->cap_plan, (size_t)w * 2 * sizeof *r->plan_x))
        return -1;
    for (int j = 0; j < pairs; j++)
        for (int i = 0; i < w; i++) {
            const int32_t *k = r->k_x + (size_t)i * (size_t)r->ksize_x;
            int32_t k0 = k[2 * j], k1 = 2 * j + 1 < r->ksize_x ? k[2 * j + 1] : 0;
            int16_t *hi = r->k16_x + ((size_t)j * (size_t)w + (size_t)i) * 8, *lo = hi + plane;
            for (int ch = 0; ch < 4; ch++) {
                hi[2 * ch] = (int16_t)(ch < 3 ? k0 >> 11 : 0), hi[2 * ch + 1] = (int16_t)(ch < 3 ? k1 >> 11 : 0);
                lo[2 * ch] = (int16_t)(ch < 3 ? k0 & 2047 : 0), lo[2 * ch + 1] = (int16_t)(ch < 3 ? k1 & 2047 : 0);
            }
        }
    r->fast_w = w;
    for (int i = 0; i < w; i++) {
        int first = r->bounds_x[2 * i] * 3, n = (r->bounds_x[2 * i + 1] + 1) / 2;
        r->plan_x[2 * i] = first, r->plan_x[2 * i + 1] = n;
        if (first + 6 * (n - 1) + 8 > in_w * 3 && r->fast_w == w)
            r->fast_w = i;
    }
    return 0;
}

#if SP_RESAMPLE_X86
/* Output pixel i of two rows at once, one per 128-bit lane, as 32-bit
 * R G B x before clipping: 8 bytes loaded at each tap pair (two RGB pixels
 * and 2 bytes ignored), spread to 16-bit [R0 R1 G0 G1 B0 B1 0 0], multiplied
 * and summed against both halves of the coefficients, which the rows share. */
__attribute__((target("avx2"), always_inline)) static inline __m256i madd_pixel(const uint8_t *in0, const uint8_t *in1,
                                                                                const int *plan, const int16_t *kp,
                                                                                size_t step, size_t plane)
{
    const __m256i spread = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1, 0, -1, 3, -1, 1,
                                            -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
    const uint8_t *a = in0 + plan[0], *b = in1 + plan[0];
    __m256i hi = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
    for (int j = 0; j < plan[1]; j++, a += 6, b += 6, kp += step) {
        __m128i pa = _mm_loadl_epi64((const __m128i *)(const void *)a);
        __m128i pb = _mm_loadl_epi64((const __m128i *)(const void *)b);
        __m256i px = _mm256_shuffle_epi8(_mm256_inserti128_si256(_mm256_castsi128_si256(pa), pb, 1), spread);
        __m256i kh = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)kp));
        __m256i kl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(kp + plane)));
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(px, kh));
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(px, kl));
    }
    __m256i sum = _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(hi, 11), lo),
                                   _mm256_set1_epi32(1 << (PRECISION_BITS - 1)));
    return _mm256_srai_epi32(sum, PRECISION_BITS);
}

/* Rows in0 and in1 (the same row twice for an odd one out) into out0 and
 * out1: four output pixels of both a step, clipped to 8 bits by saturating
 * packs and written as 12 bytes a row; the pixels from fast_w on go to the
 * 32-bit path. */
__attribute__((target("avx2"))) static void horizontal2_rgb_madd(const uint8_t *in0, const uint8_t *in1, int in_w,
                                                                 uint8_t *out0, uint8_t *out1, int w,
                                                                 const sp_resampler *r)
{
    const __m256i compact = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1, 0, 1, 2, 4, 5, 6,
                                             8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    size_t step = (size_t)w * 8, plane = (size_t)((r->ksize_x + 1) / 2) * step;
    int xx = 0;
    for (; xx + 3 < r->fast_w; xx += 4) {
        const int *plan = r->plan_x + 2 * xx;
        const int16_t *kp = r->k16_x + (size_t)xx * 8;
        __m256i s0 = madd_pixel(in0, in1, plan, kp, step, plane);
        __m256i s1 = madd_pixel(in0, in1, plan + 2, kp + 8, step, plane);
        __m256i s2 = madd_pixel(in0, in1, plan + 4, kp + 16, step, plane);
        __m256i s3 = madd_pixel(in0, in1, plan + 6, kp + 24, step, plane);
        /* per lane (row): pixels 0 1 as 16-bit, then 2 3; to bytes (clip8); RGB only */
        __m256i p = _mm256_packus_epi16(_mm256_packs_epi32(s0, s1), _mm256_packs_epi32(s2, s3));
        p = _mm256_shuffle_epi8(p, compact);
        __m128i p0 = _mm256_castsi256_si128(p), p1 = _mm256_extracti128_si256(p, 1);
        uint8_t *o0 = out0 + 3 * xx, *o1 = out1 + 3 * xx;
        if (xx + 6 <= w) { /* 16 bytes fit: the 4 past these 12 are written again next step */
            _mm_storeu_si128((__m128i *)(void *)o1, p1);
            _mm_storeu_si128((__m128i *)(void *)o0, p0);
        } else {
            uint32_t t0 = (uint32_t)_mm_extract_epi32(p0, 2), t1 = (uint32_t)_mm_extract_epi32(p1, 2);
            _mm_storel_epi64((__m128i *)(void *)o1, p1);
            memcpy(o1 + 8, &t1, 4);
            _mm_storel_epi64((__m128i *)(void *)o0, p0);
            memcpy(o0 + 8, &t0, 4);
        }
    }
    if (xx < w) { /* the last pixels, near the row's end */
        const int *b = r->bounds_x + 2 * xx;
        const int32_t *k = r->k_x + (size_t)xx * (size_t)r->ksize_x;
        horizontal_rgb_sse41(in1, in_w, out1 + 3 * xx, w - xx, b, k, r->ksize_x);
        horizontal_rgb_sse41(in0, in_w, out0 + 3 * xx, w - xx, b, k, r->ksize_x);
    }
}
#endif

/* What the CPU has, found once at start-up (before any thread): 0 none, 1
 * SSE4.1, 2 AVX2; always 0 without the x86 paths. */
static int level, cpu_level;
#if SP_RESAMPLE_X86
__attribute__((constructor)) static void find_level(void)
{
    __builtin_cpu_init();
    level = cpu_level = __builtin_cpu_supports("avx2") ? 2 : __builtin_cpu_supports("sse4.1") ? 1 : 0;
}
#endif

int sp_resample_set_level(int want)
{
    level = want < 0 ? 0 : want < cpu_level ? want : cpu_level;
    return level;
}

static void horizontal(const uint8_t *in, int in_w, uint8_t *out, int w, int c, const int *bounds, const int32_t *kk,
                       int ksize)
{
#if SP_RESAMPLE_X86
    if (c == 3 && level >= 1) {
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
#if defined(__SANITIZE_THREAD__) || !SP_RESAMPLE_X86
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

#if SP_RESAMPLE_X86
/* vertical with AVX2, 32 values a step, their sums kept in registers over
 * the taps (the loop above keeps them in memory); the same arithmetic. */
__attribute__((target("avx2"))) static void vertical_avx2(const uint8_t *src, size_t stride, uint8_t *out, int len,
                                                          int ymin, int n, const int32_t *k, int32_t *acc)
{
    const __m256i round = _mm256_set1_epi32(1 << (PRECISION_BITS - 1));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int i = 0;
    for (; i + 32 <= len; i += 32) {
        __m256i a0 = round, a1 = round, a2 = round, a3 = round;
        const uint8_t *p = src + (size_t)ymin * stride + (size_t)i;
        for (int y = 0; y < n; y++, p += stride) {
            __m256i ky = _mm256_set1_epi32(k[y]);
            a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const void *)p)), ky));
            a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const void *)(p + 8))), ky));
            a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const void *)(p + 16))), ky));
            a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const void *)(p + 24))), ky));
        }
        a0 = _mm256_srai_epi32(a0, PRECISION_BITS), a1 = _mm256_srai_epi32(a1, PRECISION_BITS);
        a2 = _mm256_srai_epi32(a2, PRECISION_BITS), a3 = _mm256_srai_epi32(a3, PRECISION_BITS);
        /* clip8 by saturating packs; the packs interleave 128-bit lanes, order puts them back */
        __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(a0, a1), _mm256_packs_epi32(a2, a3));
        _mm256_storeu_si256((__m256i *)(void *)(out + i), _mm256_permutevar8x32_epi32(b, order));
    }
    if (i < len)
        vertical(src + i, stride, out + i, len - i, ymin, n, k, acc);
}
#endif

int sp_resample(sp_resampler *r, const uint8_t *in, int in_w, int in_h, int c, int out_w, int out_h, int x0,
                int y0, int w, int h, int filter, uint8_t *out)
{
    return sp_resample_rows(r, in, (size_t)in_w * (size_t)c, in_w, in_h, c, out_w, out_h, x0, y0, w, h, filter, out);
}

int sp_resample_rows(sp_resampler *r, const uint8_t *in, size_t in_stride, int in_w, int in_h, int c, int out_w,
                     int out_h, int x0, int y0, int w, int h, int filter, uint8_t *out)
{
    if (filter < 0 || filter >= SP_FILTER_COUNT || c < 1 || c > 4 || x0 < 0 || y0 < 0 || w < 1 || h < 1 ||
        x0 + w > out_w || y0 + h > out_h || in_w < 1 || in_h < 1 || in_stride < (size_t)in_w * (size_t)c)
        return -1;
    int key[8] = {in_w, in_h, out_w, out_h, x0, y0, w * 16 + filter, h};
    if (memcmp(key, r->key, sizeof key)) {
        if (coeffs(in_w, out_w, x0, w, filter, &r->bounds_x, &r->cap_bx, &r->k_x, &r->cap_kx, &r->ksize_x) ||
            coeffs(in_h, out_h, y0, h, filter, &r->bounds_y, &r->cap_by, &r->k_y, &r->cap_ky, &r->ksize_y))
            return -1;
        memcpy(r->key, key, sizeof key);
        r->split = 0;
    }
    int need_h = out_w != in_w, need_v = out_h != in_h;
    int rgb_madd = c == 3 && level == 2 && need_h;
    if (rgb_madd && !r->split) {
        if (split_coeffs(r, in_w, w))
            return -1;
        r->split = 1;
    }
    /* the source rows the window's output rows read */
    int ybox_first = r->bounds_y[0], ybox_last = r->bounds_y[2 * (h - 1)] + r->bounds_y[2 * (h - 1) + 1];
    const uint8_t *src = in;
    size_t stride = in_stride;
    int yshift = 0;
    if (need_h) {
        int rows = ybox_last - ybox_first;
        if (!need_v) /* only the window's own rows */
            ybox_first = y0, rows = h;
        size_t row = (size_t)w * (size_t)c;
        if (sp_grow((void **)&r->tmp, &r->cap_tmp, row * (size_t)rows))
            return -1;
        int y = 0;
#if SP_RESAMPLE_X86
        for (; rgb_madd && y < rows; y += 2) { /* two rows a call; the last one twice when odd */
            int y1 = y + 1 < rows ? y + 1 : y;
            horizontal2_rgb_madd(in + (size_t)(ybox_first + y) * stride, in + (size_t)(ybox_first + y1) * stride, in_w,
                                 r->tmp + (size_t)y * row, r->tmp + (size_t)y1 * row, w, r);
        }
#endif
        for (; y < rows; y++)
            horizontal(in + (size_t)(ybox_first + y) * stride, in_w, r->tmp + (size_t)y * row, w, c, r->bounds_x,
                       r->k_x, r->ksize_x);
        src = r->tmp;
        stride = row;
        yshift = ybox_first;
    } else {
        src = in + (size_t)x0 * (size_t)c; /* no horizontal pass: the window's columns */
    }
    size_t out_row = (size_t)w * (size_t)c;
    if (need_v && sp_grow((void **)&r->acc, &r->cap_acc, out_row * sizeof *r->acc))
        return -1;
    for (int yy = 0; yy < h; yy++) {
        if (need_v) {
            uint8_t *o = out + (size_t)yy * out_row;
            int ymin = r->bounds_y[2 * yy] - yshift, n = r->bounds_y[2 * yy + 1];
            const int32_t *k = r->k_y + (size_t)yy * (size_t)r->ksize_y;
#if SP_RESAMPLE_X86
            if (level == 2) {
                vertical_avx2(src, stride, o, (int)out_row, ymin, n, k, r->acc);
                continue;
            }
#endif
            vertical(src, stride, o, (int)out_row, ymin, n, k, r->acc);
        } else {
            int sy = y0 + yy - yshift;
            memcpy(out + (size_t)yy * out_row, src + (size_t)sy * stride, out_row);
        }
    }
    return 0;
}
