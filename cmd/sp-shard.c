/* sp-shard: pixel records in, HDF5+zstd shards and a manifest out. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/sp_cli.h"
#include "pipeline/stage.h"
#include "common/sp_part.h"
#include "shards/shard.h"
#include "shards/cache.h"
#include "shards/remote.h"
#include "shards/shuffle.h"
#include "shards/upload.h"

static const char about[] =
    "Write the pixel records of a record stream to HDF5 shards compressed with\n"
    "zstd (HDF5 filter 32015), one set per split, and DIR/manifest.json listing\n"
    "every shard with its split, record count, size and sha256. With no STREAM,\n"
    "or when STREAM is -, read stdin.\n"
    "\n"
    "The train split is shuffled (unless --no-shuffle): its records are ordered by\n"
    "a hash of (seed, key), so the order depends on neither the input order nor\n"
    "the machine; memory stays under --memory, the rest spills to sorted runs in\n"
    "DIR. Other splits keep their input order.\n"
    "\n"
    "Nothing in DIR changes unless the whole stream is read and verified: shards\n"
    "are written under temporary names, fsynced and renamed, and the manifest is\n"
    "replaced last. Shards of an earlier run that the new manifest does not list\n"
    "are then removed. Equal input and options give byte-identical files.\n"
    "\n"
    "Resume: every finished shard is kept in DIR under a hidden name and listed\n"
    "in DIR/.sp-journal. Rerunning the same command after a crash or a kill\n"
    "compares the records with those shards instead of compressing them again,\n"
    "takes over every shard whose records (keys, labels, pixel checksums) and\n"
    "options are equal, and ends with the files of an uninterrupted run.\n"
    "\n"
    "Upload: with -o s3://BUCKET/PREFIX/ or -o http(s)://HOST/PATH/ (a server that\n"
    "takes PUT, such as nginx with WebDAV) the set is written as above into a\n"
    "local staging directory (--staging), then each shard is put under the URL\n"
    "(on S3 in parts above --multipart-size), and manifest.json last, once every\n"
    "shard is up: a reader never sees a manifest whose shards are missing. A shard\n"
    "already there with the manifest's size and sha256 is kept (over HTTP it is\n"
    "read back to hash it), so a rerun after a crash or a kill puts only what is\n"
    "missing. The default staging directory is removed after a complete upload;\n"
    "one given with --staging is kept. Credentials: as for reading (AWS_*\n"
    "variables or ~/.aws/credentials, --s3-endpoint; user:password@ in an http\n"
    "URL). CA bundle: $SHARDPIPE_CA_FILE, else $CURL_CA_BUNDLE or $SSL_CERT_FILE.\n"
    "\n"
    "Merge: the DIR operands of --merge may be URLs (each part is downloaded,\n"
    "checked against its manifest, into the cache), and -o a URL (the merged set\n"
    "is uploaded as above).\n";

typedef struct tool {
    int part, parts;
    sp_shardset *set;
    sp_shuffler *shuffle; /* the train split's records, or NULL */
    json_t *meta;         /* the input's latest metadata (owned) */
    sp_progress prog;
    uint64_t drained, drain_total, drained_bytes; /* the shuffle's second phase */
} tool;

/* The shuffle's second phase: its records, in their new order, into the shards. */
static int to_set(void *ctx, const sp_record *rec, const uint8_t *payload, sp_err *err)
{
    tool *t = ctx;
    t->drained++;
    t->drained_bytes += rec->payload_len;
    sp_progress_input(&t->prog, t->drained, t->drain_total);
    sp_progress_update_at(&t->prog, "shuffle", t->drained, t->drained_bytes);
    return sp_shardset_add(t->set, rec, payload, err);
}

static int on_meta(void *ctx, const json_t *meta, sp_err *err)
{
    tool *t = ctx;
    json_decref(t->meta);
    t->meta = json_deep_copy(meta);
    return t->meta ? 0 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
}

static int on_record(void *ctx, sp_reader *r, sp_record *rec, sp_err *err)
{
    tool *t = ctx;
    if (t->parts && sp_part_of(rec->key, rec->key_len, t->parts) != t->part)
        return 0; /* another part's record: its payload is skipped (and verified) */
    const uint8_t *data;
    if (rec->kind != SP_KIND_PIXELS && rec->kind != SP_KIND_ENCODED)
        return sp_shardset_add(t->set, rec, NULL, err);
    if (sp_reader_payload(r, rec, &data, err))
        return -1;
    if (t->shuffle && rec->split == SP_SPLIT_TRAIN)
        return sp_shuffler_add(t->shuffle, rec, data, err);
    return sp_shardset_add(t->set, rec, data, err);
}

