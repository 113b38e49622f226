/* sp-verify: reread a shard set and check it against its manifest. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>

#include "common/sp_cli.h"
#include "shards/shard.h"
#include "shards/verify.h"

static const char usage[] =
    "Usage: sp-verify [OPTION]... DIR...\n"
    "Reread every shard listed in DIR/manifest.json and check it: present, size\n"
    "and sha256 as listed, split, record count, shape and dtype as listed, every\n"
    "record's pixels against its stored checksum, labels within the class list,\n"
    "and the manifest's totals. Each problem is printed on stderr, naming the\n"
    "shard and record.\n"
    "\n"
    "  -q, --quiet      print nothing, only set the exit status\n"
    "  -v, --verbose    report more\n"
    "  -h, --help       show this help and exit\n"
    "  -V, --version    show the version and exit\n"
    "\n"
    "Exit status: 0 every set verified; 1 a problem was found, or a manifest is\n"
    "missing or malformed; 2 usage error; 3 system error.\n";

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
    sp_cli_init(argc, argv);
    static const struct option opts[] = {
        {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'}, {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "qvhV", opts, NULL)) != -1) {
        switch (c) {
        default: {
            int status = sp_cli_common_option(c, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (optind == argc)
        return sp_cli_usage_error("no shard directory given");
    int status = SP_EXIT_OK;
    sp_progress_init(&prog);
    for (int i = optind; i < argc; i++) {
        sp_err err = {0};
        sp_verify_stats st;
        sp_verify_hooks hooks = {report, on_progress, argv[i]};
        int rc = sp_verify_dir(argv[i], &hooks, &st, &err);
        sp_progress_done(&prog);
        if (rc < 0) {
            if (sp_verbosity >= 1)
                sp_report(&err);
            if (status == SP_EXIT_OK)
                status = err.code == SP_EXIT_SYSTEM ? SP_EXIT_SYSTEM : SP_EXIT_DATA;
            continue;
        }
        if (rc > 0) {
            status = SP_EXIT_DATA;
            if (sp_verbosity >= 1)
                sp_msg("%s: FAILED: %llu problems in %llu shards", argv[i], (unsigned long long)st.problems,
                       (unsigned long long)st.shards);
        } else if (sp_verbosity >= 1) {
            sp_msg("%s: OK: %llu records in %llu shards, %.1f MB", argv[i], (unsigned long long)st.records,
                   (unsigned long long)st.shards, (double)st.bytes / 1e6);
        }
    }
    return status;
}
