/* sp-fetch: a dataset's source files, verified and cached, as blob records. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "pipeline/datasets.h"
#include "pipeline/fetch.h"
#include "pipeline/stage.h"

static const char about[] =
    "Get a dataset's source files, verified and cached, and write them to stdout\n"
    "as a record stream of blob records (one per file), for sp-unpack.\n"
    "\n"
    "NAME is a dataset manifest (mnist, fashion-mnist, cifar10, cifar100, imagenet,\n"
    "or a .json path): its files are downloaded from its mirrors in order and\n"
    "verified against the published md5 (or the sha256 of their content, for a\n"
    "mirror that recompressed them). URL is one file (verified with --md5 or\n"
    "--sha256 if given, and cut off beyond --max-size); FILE is a local file,\n"
    "passed on as it is.\n"
    "\n"
    "Downloads go to CACHE/NAME/FILE.part and are renamed into place once\n"
    "verified; a file in the cache is never requested again. A URL's file is\n"
    "cached by the URL and the sums asked for, so a copy cached without --md5\n"
    "is never taken for one asked with it. An interrupted download resumes; a\n"
    "file that fails verification is kept as FILE.bad. A full disk stops the\n"
    "fetch with status 3.\n";

/* One file to emit: where it is now, and its key. */
typedef struct item {
    char path[4096];
    char key[512];
} item;

static sp_progress prog;

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
    sp_progress_file(&prog, name, have, total);
}

/* --md5 / --sha256: the sum's syntax, checked before anything is fetched;
 * stored lowercase into the char[65] at opt->dest. */
static int set_sum(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    size_t n = strcmp(opt->name, "md5") ? 64 : 32;
    if (!sp_fetch_sum_valid(arg, n)) {
        snprintf(why, why_len, "not %zu hex digits: %s", n, arg);
        return -1;
    }
    char *out = opt->dest;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)arg[i]);
    return 0;
}

/* --file NAME, repeatable: appended to the file_list at opt->dest */
typedef struct file_list {
    char *names[64];
    int n;
} file_list;

