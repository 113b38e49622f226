/* sp-decode: source files (blob records) in, labelled pixel records out. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "pipeline/decode.h"

static const char about[] =
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
    "BMP, TIFF, WebP and GIF images are rejected as unsupported (convert them to\n"
    "PNG first).\n"
    "An image that cannot be decoded or labelled is rejected: a warning on stderr\n"
    "and the run goes on (status 1); records in = records out + records rejected.\n"
    "Records that are already pixels pass through; other files are skipped and\n"
    "reported (and logged in --rejects).\n"
    "With --labels-from dirs, images are labelled by their class directory, as\n"
    "torchvision's ImageFolder does (train/cat/1.jpg, cat/kitten/2.jpg: class cat);\n"
    "the classes are those of --classes (plain names), else the class directories\n"
    "sp-unpack found in the tree (sorted, empty ones included), else the classes in\n"
    "the order they are first seen (then sp-shard sorts them). A train/, val/ or\n"
    "test/ directory (the first in the key) names the split; records whose keys\n"
    "name none are train (--split names another); --val-fraction sends a stable\n"
    "share of the train records to val.\n"
    "With --labels-from wds, the input is WebDataset tars (sp-unpack shards-*.tar):\n"
    "members are grouped by key (dir/a.jpg, dir/a.cls: key dir/a), each key's\n"
    "members adjacent in the tar; a key's image (jpg, jpeg or png) labelled by its\n"
    ".cls member (--wds-label json:FIELD: a field of its .json) gives one record\n"
    "keyed by the key; a key with no image or no label is rejected. Classes come\n"
    "from --classes (plain names), else are numbered (or, for class names in\n"
    "the json, named as first seen).\n"
    "With --encoded, images come out as encoded records instead: a JPEG as\n"
    "shipped, or re-encoded (--resize SIZE --resize-mode shorter: the shorter side\n"
    "to SIZE, aspect kept; longer: the longer side at most SIZE).\n"
    "A run that reads records but writes none is an error unless --allow-empty.\n";

/* --resize-mode, --resize-filter, --resize-to, --pad-value into the sp_resize_opts at opt->dest */
static int set_resize(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    const char *name = !strcmp(opt->name, "resize-mode") ? "mode" : !strcmp(opt->name, "resize-filter") ? "filter"
                                                                                                      : opt->name;
    return sp_resize_opts_set(opt->dest, name, arg, why, why_len);
}

/* --draft and --resize: SIZE|WxH into the sp_resize_opts at opt->dest (its w and h) */
static int set_size(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    return sp_resize_opts_set(opt->dest, "size", arg, why, why_len);
}

typedef struct tool {
    sp_decoder *dec;
    FILE *rejects; /* --rejects, or NULL */
} tool;

static void on_reject(void *ctx, const char *key, int reason, const char *detail)
{
    tool *t = ctx;
    sp_warn("%s: rejected (%s): %s", key, sp_reject_name(reason), detail);
    if (t->rejects) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "key", key, "reason", sp_reject_name(reason), "detail", detail);
        char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line)
            fprintf(t->rejects, "%s\n", line);
        free(line);
        json_decref(j);
    }
}

/* A record passed over (not an image nor a dataset file): a note on stderr,
 * and a line in --rejects, so the log names every input that gave no record. */
static void on_skip(void *ctx, const char *key, const char *reason)
{
    tool *t = ctx;
    sp_cli_report_key(NULL, key, reason);
    if (t->rejects) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "key", key, "reason", "skipped", "detail", reason);
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

/* The progress line counts images (records out), not the files read. */
typedef struct decode_progress {
    sp_progress line;
    const sp_decoder *dec;
} decode_progress;

static void on_progress(void *ctx, uint64_t records, uint64_t bytes)
{
    decode_progress *p = ctx;
    (void)records;
    sp_progress_update(&p->line, sp_decoder_stats(p->dec)->out, bytes);
}

static int on_record(void *ctx, sp_reader *r, sp_record *rec, sp_err *err)
{
    return sp_decoder_record(((tool *)ctx)->dec, r, rec, err);
}

