/* JPEG and PNG decoding of arbitrary bytes, with a small pixel limit. */
#include "formats/image.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_image_opts o;
    sp_image_opts_default(&o);
    o.max_pixels = 1 << 22;
    sp_image img = {0};
    sp_err err;
    if (sp_image_decode(data, size, &o, &img, &err) == 0) {
        volatile unsigned sum = 0;
        for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++)
            sum += img.pixels[i];
        (void)sum;
    }
    sp_image_free(&img);
    return 0;
}
