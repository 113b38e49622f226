/* sp-cat: print a record stream, a shard or a shard set as JSON lines. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "pipeline/stage.h"
#include "shards/manifest.h"
#include "shards/shard_records.h"

static const char about[] =
    "Print every record of a record stream, an HDF5 shard or a shard directory as\n"
    "one JSON line on stdout: key, split, label (and label2 where there is one),\n"
    "kind, shape and dtype (pixels; encoded: the decoded shape, and the codec),\n"
    "size in bytes and checksum (XXH3-64 of the payload, hex). Payloads are not printed. Each INPUT is a record stream file\n"
    "(zstd-compressed or not), a shard file, or a directory with manifest.json;\n"
    "with no INPUT, or when INPUT is -, read a stream from stdin. Streams are\n"
    "verified as they are read, so a corrupt or cut stream is an error.\n";

static int meta_only;

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
    (void)err;
    json_decref(last_meta);
    last_meta = json_deep_copy(meta);
    return 0;
}

static int on_record(void *ctx, sp_reader *r, sp_record *rec, sp_err *err)
{
    (void)ctx;
    if (sp_reader_drain(r, rec, err))
        return -1;
    if (!meta_only)
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
    (void)ctx, (void)pixels, (void)err;
    print_record(rec);
    return 0;
}

static int cat_shard(const char *path, sp_err *err)
{
    sp_shard *s = sp_shard_open(path, err);
    if (!s)
        return -1;
    int rc = 0;
    if (meta_only) {
        json_t *m = sp_shard_meta(s);
        print_json(m ? json_incref(m) : json_object());
    } else {
        rc = sp_shard_each_record(s, print_shard_record, NULL, err);
    }
    sp_shard_close(s);
    return rc;
}

static int cat_dir(const char *dir, sp_err *err)
{
    if (!meta_only)
        return sp_shardset_each_record(dir, print_shard_record, NULL, err);
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

int main(int argc, char **argv)
{
    const sp_opt table[] = {
        {"meta", 'm', SP_OPT_FLAG, &meta_only, .help = "print the metadata (one JSON object per input) instead"},
        {0},
    };
    const sp_cli_tool cli = {"sp-cat", "[OPTION]... [INPUT]...", about, table, NULL};
    sp_cli_args args;
    int status = sp_cli_parse(&cli, argc, argv, &args);
    if (status >= 0)
        return status;
    char *dash[] = {"-"};
    int n = args.n;
    char **inputs = n ? args.v : dash;
    if (!n)
        n = 1;
    sp_err err = {0};
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        sp_info("%s", inputs[i]);
        struct stat st;
        if (strcmp(inputs[i], "-") && stat(inputs[i], &st) == 0 && S_ISDIR(st.st_mode))
            rc = cat_dir(inputs[i], &err);
        else if (strcmp(inputs[i], "-") && is_hdf5(inputs[i]))
            rc = cat_shard(inputs[i], &err);
        else
            rc = cat_stream(inputs[i], &err);
    }
    json_decref(last_meta);
    if (fflush(stdout) && rc == 0)
        rc = sp_fail(&err, SP_EXIT_SYSTEM, "write failed");
    return rc ? sp_report(&err) : SP_EXIT_OK;
}
