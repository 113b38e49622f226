/* The tools' skeleton: option tables, diagnostics, exit status, progress line, recipe. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "common/sp_cli.h"

#include <sched.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sp_atomic.h"
#include "common/sp_hash.h"
#include "shards/cache.h"
#include "shards/remote.h"

/* ---------------- diagnostics ---------------- */
static const char *progname = "shardpipe";
int sp_verbosity = 1;
static uint64_t warnings;

void sp_set_progname(const char *argv0) { progname = sp_basename(argv0); }
const char *sp_progname(void) { return progname; }

/* "prog: MESSAGE" on stderr when the verbosity is at least min_verbosity. */
static void vmsg(int min_verbosity, const char *fmt, va_list ap)
{
    if (sp_verbosity < min_verbosity)
        return;
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "%s: %s\n", progname, line);
}

#define SAY(min_verbosity)              \
    do {                                \
        va_list ap;                     \
        va_start(ap, fmt);              \
        vmsg((min_verbosity), fmt, ap); \
        va_end(ap);                     \
    } while (0)

void sp_msg(const char *fmt, ...) { SAY(0); }
void sp_info(const char *fmt, ...) { SAY(2); }
void sp_warn(const char *fmt, ...)
{
    warnings++;
    SAY(1);
}

void sp_warn_count(uint64_t n) { warnings += n; }
uint64_t sp_warnings(void) { return warnings; }

int sp_report(const sp_err *err)
{
    sp_msg("%s", err->msg[0] ? err->msg : "unknown error");
    return err->code ? err->code : SP_EXIT_SYSTEM;
}

int sp_cli_exit(const sp_err *err)
{
    if (err)
        return sp_report(err);
    return warnings ? SP_EXIT_DATA : SP_EXIT_OK;
}

/* ---------------- progress ---------------- */
double sp_progress_interval = 30;
static int noperands; /* operands sp_cli_parse found */
static char **operands;
/* 1 when this tool reads a pipe: no named input (or "-") and stdin a FIFO
 * or socket. Such a stage is not the first of a pipeline. */
