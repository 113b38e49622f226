/* The resampler's vector paths against its plain C one: for every filter,
 * shrinking and enlarging, whole results and windows, 1 and 3 channels,
 * odd row counts, widths under one vector step and the columns near a row's
 * end, each level the CPU has must give the very bytes of level 0 (which
 * the golden test holds to PIL). Exits 77 (a counted skip) when a level the
 * build has is one the CPU lacks, after comparing the levels it has; fails
 * when the level in effect is not the best the CPU reports. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "formats/resample.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static int between(int lo, int hi) { return lo + (int)(next() % (uint32_t)(hi - lo + 1)); }

/* Noise, smooth ramps and runs of 0 and 255 (where clipping happens). */
static void fill(uint8_t *p, size_t n, int kind)
{
    for (size_t i = 0; i < n; i++)
        p[i] = kind == 0 ? (uint8_t)next() : kind == 1 ? (uint8_t)(i * 7 / 5) : (next() & 8) ? 255 : 0;
}

/* One geometry at every level; counts the cases compared. */
static int compare_levels(int in_w, int in_h, int c, int out_w, int out_h, int x0, int y0, int w, int h, int filter,
                          int kind, int top)
{
    size_t n_in = (size_t)in_w * in_h * c, n_out = (size_t)w * h * c;
    uint8_t *in = malloc(n_in), *want = malloc(n_out), *got = malloc(n_out);
    fill(in, n_in, kind);
    sp_resampler r0 = {0};
    sp_resample_set_level(0);
    int rc = sp_resample(&r0, in, in_w, in_h, c, out_w, out_h, x0, y0, w, h, filter, want);
    CHECK(rc == 0, "level 0 failed: %dx%dx%d -> %dx%d", in_w, in_h, c, out_w, out_h);
    for (int lv = 1; lv <= top; lv++) {
        sp_resampler r = {0};
        sp_resample_set_level(lv);
        memset(got, 0xA5, n_out);
        CHECK(sp_resample(&r, in, in_w, in_h, c, out_w, out_h, x0, y0, w, h, filter, got) == 0, "level %d failed", lv);
        size_t at = 0;
        while (at < n_out && got[at] == want[at])
            at++;
        CHECK(at == n_out,
              "level %d differs from level 0: %s %dx%dx%d -> %dx%d window (%d,%d %dx%d), byte %zu: %d against %d", lv,
              sp_filter_name(filter), in_w, in_h, c, out_w, out_h, x0, y0, w, h, at, at < n_out ? got[at] : 0,
              at < n_out ? want[at] : 0);
        /* a second call on the same resampler reuses its coefficients */
        memset(got, 0xA5, n_out);
        sp_resample(&r, in, in_w, in_h, c, out_w, out_h, x0, y0, w, h, filter, got);
        CHECK(!memcmp(got, want, n_out), "level %d differs when the resampler is reused", lv);
        sp_resampler_free(&r);
    }
    sp_resampler_free(&r0);
    free(in), free(want), free(got);
    return 1;
}

int main(void)
{
    int top = sp_resample_set_level(99), cases = 0;
    /* ImageNet-like photographs to 224 (shorter side, centre crop) and to 32 */
    int sides[][2] = {{500, 375}, {375, 500}, {500, 333}, {333, 500}, {448, 448}, {640, 480}};
    for (int s = 0; s < 6; s++)
        for (int f = 0; f < SP_FILTER_COUNT; f++)
            for (int t = 0; t < 2; t++) {
                int W = sides[s][0], H = sides[s][1], size = t ? 32 : 224;
                int ow = W <= H ? size : (int)((long)size * W / H), oh = W <= H ? (int)((long)size * H / W) : size;
                cases += compare_levels(W, H, 3, ow, oh, (ow - size) / 2, (oh - size) / 2, size, size, f, s % 3, top);
            }
    /* random geometries: tiny to large, shrinking and enlarging, windows */
    for (int i = 0; i < 400; i++) {
        int in_w = between(1, i < 300 ? 64 : 700), in_h = between(1, i < 300 ? 40 : 300);
        int out_w = between(1, i % 3 ? in_w + 8 : 3 * in_w), out_h = between(1, i % 4 ? in_h + 5 : 2 * in_h);
        int w = between(1, out_w), h = between(1, out_h);
        int x0 = between(0, out_w - w), y0 = between(0, out_h - h);
        if (i % 5 == 0)
            x0 = 0, y0 = 0, w = out_w, h = out_h;
        cases += compare_levels(in_w, in_h, i % 4 == 3 ? 1 : 3, out_w, out_h, x0, y0, w, h, i % SP_FILTER_COUNT,
                                i % 3, top);
    }
    printf("compared %d geometries at levels 1..%d against level 0\n", cases, top);
#if defined(__x86_64__)
    /* the build has levels 1 (SSE4.1) and 2 (AVX2); the CPU says which it runs */
    __builtin_cpu_init();
    int cpu = __builtin_cpu_supports("avx2") ? 2 : __builtin_cpu_supports("sse4.1") ? 1 : 0;
    CHECK(top == cpu, "the resampler runs level %d, the CPU has level %d", top, cpu);
    CHECK(cases > 0, "no geometry compared");
    if (checks_failed)
        return CHECK_DONE("test_resample");
    if (top < 2) {
        (void)CHECK_DONE("test_resample");
        fprintf(stderr, "levels %d..2 not compared: the CPU lacks %s\n", top + 1, top == 0 ? "SSE4.1 and AVX2" : "AVX2");
        return 77;
    }
    return CHECK_DONE("test_resample");
#else
    (void)CHECK_DONE("test_resample");
    fprintf(stderr, "no vector level compared: this build has none outside x86-64\n");
    return 77;
#endif
}
