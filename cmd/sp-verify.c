/* sp-verify: reread a shard set and check it against its manifest. */
#define _POSIX_C_SOURCE 200809L

#include "common/sp_cli.h"
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

int main(int argc, char **argv)
{
    const sp_opt table[] = {{0}};
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
        int rc = sp_cli_input_exists(args.v[i], &err) ? -1 : sp_verify_dir(args.v[i], &hooks, &st, &err);
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
                sp_msg("%s: FAILED: %llu problems in %llu shards", args.v[i], (unsigned long long)st.problems,
                       (unsigned long long)st.shards);
        } else if (sp_verbosity >= 1) {
            sp_msg("%s: OK: %llu records in %llu shards, %.1f MB", args.v[i], (unsigned long long)st.records,
                   (unsigned long long)st.shards, (double)st.bytes / 1e6);
        }
    }
    return status;
}
