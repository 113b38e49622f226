/* sp-cat: print a record stream, a shard or a shard set as JSON lines. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "common/sp_draw.h"
#include "pipeline/stage.h"
#include "pipeline/wds.h"
#include "shards/manifest.h"
#include "shards/remote.h"
#include "shards/shard_records.h"

static const char about[] =
    "Print every record of a record stream, an HDF5 shard or a shard directory as\n"
    "one JSON line on stdout: key, split, label (and label2 where there is one),\n"
    "kind, shape and dtype (pixels; encoded: the decoded shape, and the codec),\n"
    "size in bytes and checksum (XXH3-64 of the payload, hex). Payloads are not printed. Each INPUT is a record stream file\n"
    "(zstd-compressed or not), a shard file, or a directory with manifest.json;\n"
    "with no INPUT, or when INPUT is -, read a stream from stdin. Streams are\n"
    "verified as they are read, so a corrupt or cut stream is an error.\n"
    "With --image N, write record N (0 is the first, counted over the inputs in\n"
    "order) as an image on stdout instead: PNG, or with --format pnm a PGM or PPM\n"
    "for netpbm (sp-cat --image 3 S > x.png). uint8 pixel records only.\n"
    "With --stream, write the records (payloads included) as one record stream\n"
    "on stdout instead, for the other stages: a shard set goes back into a\n"
    "pipeline to be re-sharded, re-sized or re-split (sp-cat --stream S |\n"
    "sp-resize 32 | sp-shard -o S32). The stream's metadata is each shard's\n"
    "(dataset, classes, recipe so far) with sp-cat's recipe entry; its records\n"
    "carry their keys, splits, labels and checksums as stored.\n"
    "With --tar, write the records as a WebDataset tar on stdout instead (with\n"
    "--tar-shards PATTERN, as tars of at most --tar-size bytes each, named\n"
    "PATTERN with its %d numbered from 0): for each record KEY.jpg (an encoded\n"
    "JPEG as stored) or KEY.png (the pixels, or an encoded PNG), KEY.cls (the\n"
    "label) and KEY.json (key, label, class name, split, checksum). KEY is the\n"
    "record's key with every byte but [A-Za-z0-9_-] and inner '/' written %XX\n"
    "(so no dots: sp-decode --labels-from wds undoes it). --split keeps only the\n"
    "records of the splits named.\n";

static int meta_only;
/* --stream: the output stream (its writer opens at the first metadata) */
static int stream_out;
static sp_stage out;
/* --image N: the record to write as an image (-1: none), the records seen so
 * far, and whether it was written */
static long long image_index = -1;
static long long seen;
static int image_format, image_done; /* image_format: index into image_formats */
static const char *const image_formats[] = {"png", "pnm", NULL};
/* --tar, --tar-shards: the WebDataset writer, the classes of the input being
 * read (borrowed from its metadata), --split's splits (a bit per enum sp_split;
 * 0: all) */
static sp_wds_writer *tar_out;
static json_t *tar_classes, *tar_classes2;
static unsigned split_mask;

/* One record into the tar, unless --split leaves it out. */
static int tar_record(const sp_record *rec, const uint8_t *payload, sp_err *err)
{
    if (split_mask && !(split_mask & (1u << rec->split)))
        return 0;
    return sp_wds_writer_record(tar_out, rec, payload, tar_classes, tar_classes2, err);
}

/* Takes the class names of meta for the records that follow. */
static void tar_meta(const json_t *meta)
{
    json_decref(tar_classes);
    json_decref(tar_classes2);
    tar_classes = json_incref(json_object_get(meta, "classes"));
    tar_classes2 = json_incref(json_object_get(meta, "classes2"));
}

/* --split train,val: the splits as bits */
static int set_splits(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    unsigned mask = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", arg);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int sp = sp_split_from_name(t);
        if (sp <= SP_SPLIT_NONE || strlen(arg) >= sizeof buf) {
            snprintf(why, why_len, "not a list of splits (train, val, test): %s", arg);
            return -1;
        }
        mask |= 1u << sp;
    }
    if (!mask) {
        snprintf(why, why_len, "not a list of splits (train, val, test): %s", arg);
        return -1;
    }
    *(unsigned *)opt->dest = mask;
    return 0;
}

