/* sp-verify: reread a shard set and check it against its manifest. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <sys/stat.h>

#include "common/sp_cli.h"
#include "shards/remote.h"
#include "shards/shard.h"
#include "shards/verify.h"

static const char about[] =
    "Reread every shard listed in DIR/manifest.json and check it: present, size\n"
    "and sha256 as listed, split, record count, shape and dtype as listed, every\n"
    "record's pixels against its stored checksum, labels within the class list,\n"
    "and the manifest's totals. Each problem is printed on stderr, naming the\n"
    "shard and record (not under -q; a manifest that cannot be read is an error\n"
    "and is printed even under -q).\n";

static sp_progress prog;

static void report(void *ctx, const char *problem)
{
    const char *dir = ctx;
    sp_progress_done(&prog);
    if (sp_verbosity >= 1)
        sp_msg("%s: %s", dir, problem);
}

static void on_progress(void *ctx, const sp_verify_stats *st)
{
    (void)ctx;
    sp_progress_update(&prog, st->records, st->bytes);
}

/* -1 with err "DIR: not a shard directory (...)" when dir is no directory or
 * has no manifest.json at all, so the message names the operand once. */
static int not_a_set(const char *dir, sp_err *err)
{
    struct stat st;
    if (sp_remote_is_url(dir)) /* its manifest says when it is fetched */
        return 0;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return sp_fail(err, SP_EXIT_DATA, "%s: not a shard directory (a file: give the directory sp-shard -o wrote)",
                       dir);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/manifest.json", dir) >= (int)sizeof path)
        return sp_fail(err, SP_EXIT_DATA, "%s: path too long", dir);
    if (lstat(path, &st) != 0 && errno == ENOENT)
        return sp_fail(err, SP_EXIT_DATA, "%s: not a shard directory (no manifest.json in it)", dir);
    return 0;
}

int main(int argc, char **argv)
{
    const sp_opt table[] = {SP_CLI_CACHE_OPTS, {0}};
    const sp_cli_tool cli = {"sp-verify", "[OPTION]... DIR...", about, table, NULL};
    sp_cli_args args;
    int status = sp_cli_parse(&cli, argc, argv, &args);
    if (status >= 0)
        return status;
    if (args.n == 0)
        return sp_cli_usage_error("no shard directory given");
    status = SP_EXIT_OK;
    sp_progress_init(&prog);
    for (int i = 0; i < args.n; i++) {
        sp_err err = {0};
        sp_verify_stats st;
        sp_verify_hooks hooks = {report, on_progress, args.v[i]};
        int rc = sp_cli_input_exists(args.v[i], &err) || not_a_set(args.v[i], &err) ? -1
                                                                                   : sp_verify_dir(args.v[i], &hooks, &st, &err);
        sp_progress_done(&prog);
        if (rc < 0) {
            sp_report(&err); /* fatal for this set: printed even under -q */
            if (status == SP_EXIT_OK)
                status = err.code == SP_EXIT_SYSTEM ? SP_EXIT_SYSTEM : SP_EXIT_DATA;
            continue;
        }
        if (rc > 0) {
            status = SP_EXIT_DATA;
            if (sp_verbosity >= 1)
                sp_msg("%s: FAILED: %llu problem%s in %llu shard%s", args.v[i], (unsigned long long)st.problems,
                       st.problems == 1 ? "" : "s", (unsigned long long)st.shards, st.shards == 1 ? "" : "s");
        } else if (sp_verbosity >= 1) {
            sp_msg("%s: OK: %llu record%s in %llu shard%s, %.1f MB", args.v[i], (unsigned long long)st.records,
                   st.records == 1 ? "" : "s", (unsigned long long)st.shards, st.shards == 1 ? "" : "s",
                   (double)st.bytes / 1e6);
        }
    }
    return status;
}