static int reads_pipe(void)
{
    int named = 0;
    for (int i = 0; i < noperands; i++) {
        if (!strcmp(operands[i], "-"))
            named = -1;
        else if (named == 0)
            named = 1;
    }
    if (named == 1)
        return 0;
    struct stat st;
    return fstat(STDIN_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

void sp_progress_init(sp_progress *p)
{
    memset(p, 0, sizeof *p);
    if (sp_verbosity >= 1 && isatty(STDERR_FILENO))
        p->mode = reads_pipe() ? 0 : 1;
    else if (sp_verbosity >= 1 && sp_progress_interval > 0)
        p->mode = 2;
    p->start = p->last = sp_now();
    p->unit = "records";
}

void sp_progress_init_phase(sp_progress *p)
{
    sp_progress_init(p);
    if (!p->mode && sp_verbosity >= 1 && isatty(STDERR_FILENO))
        p->mode = 1;
}

/* Seconds since p started when a line is due (at most five a second on the
 * terminal, one every interval in plain lines), else -1. */
static double progress_due(sp_progress *p)
{
    if (!p->mode)
        return -1;
    double t = sp_now();
    if (t - p->last < (p->mode == 1 ? 0.2 : sp_progress_interval))
        return -1;
    p->last = t;
    return t - p->start;
}

/* Prints the line of p's last counts, el seconds in. */
static void progress_draw(sp_progress *p, double el, int final)
{
    double mb = (double)p->bytes / 1e6;
    char pct[64] = "";
    if (p->total) {
        double f = final ? 1.0 : (double)(p->consumed < p->total ? p->consumed : p->total) / (double)p->total;
        int n = snprintf(pct, sizeof pct, ", %.0f%%", floor(f * 100));
        if (!final && f > 0 && el > 0)
            snprintf(pct + n, sizeof pct - (size_t)n, ", ETA %.0f s", el * (1 - f) / f);
    }
    fprintf(stderr, "%s%s: %s%s%llu %s, %.1f MB, %.1f MB/s, %.0f s%s%s", p->mode == 1 ? "\r" : "", progname,
            p->where, p->where[0] ? ": " : "", (unsigned long long)p->records, p->unit, mb, el > 0 ? mb / el : 0.0,
            el, pct, p->mode == 1 ? (final ? "\033[K\n" : "\033[K") : "\n");
    p->drawn++;
}

void sp_progress_update(sp_progress *p, uint64_t records, uint64_t bytes)
{
    sp_progress_update_at(p, NULL, records, bytes);
}

void sp_progress_update_at(sp_progress *p, const char *where, uint64_t records, uint64_t bytes)
{
    p->records = records;
    p->bytes = bytes;
    snprintf(p->where, sizeof p->where, "%s", where ? where : "");
    double el = progress_due(p);
    if (el >= 0)
        progress_draw(p, el, 0);
}

void sp_progress_input(sp_progress *p, uint64_t consumed, uint64_t total)
{
    p->consumed = consumed;
    p->total = total;
}

void sp_progress_file(sp_progress *p, const char *name, uint64_t have, uint64_t total)
{
    if (p->mode && name != p->name) {
        p->name = name;
        p->start = sp_now();
    }
    double el = progress_due(p);
    if (el < 0)
        return;
    double rate = el >= 0.1 ? (double)have / el : 0; /* no rate from a first instant */
    char size[48] = "", eta[32] = "";
    if (total)
        snprintf(size, sizeof size, " / %.1f", (double)total / 1e6);
    if (total && rate > 0 && have <= total)
        snprintf(eta, sizeof eta, ", ETA %.0f s", (double)(total - have) / rate);
    fprintf(stderr, "%s%s: %s: %.1f%s MB, %.1f MB/s, %.0f s%s%s", p->mode == 1 ? "\r" : "", progname, name,
            (double)have / 1e6, size, rate / 1e6, el, eta, p->mode == 1 ? "\033[K" : "\n");
    p->drawn++;
}

void sp_progress_done(sp_progress *p)
{
    if (p->mode == 1 && p->drawn)
        fputs("\r\033[K", stderr);
}

void sp_progress_finish(sp_progress *p)
{
    if (!p->mode || !p->drawn || p->name) /* (a file's line: sp-fetch says its own end) */
        return sp_progress_done(p);
    progress_draw(p, sp_now() - p->start, 1);
}

void sp_progress_cb(void *ctx, uint64_t records, uint64_t bytes) { sp_progress_update(ctx, records, bytes); }

/* ---------------- usage errors ---------------- */
int sp_cli_usage_error(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", progname, line, progname);
    return SP_EXIT_USAGE;
}

int sp_cli_version(void)
{
    printf("%s (shardpipe) %s\n", progname, SP_VERSION);
    return SP_EXIT_OK;
}

int sp_cli_set_cache(const sp_opt *opt, const char *arg, char *why, size_t why_len)
{
    static const char *dir;
    static uint64_t limit;
    if (!strcmp(opt->name, "s3-endpoint")) {
        if (strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8)) {
            snprintf(why, why_len, "not an http:// or https:// URL: %s", arg);
            return -1;
        }
        sp_remote_configure_s3(arg);
        return 0;
    }
    if (!strcmp(opt->name, "cache")) {
        dir = arg;
    } else {
        sp_err err = {0};
        if (sp_cache_parse_size("--cache-limit", arg, &limit, &err) || !limit) {
            snprintf(why, why_len, "not a size above 0 (1000, 64k, 256M, 2G): %s", arg);
            return -1;
        }
    }
    sp_remote_configure(dir, limit);
    return 0;
}

int sp_cli_input_exists(const char *path, sp_err *err)
{
    struct stat st;
    if (sp_remote_is_url(path)) /* reached when its manifest is fetched */
        return 0;
    if (stat(path, &st) == 0)
        return 0;
    int e = errno;
    return sp_fail(err, e == ENOENT || e == EACCES || e == ENOTDIR ? SP_EXIT_DATA : SP_EXIT_SYSTEM, "%s: %s", path,
                   strerror(e));
}

int sp_cli_stdout_is_safe(void)
{
    if (isatty(STDOUT_FILENO)) {
        sp_msg("refusing to write a binary record stream to a terminal (pipe it to the next stage)");
        return SP_EXIT_USAGE;
    }
    return 0;
}

void sp_cli_report_key(void *ctx, const char *key, const char *reason)
{
    (void)ctx;
    if (sp_verbosity >= 1)
        sp_msg("%s: %s", key, reason);
}

/* ---------------- number parsing ---------------- */
/* The decimal digits at the start of s into *v, *end after them; -1 when s
 * does not start with a digit or the number overflows. */
static int parse_leading_u64(const char *s, unsigned long long *v, char **end)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    *v = strtoull(s, end, 10);
    return errno ? -1 : 0;
}

