/* The load-time views (pipeline/views.h) of arbitrary bytes: train (scaled and partial, and full-scale checking
 * the whole file) and eval, with a small pixel limit. */
#include "fuzz.h"
#include "pipeline/views.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { SIZE = 24 };
    static uint8_t out[SIZE * SIZE * 3];
    sp_view_scratch s = {0};
    s.max_pixels = 1 << 22;
    sp_err err;
    volatile unsigned sum = 0;
    if (sp_view_train(data, size, SIZE, 1, 0, size, out, &s, &err) == 0)
        sum += out[0];
    if (sp_view_train_ex(data, size, SIZE, 2, 1, size, SP_VIEW_FULL_SCALE | SP_VIEW_CHECK_ALL, out, NULL, &s, &err) == 0)
        sum += out[1];
    if (sp_view_eval(data, size, SIZE, out, &s, &err) == 0)
        sum += out[2];
    (void)sum;
    sp_view_scratch_free(&s);
    return 0;
}
