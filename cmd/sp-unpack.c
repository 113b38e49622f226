/* sp-unpack: archives (or a record stream of them) in, one blob record per file out. */
#define _XOPEN_SOURCE 700
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sp_cli.h"
#include "pipeline/datasets.h"
#include "pipeline/unpack.h"

static const char about[] =
    "Read archives and write one blob record per regular file to stdout as a\n"
    "shardpipe record stream. With no FILE, or when FILE is -, read stdin.\n"
    "\n"
    "Reads tar (all dialects), zip and cpio archives, compressed or not (gzip,\n"
    "bzip2, xz, zstd, lz4), a bare compressed file (.gz), a plain file, or a record\n"
    "stream whose blob records it unpacks in turn. Members that are tars or\n"
    "compressed files are streamed through, never extracted to disk; their\n"
    "members' keys keep the outer names (outer.tar/inner.tar/file).\n"
    "IDX labels FILEs (..-labels-idx1-ubyte[.gz]) go out before the other FILEs,\n"
    "so that sp-decode streams each images file without holding it.\n"
    "Entries with absolute paths or '..', links and devices are skipped and\n"
    "reported (warnings: the stream is still complete, the status is 1), never\n"
    "followed.\n"
    "\n"
    "A directory FILE is walked (a folder of images, as torchvision's ImageFolder\n"
    "reads: train/cat/001.jpg): at each level its files, then its subdirectories,\n"
    "each in byte order of their names; keys are the paths under it. Symbolic\n"
    "links are skipped and reported unless --follow. A FILE is keyed by its base\n"
    "name (an archive's members by its base name and their paths in it), so the\n"
    "same files give the same keys wherever they lie; with --keep-paths a plain\n"
    "file named by a relative path keeps that path (sp-unpack --keep-paths\n"
    "train/*/*.jpg: train/cat/001.jpg, for sp-decode --labels-from dirs).\n"
    "Inputs that hold entries but give no file at all are an error (no trailer\n"
    "is written) unless --allow-empty.\n";

/* The dataset the FILEs' common directory (or a directory FILE itself) is
 * named after, or NULL. The result is a static buffer. */
static const char *dataset_from_dirs(int n, char **files)
{
    static char found_buf[256];
    const char *found = NULL;
    for (int i = 0; i < n; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", files[i]);
        struct stat st;
        size_t len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/') /* a directory FILE names itself */
            dir[--len] = 0;
        char *slash = stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? dir + len : strrchr(dir, '/');
        if (!slash)
            return NULL;
        while (slash > dir && slash[-1] == '/')
            slash--;
        *slash = 0;
        const char *name = sp_basename(dir);
        if (!sp_dataset_known(name) || (found && strcmp(found, name)))
            return NULL;
        snprintf(found_buf, sizeof found_buf, "%s", name);
        found = found_buf;
    }
    return found;
}

/* The base name of path when it is a directory (trailing slashes dropped),
 * into out; 0 when it is not one, or has no name ("/", "."). */
static int folder_name(const char *path, char *out, size_t n)
{
    struct stat st;
    if (stat(path, &st) || !S_ISDIR(st.st_mode))
        return 0;
    char real[4096];
    if (!realpath(path, real)) /* "." and "dir/.." name the folder they are */
        return 0;
    const char *base = sp_basename(real);
    if (!*base || !strcmp(base, "/"))
        return 0;
    snprintf(out, n, "%s", base);
    return 1;
}

/* The progress line: files and bytes out, and how much of the input is read. */
typedef struct progress_ctx {
    sp_progress line;
    const sp_unpack_stats *st;
    uint64_t total; /* the named inputs' bytes; 0: unknown (stdin a pipe) */
} progress_ctx;

static void on_progress(void *ctx, uint64_t files, uint64_t bytes)
{
    progress_ctx *p = ctx;
    sp_progress_input(&p->line, p->st->in_bytes, p->total);
    sp_progress_update(&p->line, files, bytes);
}

/* The bytes the inputs hold, when every one has a size (0 otherwise). */
static uint64_t input_bytes(int n, char **files, int follow)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (!strcmp(files[i], "-") ? fstat(STDIN_FILENO, &st) : stat(files[i], &st))
            return 0;
        if (S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
        else if (!S_ISDIR(st.st_mode) || sp_unpack_tree_bytes(files[i], follow, &total, NULL))
            return 0;
    }
    return total;
}

/* Moves IDX labels files (..-labels-idx1-ubyte, compressed or not) before the
 * other FILEs, each group in its given order, so that sp-decode meets a pair's
 * labels first and streams its images without spilling them. */
