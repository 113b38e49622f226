/* sp-shard: pixel records in, HDF5+zstd shards and a manifest out. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "pipeline/stage.h"
#include "common/sp_part.h"
#include "shards/shard.h"
#include "shards/shuffle.h"

static const char usage[] =
    "Usage: sp-shard -o DIR [OPTION]... [STREAM]...\n"
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
    "  -o, --output DIR             the shard directory (created if missing)\n"
    "  -n, --records-per-shard N    at most N records per shard\n"
    "  -s, --shard-size SIZE        at most SIZE bytes of pixels per shard, before\n"
    "                               compression (k, M, G suffixes; default 256M)\n"
    "  -l, --level N                zstd level, 1 to 19 (default 1)\n"
    "      --literals raw|huffman   how zstd stores the pixels' literals: raw (the\n"
    "                               default) reads about twice as fast for 5-7% more\n"
    "                               bytes; huffman gives the smallest files\n"
    "      --shuffle SEED           the shuffle's seed (default 0)\n"
    "      --no-shuffle             keep the train split in input order too\n"
    "      --memory SIZE            memory for the shuffle before it spills to disk\n"
    "                               (default 1G)\n"
    "      --part I/N               keep only part I (0 .. N-1) of N of the records, by a\n"
    "                               hash of their keys: N runs (machines, cluster jobs)\n"
    "                               each write a part; shard names carry the part\n"
    "      --merge DIR...           join the shard sets of the parts in DIRs into the\n"
    "                               -o directory (linked, or copied) under one manifest\n"
    "  -q, --quiet                  report nothing but errors\n"
    "  -v, --verbose                list every shard written\n"
    "  -h, --help                   show this help and exit\n"
    "  -V, --version                show the version and exit\n"
    "\n"
    "Exit status: 0 success; 1 bad input (a corrupt or cut stream, records that\n"
    "are not pixels, shapes that differ within a split); 2 usage error; 3 system\n"
    "error (I/O, HDF5, another sp-shard writing DIR).\n";

typedef struct tool {
    int part, parts;
    sp_shardset *set;
    sp_shuffler *shuffle; /* the train split's records, or NULL */
    json_t *meta;         /* the input's latest metadata (owned) */
    sp_progress prog;
} tool;

static int to_set(void *ctx, const sp_record *rec, const uint8_t *payload, sp_err *err)
{
    return sp_shardset_add(((tool *)ctx)->set, rec, payload, err);
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
    if (rec->kind != SP_KIND_PIXELS)
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

int main(int argc, char **argv)
{
    sp_cli_init(argc, argv);
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},     {"records-per-shard", required_argument, 0, 'n'},
        {"shard-size", required_argument, 0, 's'}, {"level", required_argument, 0, 'l'},
        {"quiet", no_argument, 0, 'q'},            {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},             {"version", no_argument, 0, 'V'},
        {"shuffle", required_argument, 0, 'S'},    {"no-shuffle", no_argument, 0, 'N'},
        {"memory", required_argument, 0, 'M'},     {"part", required_argument, 0, 'P'},
        {"merge", no_argument, 0, 'G'},            {"literals", required_argument, 0, 'L'},
        {0, 0, 0, 0},
    };
    const char *dir = NULL;
    uint64_t seed = 0, memory = 1ull << 30;
    int shuffle = 1, merge = 0;
    sp_shard_opts so;
    sp_shard_opts_default(&so);
    so.on_info = print_info;
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "o:n:s:l:qvhV", opts, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'n':
            if (sp_parse_u64(optarg, &v) || v == 0)
                return sp_cli_usage_error("--records-per-shard: not a positive number: %s", optarg);
            so.max_records = v;
            break;
        case 's':
            if (sp_parse_size(optarg, &v) || v == 0)
                return sp_cli_usage_error("--shard-size: not a size: %s", optarg);
            so.max_bytes = v;
            break;
        case 'S':
            if (sp_parse_u64(optarg, &seed))
                return sp_cli_usage_error("--shuffle: not a number: %s", optarg);
            shuffle = 1;
            break;
        case 'N': shuffle = 0; break;
        case 'L':
            if (strcmp(optarg, "raw") && strcmp(optarg, "huffman"))
                return sp_cli_usage_error("--literals: raw or huffman, not %s", optarg);
            so.raw_literals = !strcmp(optarg, "raw");
            break;
        case 'G': merge = 1; break;
        case 'P':
            if (sp_parse_part(optarg, &so.part, &so.parts))
                return sp_cli_usage_error("--part: I/N with 0 <= I < N, not %s", optarg);
            break;
        case 'M':
            if (sp_parse_size(optarg, &memory) || memory < (1u << 20))
                return sp_cli_usage_error("--memory: a size of at least 1M, not %s", optarg);
            break;
        case 'l':
            if (sp_parse_u64(optarg, &v) || v < 1 || v > 19)
                return sp_cli_usage_error("--level: must be 1 to 19: %s", optarg);
            so.zstd_level = (int)v;
            break;
        default: {
            int status = sp_cli_common_option(c, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (!dir)
        return sp_cli_usage_error("no output directory (-o DIR)");
    sp_err err = {0};
    if (merge) {
        if (optind == argc)
            return sp_cli_usage_error("--merge: name the part directories");
        if (sp_shardset_merge(dir, argv + optind, argc - optind, &err))
            return sp_report(&err);
        if (sp_verbosity >= 1)
            sp_msg("merged %d shard sets into %s", argc - optind, dir);
        return SP_EXIT_OK;
    }
    tool t = {.part = so.part, .parts = so.parts};
    sp_progress_init(&t.prog);
    t.set = sp_shardset_create(dir, &so, &err);
    int rc = t.set ? 0 : -1;
    if (rc == 0 && shuffle && !(t.shuffle = sp_shuffler_create(dir, seed, (size_t)memory, &err)))
        rc = -1;
    if (rc == 0)
        rc = sp_stage_each(argc - optind, argv + optind, on_meta, on_record, &t, &t.prog, &err);
    sp_progress_done(&t.prog);
    if (rc == 0 && t.shuffle) {
        sp_info("shuffling %llu train records (%llu runs on disk)", (unsigned long long)sp_shuffler_count(t.shuffle),
                (unsigned long long)sp_shuffler_runs(t.shuffle));
        rc = sp_shuffler_drain(t.shuffle, to_set, &t, &err);
    }
    if (rc == 0) {
        json_object_set_new(t.meta, "shuffle", shuffle ? json_pack("{s:I, s:[s]}", "seed", (json_int_t)seed, "splits",
                                                                   "train")
                                                       : json_null());
        if (so.parts)
            json_object_set_new(t.meta, "part", json_pack("{s:i, s:i}", "index", so.part, "count", so.parts));
        if (sp_meta_add_recipe(t.meta, "sp-shard", argc, argv))
            rc = sp_fail(&err, SP_EXIT_SYSTEM, "out of memory");
        else
            rc = sp_shardset_commit(t.set, t.meta, &err);
    }
    int status = rc ? sp_report(&err) : SP_EXIT_OK;
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
        sp_msg("%lld records in %zu shards (%s), %.1f MB, in %s%s",
               (long long)json_integer_value(json_object_get(m, "total_records")),
               json_array_size(json_object_get(m, "shards")), parts,
               (double)json_integer_value(json_object_get(m, "total_bytes")) / 1e6, dir, resumed);
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
    json_decref(t.meta);
    return status;
}
