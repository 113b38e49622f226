/* sp-normalize: per-channel statistics of a stream, and (if asked) float tensors. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "pipeline/normalize.h"
#include "pipeline/stage.h"

static const char usage[] =
    "Usage: sp-normalize [OPTION]... [STREAM]...\n"
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
    "      --mean M1,M2,M3  per-channel mean, in x/255 units\n"
    "      --std S1,S2,S3   per-channel standard deviation, in x/255 units\n"
    "      --preset NAME    imagenet: mean 0.485,0.456,0.406, std 0.229,0.224,0.225\n"
    "      --dtype TYPE     uint8 (default: the pixels stay as they are), float32,\n"
    "                       float16 (needs --mean and --std, or --preset)\n"
    "  -q, --quiet          report nothing but errors\n"
    "  -v, --verbose        print the statistics\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n"
    "\n"
    "Exit status: 0 success; 1 bad input (a corrupt or cut stream, records that\n"
    "are not uint8 pixels, channel counts that differ); 2 usage error; 3 system error.\n";

enum { NSPLITS = SP_SPLIT_VAL + 1 };

typedef struct tool {
    sp_stage out;
    json_t *in_meta;
    double mean[SP_NORM_MAX_CHANNELS], std[SP_NORM_MAX_CHANNELS];
    int nparams; /* channels given in --mean/--std, 0 = none */
    int dtype;
    sp_channel_stats all, split[NSPLITS];
    sp_buf buf;
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

static int on_record(void *ctx, sp_reader *r, sp_record *rec, sp_err *err)
{
    tool *t = ctx;
    if (rec->kind != SP_KIND_PIXELS || rec->dtype != SP_DTYPE_U8 || rec->c > SP_NORM_MAX_CHANNELS)
        return sp_fail(err, SP_EXIT_DATA, "%s: sp-normalize takes uint8 pixel records of 1 to %d channels",
                       rec->key, SP_NORM_MAX_CHANNELS);
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

/* "0.5,0.25,0.125" into v; returns the count or -1. */
static int parse_list(const char *s, double *v)
{
    int n = 0;
    char *end;
    for (const char *p = s; *p && n < SP_NORM_MAX_CHANNELS; p = *end ? end + 1 : end) {
        v[n] = strtod(p, &end);
        if (end == p || (*end && *end != ','))
            return -1;
        n++;
        if (!*end)
            return n;
    }
    return -1;
}

int main(int argc, char **argv)
{
    sp_cli_init(argc, argv);
    enum { O_MEAN = 256, O_STD, O_PRESET, O_DTYPE };
    static const struct option opts[] = {
        {"mean", required_argument, 0, O_MEAN},     {"std", required_argument, 0, O_STD},
        {"preset", required_argument, 0, O_PRESET}, {"dtype", required_argument, 0, O_DTYPE},
        {"quiet", no_argument, 0, 'q'},             {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},              {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    tool t = {0};
    t.dtype = SP_DTYPE_U8;
    int nmean = 0, nstd = 0, c;
    while ((c = getopt_long(argc, argv, "qvhV", opts, NULL)) != -1) {
        switch (c) {
        case O_MEAN:
            if ((nmean = parse_list(optarg, t.mean)) < 0)
                return sp_cli_usage_error("--mean: comma-separated numbers, not %s", optarg);
            break;
        case O_STD:
            if ((nstd = parse_list(optarg, t.std)) < 0)
                return sp_cli_usage_error("--std: comma-separated numbers, not %s", optarg);
            for (int k = 0; k < nstd; k++)
                if (!(t.std[k] > 0))
                    return sp_cli_usage_error("--std: every value must be positive");
            break;
        case O_PRESET:
            if (strcmp(optarg, "imagenet"))
                return sp_cli_usage_error("--preset: imagenet is the one preset, not %s", optarg);
            memcpy(t.mean, sp_imagenet_mean, sizeof sp_imagenet_mean);
            memcpy(t.std, sp_imagenet_std, sizeof sp_imagenet_std);
            nmean = nstd = 3;
            break;
        case O_DTYPE:
            if (!strcmp(optarg, "uint8"))
                t.dtype = SP_DTYPE_U8;
            else if (!strcmp(optarg, "float32"))
                t.dtype = SP_DTYPE_F32;
            else if (!strcmp(optarg, "float16"))
                t.dtype = SP_DTYPE_F16;
            else
                return sp_cli_usage_error("--dtype: uint8, float32 or float16, not %s", optarg);
            break;
        default: {
            int status = sp_cli_common_option(c, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (nmean != nstd)
        return sp_cli_usage_error("--mean and --std must give the same number of channels");
    t.nparams = nmean;
    if (t.dtype != SP_DTYPE_U8 && !t.nparams)
        return sp_cli_usage_error("--dtype %s needs --mean and --std, or --preset", sp_dtype_name(t.dtype));
    if (sp_cli_stdout_is_safe())
        return SP_EXIT_USAGE;
    sp_stage_init(&t.out, "sp-normalize", argc, argv, STDOUT_FILENO);
    sp_err err = {0};
    sp_progress prog;
    sp_progress_init(&prog);
    int rc = sp_stage_each(argc - optind, argv + optind, on_meta, on_record, &t, &prog, &err);
    sp_progress_done(&prog);
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
    int status = rc ? sp_report(&err) : SP_EXIT_OK;
    sp_stage_free(&t.out);
    json_decref(t.in_meta);
    sp_buf_free(&t.buf);
    return status;
}