static void labels_first(int n, char **files)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        const char *base = strrchr(files[i], '/');
        if (!strstr(base ? base + 1 : files[i], "labels-idx1-ubyte"))
            continue;
        char *f = files[i];
        memmove(files + k + 1, files + k, (size_t)(i - k) * sizeof *files);
        files[k++] = f;
    }
}

int main(int argc, char **argv)
{
    const char *dataset = NULL, *stdin_name = "stdin";
    int no_recurse = 0, follow = 0, allow_empty = 0, keep_paths = 0;
    const sp_opt table[] = {
        {"dataset", 'd', SP_OPT_STRING, &dataset, .arg = "NAME",
         .help = "set the stream's dataset name (default: the name of the\n"
                 "directory holding the FILEs, if a dataset manifest has\n"
                 "that name: mnist, fashion-mnist, cifar10, ...)"},
        {"name", 0, SP_OPT_STRING, &stdin_name, .arg = "NAME", .help = "key prefix for stdin (default: stdin)"},
        {"no-recurse", 0, SP_OPT_FLAG, &no_recurse, .help = "emit nested archives as blobs instead of opening them"},
        {"follow", 0, SP_OPT_FLAG, &follow, .help = "follow symbolic links in a directory FILE (default:\nskip and report them)"},
        {"keep-paths", 0, SP_OPT_FLAG, &keep_paths,
         .help = "key a plain FILE named by a relative path by that path\n"
                 "(train/cat/001.jpg) instead of its base name"},
        {"allow-empty", 0, SP_OPT_FLAG, &allow_empty, .flags = SP_OPT_NO_RECIPE,
         .help = "let inputs that hold entries but give no file through\n(default: an error)"},
        {0},
    };
    const sp_cli_tool cli = {"sp-unpack", "[OPTION]... [FILE]...", about, table, NULL};
    sp_cli_args args;
    int status = sp_cli_parse_filter(&cli, argc, argv, &args);
    if (status >= 0)
        return status;
    sp_unpack_opts uo;
    sp_unpack_opts_default(&uo);
    uo.recurse = !no_recurse;
    uo.follow = follow;
    uo.keep_paths = keep_paths;
    int nfiles = args.n;
    char **files = args.v;
    if (!dataset)
        dataset = dataset_from_dirs(nfiles, files);
    /* one folder: its name, for sp-shard to name a set no later stage recognised
     * (a folder of the user's own); a stage that knows the dataset names it */
    char folder[256];
    int named_folder = !dataset && nfiles == 1 && folder_name(files[0], folder, sizeof folder);
    json_t *overrides = json_object();
    if (dataset)
        json_object_set_new(overrides, "dataset", json_string(dataset));
    if (named_folder)
        json_object_set_new(overrides, "folder", json_string(folder));

    sp_unpack_stats st = {0};
    progress_ctx prog = {.st = &st};
    sp_progress_init(&prog.line);
    prog.line.unit = "files";
    uo.report = sp_cli_report_key;
    uo.progress = on_progress;
    uo.progress_ctx = &prog;
    sp_err err = {0};
    const json_t *step = sp_cli_recipe(&err);
    if (!step)
        return sp_report(&err);
    sp_stage out;
    sp_stage_init(&out, step, STDOUT_FILENO);
    int rc = 0;
    char *dash[] = {"-"};
    if (nfiles == 0) {
        nfiles = 1;
        files = dash;
    }
    labels_first(nfiles, files);
    if (prog.line.mode)
        prog.total = input_bytes(nfiles, files, follow);
    for (int i = 0; i < nfiles && rc == 0; i++)
        rc = sp_unpack_path(files[i], stdin_name, json_object_size(overrides) ? overrides : NULL, &out, &uo, &st, &err);
    if (rc == 0 && st.files == 0 && st.skipped && !allow_empty)
        rc = sp_fail(&err, SP_EXIT_DATA, "no files out of %llu entries: every one was skipped (--allow-empty lets an "
                     "empty stream through)", (unsigned long long)st.skipped);
    if (rc == 0)
        rc = sp_stage_finish(&out, &err);
    if (rc == 0)
        sp_progress_finish(&prog.line);
    else
        sp_progress_done(&prog.line);
    sp_stage_free(&out);
    json_decref(overrides);
    if (rc)
        return sp_report(&err);
    sp_info("%llu files, %llu bytes, %llu skipped", (unsigned long long)st.files,
            (unsigned long long)st.bytes, (unsigned long long)st.skipped);
    if (st.skipped && sp_verbosity >= 1)
        sp_msg("%llu entries skipped", (unsigned long long)st.skipped);
    return st.skipped ? SP_EXIT_DATA : sp_cli_exit(NULL);
}
