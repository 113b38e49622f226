/* sp-fetch: a dataset's source files, verified and cached, as blob records. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "pipeline/datasets.h"
#include "pipeline/fetch.h"
#include "pipeline/stage.h"

static const char usage[] =
    "Usage: sp-fetch [OPTION]... NAME|URL|FILE...\n"
    "Get a dataset's source files, verified and cached, and write them to stdout\n"
    "as a record stream of blob records (one per file), for sp-unpack.\n"
    "\n"
    "NAME is a dataset manifest (mnist, fashion-mnist, cifar10, cifar100, imagenet,\n"
    "or a .json path): its files are downloaded from its mirrors in order and\n"
    "verified against the published md5 (or the sha256 of their content, for a\n"
    "mirror that recompressed them). URL is one file (verified with --md5 or\n"
    "--sha256 if given); FILE is a local file, passed on as it is.\n"
    "\n"
    "Downloads go to CACHE/NAME/FILE.part and are renamed into place once\n"
    "verified; a file in the cache is never requested again. An interrupted\n"
    "download resumes; a file that fails verification is kept as FILE.bad.\n"
    "\n"
    "  -c, --cache DIR          the cache (default: $SP_CACHE, else\n"
    "                           $XDG_CACHE_HOME/shardpipe or ~/.cache/shardpipe)\n"
    "  -f, --file NAME          only this file of the dataset (repeatable)\n"
    "      --from DIR           verify the copies already in DIR instead of\n"
    "                           downloading, and read them from there (ImageNet)\n"
    "      --offline            never download: fail if a file is not cached\n"
    "      --raw                write the bytes of the one selected file, not a stream\n"
    "      --path               print the verified files' paths, one per line\n"
    "      --md5 SUM            expected md5 of a URL's file\n"
    "      --sha256 SUM         expected sha256 of a URL's file\n"
    "      --retries N          tries per mirror after a transient failure (3)\n"
    "      --retry-delay SEC    first wait before a retry, doubling each time (1)\n"
    "      --stall-timeout SEC  cut a transfer that sends nothing for SEC (30)\n"
    "      --connect-timeout SEC  (30)\n"
    "      --ca-file FILE       trust the CA certificates in FILE for https\n"
    "  -q, --quiet              report nothing but errors\n"
    "  -v, --verbose            report more\n"
    "  -h, --help               show this help and exit\n"
    "  -V, --version            show the version and exit\n"
    "\n"
    "Exit status: 0 success; 1 a file could not be had or did not verify (the\n"
    "message names the expected and actual sums); 2 usage error; 3 system error.\n";

/* One file to emit: where it is now, and its key. */
typedef struct item {
    char path[4096];
    char key[512];
} item;

static sp_progress prog;
static const char *prog_name;

static void on_note(void *ctx, const char *line)
{
    (void)ctx;
    sp_progress_done(&prog);
    if (sp_verbosity >= 1)
        sp_msg("%s", line);
}

static void on_progress(void *ctx, const char *name, uint64_t have, uint64_t total)
{
    (void)ctx;
    if (!prog.enabled)
        return;
    double t = sp_now();
    if (t - prog.last < 0.2)
        return;
    prog.last = t;
    if (name != prog_name) {
        prog_name = name;
        prog.start = t;
    }
    double el = t - prog.start, rate = el > 0 ? (double)have / el : 0;
    char eta[32] = "";
    if (total && rate > 0 && have <= total)
        snprintf(eta, sizeof eta, ", ETA %.0f s", (double)(total - have) / rate);
    fprintf(stderr, "\r%s: %s: %.1f / %.1f MB, %.1f MB/s%s\033[K", sp_progname(), name, (double)have / 1e6,
            (double)total / 1e6, rate / 1e6, eta);
}

static int selected(char **only, int nonly, const char *name)
{
    if (!nonly)
        return 1;
    for (int i = 0; i < nonly; i++)
        if (!strcmp(only[i], name))
            return 1;
    return 0;
}

static int is_url(const char *s) { return strstr(s, "://") != NULL; }

static void default_cache(char *out, size_t n)
{
    const char *env = getenv("SP_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (env && *env)
        snprintf(out, n, "%s", env);
    else if (xdg && *xdg)
        snprintf(out, n, "%s/shardpipe", xdg);
    else
        snprintf(out, n, "%s/.cache/shardpipe", home && *home ? home : ".");
}

/* Copies a file into the stream as one blob record. */
static int emit(sp_stage *out, const item *it, sp_err *err)
{
    int fd = open(it->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s", it->path, strerror(errno));
    struct stat st;
    fstat(fd, &st);
    sp_record rec;
    int rc = sp_record_init(&rec, SP_KIND_BLOB, it->key, err);
    rec.payload_len = (uint64_t)st.st_size;
    if (!rc)
        rc = sp_writer_begin(out->w, &rec, err);
    static uint8_t buf[1 << 20];
    uint64_t done = 0;
    while (!rc && done < (uint64_t)st.st_size) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
            rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", it->path, n < 0 ? strerror(errno) : "shrank while read");
            break;
        }
        done += (uint64_t)n;
        rc = sp_writer_append(out->w, buf, (size_t)n, err);
    }
    if (!rc)
        rc = sp_writer_end(out->w, err);
    close(fd);
    return rc;
}