/* Writes rec's pixels as the image --image asked for. */
static int write_image(const sp_record *rec, const uint8_t *px, sp_err *err)
{
    image_done = 1;
    if (rec->kind != SP_KIND_PIXELS)
        return sp_fail(err, SP_EXIT_DATA, "%s: record %lld is %s, not pixels (sp-decode it first)", rec->key,
                       image_index, sp_kind_record(rec->kind));
    if (rec->dtype != SP_DTYPE_U8 || rec->c < 1 || rec->c > 4 || (image_format == 1 && rec->c != 1 && rec->c != 3))
        return sp_fail(err, SP_EXIT_DATA, "%s: %ux%ux%u %s pixels: --image writes uint8 pixels of %s", rec->key,
                       rec->h, rec->w, rec->c, sp_dtype_name(rec->dtype),
                       image_format == 1 ? "1 or 3 channels as PNM" : "1 to 4 channels");
    if (image_format == 0)
        return sp_write_png_fd(STDOUT_FILENO, "stdout", px, (int)rec->w, (int)rec->h, (int)rec->c, err);
    char head[64];
    int n = snprintf(head, sizeof head, "P%c\n%u %u\n255\n", rec->c == 1 ? '5' : '6', rec->w, rec->h);
    if (sp_write_all(STDOUT_FILENO, head, (size_t)n) ||
        sp_write_all(STDOUT_FILENO, px, (size_t)rec->h * rec->w * rec->c))
        return sp_fail(err, SP_EXIT_SYSTEM, "stdout: write failed: %s", strerror(errno));
    return 0;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        fputs(s, stdout);
        putchar('\n');
        free(s);
    }
    json_decref(j);
}

static void print_record(const sp_record *rec)
{
    char ck[17];
    snprintf(ck, sizeof ck, "%016llx", (unsigned long long)rec->checksum);
    json_t *j = json_object();
    json_object_set_new(j, "key", json_string(rec->key));
    json_object_set_new(j, "split", json_string(sp_split_name(rec->split)));
    json_object_set_new(j, "label", rec->label >= 0 ? json_integer(rec->label) : json_null());
    if (rec->label2 >= 0)
        json_object_set_new(j, "label2", json_integer(rec->label2));
    json_object_set_new(j, "kind", json_string(sp_kind_name(rec->kind)));
    if (rec->kind == SP_KIND_PIXELS || rec->kind == SP_KIND_ENCODED) {
        json_object_set_new(j, "shape", json_pack("[i,i,i]", rec->h, rec->w, rec->c));
        json_object_set_new(j, "dtype", json_string(sp_dtype_name(rec->dtype)));
    }
    if (rec->kind == SP_KIND_ENCODED)
        json_object_set_new(j, "codec", json_string(sp_codec_name(rec->codec)));
    json_object_set_new(j, "size", json_integer((json_int_t)rec->payload_len));
    json_object_set_new(j, "checksum", json_string(ck));
    print_json(j);
}

/* ---- streams ---- */
static json_t *last_meta;

static int on_meta(void *ctx, const json_t *meta, sp_err *err)
{
    (void)ctx;
    if (stream_out)
        return sp_stage_meta(&out, meta, err);
    if (tar_out)
        tar_meta(meta);
    json_decref(last_meta);
    last_meta = json_deep_copy(meta);
    return 0;
}

static int on_record(void *ctx, sp_reader *r, sp_record *rec, sp_err *err)
{
    (void)ctx;
    if (stream_out) {
        const uint8_t *data;
        return sp_reader_payload(r, rec, &data, err) ||
               sp_writer_record(out.w, rec, data, (size_t)rec->payload_len, err) ? -1 : 0;
    }
    if (tar_out) {
        const uint8_t *data;
        return sp_reader_payload(r, rec, &data, err) || tar_record(rec, data, err) ? -1 : 0;
    }
    if (image_index >= 0 && seen++ == image_index) {
        const uint8_t *data;
        return sp_reader_payload(r, rec, &data, err) || write_image(rec, data, err) ? -1 : 0;
    }
    if (sp_reader_drain(r, rec, err))
        return -1;
    if (!meta_only && image_index < 0)
        print_record(rec);
    return 0;
}

static int cat_stream(char *path, sp_err *err)
{
    char *one[] = {path};
    int rc = sp_stage_each(1, one, on_meta, on_record, NULL, NULL, NULL, err);
    if (rc == 0 && meta_only && last_meta)
        print_json(json_incref(last_meta));
    return rc;
}