int main(int argc, char **argv)
{
    tool t = {0};
    sp_decode_opts dopts;
    sp_decode_opts_default(&dopts);
    dopts.report = on_skip;
    dopts.reject = on_reject;
    dopts.report_ctx = &t;
    const char *rejects = NULL;
    sp_resize_opts rz = {.filter = SP_FILTER_BILINEAR}, draft = {0};
    sp_cli_part part = {0};
    static const char *const label_sources[] = {"wnid", "dirs", "wds", NULL};
    static const char *const split_names[] = {"train", "val", "test", NULL};
    static const int split_values[] = {SP_SPLIT_TRAIN, SP_SPLIT_VAL, SP_SPLIT_TEST};
    int labels_from = 0, allow_empty = 0, split = 0;
    uint64_t max_pixels = dopts.image.max_pixels;
    const sp_opt table[] = {
        {"dataset", 'd', SP_OPT_STRING, &dopts.dataset, .arg = "NAME",
         .help = "set the dataset name (and so the class names, from the\n"
                 "dataset's manifest: mnist, fashion-mnist, ...)"},
        {"classes", 0, SP_OPT_STRING, &dopts.classes, .arg = "FILE", .flags = SP_OPT_FILE,
         .help = "synset list, one 'nXXXXXXXX words' a line; class index =\n"
                 "line number (default: the built-in ILSVRC2012 list of\n"
                 "1000 classes sorted by WNID); with --labels-from dirs\n"
                 "or wds, plain class names, one a line"},
        {"labels-from", 0, SP_OPT_CHOICE, &labels_from, .choices = label_sources, .arg = "wnid|dirs|wds",
         .help = "where image labels come from: wnid (default), or dirs:\n"
                 "the class directory of an image folder (train/cat/1.jpg),\n"
                 "classes sorted as torchvision's ImageFolder sorts them;\n"
                 "or wds: WebDataset tars, members grouped by key"},
        {"wds-label", 0, SP_OPT_STRING, &dopts.wds_label, .arg = "cls|json:FIELD",
         .help = "--labels-from wds: the label is the key's .cls member\n"
                 "(default), or FIELD of its .json member (an index or a\n"
                 "class name)"},
        {"split", 0, SP_OPT_CHOICE, &split, .choices = split_names, .arg = "train|val|test",
         .help = "the split of the records whose keys name none (no\n"
                 "train/, val/ or test/ directory): train by default"},
        {"val-fraction", 0, SP_OPT_DOUBLE, &dopts.val_fraction, .min = 0, .max = 1, .arg = "F",
         .help = "send this fraction of the images outside val/ and test/ to\n"
                 "the val split, chosen by a hash of the key (stable)"},
        {"allow-empty", 0, SP_OPT_FLAG, &allow_empty, .flags = SP_OPT_NO_RECIPE,
         .help = "let a run that reads records but writes none succeed\n(default: an error)"},
        {"labels", 0, SP_OPT_STRING, &dopts.labels, .arg = "FILE", .flags = SP_OPT_FILE,
         .help = "validation labels: LOC_val_solution.csv, one WNID a\n"
                 "line in image order, or the devkit's\n"
                 "ILSVRC2012_validation_ground_truth.txt (with --synset-ids)"},
        {"synset-ids", 0, SP_OPT_STRING, &dopts.synset_ids, .arg = "FILE", .flags = SP_OPT_FILE,
         .help = "the ILSVRC2012_ID to WNID table: the devkit archive\n"
                 "(ILSVRC2012_devkit_t12.tar.gz), its data/meta.mat, or\n"
                 "'nXXXXXXXX ID [name]' lines"},
        {"unlabeled", 0, SP_OPT_FLAG, &dopts.unlabeled,
         .help = "keep images without a label (label -1) instead of\nrejecting them"},
        {"max-pixels", 0, SP_OPT_U64, &max_pixels, .min = 1, .arg = "N",
         .help = "reject images over N pixels, checked from the header\nbefore any allocation (default 100000000)"},
        {"draft", 0, SP_OPT_CALL, &draft, .call = set_size, .arg = "SIZE",
         .help = "decode JPEGs at the smallest DCT scale (1/2, 1/4, 1/8)\nthat keeps both sides at least SIZE (or WxH)"},
        {"resize", 0, SP_OPT_CALL, &rz, .call = set_size, .arg = "SIZE",
         .help = "resize images to SIZE (or WxH) as they are decoded, as\n"
                 "sp-resize does, JPEGs at the smallest DCT scale that\n"
                 "keeps both sides at least the target (--draft overrides)"},
        {"resize-mode", 0, SP_OPT_CALL, &rz, .call = set_resize, .arg = "M",
         .help = "sp-resize's --mode (shorter and longer keep the aspect\nratio: for --encoded)"},
        {"resize-filter", 0, SP_OPT_CALL, &rz, .call = set_resize, .arg = "F", .help = "sp-resize's --filter"},
        {"resize-to", 0, SP_OPT_CALL, &rz, .call = set_resize, .arg = "N", .help = "sp-resize's --resize-to"},
        {"pad-value", 0, SP_OPT_CALL, &rz, .call = set_resize, .arg = "V", .help = "sp-resize's --pad-value"},
        {"encoded", 'e', SP_OPT_FLAG, &dopts.encoded,
         .help = "images out as encoded records (JPEG), decoded at load:\n"
                 "a JPEG that decodes to RGB as shipped, byte for byte,\n"
                 "after a full decode to check it; CMYK/YCCK JPEGs, PNGs\n"
                 "and images --resize changes re-encoded (--jpeg-quality)"},
        {"jpeg-quality", 0, SP_OPT_INT, &dopts.jpeg_quality, .min = 1, .max = 100, .arg = "Q",
         .help = "--encoded: the quality of re-encoded images (default 90)"},
        {"part", 0, SP_OPT_PART, &part, .arg = "I/N",
         .help = "keep only part I of N of the records (the hash of their\n"
                 "keys sp-shard --part uses); others are not decoded"},
        {"rejects", 0, SP_OPT_STRING, &rejects, .arg = "FILE", .flags = SP_OPT_NO_RECIPE,
         .help = "also write each reject as a JSON line: key, reason, detail"},
        {"strict", 0, SP_OPT_FLAG, &dopts.strict, .help = "any reject stops the run with an error"},
        {0},
    };
    const sp_cli_tool cli = {"sp-decode", "[OPTION]... [STREAM]...", about, table, NULL};
    sp_cli_args args;
    int status = sp_cli_parse_filter(&cli, argc, argv, &args);
    if (status >= 0)
        return status;
    char why[256];
    if (rz.w) {
        if (sp_resize_opts_check(&rz, why, sizeof why))
            return sp_cli_usage_error("%s", why);
        dopts.resize = &rz;
    }
    dopts.image.min_w = (uint32_t)draft.w;
    dopts.image.min_h = (uint32_t)draft.h;
    dopts.image.max_pixels = max_pixels;
    dopts.labels_from_dirs = labels_from == 1;
    dopts.labels_from_wds = labels_from == 2;
    if (dopts.wds_label && !dopts.labels_from_wds)
        return sp_cli_usage_error("--wds-label needs --labels-from wds");
    if (dopts.wds_label && strcmp(dopts.wds_label, "cls") && (strncmp(dopts.wds_label, "json:", 5) || !dopts.wds_label[5]))
        return sp_cli_usage_error("--wds-label: not cls or json:FIELD: %s", dopts.wds_label);
    dopts.default_split = split_values[split];
    if (dopts.val_fraction >= 1)
        return sp_cli_usage_error("--val-fraction: not a fraction below 1: %g", dopts.val_fraction);
    dopts.part = part.index;
    dopts.parts = part.count;
    sp_err err = {0};
    if (rejects && !(t.rejects = fopen(rejects, "w"))) {
        sp_msg("%s: cannot write: %s", rejects, strerror(errno));
        return SP_EXIT_SYSTEM;
    }
    const json_t *step = sp_cli_recipe(&err);
    if (!step)
        return sp_report(&err);
    sp_stage out;
    sp_stage_init(&out, step, STDOUT_FILENO);
    t.dec = sp_decoder_create(&dopts, &out, &err);
    decode_progress prog = {.dec = t.dec};
    sp_progress_init(&prog.line);
    prog.line.unit = "images";
    int rc = t.dec ? 0 : -1;
    if (rc == 0)
        rc = sp_stage_each(args.n, args.v, on_meta, on_record, &t, on_progress, &prog, &err);
    if (rc == 0)
        rc = sp_decoder_finish(t.dec, &err);
    if (rc == 0 && !allow_empty && sp_decoder_stats(t.dec)->in > 0 && sp_decoder_stats(t.dec)->out == 0 &&
        sp_decoder_stats(t.dec)->other_parts == 0)
        rc = sp_fail(&err, SP_EXIT_DATA, "no records out of %llu in: every one rejected or skipped (--allow-empty "
                     "lets an empty stream through)", (unsigned long long)sp_decoder_stats(t.dec)->in);
    if (rc == 0)
        rc = sp_stage_finish(&out, &err);
    if (rc == 0)
        sp_progress_finish(&prog.line);
    else
        sp_progress_done(&prog.line);
    status = sp_cli_exit(rc ? &err : NULL);
    if (t.dec && sp_verbosity >= 1 && (rc == 0 || sp_decoder_stats(t.dec)->in > 0)) { /* no summary of nothing */
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
            sp_msg("%llu record%s in, %llu out, %llu rejected%s, %llu skipped", (unsigned long long)st->in,
                   st->in == 1 ? "" : "s", (unsigned long long)st->out, (unsigned long long)st->rejected_total, by,
                   (unsigned long long)st->skipped);
        else
            sp_msg("%llu record%s in, %llu out, %llu skipped", (unsigned long long)st->in, st->in == 1 ? "" : "s",
                   (unsigned long long)st->out, (unsigned long long)st->skipped);
        if (st->grouped)
            sp_msg("%llu WebDataset members joined to their key's record", (unsigned long long)st->grouped);
        if (dopts.encoded)
            sp_msg("%llu images kept as shipped, %llu re-encoded", (unsigned long long)st->kept,
                   (unsigned long long)st->reencoded);
        if (st->other_parts)
            sp_msg("%llu records left to the other parts", (unsigned long long)st->other_parts);
    }
    if (t.rejects) { /* a rejects file that could not be written whole is an I/O error, whatever else happened */
        int bad = ferror(t.rejects);
        int e = bad ? EIO : 0;
        if (fclose(t.rejects) && !bad)
            bad = 1, e = errno;
        if (bad) {
            sp_err werr = {0};
            sp_fail(&werr, SP_EXIT_SYSTEM, "%s: cannot write the rejects: %s", rejects, strerror(e));
            sp_report(&werr);
            status = SP_EXIT_SYSTEM;
        }
    }
    sp_decoder_free(t.dec);
    sp_stage_free(&out);
    return status;
}
