/* sp-decode: source files (blob records) in, labelled pixel records out. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "pipeline/decode.h"

static const char usage[] =
    "Usage: sp-decode [OPTION]... [STREAM]...\n"
    "Decode the dataset files in a record stream into labelled pixel records\n"
    "(uint8, HxWxC) on stdout. With no STREAM, or when STREAM is -, read stdin.\n"
    "\n"
    "Files are recognised by content. IDX files (MNIST, Fashion-MNIST, KMNIST and\n"
    "the rest of the family) are paired by name: an images file with the labels\n"
    "file whose name has 'labels' for 'images' (and idx1 for idx3); train-* files\n"
    "give the train split, t10k-* and *test* files the test split. Records that\n"
    "are already pixels pass through; other files are skipped and reported.\n"
    "\n"
    "  -d, --dataset NAME   set the dataset name (and so the class names, from the\n"
    "                       dataset's manifest: mnist, fashion-mnist, ...)\n"
    "  -q, --quiet          report nothing but errors\n"
    "  -v, --verbose        report more\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n"
    "\n"
    "Exit status: 0 success (skipped files are reported, not failures); 1 bad\n"
    "input (a bad header, mismatched counts, an unpaired file, a corrupt or cut\n"
    "stream); 2 usage error; 3 system error.\n";

typedef struct tool {
    sp_decoder *dec;
} tool;

static int on_meta(void *ctx, const json_t *meta, sp_err *err)
{
    return sp_decoder_input_meta(((tool *)ctx)->dec, meta, err);
}

static int on_record(void *ctx, sp_reader *r, sp_record *rec, sp_err *err)
{
    return sp_decoder_record(((tool *)ctx)->dec, r, rec, err);
}

int main(int argc, char **argv)
{
    sp_cli_init(argc, argv);
    static const struct option opts[] = {
        {"dataset", required_argument, 0, 'd'}, {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},       {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},       {0, 0, 0, 0},
    };
    sp_decode_opts dopts = {.report = sp_cli_report_key};
    int c;
    while ((c = getopt_long(argc, argv, "d:qvhV", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dopts.dataset = optarg; break;
        default: {
            int status = sp_cli_common_option(c, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (sp_cli_stdout_is_safe())
        return SP_EXIT_USAGE;
    sp_err err = {0};
    sp_stage out;
    sp_stage_init(&out, "sp-decode", argc, argv, STDOUT_FILENO);
    tool t = {sp_decoder_create(&dopts, &out, &err)};
    sp_progress prog;
    sp_progress_init(&prog);
    int rc = t.dec ? 0 : -1;
    if (rc == 0)
        rc = sp_stage_each(argc - optind, argv + optind, on_meta, on_record, &t, &prog, &err);
    if (rc == 0)
        rc = sp_decoder_finish(t.dec, &err);
    if (rc == 0)
        rc = sp_stage_finish(&out, &err);
    sp_progress_done(&prog);
    int status = rc ? sp_report(&err) : SP_EXIT_OK;
    if (t.dec && sp_verbosity >= 1) {
        const sp_decode_stats *st = sp_decoder_stats(t.dec);
        sp_msg("%llu records in, %llu out, %llu skipped", (unsigned long long)st->in,
               (unsigned long long)st->out, (unsigned long long)st->skipped);
    }
    sp_decoder_free(t.dec);
    sp_stage_free(&out);
    return status;
}