/* ---- shards ---- */
static int print_shard_record(void *ctx, const sp_record *rec, const uint8_t *pixels, sp_err *err)
{
    (void)ctx;
    if (stream_out) {
        sp_record copy = *rec;
        return sp_writer_record(out.w, &copy, pixels, (size_t)rec->payload_len, err);
    }
    if (tar_out)
        return tar_record(rec, pixels, err);
    if (image_index >= 0)
        return seen++ == image_index ? write_image(rec, pixels, err) ? -1 : 1 : 0;
    print_record(rec);
    return 0;
}

static int cat_shard(const char *path, sp_err *err)
{
    sp_shard *s = sp_shard_open(path, err);
    if (!s)
        return -1;
    int rc = 0;
    if (tar_out)
        tar_meta(sp_shard_meta(s));
    if (stream_out && sp_stage_meta(&out, sp_shard_meta(s), err))
        rc = -1;
    else if (meta_only) {
        json_t *m = sp_shard_meta(s);
        print_json(m ? json_incref(m) : json_object());
    } else {
        rc = sp_shard_each_record(s, print_shard_record, NULL, err);
        rc = rc > 0 ? 0 : rc; /* 1: the --image record written */
    }
    sp_shard_close(s);
    return rc;
}

/* The metadata of the first shard of the set in dir (the stream's a shard
 * keeps; the same in every shard of a set) as the stream's. */
static int stream_set_meta(const char *dir, sp_err *err)
{
    json_t *m = sp_manifest_load(dir, err);
    if (!m)
        return -1;
    json_t *first = json_array_get(json_object_get(m, "shards"), 0);
    int rc;
    if (!first) {
        rc = sp_stage_meta(&out, m, err); /* an empty set: the manifest says what it holds */
    } else {
        const char *file = json_string_value(json_object_get(first, "file"));
        size_t len = strlen(dir) + strlen(file) + 2;
        char *path = malloc(len);
        sp_shard *s = NULL;
        if (path)
            snprintf(path, len, "%s/%s", dir, file);
        rc = !path ? sp_fail(err, SP_EXIT_SYSTEM, "out of memory")
             : !(s = sp_shard_open_nokeys(path, err)) ? -1
                                                      : sp_stage_meta(&out, sp_shard_meta(s), err);
        sp_shard_close(s);
        free(path);
    }
    json_decref(m);
    return rc;
}

static int cat_dir(const char *dir, sp_err *err)
{
    if (stream_out && stream_set_meta(dir, err))
        return -1;
    if (tar_out) {
        json_t *m = sp_manifest_load(dir, err);
        if (!m)
            return -1;
        tar_meta(m);
        json_decref(m);
    }
    if (!meta_only) {
        int rc = sp_shardset_each_record(dir, print_shard_record, NULL, err);
        return rc > 0 ? 0 : rc; /* 1: the --image record written */
    }
    json_t *m = sp_manifest_load(dir, err);
    if (!m)
        return -1;
    print_json(m);
    return 0;
}

static int is_hdf5(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char sig[8];
    int yes = f && fread(sig, 1, 8, f) == 8 && !memcmp(sig, "\x89HDF\r\n\x1a\n", 8);
    if (f)
        fclose(f);
    return yes;
}

/* --image N: a record number, 0 or more */
static int set_index(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    uint64_t v;
    if (sp_parse_u64(arg, &v) || v > (uint64_t)1 << 62) {
        snprintf(why, why_len, "not a record number (0 or more): %s", arg);
        return -1;
    }
    *(long long *)opt->dest = (long long)v;
    return 0;
}