int sp_parse_u64(const char *s, uint64_t *out)
{
    unsigned long long v;
    char *end;
    if (parse_leading_u64(s, &v, &end) || *end)
        return -1;
    *out = v;
    return 0;
}

int sp_parse_size(const char *s, uint64_t *out)
{
    unsigned long long v;
    char *end;
    if (parse_leading_u64(s, &v, &end))
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

/* ---------------- the option parser ---------------- */
static const sp_opt common_opts[] = {
    {"quiet", 'q', SP_OPT_FLAG, NULL, .help = "report nothing but errors", .flags = SP_OPT_NO_RECIPE},
    {"verbose", 'v', SP_OPT_FLAG, NULL, .help = "report more", .flags = SP_OPT_NO_RECIPE},
    {"progress-interval", 0, SP_OPT_DOUBLE, &sp_progress_interval, .min = 0, .max = INFINITY, .arg = "S",
     .help = "when stderr is not a terminal, a progress line every S\nseconds (default 30; 0: none)",
     .flags = SP_OPT_NO_RECIPE},
    {"help", 'h', SP_OPT_FLAG, NULL, .help = "show this help and exit", .flags = SP_OPT_NO_RECIPE},
    {"version", 'V', SP_OPT_FLAG, NULL, .help = "show the version and exit", .flags = SP_OPT_NO_RECIPE},
    {0},
};

static const char exit_status_text[] =
    "Exit status: 0 success; 1 a data problem: bad input, or a warning (an image\n"
    "rejected, an archive entry skipped: reported on stderr, the run goes on);\n"
    "2 usage error; 3 system error (I/O, a full disk, out of memory).\n";

/* "%g" without a trailing exponent for the integers in ranges */
static void fmt_num(char *buf, size_t n, double v, int size)
{
    if (size && v >= 1024 && fmod(v, 1024) == 0) {
        const char *units = "KMGT";
        int u = -1;
        while (v >= 1024 && fmod(v, 1024) == 0 && u < 3) {
            v /= 1024;
            u++;
        }
        snprintf(buf, n, "%.0f%c", v, units[u]);
    } else if (v == floor(v) && fabs(v) < 1e18) {
        snprintf(buf, n, "%.0f", v);
    } else {
        snprintf(buf, n, "%g", v);
    }
}

static void print_opt(const sp_opt *o)
{
    char head[128];
    char letter[8] = "    ";
    if (o->letter)
        snprintf(letter, sizeof letter, "-%c, ", o->letter);
    int len = snprintf(head, sizeof head, "  %s--%s%s%s", letter, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    if (len > 22) /* at least two spaces before the help text */
        printf("%s\n%24s", head, "");
    else
        printf("%-24s", head);
    for (const char *h = o->help ? o->help : ""; *h; h++) {
        putchar(*h);
        if (*h == '\n' && h[1])
            printf("%24s", "");
    }
    putchar('\n');
}

/* The values of the options that take one of a list, for the bash completion
 * (scripts/completion.sh): a line "--NAME VALUE..." each, and "-L VALUE..."
 * for its letter. */
static void print_choices(const sp_cli_tool *t)
{
    for (const sp_opt *o = t->opts; o && o->name; o++) {
        if (o->type != SP_OPT_CHOICE || !o->choices)
            continue;
        for (int form = 0; form < (o->letter ? 2 : 1); form++) {
            if (form)
                printf("-%c", o->letter);
            else
                printf("--%s", o->name);
            for (const char *const *c = o->choices; *c; c++)
                printf(" %s", *c);
            putchar('\n');
        }
    }
}

static void print_help(const sp_cli_tool *t)
{
    if (getenv("SP_HELP_CHOICES")) { /* set by scripts/completion.sh only */
        print_choices(t);
        return;
    }
    printf("Usage: %s %s\n%s\n", t->name, t->synopsis, t->about ? t->about : "");
    for (const sp_opt *o = t->opts; o && o->name; o++)
        print_opt(o);
    for (const sp_opt *o = common_opts; o->name; o++)
        print_opt(o);
    if (t->notes)
        printf("\n%s", t->notes);
    printf("\n%s", exit_status_text);
}

static void opt_name(char *buf, size_t n, const sp_opt *o, int as_short)
{
    if (as_short)
        snprintf(buf, n, "-%c", o->letter);
    else
        snprintf(buf, n, "--%s", o->name);
}

/* Stores arg into o->dest; 0, or -1 with why ("not ...: ARG"). */
static int set_value(const sp_opt *o, const char *arg, char *why, size_t wn)
{
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, o->min, o->type == SP_OPT_SIZE);
    fmt_num(hi, sizeof hi, o->max, o->type == SP_OPT_SIZE);
    uint64_t u;
    switch (o->type) {
    case SP_OPT_FLAG:
        *(int *)o->dest = o->max != 0 ? (int)o->max : 1;
        return 0;
    case SP_OPT_INT: {
        int neg = arg[0] == '-';
        if (sp_parse_u64(arg + neg, &u) || (double)u > 1e15 || (neg ? -(double)u : (double)u) < o->min ||
            (neg ? -(double)u : (double)u) > o->max) {
            snprintf(why, wn, "not an integer in %s..%s: %s", lo, hi, arg);
            return -1;
        }
        *(int *)o->dest = neg ? -(int)u : (int)u;
        return 0;
    }
    case SP_OPT_U64:
    case SP_OPT_SIZE: {
        int bad = o->type == SP_OPT_U64 ? sp_parse_u64(arg, &u) : sp_parse_size(arg, &u);
        if (bad || (double)u < o->min || (o->max != 0 && (double)u > o->max)) {
            const char *what = o->type == SP_OPT_U64 ? "an integer" : "a size (like 64k, 256M, 2G)";
            if (o->max != 0)
                snprintf(why, wn, "not %s in %s..%s: %s", what, lo, hi, arg);
            else if (o->min != 0)
                snprintf(why, wn, "not %s of at least %s: %s", what, lo, arg);
            else
                snprintf(why, wn, "not %s: %s", what, arg);
            return -1;
        }
        *(uint64_t *)o->dest = u;
        return 0;
    }
    case SP_OPT_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(arg, &end);
        int above = (o->flags & SP_OPT_ABOVE_MIN) != 0, ranged = o->min != 0 || o->max != 0 || above;
        if (!*arg || *end || errno || !isfinite(v) ||
            (ranged && (v < o->min || v > o->max || (above && v <= o->min)))) {
            if (!ranged)
                snprintf(why, wn, "not a number: %s", arg);
            else if (above && isinf(o->max))
                snprintf(why, wn, "not a number above %s: %s", lo, arg);
            else if (above)
                snprintf(why, wn, "not a number above %s and at most %s: %s", lo, hi, arg);
            else if (isinf(o->max))
                snprintf(why, wn, "not a number of at least %s: %s", lo, arg);
            else
                snprintf(why, wn, "not a number in %s..%s: %s", lo, hi, arg);
            return -1;
        }
        *(double *)o->dest = v;
        return 0;
    }
    case SP_OPT_STRING:
        *(const char **)o->dest = arg;
        return 0;
    case SP_OPT_CHOICE: {
        char list[256] = "";
        size_t len = 0;
        for (int i = 0; o->choices[i]; i++) {
            if (!strcmp(arg, o->choices[i])) {
                *(int *)o->dest = i;
                return 0;
            }
            len += (size_t)snprintf(list + len, len < sizeof list ? sizeof list - len : 0, "%s%s",
                                    i ? ", " : "", o->choices[i]);
        }
        snprintf(why, wn, "not one of %s: %s", list, arg);
        return -1;
    }
    case SP_OPT_PART: {
        sp_cli_part *p = o->dest;
        if (sp_parse_part(arg, &p->index, &p->count)) {
            snprintf(why, wn, "not I/N with 0 <= I < N <= 100000: %s", arg);
            return -1;
        }
        return 0;
    }
    case SP_OPT_CALL:
        why[0] = 0;
        if (o->call(o, arg, why, wn)) {
            if (!why[0])
                snprintf(why, wn, "not a valid value: %s", arg);
            const char *colon = strstr(why, ": ");
            if (!strncmp(why, "--", 2) && colon && !memchr(why, ' ', (size_t)(colon - why)))
                memmove(why, colon + 2, strlen(colon + 2) + 1);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* the recipe of the last parse */
static json_t *recipe_args, *recipe_inputs;
static sp_err recipe_err;

static void recipe_input(const char *path)
{
    char sha[65];
    uint64_t size = 0;
    struct stat st;
    if (recipe_err.code)
        return;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* a pipe or device: its bytes cannot be hashed ahead of reading */
        json_array_append_new(recipe_inputs, json_pack("{s:s}", "name", sp_basename(path)));
        return;
    }
    if (sp_hash_file(path, NULL, sha, &size, NULL, NULL, &recipe_err))
        return;
    json_array_append_new(recipe_inputs,
                          json_pack("{s:s, s:I, s:s}", "name", sp_basename(path), "size", (json_int_t)size, "sha256", sha));
}

static void recipe_note(const sp_opt *o, int as_short, const char *arg)
{
    if (o->flags & SP_OPT_NO_RECIPE)
        return;
    char name[80];
    opt_name(name, sizeof name, o, as_short);
    json_array_append_new(recipe_args, json_string(name));
    if (arg) {
        json_array_append_new(recipe_args, json_string(o->flags & SP_OPT_FILE ? sp_basename(arg) : arg));
        if (o->flags & SP_OPT_FILE)
            recipe_input(arg);
    }
}

static int apply(const sp_cli_tool *t, const sp_opt *o, int as_short, const char *arg)
{
    char why[512];
    if (o >= common_opts && o < common_opts + sizeof common_opts / sizeof common_opts[0] && o->letter) {
        switch (o->letter) {
        case 'q': sp_verbosity = 0; return -1;
        case 'v': sp_verbosity = 2; return -1;
        case 'h': print_help(t); return SP_EXIT_OK;
        default: return sp_cli_version();
        }
    }
    if (set_value(o, arg, why, sizeof why))
        return sp_cli_usage_error("--%s: %s", o->name, why); /* the long name, however it was given */
    recipe_note(o, as_short, o->type == SP_OPT_FLAG ? NULL : arg);
    return -1;
}

static const sp_opt *find_long(const sp_cli_tool *t, const char *name, size_t n)
{
    for (const sp_opt *o = t->opts; o && o->name; o++)
        if (strlen(o->name) == n && !strncmp(o->name, name, n))
            return o;
    for (const sp_opt *o = common_opts; o->name; o++)
        if (strlen(o->name) == n && !strncmp(o->name, name, n))
            return o;
    return NULL;
}

static const sp_opt *find_short(const sp_cli_tool *t, char c)
{
    for (const sp_opt *o = t->opts; o && o->name; o++)
        if (o->letter == c)
            return o;
    for (const sp_opt *o = common_opts; o->name; o++)
        if (o->letter == c)
            return o;
    return NULL;
}

int sp_cli_parse(const sp_cli_tool *t, int argc, char **argv, sp_cli_args *args)
{
    sp_set_progname(t->name);
    json_decref(recipe_args);
    json_decref(recipe_inputs);
    recipe_args = json_array();
    recipe_inputs = json_array();
    memset(&recipe_err, 0, sizeof recipe_err);
    free(operands);
    operands = calloc((size_t)(argc > 0 ? argc : 1), sizeof *operands);
    if (!recipe_args || !recipe_inputs || !operands) {
        sp_msg("out of memory");
        return SP_EXIT_SYSTEM;
    }
    int n = 0, status;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!strcmp(a, "--")) {
            while (++i < argc)
                operands[n++] = argv[i];
            break;
        }
        if (a[0] != '-' || a[1] == 0) { /* an operand, "-" included */
            operands[n++] = a;
            continue;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            const sp_opt *o = find_long(t, a + 2, len);
            if (!o)
                return sp_cli_usage_error("unknown option '--%.*s'", (int)len, a + 2);
            const char *arg = NULL;
            if (o->type == SP_OPT_FLAG) {
                if (eq)
                    return sp_cli_usage_error("--%s: takes no value", o->name);
            } else if (eq) {
                arg = eq + 1;
            } else if (i + 1 < argc) {
                arg = argv[++i];
            } else {
                return sp_cli_usage_error("--%s: needs a value", o->name);
            }
            if ((status = apply(t, o, 0, arg)) >= 0)
                return status;
            continue;
        }
        for (const char *c = a + 1; *c; c++) {
            const sp_opt *o = find_short(t, *c);
            if (!o)
                return sp_cli_usage_error("unknown option '-%c'", *c);
            if (o->type == SP_OPT_FLAG) {
                if ((status = apply(t, o, 1, NULL)) >= 0)
                    return status;
                continue;
            }
            const char *arg = c[1] ? c + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!arg)
                return sp_cli_usage_error("--%s: needs a value", o->name);
            if ((status = apply(t, o, 1, arg)) >= 0)
                return status;
            break;
        }
    }
    args->n = n;
    args->v = operands;
    noperands = n;
    return -1;
}

