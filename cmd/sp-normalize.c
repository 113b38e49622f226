/* sp-normalize: per-channel statistics of a stream, and (if asked) float tensors. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "formats/image.h"
#include "pipeline/normalize.h"
#include "pipeline/stage.h"

static const char about[] =
    "Compute the exact per-channel mean and standard deviation of the uint8 pixel\n"
    "records of a stream (per split and over all, in x/255 units) and record them\n"
    "in the stream metadata, and so in the shards' attributes and manifest. With\n"
    "no STREAM, or when STREAM is -, read stdin.\n"
    "\n"
    "The normalization parameters (mean, std) are recorded for readers to apply\n"
    "on load, (x/255 - mean) / std: those given, else the statistics computed\n"
    "here (of the train split when there is one). With --dtype float32 or float16\n"
    "the records are converted now, with the parameters given.\n"
    "\n"
    "Encoded records (sp-decode --encoded) pass through as they are: the\n"
    "parameters are recorded for the readers to apply to each view at load (the\n"
    "Loader's and sp-train's normalization). Their statistics are of the whole\n"
    "images as stored, RGB, each decoded here (--preset or --mean/--std skip the\n"
    "decoding: nothing is computed then); --dtype needs pixel records.\n";

enum { NSPLITS = SP_SPLIT_VAL + 1 };

typedef struct tool {
    sp_stage out;
    json_t *in_meta;
    double mean[SP_NORM_MAX_CHANNELS], std[SP_NORM_MAX_CHANNELS];
    int nparams; /* channels given in --mean/--std, 0 = none */
    int dtype;
    sp_channel_stats all, split[NSPLITS];
    sp_buf buf;
    sp_image img; /* an encoded record, decoded for its statistics */
    sp_image_opts img_opts;
    uint64_t encoded; /* encoded records passed through */
} tool;

/* The metadata to announce: the input's plus "normalize" (and "stats" at the end). */
static json_t *output_meta(tool *t, int final)
{
    json_t *m = json_deep_copy(t->in_meta);
    json_t *norm = NULL;
    if (t->nparams) {
        json_t *mean = json_array(), *std = json_array();
        for (int k = 0; k < t->nparams; k++) {
            json_array_append_new(mean, json_real(t->mean[k]));
            json_array_append_new(std, json_real(t->std[k]));
        }
        norm = json_pack("{s:o, s:o, s:s, s:b}", "mean", mean, "std", std, "source", "given",
                         "applied", t->dtype != SP_DTYPE_U8);
    }
    if (final) {
        json_t *stats = json_object();
        json_object_set_new(stats, "all", sp_stats_json(&t->all));
        for (int s = 0; s < NSPLITS; s++)
            if (t->split[s].count)
                json_object_set_new(stats, sp_split_name(s), sp_stats_json(&t->split[s]));
        if (!norm) { /* the parameters are the statistics: of train when there is one */
            json_t *src = json_object_get(stats, t->split[SP_SPLIT_TRAIN].count ? "train" : "all");
            norm = json_pack("{s:O, s:O, s:s, s:b}", "mean", json_object_get(src, "mean"), "std",
                             json_object_get(src, "std"), "source",
                             t->split[SP_SPLIT_TRAIN].count ? "stats of the train split" : "stats of all records",
                             "applied", 0);
        }
        json_object_set_new(m, "stats", stats);
    }
    if (norm)
        json_object_set_new(m, "normalize", norm);
    return m;
}

static int on_meta(void *ctx, const json_t *meta, sp_err *err)
{
    tool *t = ctx;
    json_decref(t->in_meta);
    t->in_meta = json_deep_copy(meta);
    json_t *m = output_meta(t, 0);
    int rc = sp_stage_meta(&t->out, m, err);
    json_decref(m);
    return rc;
}

/* An encoded record: passed through; decoded for the statistics unless the
 * parameters were given. */