int main(int argc, char **argv)
{
    int tar_flag = 0;
    const char *tar_pattern = NULL;
    uint64_t tar_size = (uint64_t)1 << 30;
    const sp_opt table[] = {
        {"meta", 'm', SP_OPT_FLAG, &meta_only, .help = "print the metadata (one JSON object per input) instead"},
        {"image", 0, SP_OPT_CALL, &image_index, .call = set_index, .arg = "N",
         .help = "write record N (from 0) as an image on stdout instead"},
        {"format", 0, SP_OPT_CHOICE, &image_format, .choices = image_formats, .arg = "png|pnm",
         .help = "--image's format: png (default) or pnm (PGM, PPM)"},
        {"stream", 's', SP_OPT_FLAG, &stream_out,
         .help = "write the records as a record stream on stdout\n(for sp-resize, sp-shard, ...) instead"},
        {"tar", 0, SP_OPT_FLAG, &tar_flag,
         .help = "write the records as a WebDataset tar on stdout instead\n"
                 "(KEY.jpg or KEY.png, KEY.cls, KEY.json)"},
        {"tar-shards", 0, SP_OPT_STRING, &tar_pattern, .arg = "PATTERN",
         .help = "write WebDataset tars named PATTERN (one %d, numbered\n"
                 "from 0: out-%05d.tar) instead, --tar-size each"},
        {"tar-size", 0, SP_OPT_SIZE, &tar_size, .min = 4096, .arg = "SIZE",
         .help = "--tar-shards: bytes a tar may hold (default 1G); a\n"
                 "larger record has a tar of its own"},
        {"split", 0, SP_OPT_CALL, &split_mask, .call = set_splits, .arg = "S[,S]",
         .help = "--tar, --tar-shards: only the records of these splits\n(train, val, test)"},
        SP_CLI_CACHE_OPTS,
        {0},
    };
    const sp_cli_tool cli = {"sp-cat", "[OPTION]... [INPUT]...", about, table, NULL};
    sp_cli_args args;
    int status = sp_cli_parse(&cli, argc, argv, &args);
    if (status >= 0)
        return status;
    if (image_index >= 0 && meta_only)
        return sp_cli_usage_error("--image and --meta exclude each other");
    if (stream_out && (meta_only || image_index >= 0))
        return sp_cli_usage_error("--stream excludes --meta and --image");
    int tar_any = tar_flag || tar_pattern;
    if (tar_flag && tar_pattern)
        return sp_cli_usage_error("--tar and --tar-shards exclude each other");
    if (tar_any && (meta_only || image_index >= 0 || stream_out))
        return sp_cli_usage_error("--tar and --tar-shards exclude --meta, --image and --stream");
    if (!tar_any && (split_mask || tar_size != (uint64_t)1 << 30))
        return sp_cli_usage_error("--split and --tar-size go with --tar or --tar-shards");
    char why[300];
    if (tar_pattern && sp_wds_pattern_check(tar_pattern, why, sizeof why))
        return sp_cli_usage_error("--tar-shards: %s", why);
    if ((image_index >= 0 || stream_out || tar_flag) && (status = sp_cli_stdout_is_safe()))
        return status;
    sp_err err = {0};
    if (tar_any && !(tar_out = sp_wds_writer_open(tar_flag ? STDOUT_FILENO : -1, "stdout", tar_pattern, tar_size,
                                                  &err)))
        return sp_report(&err);
    const json_t *step = stream_out ? sp_cli_recipe(&err) : NULL;
    if (stream_out && !step)
        return sp_report(&err);
    sp_stage_init(&out, step, STDOUT_FILENO);
    char *dash[] = {"-"};
    int n = args.n;
    char **inputs = n ? args.v : dash;
    if (!n)
        n = 1;
    int rc = 0;
    for (int i = 0; i < n && rc == 0 && !image_done; i++) {
        sp_info("%s", inputs[i]);
        struct stat st;
        if (sp_remote_is_url(inputs[i]) || (strcmp(inputs[i], "-") && stat(inputs[i], &st) == 0 && S_ISDIR(st.st_mode)))
            rc = cat_dir(inputs[i], &err);
        else if (strcmp(inputs[i], "-") && is_hdf5(inputs[i]))
            rc = cat_shard(inputs[i], &err);
        else
            rc = cat_stream(inputs[i], &err);
    }
    json_decref(last_meta);
    int ntars = 0;
    if (rc == 0 && tar_out && (rc = sp_wds_writer_finish(tar_out, &ntars, &err)) == 0 && tar_pattern)
        sp_info("%d tar%s written", ntars, ntars == 1 ? "" : "s");
    sp_wds_writer_free(tar_out);
    json_decref(tar_classes);
    json_decref(tar_classes2);
    if (rc == 0 && stream_out && !out.w) /* no input had metadata: an empty stream still has its frame */
        rc = sp_stage_meta(&out, NULL, &err);
    if (rc == 0 && stream_out)
        rc = sp_stage_finish(&out, &err);
    sp_stage_free(&out);
    if (rc == 0 && image_index >= 0 && !image_done)
        rc = sp_fail(&err, SP_EXIT_DATA, "no record %lld: the input holds %lld", image_index, seen);
    if (fflush(stdout) && rc == 0)
        rc = sp_fail(&err, SP_EXIT_SYSTEM, "stdout: write failed: %s", strerror(errno));
    return rc ? sp_report(&err) : SP_EXIT_OK;
}
