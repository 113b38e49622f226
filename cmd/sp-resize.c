/* sp-resize: pixel records to one size, with PIL's resampling. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "pipeline/parallel.h"
#include "pipeline/resize.h"
#include "pipeline/stage.h"

static const char usage[] =
    "Usage: sp-resize [OPTION]... SIZE|WxH [STREAM]...\n"
    "Resize the pixel records of a record stream to SIZE x SIZE (or W x H) on\n"
    "stdout. With no STREAM, or when STREAM is -, read stdin.\n"
    "\n"
    "Resampling is PIL's (Image.resize) exactly: separable, antialiased when\n"
    "shrinking (the filter widens with the scale factor). A record already at\n"
    "the target size passes through untouched. uint8 records of 1 to 4 channels.\n"
    "\n"
    "  -m, --mode MODE      crop (default): the shorter side to SIZE, then the\n"
    "                       centre SIZE x SIZE (torchvision Resize + CenterCrop);\n"
    "                       squash: exactly W x H, aspect ratio ignored;\n"
    "                       pad: fit inside W x H, centred, the rest --pad-value\n"
    "  -f, --filter NAME    bilinear (default), bicubic, lanczos3, area (box)\n"
    "      --resize-to N    crop mode: the shorter side to N first, then the centre\n"
    "                       SIZE (the common 'resize 256, crop 224' recipe)\n"
    "      --pad-value V    pad mode: the value of the padding, 0..255 (0)\n"
    "  -j, --threads N      resize on N threads (default 1); records keep their order\n"
    "  -q, --quiet          report nothing but errors\n"
    "  -v, --verbose        report more\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n"
    "\n"
    "Exit status: 0 success; 1 bad input (a corrupt or cut stream, records that\n"
    "are not uint8 pixels); 2 usage error; 3 system error.\n";

typedef struct tool {
    sp_stage out;
    sp_resize_opts o;
    sp_pmap *map;
    uint64_t resized, passed;
} tool;

/* Runs on a worker thread: touches only its arguments and o (read-only). */
static int transform(void *ctx, void *scratch, const sp_record *rec, const uint8_t *in, size_t in_len,
                     sp_record *out_rec, sp_buf *out, sp_err *err)
{
    const sp_resize_opts *o = ctx;
    if ((int)rec->w == o->w && (int)rec->h == o->h) /* already at size: untouched */
        return sp_buf_append(out, in, in_len) ? sp_fail(err, SP_EXIT_SYSTEM, "out of memory") : 0;
    size_t n = (size_t)o->w * (size_t)o->h * rec->c;
    if (sp_buf_reserve(out, n) ||
        sp_resize_pixels(scratch, o, in, (int)rec->w, (int)rec->h, (int)rec->c, out->data))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot resize (out of memory)", rec->key);
    out->len = n;
    out_rec->w = (uint32_t)o->w;
    out_rec->h = (uint32_t)o->h;
    return 0;
}

static void *new_resampler(void *ctx)
{
    (void)ctx;
    return calloc(1, sizeof(sp_resampler));
}

static void free_resampler(void *r)
{
    if (r)
        sp_resampler_free(r);
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
        return sp_fail(err, SP_EXIT_DATA, "%s: a %s record%s; sp-resize takes uint8 pixels of 1 to 4 channels "
                       "(run sp-decode first)", rec->key, sp_kind_name(rec->kind),
                       rec->kind == SP_KIND_PIXELS ? " of another dtype or more channels" : "");
    const uint8_t *px;
    if (sp_reader_payload(r, rec, &px, err))
        return -1;
    if ((int)rec->w == t->o.w && (int)rec->h == t->o.h)
        t->passed++;
    else
        t->resized++;
    return sp_pmap_push(t->map, rec, px, t->out.w, err);
}

int main(int argc, char **argv)
{
    sp_cli_init(argc, argv);
    enum { O_RESIZE_TO = 256, O_PAD };
    static const struct option opts[] = {
        {"mode", required_argument, 0, 'm'},   {"filter", required_argument, 0, 'f'},
        {"resize-to", required_argument, 0, O_RESIZE_TO}, {"pad-value", required_argument, 0, O_PAD},
        {"threads", required_argument, 0, 'j'},
        {"quiet", no_argument, 0, 'q'},        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},         {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    tool t = {0};
    t.o.filter = SP_FILTER_BILINEAR;
    char why[256];
    uint64_t threads = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:f:j:qvhV", opts, NULL)) != -1) {
        if (c == 'j') {
            if (sp_parse_u64(optarg, &threads) || threads < 1 || threads > 256)
                return sp_cli_usage_error("--threads: 1 to 256, not %s", optarg);
            continue;
        }
        const char *name = c == 'm' ? "mode" : c == 'f' ? "filter" : c == O_RESIZE_TO ? "resize-to"
                                            : c == O_PAD ? "pad-value" : NULL;
        if (name) {
            if (sp_resize_opts_set(&t.o, name, optarg, why, sizeof why))
                return sp_cli_usage_error("%s", why);
            continue;
        }
        int status = sp_cli_common_option(c, usage);
        if (status >= 0)
            return status;
    }
    if (optind < argc && sp_resize_opts_set(&t.o, "size", argv[optind], why, sizeof why))
        return sp_cli_usage_error("%s", why);
    if (sp_resize_opts_check(&t.o, why, sizeof why))
        return sp_cli_usage_error("%s", why);
    optind++;
    if (sp_cli_stdout_is_safe())
        return SP_EXIT_USAGE;
    sp_stage_init(&t.out, "sp-resize", argc, argv, STDOUT_FILENO);
    sp_err err = {0};
    sp_progress prog;
    sp_progress_init(&prog);
    sp_pmap_ops ops = {transform, new_resampler, free_resampler, &t.o};
    t.map = sp_pmap_create((int)threads, 4 * (int)threads, &ops, &err);
    int rc = t.map ? sp_stage_each(argc - optind, argv + optind, on_meta, on_record, &t, &prog, &err) : -1;
    if (rc == 0)
        rc = sp_pmap_finish(t.map, t.out.w, &err);
    if (rc == 0)
        rc = sp_stage_finish(&t.out, &err);
    sp_progress_done(&prog);
    int status = rc ? sp_report(&err) : SP_EXIT_OK;
    if (rc == 0)
        sp_info("%llu records resized, %llu already %dx%d", (unsigned long long)t.resized,
                (unsigned long long)t.passed, t.o.w, t.o.h);
    sp_pmap_free(t.map);
    sp_stage_free(&t.out);
    return status;
}
