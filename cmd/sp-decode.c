/* sp-decode: source files (blob records) in, labelled pixel records out. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
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
    "give the train split, t10k-* and *test* files the test split.\n"
    "CIFAR-10/100 binary batches (data_batch_N.bin, test_batch.bin; train.bin and\n"
    "test.bin of cifar-100-binary) become 32x32x3 records, with the class names\n"
    "of the archive's own names files.\n"
    "JPEG and PNG images (known by content: a PNG named .JPEG is a PNG) become\n"
    "HxWx3 records: grayscale is expanded, CMYK/YCCK converted as PIL does, alpha\n"
    "dropped, 16-bit scaled to 8. The first key component names the split\n"
    "(ILSVRC2012_img_train.tar -> train, ..._val.tar -> val). Labels are class\n"
    "indices by WNID: from the key (n01440764_10026.JPEG, n01440764.tar/...) for\n"
    "training images, from --labels for validation images.\n"
    "An image that cannot be decoded or labelled is rejected: one line on stderr\n"
    "and the run goes on; records in = records out + records rejected.\n"
    "Records that are already pixels pass through; other files are skipped and\n"
    "reported.\n"
    "\n"
    "  -d, --dataset NAME   set the dataset name (and so the class names, from the\n"
    "                       dataset's manifest: mnist, fashion-mnist, ...)\n"
    "      --classes FILE   synset list, one 'nXXXXXXXX words' a line; class index =\n"
    "                       line number (default: the built-in ILSVRC2012 list of\n"
    "                       1000 classes sorted by WNID)\n"
    "      --labels FILE    validation labels: LOC_val_solution.csv, one WNID a\n"
    "                       line in image order, or the devkit's\n"
    "                       ILSVRC2012_validation_ground_truth.txt (with --synset-ids)\n"
    "      --synset-ids FILE  the ILSVRC2012_ID to WNID table: the devkit archive\n"
    "                       (ILSVRC2012_devkit_t12.tar.gz), its data/meta.mat, or\n"
    "                       'nXXXXXXXX ID [name]' lines\n"
    "      --unlabeled      keep images without a label (label -1) instead of\n"
    "                       rejecting them\n"
    "      --max-pixels N   reject images over N pixels, checked from the header\n"
    "                       before any allocation (default 100000000)\n"
    "      --draft SIZE     decode JPEGs at the smallest DCT scale (1/2, 1/4, 1/8)\n"
    "                       that keeps both sides at least SIZE (or WxH)\n"
    "      --resize SIZE    resize images to SIZE (or WxH) as they are decoded, as\n"
    "                       sp-resize does, JPEGs at the smallest DCT scale that\n"
    "                       keeps both sides at least the target (--draft overrides)\n"
    "      --resize-mode M, --resize-filter F, --resize-to N, --pad-value V\n"
    "                       sp-resize's --mode, --filter, --resize-to, --pad-value\n"
    "      --part I/N       keep only part I of N of the records (the hash of their\n"
    "                       keys sp-shard --part uses); others are not decoded\n"
    "      --rejects FILE   also write each reject as a JSON line: key, reason, detail\n"
    "      --strict         any reject stops the run with an error\n"
    "  -q, --quiet          report nothing but errors\n"
    "  -v, --verbose        report more\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n"
    "\n"
    "Exit status: 0 success (skipped files and rejected images are reported, not\n"
    "failures); 1 bad input (a bad header, mismatched counts, an unpaired file, a\n"
    "corrupt or cut stream, a reject under --strict); 2 usage error; 3 system error.\n";

typedef struct tool {
    sp_decoder *dec;
    FILE *rejects; /* --rejects, or NULL */
} tool;