int sp_cli_parse_one(const sp_cli_tool *tool, int argc, char **argv, const char *what, const char **operand)
{
    sp_cli_args args;
    int status = sp_cli_parse(tool, argc, argv, &args);
    if (status >= 0)
        return status;
    if (args.n != 1)
        return args.n == 0 ? sp_cli_usage_error("no %s given", what) : sp_cli_usage_error("one %s, please", what);
    *operand = args.v[0];
    return -1;
}

int sp_cli_parse_filter(const sp_cli_tool *tool, int argc, char **argv, sp_cli_args *args)
{
    int status = sp_cli_parse(tool, argc, argv, args);
    if (status < 0 && sp_cli_stdout_is_safe())
        return SP_EXIT_USAGE;
    return status;
}

const json_t *sp_cli_recipe(sp_err *err)
{
    static json_t *step;
    if (recipe_err.code) {
        if (err)
            *err = recipe_err;
        return NULL;
    }
    json_decref(step);
    step = json_pack("{s:s, s:s, s:O, s:O}", "tool", progname, "version", SP_VERSION, "args",
                     recipe_args ? recipe_args : json_array(), "inputs", recipe_inputs ? recipe_inputs : json_array());
    if (!step)
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    return step;
}

/* ---------------- defaults and output ---------------- */
/* The positive integer in 1..max that s spells, or 0. */
static int env_count(const char *s, int max)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return *end || errno || v < 1 ? 0 : v > max ? max : (int)v;
}

