/* The load-time views (pipeline/views.h) on JPEGs made here with libjpeg: the train view's draws (ranges, the
 * centre-crop fallback, the flip's rate), its reproducibility per (seed, epoch, record) across scratch buffers and
 * threads, the scaled decode against the full-scale one, grayscale, damaged bytes named by their reason, and
 * sp_resample_rows (what the train view resizes with) against sp_resample of the part cut out. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "check.h"
#include "pipeline/views.h"

/* A w x h JPEG of smooth ramps and a diagonal triangle wave (c = 3) or gray (c = 1), quality 90, 4:2:0; caller frees *out. */
static void make_jpeg(int w, int h, int c, uint8_t **out, size_t *n)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    unsigned long len = 0;
    *out = NULL;
    jpeg_mem_dest(&ci, out, &len);
    ci.image_width = (JDIMENSION)w, ci.image_height = (JDIMENSION)h;
    ci.input_components = c;
    ci.in_color_space = c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    uint8_t *row = malloc((size_t)w * (size_t)c);
    while (ci.next_scanline < ci.image_height) {
        int y = (int)ci.next_scanline;
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                row[x * c + k] = (uint8_t)(k == 0 ? x * 255 / w : k == 1 ? y * 255 / h : (x + y) % 200 < 100 ? (x + y) % 200 * 2 + 20 : (200 - (x + y) % 200) * 2 + 20);
        JSAMPROW rows[1] = {row};
        jpeg_write_scanlines(&ci, rows, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    *n = len;
}

static void test_boxes(void)
{
    const int sizes[][2] = {{500, 375}, {375, 500}, {500, 500}, {64, 48}, {1, 1}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int W = sizes[s][0], H = sizes[s][1], flips = 0, fallbacks = 0, bad = 0;
        double area = (double)W * H;
        const int N = 20000;
        for (int r = 0; r < N; r++) {
            sp_view_box b;
            sp_view_train_box((uint32_t)W, (uint32_t)H, 7, 3, (uint64_t)r, NULL, &b);
            flips += b.flip, fallbacks += b.fallback;
            if (b.x < 0 || b.y < 0 || b.w < 1 || b.h < 1 || b.x + b.w > W || b.y + b.h > H)
                bad++;
            else if (!b.fallback) {
                /* the drawn sides were rounded from an area in [0.08, 1] x area and a ratio in [3/4, 4/3] */
                double lo_w = b.w - 0.5, hi_w = b.w + 0.5, lo_h = b.h - 0.5, hi_h = b.h + 0.5;
                if (hi_w * hi_h < 0.08 * area || lo_w * lo_h > area || hi_w / lo_h < 0.75 || lo_w / hi_h > 4.0 / 3.0)
                    bad++;
            }
        }
        CHECK(bad == 0, "%dx%d: %d boxes outside the image or the ranges", W, H, bad);
        CHECK(flips > N * 0.47 && flips < N * 0.53, "%dx%d: %d flips in %d draws", W, H, flips, N);
        if (W >= 64)
            CHECK(fallbacks < N / 50, "%dx%d: %d fallbacks in %d draws", W, H, fallbacks, N);
    }
    /* other ranges (sp-train --crop-scale, the Loader's scale= and ratio=): the drawn
     * crops keep within them, and a narrow scale range gives other crops than the default */
    {
        const sp_view_range narrow = {0.9, 1.0, 0.9, 1.1};
        int bad = 0, differ = 0, n = 0;
        for (int r = 0; r < 5000; r++) {
            sp_view_box b, d;
            sp_view_train_box(500, 500, 7, 3, (uint64_t)r, &narrow, &b);
            sp_view_train_box(500, 500, 7, 3, (uint64_t)r, NULL, &d);
            differ += memcmp(&b, &d, sizeof b) != 0;
            if (b.fallback)
                continue;
            n++;
            double lo_w = b.w - 0.5, hi_w = b.w + 0.5, lo_h = b.h - 0.5, hi_h = b.h + 0.5, area = 500.0 * 500;
            if (hi_w * hi_h < 0.9 * area || lo_w * lo_h > area || hi_w / lo_h < 0.9 || lo_w / hi_h > 1.1)
                bad++;
        }
        CHECK(bad == 0 && n > 100, "scale (0.9, 1), ratio (0.9, 1.1): %d of %d crops outside", bad, n);
        CHECK(differ > 4900, "scale (0.9, 1): %d of 5000 crops differ from the default's", differ);
        const sp_view_range zero = {0, 0, 0, 0};
        sp_view_box b, d;
        sp_view_train_box(500, 375, 1, 0, 9, &zero, &b);
        sp_view_train_box(500, 375, 1, 0, 9, NULL, &d);
        CHECK(!memcmp(&b, &d, sizeof b), "an all-zero range is not the default");
    }
    /* extreme aspect ratios: no attempt fits, the centre crop with the ratio clamped */
    for (int r = 0; r < 200; r++) {
        sp_view_box b;
        sp_view_train_box(2000, 100, 1, 0, (uint64_t)r, NULL, &b);
        CHECK(b.fallback && b.w == 133 && b.h == 100 && b.x == 933 && b.y == 0, "wide: %d,%d %dx%d fallback %d", b.x,
              b.y, b.w, b.h, b.fallback);
        sp_view_train_box(100, 2000, 1, 0, (uint64_t)r, NULL, &b);
        CHECK(b.fallback && b.w == 100 && b.h == 133 && b.x == 0 && b.y == 933, "tall: %d,%d %dx%d fallback %d", b.x,
              b.y, b.w, b.h, b.fallback);
    }
    /* each of seed, epoch and record changes the draw */
    sp_view_box a, b, c, d;
    int same_seed = 0, same_epoch = 0, same_record = 0;
    for (int r = 0; r < 100; r++) {
        sp_view_train_box(500, 375, 1, 0, (uint64_t)r, NULL, &a);
        sp_view_train_box(500, 375, 2, 0, (uint64_t)r, NULL, &b);
        sp_view_train_box(500, 375, 1, 1, (uint64_t)r, NULL, &c);
        sp_view_train_box(500, 375, 1, 0, (uint64_t)r + 1000, NULL, &d);
        same_seed += !memcmp(&a, &b, sizeof a), same_epoch += !memcmp(&a, &c, sizeof a);
        same_record += !memcmp(&a, &d, sizeof a);
    }
    CHECK(same_seed < 3 && same_epoch < 3 && same_record < 3, "equal draws: %d seed, %d epoch, %d record", same_seed,
          same_epoch, same_record);
}

typedef struct job {
    const uint8_t *jpeg;
    size_t n;
    uint32_t size;
    int first, count;
    uint8_t *out; /* count views */
    int failed;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    sp_view_scratch s = {0};
    size_t one = (size_t)j->size * j->size * 3;
    for (int i = 0; i < j->count; i++) {
        sp_err err = {0};
        j->failed += sp_view_train(j->jpeg, j->n, j->size, 42, 5, (uint64_t)(j->first + i), j->out + one * (size_t)i, &s,
                                   &err) != 0;
    }
    sp_view_scratch_free(&s);
    return NULL;
}

static void test_reproducible(const uint8_t *jpeg, size_t n)
{
    enum { RECORDS = 32, THREADS = 4 };
    const uint32_t size = 64;
    size_t one = (size_t)size * size * 3;
    uint8_t *serial = malloc(one * RECORDS), *threaded = malloc(one * RECORDS), *again = malloc(one);
    job all = {jpeg, n, size, 0, RECORDS, serial, 0};
    run_job(&all);
    CHECK(all.failed == 0, "%d train views failed", all.failed);
    job parts[THREADS];
    pthread_t t[THREADS];
    for (int k = 0; k < THREADS; k++) { /* the records in reverse order of threads, in other scratch buffers */
        parts[k] = (job){jpeg, n, size, (THREADS - 1 - k) * RECORDS / THREADS, RECORDS / THREADS,
                         threaded + one * (size_t)((THREADS - 1 - k) * RECORDS / THREADS), 0};
        pthread_create(&t[k], NULL, run_job, &parts[k]);
    }
    for (int k = 0; k < THREADS; k++)
        pthread_join(t[k], NULL);
    CHECK(!memcmp(serial, threaded, one * RECORDS), "threaded views differ from the serial ones");
    int distinct = 0;
    for (int r = 1; r < RECORDS; r++)
        distinct += memcmp(serial, serial + one * (size_t)r, one) != 0;
    CHECK(distinct == RECORDS - 1, "only %d of %d records' views differ from record 0's", distinct, RECORDS - 1);
    /* another epoch, another view */
    sp_view_scratch s = {0};
    sp_err err = {0};
    CHECK(sp_view_train(jpeg, n, size, 42, 6, 0, again, &s, &err) == 0, "%s", err.msg);
    CHECK(memcmp(again, serial, one) != 0, "epoch 6's view equals epoch 5's");
    sp_view_scratch_free(&s);
    free(serial), free(threaded), free(again);
}

/* The scaled partial decode against the full-scale one: the same box, close pixels. */
static void test_scaled(const uint8_t *jpeg, size_t n)
{
    const uint32_t size = 48;
    size_t one = (size_t)size * size * 3;
    uint8_t *a = malloc(one), *b = malloc(one);
    sp_view_scratch s = {0};
    int scaled = 0;
    for (int r = 0; r < 40; r++) {
        sp_err err = {0};
        sp_view_box ba, bb;
        CHECK(sp_view_train_ex(jpeg, n, size, 9, 0, (uint64_t)r, 0, a, &ba, &s, &err) == 0, "%s", err.msg);
        CHECK(sp_view_train_ex(jpeg, n, size, 9, 0, (uint64_t)r, SP_VIEW_FULL_SCALE | SP_VIEW_CHECK_ALL, b, &bb, &s,
                               &err) == 0,
              "%s", err.msg);
        CHECK(!memcmp(&ba, &bb, sizeof ba), "record %d: the flags changed the box", r);
        double sum = 0;
        for (size_t i = 0; i < one; i++)
            sum += abs(a[i] - b[i]);
        scaled += ba.w >= (int)size * 2 && ba.h >= (int)size * 2;
        CHECK(sum / (double)one < 3.0, "record %d (%dx%d crop): mean difference %.2f from the full-scale view", r, ba.w,
              ba.h, sum / (double)one);
        if (ba.w < (int)size * 2 || ba.h < (int)size * 2)
            CHECK(!memcmp(a, b, one), "record %d: a crop under 2 x size is not full-scale decoded", r);
    }
    CHECK(scaled >= 5, "only %d of 40 crops took a scaled decode", scaled);
    sp_view_scratch_free(&s);
    free(a), free(b);
}

static void test_gray(void)
{
    uint8_t *jpeg;
    size_t n;
    make_jpeg(200, 150, 1, &jpeg, &n);
    const uint32_t size = 32;
    uint8_t out[32 * 32 * 3];
    sp_view_scratch s = {0};
    sp_err err = {0};
    int equal = 1;
    CHECK(sp_view_train(jpeg, n, size, 1, 0, 0, out, &s, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < sizeof out; i += 3)
        equal &= out[i] == out[i + 1] && out[i] == out[i + 2];
    CHECK(sp_view_eval(jpeg, n, size, out, &s, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < sizeof out; i += 3)
        equal &= out[i] == out[i + 1] && out[i] == out[i + 2];
    CHECK(equal, "a grayscale JPEG's views do not have three equal channels");
    sp_view_scratch_free(&s);
    free(jpeg);
}

static int starts(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

static void test_damage(const uint8_t *jpeg, size_t n)
{
    const uint32_t size = 32;
    uint8_t out[32 * 32 * 3];
    sp_view_scratch s = {0};
    sp_err err = {0};
    /* cut in the middle: the eval view and a checking train view read past the cut */
    size_t cut = n * 6 / 10;
    CHECK(sp_view_eval(jpeg, cut, size, out, &s, &err) == -1 && starts(err.msg, "truncated: "), "eval: %s", err.msg);
    memset(&err, 0, sizeof err);
    CHECK(sp_view_train_ex(jpeg, cut, size, 1, 0, 0, SP_VIEW_CHECK_ALL, out, NULL, &s, &err) == -1 &&
              starts(err.msg, "truncated: ") && err.code == SP_EXIT_DATA,
          "train, checking all: %s", err.msg);
    /* without SP_VIEW_CHECK_ALL only a crop reaching past the cut fails */
    int failed = 0, other = 0;
    for (int r = 0; r < 50; r++) {
        memset(&err, 0, sizeof err);
        if (sp_view_train(jpeg, cut, size, 1, 0, (uint64_t)r, out, &s, &err)) {
            failed++;
            other += !starts(err.msg, "truncated: ");
        }
    }
    CHECK(failed > 0 && failed < 50 && other == 0, "%d of 50 cut train views failed, %d for another reason", failed,
          other);
    /* a 12-bit precision in the frame header */
    uint8_t *bad = malloc(n);
    memcpy(bad, jpeg, n);
    size_t sof = 2;
    while (sof + 4 < n && !(bad[sof] == 0xFF && bad[sof + 1] == 0xC0))
        sof++;
    CHECK(sof + 4 < n, "no SOF0 marker in the test JPEG");
    bad[sof + 4] = 12;
    memset(&err, 0, sizeof err);
    CHECK(sp_view_train(bad, n, size, 1, 0, 0, out, &s, &err) == -1 && starts(err.msg, "corrupt: JPEG: "), "train: %s",
          err.msg);
    memset(&err, 0, sizeof err);
    CHECK(sp_view_eval(bad, n, size, out, &s, &err) == -1 && starts(err.msg, "corrupt: JPEG: "), "eval: %s", err.msg);
    /* an image of a format not read (GIF), not an image, and nothing */
    memset(&err, 0, sizeof err);
    CHECK(sp_view_train((const uint8_t *)"GIF89a....", 10, size, 1, 0, 0, out, &s, &err) == -1 &&
              starts(err.msg, "unsupported: "),
          "%s", err.msg);
    memset(&err, 0, sizeof err);
    CHECK(sp_view_train((const uint8_t *)"hello, world", 12, size, 1, 0, 0, out, &s, &err) == -1 &&
              starts(err.msg, "not-an-image: "),
          "%s", err.msg);
    memset(&err, 0, sizeof err);
    CHECK(sp_view_eval(jpeg, 0, size, out, &s, &err) == -1 && starts(err.msg, "not-an-image: "), "%s", err.msg);
    memset(&err, 0, sizeof err);
    CHECK(sp_view_train(jpeg, 3, size, 1, 0, 0, out, &s, &err) == -1 && starts(err.msg, "truncated: "), "%s", err.msg);
    memset(&err, 0, sizeof err);
    CHECK(sp_view_train(jpeg, n, 0, 1, 0, 0, out, &s, &err) == -1, "size 0 accepted");
    /* over the scratch's pixel limit: refused from the header */
    s.max_pixels = 320 * 240 - 1;
    memset(&err, 0, sizeof err);
    CHECK(sp_view_train(jpeg, n, size, 1, 0, 0, out, &s, &err) == -1 && starts(err.msg, "too-large: "), "train: %s",
          err.msg);
    memset(&err, 0, sizeof err);
    CHECK(sp_view_eval(jpeg, n, size, out, &s, &err) == -1 && starts(err.msg, "too-large: "), "eval: %s", err.msg);
    s.max_pixels = 320 * 240;
    /* the scratch still works after the failures */
    memset(&err, 0, sizeof err);
    CHECK(sp_view_train(jpeg, n, size, 1, 0, 0, out, &s, &err) == 0, "%s", err.msg);
    sp_view_scratch_free(&s);
    sp_view_scratch_free(&s); /* twice: it leaves a zeroed scratch */
    free(bad);
}

/* sp_resample_rows on a part of an image equals sp_resample on that part cut out, for every filter and level. */
static void test_resample_rows(void)
{
    enum { W = 97, H = 71 };
    static uint8_t img[H][W][3], part[60 * 50 * 3], a[64 * 64 * 3], b[64 * 64 * 3];
    uint32_t v = 12345;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int k = 0; k < 3; k++)
                v = v * 1103515245u + 12345u, img[y][x][k] = (uint8_t)((x * 3 + y * 2 + k * 40) + (v >> 28));
    const int parts[][4] = {{13, 7, 60, 50}, {0, 0, 37, 21}, {37, 21, 60, 50}, {96 - 59, 70 - 49, 60, 50}};
    const int outs[][2] = {{24, 24}, {64, 48}, {60, 17}};
    int top = sp_resample_set_level(2);
    for (int lv = 0; lv <= top; lv++) {
        sp_resample_set_level(lv);
        for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
            for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++)
                for (int f = 0; f < SP_FILTER_COUNT; f++) {
                    int x0 = parts[p][0], y0 = parts[p][1], pw = parts[p][2], ph = parts[p][3];
                    int ow = outs[o][0], oh = outs[o][1];
                    for (int y = 0; y < ph; y++)
                        memcpy(part + (size_t)y * pw * 3, img[y0 + y][x0], (size_t)pw * 3);
                    sp_resampler r1 = {0}, r2 = {0};
                    int rc1 = sp_resample(&r1, part, pw, ph, 3, ow, oh, 0, 0, ow, oh, f, a);
                    int rc2 = sp_resample_rows(&r2, img[y0][x0], sizeof img[0], pw, ph, 3, ow, oh, 0, 0, ow, oh, f, b);
                    CHECK(rc1 == 0 && rc2 == 0 && !memcmp(a, b, (size_t)ow * oh * 3),
                          "level %d %s: part %zu to %dx%d differs from the part cut out", lv, sp_filter_name(f), p, ow,
                          oh);
                    sp_resampler_free(&r1), sp_resampler_free(&r2);
                }
    }
    sp_resample_set_level(top);
}

int main(void)
{
    uint8_t *jpeg;
    size_t n;
    make_jpeg(320, 240, 3, &jpeg, &n);
    test_boxes();
    test_resample_rows();
    test_reproducible(jpeg, n);
    test_scaled(jpeg, n);
    test_gray();
    test_damage(jpeg, n);
    free(jpeg);
    return CHECK_DONE("test_views");
}