static void on_reject(void *ctx, const char *key, int reason, const char *detail)
{
    tool *t = ctx;
    if (sp_verbosity >= 1)
        sp_msg("%s: rejected (%s): %s", key, sp_reject_name(reason), detail);
    if (t->rejects) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "key", key, "reason", sp_reject_name(reason), "detail", detail);
        char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line)
            fprintf(t->rejects, "%s\n", line);
        free(line);
        json_decref(j);
    }
}

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
    enum { O_CLASSES = 256, O_LABELS, O_IDS, O_UNLABELED, O_MAXPX, O_DRAFT, O_REJECTS, O_STRICT, O_RESIZE,
           O_RMODE, O_RFILTER, O_RTO, O_PAD };
    static const struct option opts[] = {
        {"dataset", required_argument, 0, 'd'},      {"classes", required_argument, 0, O_CLASSES},
        {"labels", required_argument, 0, O_LABELS},  {"synset-ids", required_argument, 0, O_IDS},
        {"unlabeled", no_argument, 0, O_UNLABELED},  {"max-pixels", required_argument, 0, O_MAXPX},
        {"draft", required_argument, 0, O_DRAFT},    {"rejects", required_argument, 0, O_REJECTS},
        {"strict", no_argument, 0, O_STRICT},        {"resize", required_argument, 0, O_RESIZE},
        {"resize-mode", required_argument, 0, O_RMODE}, {"resize-filter", required_argument, 0, O_RFILTER},
        {"resize-to", required_argument, 0, O_RTO},  {"pad-value", required_argument, 0, O_PAD},
        {"part", required_argument, 0, 'P'},
        {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},            {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},            {0, 0, 0, 0},
    };
    tool t = {0};
    sp_decode_opts dopts;
    sp_decode_opts_default(&dopts);
    dopts.report = sp_cli_report_key;
    dopts.reject = on_reject;
    dopts.report_ctx = &t;
    const char *rejects = NULL;
    sp_resize_opts rz = {.filter = SP_FILTER_BILINEAR};
    int resize = 0;
    char why[256];
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "d:qvhV", opts, NULL)) != -1) {
        const char *rname = c == O_RESIZE ? "size" : c == O_RMODE ? "mode" : c == O_RFILTER ? "filter"
                            : c == O_RTO ? "resize-to" : c == O_PAD ? "pad-value" : NULL;
        if (rname) {
            if (sp_resize_opts_set(&rz, rname, optarg, why, sizeof why))
                return sp_cli_usage_error("%s", why);
            resize |= c == O_RESIZE;
            continue;
        }
        switch (c) {
        case 'd': dopts.dataset = optarg; break;
        case O_CLASSES: dopts.classes = optarg; break;
        case 'P':
            if (sp_parse_part(optarg, &dopts.part, &dopts.parts))
                return sp_cli_usage_error("--part: I/N with 0 <= I < N, not %s", optarg);
            break;
        case O_LABELS: dopts.labels = optarg; break;
        case O_IDS: dopts.synset_ids = optarg; break;
        case O_UNLABELED: dopts.unlabeled = 1; break;
        case O_STRICT: dopts.strict = 1; break;
        case O_REJECTS: rejects = optarg; break;
        case O_MAXPX:
            if (sp_parse_u64(optarg, &v) || v == 0)
                return sp_cli_usage_error("--max-pixels: not a positive number: %s", optarg);
            dopts.image.max_pixels = v;
            break;
        case O_DRAFT: {
            sp_resize_opts size = {0};
            if (sp_resize_opts_set(&size, "size", optarg, why, sizeof why))
                return sp_cli_usage_error("--draft: %s", why);
            dopts.image.min_w = (uint32_t)size.w;
            dopts.image.min_h = (uint32_t)size.h;
            break;
        }
        default: {
            int status = sp_cli_common_option(c, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (sp_cli_stdout_is_safe())
        return SP_EXIT_USAGE;
    if (resize) {
        if (sp_resize_opts_check(&rz, why, sizeof why))
            return sp_cli_usage_error("%s", why);
        dopts.resize = &rz;
    }
    sp_err err = {0};
    if (rejects && !(t.rejects = fopen(rejects, "w"))) {
        sp_msg("%s: cannot write: %s", rejects, strerror(errno));
        return SP_EXIT_SYSTEM;
    }
    sp_stage out;
    sp_stage_init(&out, "sp-decode", argc, argv, STDOUT_FILENO);
    t.dec = sp_decoder_create(&dopts, &out, &err);
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
        char by[512] = "";
        size_t len = 0;
        for (int i = 1; i < SP_REJECT_COUNT; i++)
            if (st->rejected[i] && len < sizeof by)
                len += (size_t)snprintf(by + len, sizeof by - len, "%s%s %llu", len ? ", " : " (",
                                        sp_reject_name(i), (unsigned long long)st->rejected[i]);
        if (len && len < sizeof by - 1)
            strcat(by, ")");
        if (st->rejected_total)
            sp_msg("%llu records in, %llu out, %llu rejected%s, %llu skipped", (unsigned long long)st->in,
                   (unsigned long long)st->out, (unsigned long long)st->rejected_total, by,
                   (unsigned long long)st->skipped);
        else
            sp_msg("%llu records in, %llu out, %llu skipped", (unsigned long long)st->in,
                   (unsigned long long)st->out, (unsigned long long)st->skipped);
        if (st->other_parts)
            sp_msg("%llu records left to the other parts", (unsigned long long)st->other_parts);
    }
    if (t.rejects && fclose(t.rejects) && status == SP_EXIT_OK)
        status = sp_report(&(sp_err){SP_EXIT_SYSTEM, "cannot write the rejects file"});
    sp_decoder_free(t.dec);
    sp_stage_free(&out);
    return status;
}