static int on_encoded(tool *t, sp_reader *r, sp_record *rec, sp_err *err)
{
    if (t->dtype != SP_DTYPE_U8)
        return sp_fail(err, SP_EXIT_DATA, "%s: an encoded record: --dtype %s converts pixel records (encoded "
                       "images are normalized at load, with the parameters recorded here)", rec->key,
                       sp_dtype_name(t->dtype));
    if (t->nparams && t->nparams != 3)
        return sp_fail(err, SP_EXIT_DATA, "%s: an encoded record (RGB at load), but --mean/--std give %d channels",
                       rec->key, t->nparams);
    const uint8_t *data;
    if (sp_reader_payload(r, rec, &data, err))
        return -1;
    if (!t->nparams) {
        sp_err e = {0};
        if (sp_image_decode(data, (size_t)rec->payload_len, &t->img_opts, &t->img, &e))
            return sp_fail(err, SP_EXIT_DATA, "%s: %s", rec->key, e.msg);
        size_t n = (size_t)t->img.w * t->img.h;
        sp_stats_add(&t->all, t->img.pixels, n, 3);
        sp_stats_add(&t->split[rec->split], t->img.pixels, n, 3);
    }
    t->encoded++;
    return sp_writer_record(t->out.w, rec, data, (size_t)rec->payload_len, err);
}

static int on_record(void *ctx, sp_reader *r, sp_record *rec, sp_err *err)
{
    tool *t = ctx;
    if (rec->kind == SP_KIND_ENCODED && (!t->all.channels || t->all.channels == 3))
        return on_encoded(t, r, rec, err);
    if (rec->kind != SP_KIND_PIXELS || rec->dtype != SP_DTYPE_U8 || rec->c > SP_NORM_MAX_CHANNELS)
        return sp_fail(err, SP_EXIT_DATA, "%s: sp-normalize takes uint8 pixel records of 1 to %d channels, or "
                       "encoded ones", rec->key, SP_NORM_MAX_CHANNELS);
    if (t->all.channels && t->all.channels != (int)rec->c)
        return sp_fail(err, SP_EXIT_DATA, "%s: %u channels, the records before had %d", rec->key, rec->c,
                       t->all.channels);
    if (t->nparams && t->nparams != (int)rec->c)
        return sp_fail(err, SP_EXIT_DATA, "%s: %u channels, but --mean/--std give %d", rec->key, rec->c,
                       t->nparams);
    const uint8_t *px;
    if (sp_reader_payload(r, rec, &px, err))
        return -1;
    size_t n = (size_t)rec->h * rec->w;
    sp_stats_add(&t->all, px, n, (int)rec->c);
    sp_stats_add(&t->split[rec->split], px, n, (int)rec->c);
    if (t->dtype == SP_DTYPE_U8)
        return sp_writer_record(t->out.w, rec, px, (size_t)rec->payload_len, err);
    size_t bytes = n * rec->c * (size_t)sp_dtype_size(t->dtype);
    if (sp_buf_reserve(&t->buf, bytes))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (t->dtype == SP_DTYPE_F32)
        sp_normalize_f32(px, n, (int)rec->c, t->mean, t->std, (float *)(void *)t->buf.data);
    else
        sp_normalize_f16(px, n, (int)rec->c, t->mean, t->std, (uint16_t *)(void *)t->buf.data);
    sp_record out = *rec;
    out.dtype = (uint8_t)t->dtype;
    return sp_writer_record(t->out.w, &out, t->buf.data, bytes, err);
}

/* Per-channel numbers from the command line. */
typedef struct num_list {
    double v[SP_NORM_MAX_CHANNELS];
    int n; /* 0: not given */
} num_list;

/* "0.5,0.25,0.125" into the num_list at opt->dest; --std values must be positive. */
static int set_list(const sp_opt *opt, const char *s, char *why, size_t why_len)
{
    num_list *l = opt->dest;
    int n = 0;
    char *end;
    for (const char *p = s; *p && n < SP_NORM_MAX_CHANNELS; p = *end ? end + 1 : end) {
        l->v[n] = strtod(p, &end);
        if (end == p || (*end && *end != ',') || (!strcmp(opt->name, "std") && !(l->v[n] > 0)))
            break;
        n++;
        if (!*end) {
            l->n = n;
            return 0;
        }
    }
    snprintf(why, why_len, "not %d or fewer comma-separated numbers%s: %s", SP_NORM_MAX_CHANNELS,
             strcmp(opt->name, "std") ? "" : " above 0", s);
    return -1;
}

