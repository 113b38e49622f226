/* JPEG encoding of RGB pixels with libjpeg-turbo, and the header test for keeping a JPEG as shipped. */
#include "formats/jpeg_encode.h"

#include <jpeglib.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jfail {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jfail;

static void on_error(j_common_ptr c)
{
    jfail *e = (jfail *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

static void no_message(j_common_ptr c, int level) { (void)c, (void)level; }

int sp_jpeg_encode(const uint8_t *rgb, uint32_t w, uint32_t h, int quality, sp_buf *out, sp_err *err)
{
    if (!w || !h || w > JPEG_MAX_DIMENSION || h > JPEG_MAX_DIMENSION || quality < 1 || quality > 100)
        return sp_fail(err, SP_EXIT_SYSTEM, "JPEG: cannot encode %ux%u at quality %d", w, h, quality);
    struct jpeg_compress_struct ci;
    jfail e;
    /* libjpeg's memory destination (re)allocates the output: its pointer lives on the heap, so
     * the error path below still finds it after the longjmp */
    unsigned char **slot = calloc(1, sizeof *slot);
    unsigned long mem_len = 0;
    if (!slot)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    ci.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = on_error;
    e.pub.emit_message = no_message;
    if (setjmp(e.jb)) {
        jpeg_destroy_compress(&ci);
        free(*slot);
        free(slot);
        return sp_fail(err, SP_EXIT_SYSTEM, "JPEG: cannot encode: %s", e.msg);
    }
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, slot, &mem_len);
    ci.image_width = w;
    ci.image_height = h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci); /* YCbCr, 2x2 luma sampling: 4:2:0 */
    jpeg_set_quality(&ci, quality, TRUE);
    ci.optimize_coding = TRUE;
    ci.dct_method = JDCT_ISLOW;
    ci.write_JFIF_header = TRUE;
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row[1] = {(JSAMPROW)(rgb + (size_t)ci.next_scanline * w * 3)};
        jpeg_write_scanlines(&ci, row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    out->len = 0;
    int rc = sp_buf_append(out, *slot, (size_t)mem_len) ? sp_fail(err, SP_EXIT_SYSTEM, "out of memory") : 0;
    free(*slot);
    free(slot);
    return rc;
}

int sp_jpeg_keepable(const uint8_t *data, size_t len)
{
    if (len < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF)
        return 0;
    struct jpeg_decompress_struct ci;
    jfail e;
    ci.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = on_error;
    e.pub.emit_message = no_message;
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&ci);
        return 0;
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, data, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    int ok = (ci.num_components == 3 && (ci.jpeg_color_space == JCS_YCbCr || ci.jpeg_color_space == JCS_RGB)) ||
             (ci.num_components == 1 && ci.jpeg_color_space == JCS_GRAYSCALE);
    jpeg_destroy_decompress(&ci);
    return ok;
}
