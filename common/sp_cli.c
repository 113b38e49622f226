#define _POSIX_C_SOURCE 200809L
#include "common/sp_cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void sp_cli_init(int argc, char **argv)
{
    sp_set_progname(argc > 0 ? argv[0] : "shardpipe");
}

int sp_cli_common_option(int c, const char *usage)
{
    switch (c) {
    case 'q': sp_verbosity = 0; return -1;
    case 'v': sp_verbosity = 2; return -1;
    case 'h': fputs(usage, stdout); return SP_EXIT_OK;
    case 'V': return sp_cli_version();
    default: return sp_cli_usage_error("unknown option");
    }
}

int sp_cli_version(void)
{
    printf("%s (shardpipe) %s\n", sp_progname(), SP_VERSION);
    return SP_EXIT_OK;
}

int sp_cli_usage_error(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", sp_progname(), line, sp_progname());
    return SP_EXIT_USAGE;
}

int sp_cli_stdout_is_safe(void)
{
    if (isatty(STDOUT_FILENO)) {
        sp_msg("refusing to write a binary record stream to a terminal (pipe it to the next stage)");
        return -1;
    }
    return 0;
}

void sp_cli_report_key(void *ctx, const char *key, const char *reason)
{
    (void)ctx;
    if (sp_verbosity >= 1)
        sp_msg("%s: %s", key, reason);
}

int sp_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int sp_parse_size(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    int shift = 0;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: return -1;
    }
    if (*end == 'i' && shift)
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || (shift && v > (~0ull >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int sp_parse_part(const char *s, int *i, int *n)
{
    const char *slash = strchr(s, '/');
    char first[32];
    uint64_t a, b;
    if (!slash || slash - s >= (long)sizeof first)
        return -1;
    snprintf(first, sizeof first, "%.*s", (int)(slash - s), s);
    if (sp_parse_u64(first, &a) || sp_parse_u64(slash + 1, &b) || b < 1 || b > 100000 || a >= b)
        return -1;
    *i = (int)a;
    *n = (int)b;
    return 0;
}