static int write_raw(const item *it, sp_err *err)
{
    int fd = open(it->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s", it->path, strerror(errno));
    static uint8_t buf[1 << 20];
    ssize_t n;
    int rc = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (sp_write_all(STDOUT_FILENO, buf, (size_t)n)) {
            rc = sp_fail(err, SP_EXIT_SYSTEM, "write failed: %s", strerror(errno));
            break;
        }
    if (n < 0)
        rc = sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", it->path, strerror(errno));
    close(fd);
    return rc;
}

/* Adds to jobs what fetching arg means: {"file", "subdir", "mirrors"} for
 * each selected file of a dataset or a URL, {"file", "local"} for a local
 * file. Sets the dataset's name and classes in meta. */
static int plan(const char *arg, const char *cache, const char *from, const char *md5, const char *sha,
                char **only, int nonly, int offline, json_t *jobs, json_t *meta, sp_err *err)
{
    struct stat st;
    if (is_url(arg)) {
        /* one file, cached under urls/ by a hash of the URL */
        char name[256], subdir[64];
        const char *slash = strrchr(arg, '/');
        snprintf(name, sizeof name, "%s", slash && slash[1] ? slash + 1 : "download");
        name[strcspn(name, "?#")] = 0;
        unsigned long long h = 1469598103934665603ull; /* FNV-1a */
        for (const char *p = arg; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        snprintf(subdir, sizeof subdir, "urls/%016llx", h);
        json_t *f = json_pack("{s:s, s:s}", "name", name, "url", arg);
        if (md5)
            json_object_set_new(f, "md5", json_string(md5));
        if (sha)
            json_object_set_new(f, "sha256", json_string(sha));
        json_array_append_new(jobs, json_pack("{s:o, s:s, s:[]}", "file", f, "subdir", subdir, "mirrors"));
        return 0;
    }
    if (!strstr(arg, ".json") && stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
        json_array_append_new(jobs, json_pack("{s:{s:s}, s:s}", "file", "name", sp_basename(arg), "local", arg));
        return 0;
    }
    json_t *manifest = sp_dataset_manifest(arg, err);
    if (!manifest)
        return -1;
    const char *subdir = json_string_value(json_object_get(manifest, "name"));
    json_t *mirrors = json_object_get(manifest, "mirrors");
    json_object_set(meta, "dataset", json_object_get(manifest, "name"));
    if (json_object_get(manifest, "classes"))
        json_object_set(meta, "classes", json_object_get(manifest, "classes"));
    const char *how_to_get = json_string_value(json_object_get(manifest, "access"));
    size_t k;
    json_t *f;
    int rc = 0;
    json_array_foreach(json_object_get(manifest, "files"), k, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!selected(only, nonly, name))
            continue;
        /* a dataset with nothing to download from: only the cache or --from */
        char cached[4200];
        snprintf(cached, sizeof cached, "%s/%s/%s", cache, subdir, name);
        if (!from && !offline && json_array_size(mirrors) == 0 && how_to_get && access(cached, F_OK)) {
            rc = sp_fail(err, SP_EXIT_DATA, "%s: %s", arg, how_to_get);
            break;
        }
        json_array_append_new(jobs, json_pack("{s:O, s:s, s:O}", "file", f, "subdir", subdir, "mirrors", mirrors));
    }
    json_decref(manifest);
    return rc;
}

int main(int argc, char **argv)
{
    sp_cli_init(argc, argv);
    enum { O_FROM = 256, O_OFFLINE, O_RAW, O_PATH, O_MD5, O_SHA, O_RETRIES, O_DELAY, O_STALL, O_CONNECT, O_CA };
    static const struct option opts[] = {
        {"cache", required_argument, 0, 'c'},      {"file", required_argument, 0, 'f'},
        {"from", required_argument, 0, O_FROM},    {"offline", no_argument, 0, O_OFFLINE},
        {"raw", no_argument, 0, O_RAW},            {"path", no_argument, 0, O_PATH},
        {"md5", required_argument, 0, O_MD5},      {"sha256", required_argument, 0, O_SHA},
        {"retries", required_argument, 0, O_RETRIES}, {"retry-delay", required_argument, 0, O_DELAY},
        {"stall-timeout", required_argument, 0, O_STALL}, {"connect-timeout", required_argument, 0, O_CONNECT},
        {"ca-file", required_argument, 0, O_CA},   {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},          {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},          {0, 0, 0, 0},
    };
    sp_fetch_opts fo;
    sp_fetch_opts_default(&fo);
    char cache[4096];
    default_cache(cache, sizeof cache);
    char *only[64];
    int nonly = 0, raw = 0, paths = 0;
    const char *from = NULL, *md5 = NULL, *sha = NULL;
    uint64_t v;
    char *end;
    int c;
    while ((c = getopt_long(argc, argv, "c:f:qvhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': snprintf(cache, sizeof cache, "%s", optarg); break;
        case 'f':
            if (nonly == 64)
                return sp_cli_usage_error("too many --file options");
            only[nonly++] = optarg;
            break;
        case O_FROM: from = optarg; break;
        case O_OFFLINE: fo.offline = 1; break;
        case O_RAW: raw = 1; break;
        case O_PATH: paths = 1; break;
        case O_MD5: md5 = optarg; break;
        case O_SHA: sha = optarg; break;
        case O_RETRIES:
            if (sp_parse_u64(optarg, &v) || v > 100)
                return sp_cli_usage_error("--retries: not a number from 0 to 100: %s", optarg);
            fo.retries = (int)v;
            break;
        case O_DELAY:
            fo.retry_delay = strtod(optarg, &end);
            if (*end || fo.retry_delay < 0 || fo.retry_delay > 3600)
                return sp_cli_usage_error("--retry-delay: not a number of seconds: %s", optarg);
            break;
        case O_STALL:
        case O_CONNECT:
            if (sp_parse_u64(optarg, &v) || v < 1 || v > 86400)
                return sp_cli_usage_error("--%s: not a number of seconds: %s",
                                          c == O_STALL ? "stall-timeout" : "connect-timeout", optarg);
            *(c == O_STALL ? &fo.stall_timeout : &fo.connect_timeout) = (long)v;
            break;
        case O_CA: fo.ca_file = optarg; break;
        default: {
            int status = sp_cli_common_option(c, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (optind == argc)
        return sp_cli_usage_error("nothing to fetch: name a dataset, a URL or a file");
    if (raw && paths)
        return sp_cli_usage_error("--raw and --path exclude each other");
    if (!raw && !paths && sp_cli_stdout_is_safe())
        return SP_EXIT_USAGE;
    fo.cache_dir = cache;
    fo.note = on_note;
    fo.progress = on_progress;
    sp_progress_init(&prog);

    sp_err err = {0};
    json_t *meta = json_object(), *jobs = json_array();
    int rc = sp_fetch_global_init(&err);
    /* first what to fetch (so usage errors come before any download) ... */
    for (int i = optind; rc == 0 && i < argc; i++)
        rc = plan(argv[i], cache, from, md5, sha, only, nonly, fo.offline, jobs, meta, &err);
    size_t nitems = json_array_size(jobs);
    if (rc == 0 && nitems == 0)
        rc = sp_fail(&err, SP_EXIT_USAGE, "no file selected (check --file)");
    if (rc == 0 && raw && nitems != 1)
        rc = sp_fail(&err, SP_EXIT_USAGE, "--raw writes one file; %zu are selected (use --file)", nitems);
    /* ... then fetch and verify each */
    item *items = calloc(nitems ? nitems : 1, sizeof *items);
    for (size_t i = 0; rc == 0 && i < nitems; i++) {
        json_t *job = json_array_get(jobs, i);
        json_t *f = json_object_get(job, "file");
        const char *subdir = json_string_value(json_object_get(job, "subdir"));
        const char *local = json_string_value(json_object_get(job, "local"));
        item *it = &items[i];
        snprintf(it->key, sizeof it->key, "%s", json_string_value(json_object_get(f, "name")));
        if (local)
            snprintf(it->path, sizeof it->path, "%s", local);
        else if (from && !json_object_get(f, "url"))
            rc = sp_fetch_verify_copy(&fo, subdir, from, f, it->path, sizeof it->path, &err);
        else
            rc = sp_fetch_file(&fo, subdir, json_object_get(job, "mirrors"), f, it->path, sizeof it->path, &err);
    }
    sp_progress_done(&prog);
    if (rc == 0 && raw) {
        rc = write_raw(&items[0], &err);
    } else if (rc == 0 && paths) {
        for (size_t i = 0; i < nitems; i++)
            printf("%s\n", items[i].path);
        if (fflush(stdout))
            rc = sp_fail(&err, SP_EXIT_SYSTEM, "write failed");
    } else if (rc == 0) {
        sp_stage out;
        sp_stage_init(&out, "sp-fetch", argc, argv, STDOUT_FILENO);
        rc = sp_stage_meta(&out, meta, &err);
        for (size_t i = 0; rc == 0 && i < nitems; i++)
            rc = emit(&out, &items[i], &err);
        if (rc == 0)
            rc = sp_stage_finish(&out, &err);
        sp_stage_free(&out);
    }
    free(items);
    json_decref(jobs);
    json_decref(meta);
    return rc ? sp_report(&err) : SP_EXIT_OK;
}