int sp_cli_default_threads(const char **source)
{
    int cpus = 1;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        cpus = CPU_COUNT(&set);
    if (cpus > 256)
        cpus = 256;
    int omp = env_count(getenv("OMP_NUM_THREADS"), 256), slurm = env_count(getenv("SLURM_CPUS_PER_TASK"), 256);
    const char *src = "sched_getaffinity";
    int n = cpus;
    if (omp) {
        n = omp;
        src = "OMP_NUM_THREADS";
    } else if (slurm) {
        n = slurm < cpus ? slurm : cpus;
        src = "SLURM_CPUS_PER_TASK";
    }
    if (source)
        *source = src;
    return n;
}

const char *sp_format_real(char *buf, size_t n, double v)
{
    if (!isfinite(v)) {
        snprintf(buf, n, "null");
        return buf;
    }
    float f = (float)v;
    int as_float = isfinite(f) && (double)f == v;
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (as_float ? strtof(buf, NULL) == f : strtod(buf, NULL) == v)
            break;
    }
    /* a JSON reader takes "1e-05"; a whole number keeps a ".0" so it stays a real */
    if (!strpbrk(buf, ".eEn") && strlen(buf) + 3 <= n)
        strcat(buf, ".0");
    return buf;
}

static int cmp_keys(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int json_text_add(sp_buf *b, const json_t *j, int indent, int depth)
{
    char num[64];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(j), i = 0;
        const char **keys = malloc((n ? n : 1) * sizeof *keys);
        if (!keys)
            return -1;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
            keys[i++] = k;
        if (indent && n)
            qsort(keys, n, sizeof *keys, cmp_keys);
        int rc = sp_buf_append(b, "{", 1);
        for (i = 0; rc == 0 && i < n; i++) {
            if (i)
                rc |= sp_buf_append(b, ",", 1);
            if (indent) {
                rc |= sp_buf_append(b, "\n", 1);
                for (int d = 0; d < (depth + 1) * indent; d++)
                    rc |= sp_buf_append(b, " ", 1);
            }
            json_t *key = json_string(keys[i]);
            char *ks = key ? json_dumps(key, JSON_ENCODE_ANY) : NULL;
            rc |= ks ? sp_buf_append(b, ks, strlen(ks)) : -1;
            free(ks);
            json_decref(key);
            rc |= sp_buf_append(b, indent ? ": " : ":", indent ? 2 : 1);
            rc |= rc ? -1 : json_text_add(b, json_object_get(j, keys[i]), indent, depth + 1);
        }
        if (rc == 0 && indent && n) {
            rc |= sp_buf_append(b, "\n", 1);
            for (int d = 0; d < depth * indent; d++)
                rc |= sp_buf_append(b, " ", 1);
        }
        free(keys);
        return rc ? -1 : sp_buf_append(b, "}", 1);
    }
    case JSON_ARRAY: {
        int rc = sp_buf_append(b, "[", 1);
        size_t i;
        json_t *v;
        /* arrays of numbers stay on one line (a confusion matrix's rows) */
        int flat = 1;
        json_array_foreach((json_t *)j, i, v)
            flat &= json_is_number(v);
        json_array_foreach((json_t *)j, i, v) {
            if (rc)
                break;
            if (i)
                rc |= sp_buf_append(b, indent && flat ? ", " : ",", indent && flat ? 2 : 1);
            if (indent && !flat) {
                rc |= sp_buf_append(b, "\n", 1);
                for (int d = 0; d < (depth + 1) * indent; d++)
                    rc |= sp_buf_append(b, " ", 1);
            }
            rc |= rc ? -1 : json_text_add(b, v, indent, depth + 1);
        }
        if (rc == 0 && indent && !flat && json_array_size(j)) {
            rc |= sp_buf_append(b, "\n", 1);
            for (int d = 0; d < depth * indent; d++)
                rc |= sp_buf_append(b, " ", 1);
        }
        return rc ? -1 : sp_buf_append(b, "]", 1);
    }
    case JSON_REAL:
        sp_format_real(num, sizeof num, json_real_value(j));
        return sp_buf_append(b, num, strlen(num));
    default: {
        char *t = json_dumps(j, JSON_ENCODE_ANY);
        int rc = t ? sp_buf_append(b, t, strlen(t)) : -1;
        free(t);
        return rc;
    }
    }
}

char *sp_json_text(const json_t *j, int indent)
{
    sp_buf b = {0};
    if (json_text_add(&b, j, indent, 0) || sp_buf_append(&b, "", 1)) {
        sp_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

int sp_write_json_text(const char *path, const json_t *j, sp_err *err)
{
    char *text = sp_json_text(j, 2);
    if (!text)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: out of memory", path);
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: out of memory", path);
    }
    line[n] = '\n';
    int rc = sp_atomic_write(path, line, n + 1, err);
    free(line);
    return rc;
}