/* The writer's notes (sp_shard_opts.on_info): shown with -v. */
static void print_info(void *ctx, const char *msg)
{
    (void)ctx;
    sp_info("%s", msg);
}

/* The default staging directory of url: CACHE/staging/ and 16 hex digits of
 * its sha256 (the same for a rerun), created. 0 or -1 (err). */
static int default_staging(const char *url, char *out, size_t n, sp_err *err)
{
    char root[4096];
    unsigned char d[32];
    unsigned dl = 0;
    if (sp_cache_root(NULL, root, sizeof root, err))
        return -1;
    EVP_Digest(url, strlen(url), d, &dl, EVP_sha256(), NULL);
    int w = snprintf(out, n, "%s/staging/", root);
    for (unsigned i = 0; i < 8 && w > 0 && (size_t)w + 3 < n; i++)
        w += snprintf(out + w, n - (size_t)w, "%02x", d[i]);
    if (sp_mkdirs(out))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: cannot create: %s", out, strerror(errno));
    return 0;
}

/* Removes the set in dir (the files its manifest m lists, the manifest, the
 * writer's lock, the directory once empty): the default staging after its
 * upload, once the set is closed. */
static void remove_staging(const char *dir, const json_t *m)
{
    char path[4400];
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(m, "shards"), i, e) {
        snprintf(path, sizeof path, "%s/%s", dir, json_string_value(json_object_get(e, "file")));
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/.sp-lock", dir);
    unlink(path);
    rmdir(dir);
}

/* Removes the committed set in dir as remove_staging does (a default
 * staging or a part's fetched copy), by its own manifest. */
static void remove_fetched(const char *dir)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    json_t *m = json_load_file(path, 0, NULL);
    if (m)
        remove_staging(dir, m);
    json_decref(m);
}

/* The upload's summary line (at -v). */
static void say_uploaded(const sp_upload_stats *up)
{
    sp_msg("uploaded %llu shard%s (%llu in parts), %llu already there, and the manifest", (unsigned long long)up->put,
           up->put == 1 ? "" : "s", (unsigned long long)up->multipart, (unsigned long long)up->kept);
}

/* sp-shard --merge: the parts (directories, or URLs fetched into their
 * default staging directories first) merged into dir, then, with url,
 * uploaded there; dir is then removed unless it was given (--staging), as
 * are the parts' fetched copies. Returns the exit status. */
static int merge_sets(const char *dir, const char *url, const char *staging, uint64_t part_size, char **parts,
                      int n)
{
    sp_err err = {0};
    char **local = calloc((size_t)n, sizeof *local), **shown = calloc((size_t)n, sizeof *shown);
    int rc = local && shown ? 0 : sp_fail(&err, SP_EXIT_SYSTEM, "out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        char path[4400];
        if (!(shown[i] = strdup(sp_remote_shown(parts[i], path, sizeof path))))
            rc = sp_fail(&err, SP_EXIT_SYSTEM, "out of memory");
        else if (!sp_remote_is_url(parts[i]))
            local[i] = strdup(parts[i]);
        else if (!(rc = default_staging(parts[i], path, sizeof path, &err)) &&
                 !(rc = sp_shardset_fetch(parts[i], path, &err)))
            local[i] = strdup(path);
        if (rc == 0 && !local[i])
            rc = sp_fail(&err, SP_EXIT_SYSTEM, "out of memory");
    }
    if (rc == 0)
        rc = sp_shardset_merge(dir, local, shown, n, &err);
    sp_upload_stats up = {0};
    if (rc == 0 && url)
        rc = sp_upload_set(dir, url, part_size, &up, &err);
    int status = sp_cli_exit(rc ? &err : NULL);
    if (rc == 0 && sp_verbosity >= 1) {
        char where[4400];
        sp_msg("merged %d shard sets into %s", n, url ? sp_remote_shown(url, where, sizeof where) : dir);
        if (url)
            say_uploaded(&up);
    }
    for (int i = 0; local && shown && i < n; i++) {
        if (rc == 0 && local[i] && sp_remote_is_url(parts[i]))
            remove_fetched(local[i]);
        free(local[i]);
        free(shown[i]);
    }
    free(local);
    free(shown);
    if (rc == 0 && url && !staging)
        remove_fetched(dir);
    return status;
}