static int add_file(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    file_list *l = opt->dest;
    if (l->n == 64) {
        snprintf(why, why_len, "more than 64 given: %s", arg);
        return -1;
    }
    l->names[l->n++] = (char *)arg;
    return 0;
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

int main(int argc, char **argv)
{
    sp_fetch_opts fo;
    sp_fetch_opts_default(&fo);
    const char *cache_opt = NULL, *from = NULL;
    char md5[65] = "", sha[65] = "";
    file_list only = {0};
    int raw = 0, paths = 0, retries = fo.retries, stall = (int)fo.stall_timeout, connect = (int)fo.connect_timeout;
    const sp_opt table[] = {
        {"cache", 'c', SP_OPT_STRING, &cache_opt, .arg = "DIR",
         .help = "the cache (default: $SP_CACHE, else\n$XDG_CACHE_HOME/shardpipe or ~/.cache/shardpipe)",
         .flags = SP_OPT_NO_RECIPE},
        {"file", 'f', SP_OPT_CALL, &only, .call = add_file, .arg = "NAME",
         .help = "only this file of the dataset (repeatable)"},
        {"from", 0, SP_OPT_STRING, &from, .arg = "DIR",
         .help = "verify the copies already in DIR instead of\ndownloading, and read them from there (ImageNet)",
         .flags = SP_OPT_NO_RECIPE},
        {"offline", 0, SP_OPT_FLAG, &fo.offline, .help = "never download: fail if a file is not cached",
         .flags = SP_OPT_NO_RECIPE},
        {"raw", 0, SP_OPT_FLAG, &raw, .help = "write the bytes of the one selected file, not a stream"},
        {"path", 0, SP_OPT_FLAG, &paths, .help = "print the verified files' paths, one per line"},
        {"md5", 0, SP_OPT_CALL, md5, .call = set_sum, .arg = "SUM", .help = "expected md5 of a URL's file"},
        {"sha256", 0, SP_OPT_CALL, sha, .call = set_sum, .arg = "SUM", .help = "expected sha256 of a URL's file"},
        {"max-size", 0, SP_OPT_SIZE, &fo.max_size, .min = 1, .arg = "SIZE",
         .help = "cut off a URL's file beyond SIZE bytes (default 64G;\na dataset's files: their published size)",
         .flags = SP_OPT_NO_RECIPE},
        {"retries", 0, SP_OPT_INT, &retries, .min = 0, .max = 100, .arg = "N",
         .help = "tries per mirror after a transient failure (3)", .flags = SP_OPT_NO_RECIPE},
        {"retry-delay", 0, SP_OPT_DOUBLE, &fo.retry_delay, .min = 0, .max = 3600, .arg = "SEC",
         .help = "first wait before a retry, doubling each time (1)", .flags = SP_OPT_NO_RECIPE},
        {"stall-timeout", 0, SP_OPT_INT, &stall, .min = 1, .max = 86400, .arg = "SEC",
         .help = "cut a transfer that sends nothing for SEC (30)", .flags = SP_OPT_NO_RECIPE},
        {"connect-timeout", 0, SP_OPT_INT, &connect, .min = 1, .max = 86400, .arg = "SEC",
         .help = "give up connecting to a server after SEC (30)",
         .flags = SP_OPT_NO_RECIPE},
        {"ca-file", 0, SP_OPT_STRING, &fo.ca_file, .arg = "FILE",
         .help = "trust the CA certificates in FILE for https", .flags = SP_OPT_NO_RECIPE},
        {0},
    };
    const sp_cli_tool cli = {"sp-fetch", "[OPTION]... NAME|URL|FILE...", about, table, NULL};
    sp_cli_args args;
    int status = sp_cli_parse(&cli, argc, argv, &args);
    if (status >= 0)
        return status;
    if (args.n == 0)
        return sp_cli_usage_error("nothing to fetch: name a dataset, a URL or a file");
    if (raw && paths)
        return sp_cli_usage_error("--raw and --path exclude each other");
    if (!raw && !paths && (status = sp_cli_stdout_is_safe()))
        return status;
    fo.retries = retries;
    fo.stall_timeout = stall;
    fo.connect_timeout = connect;
    char cache[4096];
    if (cache_opt)
        snprintf(cache, sizeof cache, "%s", cache_opt);
    else
        sp_fetch_default_cache(cache, sizeof cache);
    fo.cache_dir = cache;
    fo.note = on_note;
    fo.progress = on_progress;
    sp_progress_init(&prog);

    sp_err err = {0};
    json_t *meta = json_object(), *jobs = json_array();
    int rc = sp_fetch_global_init(&err);
    /* first what to fetch (so usage errors come before any download) ... */
    sp_fetch_request rq = {cache, from, md5[0] ? md5 : NULL, sha[0] ? sha : NULL, only.names, only.n, fo.offline};
    for (int i = 0; rc == 0 && i < args.n; i++) {
        /* a path (it has a '/', and is no URL) that is not there: say so, not "no dataset named" */
        const char *a = args.v[i];
        if (strchr(a, '/') && !strstr(a, "://") && sp_cli_input_exists(a, &err))
            rc = -1;
        else
            rc = sp_fetch_plan(a, &rq, jobs, meta, &err);
    }
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
            rc = sp_fail(&err, SP_EXIT_SYSTEM, "stdout: write failed: %s", strerror(errno));
    } else if (rc == 0) {
        sp_stage out;
        const json_t *step = sp_cli_recipe(&err);
        sp_stage_init(&out, step, STDOUT_FILENO);
        rc = step ? sp_stage_meta(&out, meta, &err) : -1;
        for (size_t i = 0; rc == 0 && i < nitems; i++)
            rc = emit(&out, &items[i], &err);
        if (rc == 0)
            rc = sp_stage_finish(&out, &err);
        sp_stage_free(&out);
    }
    free(items);
    json_decref(jobs);
    json_decref(meta);
    return sp_cli_exit(rc ? &err : NULL);
}