int main(int argc, char **argv)
{
    static const char *const presets[] = {"imagenet", NULL};
    static const char *const dtypes[] = {"uint8", "float32", "float16", NULL};
    static const int dtype_of[] = {SP_DTYPE_U8, SP_DTYPE_F32, SP_DTYPE_F16};
    num_list mean = {0}, std = {0};
    int preset = -1, dtype = 0;
    const sp_opt table[] = {
        {"mean", 0, SP_OPT_CALL, &mean, .call = set_list, .arg = "M1,M2,M3",
         .help = "per-channel mean, in x/255 units"},
        {"std", 0, SP_OPT_CALL, &std, .call = set_list, .arg = "S1,S2,S3",
         .help = "per-channel standard deviation, in x/255 units"},
        {"preset", 0, SP_OPT_CHOICE, &preset, .choices = presets, .arg = "NAME",
         .help = "imagenet: mean 0.485,0.456,0.406, std 0.229,0.224,0.225"},
        {"dtype", 0, SP_OPT_CHOICE, &dtype, .choices = dtypes, .arg = "TYPE",
         .help = "uint8 (default: the pixels stay as they are), float32,\n"
                 "float16 (needs --mean and --std, or --preset)"},
        {0},
    };
    const sp_cli_tool cli = {"sp-normalize", "[OPTION]... [STREAM]...", about, table, NULL};
    sp_cli_args args;
    int status = sp_cli_parse(&cli, argc, argv, &args);
    if (status >= 0)
        return status;
    tool t = {0};
    t.dtype = dtype_of[dtype];
    sp_image_opts_default(&t.img_opts);
    if (preset == 0) {
        memcpy(mean.v, sp_imagenet_mean, sizeof sp_imagenet_mean);
        memcpy(std.v, sp_imagenet_std, sizeof sp_imagenet_std);
        mean.n = std.n = 3;
    }
    memcpy(t.mean, mean.v, sizeof t.mean);
    memcpy(t.std, std.v, sizeof t.std);
    int nmean = mean.n, nstd = std.n;
    if (nmean != nstd)
        return sp_cli_usage_error("--mean and --std must give the same number of channels");
    t.nparams = nmean;
    if (t.dtype != SP_DTYPE_U8 && !t.nparams)
        return sp_cli_usage_error("--dtype %s needs --mean and --std, or --preset", sp_dtype_name(t.dtype));
    if ((status = sp_cli_stdout_is_safe()))
        return status;
    sp_err err = {0};
    const json_t *step = sp_cli_recipe(&err);
    if (!step)
        return sp_report(&err);
    sp_stage_init(&t.out, step, STDOUT_FILENO);
    sp_progress prog;
    sp_progress_init(&prog);
    int rc = sp_stage_each(args.n, args.v, on_meta, on_record, &t, sp_progress_cb, &prog, &err);
    sp_progress_done(&prog);
    if (rc == 0 && t.encoded && t.nparams)
        sp_info("%llu encoded records: the parameters given recorded, no statistics computed",
                (unsigned long long)t.encoded);
    if (rc == 0) { /* the statistics, in a metadata frame before the trailer */
        json_t *m = output_meta(&t, 1);
        rc = sp_stage_meta(&t.out, m, &err);
        if (rc == 0 && sp_verbosity >= 2) {
            char *s = json_dumps(json_object_get(m, "stats"), JSON_COMPACT);
            sp_msg("%s", s ? s : "");
            free(s);
        }
        json_decref(m);
    }
    if (rc == 0)
        rc = sp_stage_finish(&t.out, &err);
    status = sp_cli_exit(rc ? &err : NULL);
    sp_stage_free(&t.out);
    json_decref(t.in_meta);
    sp_buf_free(&t.buf);
    sp_image_free(&t.img);
    return status;
}