int main(int argc, char **argv)
{
    static const char *const literals[] = {"huffman", "raw", NULL};
    const char *dir = NULL, *staging = NULL;
    uint64_t part_size = 64ull << 20;
    uint64_t seed = 0, memory = 1ull << 30;
    int no_shuffle = 0, merge = 0, level;
    sp_shard_opts so;
    sp_shard_opts_default(&so);
    so.on_info = print_info;
    level = so.zstd_level;
    sp_cli_part part = {0};
    const sp_opt table[] = {
        {"output", 'o', SP_OPT_STRING, &dir, .arg = "DIR", .help = "the shard directory (created if missing), or\n"
                                                                    "s3://BUCKET/PREFIX/ or http(s)://HOST/PATH/\n"
                                                                    "to upload the set there",
         .flags = SP_OPT_NO_RECIPE},
        {"staging", 0, SP_OPT_STRING, &staging, .arg = "DIR", .flags = SP_OPT_NO_RECIPE,
         .help = "with -o URL: write the set here before the\n"
                 "upload, and keep it (default: a directory under\n"
                 "the cache, $SHARDPIPE_CACHE/staging, removed after)"},
        {"multipart-size", 0, SP_OPT_SIZE, &part_size, .min = 1 << 16, .arg = "SIZE", .flags = SP_OPT_NO_RECIPE,
         .help = "with -o s3://...: upload larger shards in parts of\n"
                 "SIZE (default 64M; S3 wants 5M at least)"},
        {"s3-endpoint", 0, SP_OPT_CALL, NULL, .call = sp_cli_set_cache, .arg = "URL", .flags = SP_OPT_NO_RECIPE,
         .help = "the S3 server of -o s3://... (default\n$AWS_ENDPOINT_URL, else AWS's)"},
        {"records-per-shard", 'n', SP_OPT_U64, &so.max_records, .min = 1, .arg = "N",
         .help = "at most N records per shard"},
        {"shard-size", 's', SP_OPT_SIZE, &so.max_bytes, .min = 1, .arg = "SIZE",
         .help = "at most SIZE bytes of pixels per shard, before\ncompression (k, M, G suffixes; default 256M)"},
        {"level", 'l', SP_OPT_INT, &level, .min = 1, .max = 19, .arg = "N", .help = "zstd level, 1 to 19 (default 1)"},
        {"literals", 0, SP_OPT_CHOICE, &so.raw_literals, .choices = literals, .arg = "raw|huffman",
         .help = "how zstd stores the pixels' literals: raw (the\n"
                 "default) reads about twice as fast for 5-7% more\n"
                 "bytes; huffman gives the smallest files"},
        {"shuffle", 0, SP_OPT_U64, &seed, .arg = "SEED", .help = "the shuffle's seed (default 0)"},
        {"no-shuffle", 0, SP_OPT_FLAG, &no_shuffle, .help = "keep the train split in input order too"},
        {"memory", 0, SP_OPT_SIZE, &memory, .min = 1 << 20, .arg = "SIZE", .flags = SP_OPT_NO_RECIPE,
         .help = "memory for the shuffle before it spills to disk\n(default 1G)"},
        {"part", 0, SP_OPT_PART, &part, .arg = "I/N",
         .help = "keep only part I (0 .. N-1) of N of the records, by a\n"
                 "hash of their keys: N runs (machines, cluster jobs)\n"
                 "each write a part; shard names carry the part"},
        {"merge", 0, SP_OPT_FLAG, &merge, .arg = NULL,
         .help = "join the shard sets of the parts in the DIR (or URL)\n"
                 "operands into the -o directory (linked, or copied)\n"
                 "or URL under one manifest"},
        {0},
    };
    const sp_cli_tool cli = {"sp-shard", "-o DIR [OPTION]... [STREAM]...\n  or:  sp-shard -o DIR --merge DIR...", about,
                             table, NULL};
    sp_cli_args args;
    int status = sp_cli_parse(&cli, argc, argv, &args);
    if (status >= 0)
        return status;
    so.zstd_level = level;
    so.part = part.index;
    so.parts = part.count;
    int shuffle = !no_shuffle;
    if (!dir)
        return sp_cli_usage_error("no output directory (-o DIR)");
    sp_err err = {0};
    const char *url = NULL; /* -o s3://...: the set goes to dir (staging), then there */
    char staged[4400];
    if (sp_remote_is_url(dir)) {
        if (!strncmp(dir, "file://", 7))
            return sp_cli_usage_error("-o %s: give the directory itself, not a file:// URL", dir);
        url = dir;
        if (staging)
            snprintf(staged, sizeof staged, "%s", staging);
        else if (default_staging(url, staged, sizeof staged, &err))
            return sp_report(&err);
        dir = staged;
    } else if (staging) {
        return sp_cli_usage_error("--staging is for -o URL only");
    }
    if (merge) {
        if (args.n == 0)
            return sp_cli_usage_error("--merge: name the part directories");
        return merge_sets(dir, url, staging, part_size, args.v, args.n);
    }
    tool t = {.part = so.part, .parts = so.parts};
    sp_progress_init(&t.prog);
    t.set = sp_shardset_create(dir, &so, &err);
    int rc = t.set ? 0 : -1;
    if (rc == 0 && shuffle && !(t.shuffle = sp_shuffler_create(dir, seed, (size_t)memory, &err)))
        rc = -1;
    if (rc == 0)
        rc = sp_stage_each(args.n, args.v, on_meta, on_record, &t, sp_progress_cb, &t.prog, &err);
    sp_progress_done(&t.prog);
    if (rc == 0 && t.shuffle) {
        sp_info("shuffling %llu train records (%llu runs on disk, %.1f MB spilled)",
                (unsigned long long)sp_shuffler_count(t.shuffle), (unsigned long long)sp_shuffler_runs(t.shuffle),
                (double)sp_shuffler_spilled(t.shuffle) / 1e6);
        /* compressing the shuffled records is most of a large run: it has its own progress */
        sp_progress_init_phase(&t.prog);
        t.drain_total = sp_shuffler_count(t.shuffle);
        rc = sp_shuffler_drain(t.shuffle, to_set, &t, &err);
        if (rc == 0)
            sp_progress_finish(&t.prog);
        else
            sp_progress_done(&t.prog);
    }
    if (rc == 0 && t.meta && !json_string_value(json_object_get(t.meta, "dataset")) &&
        json_string_value(json_object_get(t.meta, "folder"))) /* no stage named it: the folder sp-unpack read */
        json_object_set(t.meta, "dataset", json_object_get(t.meta, "folder"));
    if (rc == 0) {
        json_object_set_new(t.meta, "shuffle", shuffle ? json_pack("{s:I, s:[s]}", "seed", (json_int_t)seed, "splits",
                                                                   "train")
                                                       : json_null());
        if (so.parts)
            json_object_set_new(t.meta, "part", json_pack("{s:i, s:i}", "index", so.part, "count", so.parts));
        const json_t *step = sp_cli_recipe(&err);
        if (!step || sp_meta_add_recipe(t.meta, step))
            rc = step ? sp_fail(&err, SP_EXIT_SYSTEM, "out of memory") : -1;
        else
            rc = sp_shardset_commit(t.set, t.meta, &err);
    }
    sp_upload_stats up = {0};
    json_t *uploaded = NULL; /* the default staging's manifest, once uploaded */
    if (rc == 0 && url) {
        if (sp_upload_set(dir, url, part_size, &up, &err))
            rc = -1;
        else if (!staging) /* removed once the set (and its lock) is closed */
            uploaded = json_incref((json_t *)sp_shardset_manifest(t.set));
    }
    status = sp_cli_exit(rc ? &err : NULL);
    if (rc == 0 && sp_verbosity >= 1) {
        const json_t *m = sp_shardset_manifest(t.set);
        const char *name;
        json_t *sj;
        char parts[1024] = "";
        size_t len = 0;
        json_object_foreach((json_t *)json_object_get(m, "splits"), name, sj) {
            len += (size_t)snprintf(parts + len, sizeof parts - len, "%s%s %lld", len ? ", " : "", name,
                                    (long long)json_integer_value(json_object_get(sj, "records")));
            if (len >= sizeof parts)
                break;
        }
        uint64_t written, reused;
        sp_shardset_counts(t.set, &written, &reused);
        char resumed[96] = "";
        if (reused)
            snprintf(resumed, sizeof resumed, "; %llu shard%s taken over from an interrupted run",
                     (unsigned long long)reused, reused == 1 ? "" : "s");
        size_t nshards = json_array_size(json_object_get(m, "shards"));
        char where[4400];
        sp_msg("%lld records in %zu shard%s (%s), %.1f MB, in %s%s",
               (long long)json_integer_value(json_object_get(m, "total_records")), nshards, nshards == 1 ? "" : "s",
               parts,
               (double)json_integer_value(json_object_get(m, "total_bytes")) / 1e6,
               url ? sp_remote_shown(url, where, sizeof where) : dir, resumed);
        if (url)
            say_uploaded(&up);
        if (sp_verbosity >= 2) {
            size_t i;
            json_t *e;
            json_array_foreach(json_object_get(m, "shards"), i, e)
                sp_msg("%s: %lld records", json_string_value(json_object_get(e, "file")),
                       (long long)json_integer_value(json_object_get(e, "records")));
        }
    }
    sp_shuffler_free(t.shuffle);
    sp_shardset_free(t.set);
    if (uploaded)
        remove_staging(dir, uploaded);
    json_decref(uploaded);
    json_decref(t.meta);
    return status;
}
