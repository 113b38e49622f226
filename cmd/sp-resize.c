/* sp-resize: pixel records to one size, with PIL's resampling. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "formats/jpeg_encode.h"
#include "pipeline/parallel.h"
#include "pipeline/resize.h"
#include "pipeline/stage.h"

static const char about[] =
    "Resize the pixel records of a record stream to SIZE x SIZE (or W x H) on\n"
    "stdout. With no STREAM, or when STREAM is -, read stdin.\n"
    "\n"
    "Resampling is PIL's (Image.resize) exactly: separable, antialiased when\n"
    "shrinking (the filter widens with the scale factor). A record already at\n"
    "the target size passes through untouched. uint8 records of 1 to 4 channels.\n";

/* --mode, --filter, --resize-to, --pad-value into the sp_resize_opts at opt->dest */
static int set_resize(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    return sp_resize_opts_set(opt->dest, opt->name, arg, why, why_len);
}

typedef struct tool {
    sp_stage out;
    sp_resize_opts o;
    sp_pmap *map;
    uint64_t resized, passed;
} tool;

/* A worker thread's own: its resampler, and the resized pixels it encodes (--jpeg-quality). */
typedef struct sp_resizer {
    sp_resampler rs;
    sp_buf pixels;
} sp_resizer;

/* Runs on a worker thread: touches only its arguments and o (read-only). */
static int transform(void *ctx, void *scratch, const sp_record *rec, const uint8_t *in, size_t in_len,
                     sp_record *out_rec, sp_buf *out, sp_err *err)
{
    const sp_resize_opts *o = ctx;
    int ow, oh;
    sp_resize_out_size(o, (int)rec->w, (int)rec->h, &ow, &oh);
    if (!o->jpeg_quality && (int)rec->w == ow && (int)rec->h == oh) /* already at size: untouched */
        return sp_buf_append(out, in, in_len) ? sp_fail(err, SP_EXIT_SYSTEM, "out of memory") : 0;
    size_t n = (size_t)ow * (size_t)oh * rec->c;
    const uint8_t *px = in;
    sp_resizer *rz = scratch;
    if ((int)rec->w != ow || (int)rec->h != oh) {
        sp_buf *dst = o->jpeg_quality ? &rz->pixels : out;
        if (sp_buf_reserve(dst, n) || sp_resize_pixels(&rz->rs, o, in, (int)rec->w, (int)rec->h, (int)rec->c, dst->data))
            return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot resize (out of memory)", rec->key);
        dst->len = n;
        px = dst->data;
    }
    out_rec->w = (uint32_t)ow;
    out_rec->h = (uint32_t)oh;
    if (!o->jpeg_quality)
        return 0;
    /* encoded out: the JPEG of the resized pixels */
    if (sp_jpeg_encode(px, (uint32_t)ow, (uint32_t)oh, o->jpeg_quality, out, err))
        return -1;
    out_rec->kind = SP_KIND_ENCODED;
    out_rec->codec = SP_CODEC_JPEG;
    out_rec->dtype = SP_DTYPE_U8;
    return 0;
}

static void *new_resampler(void *ctx)
{
    (void)ctx;
    return calloc(1, sizeof(sp_resizer));
}

static void free_resampler(void *p)
{
    sp_resizer *r = p;
    if (r) {
        sp_resampler_free(&r->rs);
        sp_buf_free(&r->pixels);
    }
    free(r);
}

static int on_meta(void *ctx, const json_t *meta, sp_err *err)
{
    tool *t = ctx;
    /* the records before a metadata frame go out before it */
    if (t->map && t->out.w && sp_pmap_finish(t->map, t->out.w, err))
        return -1;
    return sp_stage_meta(&t->out, meta, err);
}

static int on_record(void *ctx, sp_reader *r, sp_record *rec, sp_err *err)
{
    tool *t = ctx;
    if (rec->kind != SP_KIND_PIXELS || rec->dtype != SP_DTYPE_U8 || rec->c > 4)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s%s; sp-resize takes uint8 pixels of 1 to 4 channels "
                       "(run sp-decode first)", rec->key, sp_kind_record(rec->kind),
                       rec->kind == SP_KIND_PIXELS ? " of another dtype or more channels" : "");
    if (t->o.jpeg_quality && rec->c != 3)
        return sp_fail(err, SP_EXIT_DATA, "%s: %u channels; --jpeg-quality encodes RGB (3 channels)", rec->key,
                       rec->c);
    const uint8_t *px;
    if (sp_reader_payload(r, rec, &px, err))
        return -1;
    int ow, oh;
    sp_resize_out_size(&t->o, (int)rec->w, (int)rec->h, &ow, &oh);
    if ((int)rec->w == ow && (int)rec->h == oh)
        t->passed++;
    else
        t->resized++;
    return sp_pmap_push(t->map, rec, px, t->out.w, err);
}

/* Takes the SIZE operand (the first; the rest are streams) into o and checks
 * the options as a whole; then refuses a terminal on stdout. -1 to go on, or
 * the status main exits with (a usage error already printed). */
static int take_size(sp_resize_opts *o, sp_cli_args *args)
{
    char why[256];
    if (args->n > 0 && sp_resize_opts_set(o, "size", args->v[0], why, sizeof why))
        return sp_cli_usage_error("%s", why);
    if (sp_resize_opts_check(o, why, sizeof why))
        return sp_cli_usage_error("%s", why);
    return sp_cli_stdout_is_safe() ? SP_EXIT_USAGE : -1;
}

int main(int argc, char **argv)
{
    tool t = {0};
    t.o.filter = SP_FILTER_BILINEAR;
    int threads = 1;
    const sp_opt table[] = {
        {"mode", 'm', SP_OPT_CALL, &t.o, .call = set_resize, .arg = "MODE",
         .help = "crop (default): the shorter side to SIZE, then the\n"
                 "centre SIZE x SIZE (torchvision Resize + CenterCrop);\n"
                 "squash: exactly W x H, aspect ratio ignored;\n"
                 "pad: fit inside W x H, centred, the rest --pad-value;\n"
                 "shorter: shrink the shorter side to SIZE, aspect kept;\n"
                 "longer: shrink the longer side to at most SIZE, aspect\n"
                 "kept (images of many sizes: for --jpeg-quality)"},
        {"jpeg-quality", 0, SP_OPT_CALL, &t.o, .call = set_resize, .arg = "Q",
         .help = "encoded records out: each resized image as a JPEG of\n"
                 "quality Q (1..100; 3-channel records), decoded at load"},
        {"filter", 'f', SP_OPT_CALL, &t.o, .call = set_resize, .arg = "NAME",
         .help = "bilinear (default), bicubic, lanczos3, area (box)"},
        {"resize-to", 0, SP_OPT_CALL, &t.o, .call = set_resize, .arg = "N",
         .help = "crop mode: the shorter side to N first, then the centre\n"
                 "SIZE (the common 'resize 256, crop 224' recipe)"},
        {"pad-value", 0, SP_OPT_CALL, &t.o, .call = set_resize, .arg = "V",
         .help = "pad mode: the value of the padding, 0..255 (0)"},
        {"threads", 'j', SP_OPT_INT, &threads, .min = 1, .max = 256, .arg = "N",
         .help = "resize on N threads (default 1); records keep their order", .flags = SP_OPT_NO_RECIPE},
        {0},
    };
    const sp_cli_tool cli = {"sp-resize", "[OPTION]... SIZE|WxH [STREAM]...", about, table, NULL};
    sp_cli_args args;
    int status = sp_cli_parse(&cli, argc, argv, &args);
    if (status >= 0 || (status = take_size(&t.o, &args)) >= 0)
        return status;
    sp_err err = {0};
    /* the size operand shapes the bytes: the recipe has it after the options */
    json_t *step = json_deep_copy(sp_cli_recipe(&err));
    if (!step || json_array_append_new(json_object_get(step, "args"), json_string(args.v[0])))
        return json_decref(step), sp_report(&err);
    sp_stage_init(&t.out, step, STDOUT_FILENO);
    sp_progress prog;
    sp_progress_init(&prog);
    sp_pmap_ops ops = {transform, new_resampler, free_resampler, &t.o};
    t.map = sp_pmap_create((int)threads, 4 * (int)threads, &ops, &err);
    int rc = t.map ? sp_stage_each(args.n - 1, args.v + 1, on_meta, on_record, &t, sp_progress_cb, &prog, &err) : -1;
    if (rc == 0)
        rc = sp_pmap_finish(t.map, t.out.w, &err);
    if (rc == 0)
        rc = sp_stage_finish(&t.out, &err);
    sp_progress_done(&prog);
    status = sp_cli_exit(rc ? &err : NULL);
    if (rc == 0)
        sp_info("%llu records resized, %llu already at their size%s", (unsigned long long)t.resized,
                (unsigned long long)t.passed, t.o.jpeg_quality ? " (all encoded as JPEG)" : "");
    sp_pmap_free(t.map);
    sp_stage_free(&t.out);
    json_decref(step);
    return status;
}
