/* The tools' skeleton (cmd/ only, never library code): option tables, the
 * common options, diagnostics, exit status, the progress line and the recipe.
 *
 * A tool's main is parse, run, report:
 *
 *     typedef struct opts { int threads; const char *out; int strict; } opts;
 *     opts o = {.threads = 1};
 *     const sp_opt table[] = {
 *         {"threads", 'j', SP_OPT_INT, &o.threads, .min = 1, .max = 256, .arg = "N",
 *          .help = "worker threads (default 1)", .flags = SP_OPT_NO_RECIPE},
 *         {"output", 'o', SP_OPT_STRING, &o.out, .arg = "DIR", .help = "write into DIR",
 *          .flags = SP_OPT_NO_RECIPE},
 *         {"strict", 0, SP_OPT_FLAG, &o.strict, .help = "any reject is an error"},
 *         {0},
 *     };
 *     const sp_cli_tool tool = {"sp-x", "[OPTION]... [STREAM]...", "What it does.\n", table};
 *     sp_cli_args args;
 *     int status = sp_cli_parse(&tool, argc, argv, &args);
 *     if (status >= 0)
 *         return status;        (help, version or a usage error: already printed)
 *     ... run, counting warnings with sp_warn() ...
 *     return sp_cli_exit(rc ? &err : NULL);
 *
 * The parser adds -q/--quiet, -v/--verbose, -h/--help and -V/--version. A bad
 * option or value is one line naming it, then the Try line, and status 2:
 *     sp-x: --threads: not an integer in 1..256: x
 *     Try 'sp-x --help' for more information.
 *
 * Exit status (docs/tools.md, "Exit status and warnings"): 0 success; 1 a data
 * problem, a warning included (a skipped or rejected record: the run goes on,
 * the status is 1); 2 usage; 3 system or I/O. -q silences warnings and
 * information, never a fatal error.
 */
#ifndef SP_CLI_H
#define SP_CLI_H

#include <jansson.h>
#include <stdint.h>

#include "common/sp_common.h"

/* ---- diagnostics ---- */
void sp_set_progname(const char *argv0);
const char *sp_progname(void);
extern int sp_verbosity; /* 0 = -q, 1 = default, 2 = -v */
void sp_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* "prog: ..." always */
void sp_info(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* only with -v */
/* A warning: printed unless -q, and the exit status of sp_cli_exit becomes at
 * least SP_EXIT_DATA. */
void sp_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Counts a warning already reported some other way (or silenced). */
void sp_warn_count(uint64_t n);
uint64_t sp_warnings(void);
/* Prints err (fatal: even under -q) and returns its code (SP_EXIT_SYSTEM when unset). */
int sp_report(const sp_err *err);
/* The status a main returns: sp_report(err) when err is not NULL, else
 * SP_EXIT_DATA if any warning was counted, else SP_EXIT_OK. */
int sp_cli_exit(const sp_err *err);

/* ---- progress ----
 * Two forms, chosen by sp_progress_init:
 *  - stderr a terminal (and not -q): one line redrawn in place at most five
 *    times a second, "prog: 1200 records, 3.4 MB, 1.7 MB/s, 2 s", with
 *    ", 45%, ETA 14 s" when the input's size is known (sp_progress_input).
 *    In a pipeline only the first stage draws it: a tool whose input is a
 *    pipe (stdin a FIFO or socket, no named input) stays quiet on the
 *    terminal, so the one line there is the stage that knows the input size.
 *  - stderr not a terminal (a Slurm log, a file): every stage writes the same
 *    text as a plain line every --progress-interval seconds (default 30; 0:
 *    never), and, once it wrote one, a last line when it finishes.
 * Bytes are in units of 10^6, rates over the elapsed wall-clock seconds. */
typedef struct sp_progress {
    int mode;          /* 0 off, 1 the terminal line, 2 plain lines */
    double start, last;
    const char *name;  /* the file sp_progress_file last drew */
    const char *unit;  /* what records are called: "records" unless set */
    int drawn;         /* lines drawn so far */
    uint64_t records, bytes;     /* the last update's counts */
    uint64_t consumed, total;    /* input bytes read, of total (0: unknown) */
    char where[96];              /* the last update's where ("" for none) */
} sp_progress;
/* The progress interval of --progress-interval, in seconds (0: no plain lines). */
extern double sp_progress_interval;
void sp_progress_init(sp_progress *p);
/* The same for a phase that runs after the input has ended (sp-shard's
 * shuffle): the stages before it are done, so it draws the terminal line
 * even when its input was a pipe. */
void sp_progress_init_phase(sp_progress *p);
void sp_progress_update(sp_progress *p, uint64_t records, uint64_t bytes);
/* The same line with where the run is first: "prog: WHERE: 1200 records, ..."
 * (sp-train's "batch 12/938, ETA 40 s, loss 0.52"; where NULL: as
 * sp_progress_update). */
void sp_progress_update_at(sp_progress *p, const char *where, uint64_t records, uint64_t bytes);
/* How much of the input is read: consumed of total bytes (total 0: unknown),
 * for the percent and ETA of the next update. */
void sp_progress_input(sp_progress *p, uint64_t consumed, uint64_t total);
/* Clears the terminal line (before a message, or at the end of a failed run). */
void sp_progress_done(sp_progress *p);
/* The end of a run: the terminal line drawn a last time with the final counts
 * (100% when the size was known) and left on the screen, or the last plain
 * line; nothing when no line was drawn before (a run under a fifth of a
 * second, or shorter than the interval). */
void sp_progress_finish(sp_progress *p);
/* The same line for one file of known or unknown size (total 0):
 * "prog: NAME: 3.1 / 26.4 MB, 1.7 MB/s, 2 s, ETA 14 s". The clock restarts
 * when name changes (compared by pointer). */
void sp_progress_file(sp_progress *p, const char *name, uint64_t have, uint64_t total);
/* sp_progress_update as a library progress callback (ctx is the sp_progress). */
void sp_progress_cb(void *ctx, uint64_t records, uint64_t bytes);

/* ---- option tables ---- */
typedef enum sp_opt_type {
    SP_OPT_FLAG,   /* int *dest: set to 1 (to .max when .max is not 0) */
    SP_OPT_INT,    /* int *dest: a decimal integer in [.min, .max] */
    SP_OPT_U64,    /* uint64_t *dest: a decimal integer in [.min, .max] (.max 0: no upper bound) */
    SP_OPT_SIZE,   /* uint64_t *dest: 1000, 64k, 256M, 2G, 1T (powers of 1024), in [.min, .max] (.max 0: none) */
    SP_OPT_DOUBLE, /* double *dest: a finite number in [.min, .max] (both 0: any; .max INFINITY:
                      no upper bound; with SP_OPT_ABOVE_MIN, .min itself is excluded) */
    SP_OPT_STRING, /* const char **dest: the argument itself (points into argv) */
    SP_OPT_CHOICE, /* int *dest: the index of the argument in .choices (NULL-terminated) */
    SP_OPT_PART,   /* sp_cli_part *dest: "I/N" with 0 <= I < N <= 100000 */
    SP_OPT_CALL,   /* .call(opt, arg, why, n) stores into opt->dest: 0, or -1 with a reason in why
                      ("not ...: ARG"; a leading "--name: " is dropped, the parser adds it) */
} sp_opt_type;

enum {
    SP_OPT_NO_RECIPE = 1, /* does not shape the bytes written (paths out, threads, memory): not in the recipe */
    SP_OPT_FILE = 2,      /* the value is an input file: recorded by base name, size and sha256 */
    SP_OPT_ABOVE_MIN = 4, /* DOUBLE: the value must be above .min (--lr: above 0) */
};

typedef struct sp_cli_part {
    int index, count; /* count 0: not given */
} sp_cli_part;

typedef struct sp_opt {
    const char *name;  /* long name without "--"; NULL ends the table */
    char letter;       /* short option letter, or 0 */
    sp_opt_type type;
    void *dest;        /* into the tool's own options struct; see sp_opt_type */
    double min, max;   /* range of INT, U64, SIZE, DOUBLE */
    const char *const *choices;
    int (*call)(const struct sp_opt *opt, const char *arg, char *why, size_t why_len);
    const char *arg;   /* the value's name in --help ("N", "FILE"); NULL for FLAG */
    const char *help;  /* may hold '\n' for more lines */
    unsigned flags;    /* SP_OPT_* */
} sp_opt;

typedef struct sp_cli_tool {
    const char *name;     /* "sp-decode" */
    const char *synopsis; /* "[OPTION]... [STREAM]..." */
    const char *about;    /* the text between the Usage line and the options */
    const sp_opt *opts;   /* the tool's options, ended by {0} */
    const char *notes;    /* text after the options, before "Exit status:" (may be NULL) */
} sp_cli_tool;

/* What remains of the command line after the options. */
typedef struct sp_cli_args {
    int n;    /* operands, in order */
    char **v; /* points into the parser's own storage, valid until exit */
} sp_cli_args;

/* Parses argv against tool->opts and the common options, in any order;
 * "--" ends the options. Long options take "--name VALUE" or "--name=VALUE",
 * short ones "-x VALUE" or "-xVALUE"; flags may be grouped ("-qv"); no
 * abbreviations. Returns -1 to go on with the operands in *args, or the status
 * main must return: SP_EXIT_OK after --help or --version (printed on
 * stdout), SP_EXIT_USAGE after a bad option or value (one line on stderr
 * naming it, then the Try line). Also records the recipe (sp_cli_recipe). */
int sp_cli_parse(const sp_cli_tool *tool, int argc, char **argv, sp_cli_args *args);
/* sp_cli_parse for a tool of exactly one operand (what: "shard directory"):
 * a usage error "no WHAT given" or "one WHAT, please" otherwise; on -1 the
 * operand is in *operand. */
int sp_cli_parse_one(const sp_cli_tool *tool, int argc, char **argv, const char *what, const char **operand);
/* sp_cli_parse for a filter that writes a binary record stream on stdout:
 * also refuses a terminal there (sp_cli_stdout_is_safe: SP_EXIT_USAGE). */
int sp_cli_parse_filter(const sp_cli_tool *tool, int argc, char **argv, sp_cli_args *args);
/* A usage error found after parsing: "prog: MESSAGE" and the Try line on
 * stderr; returns SP_EXIT_USAGE. */
int sp_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The recipe entry of the command line sp_cli_parse read (owned by sp_cli):
 * {"tool", "version", "args", "inputs"}. args holds the options that shape
 * the bytes as "-x VALUE" or "--name VALUE", never an output path nor an
 * option flagged SP_OPT_NO_RECIPE; option files (SP_OPT_FILE) appear by base
 * name in args and as {"name", "size", "sha256"} in inputs. Operands are not
 * recorded: streams carry their own recipe, and the records of an archive
 * carry its base name in their keys and their own checksums, so the shards
 * of one conversion are the same bytes wherever its inputs lie and whatever
 * order the archive's members come in. NULL when an option file cannot be
 * read, with the reason in err. */
const json_t *sp_cli_recipe(sp_err *err);

/* --cache DIR, --cache-limit SIZE and --s3-endpoint URL of the tools that
 * read shard sets, which may lie at a URL (shards/remote.h): put
 * SP_CLI_CACHE_OPTS in the tool's option table; each value given goes to
 * sp_remote_configure (sp_remote_configure_s3). */
int sp_cli_set_cache(const sp_opt *opt, const char *arg, char *why, size_t why_len);
#define SP_CLI_CACHE_OPTS                                                                                      \
    {"cache", 0, SP_OPT_CALL, NULL, .call = sp_cli_set_cache, .arg = "DIR", .flags = SP_OPT_NO_RECIPE,         \
     .help = "a set at a URL (http://, https://, file://, s3://): the\n"                                             \
             "cache of its shards (default $SHARDPIPE_CACHE, else\n"                                          \
             "$XDG_CACHE_HOME/shardpipe, else ~/.cache/shardpipe)"},                                          \
    {"cache-limit", 0, SP_OPT_CALL, NULL, .call = sp_cli_set_cache, .arg = "SIZE", .flags = SP_OPT_NO_RECIPE, \
     .help = "the most bytes the cache holds (default\n$SHARDPIPE_CACHE_LIMIT, else no limit)"},              \
    {"s3-endpoint", 0, SP_OPT_CALL, NULL, .call = sp_cli_set_cache, .arg = "URL", .flags = SP_OPT_NO_RECIPE,   \
     .help = "a set at s3://BUCKET/PREFIX: the S3 server (default\n$AWS_ENDPOINT_URL, else AWS's for $AWS_REGION)"}

/* 0 when path exists; else -1 with err "PATH: why" (SP_EXIT_DATA for a
 * missing or unreadable path, SP_EXIT_SYSTEM otherwise), so a tool names
 * a missing operand itself rather than a file inside it. */
int sp_cli_input_exists(const char *path, sp_err *err);
/* Refuses to write a binary stream to a terminal (like zstd): prints why and
 * returns SP_EXIT_USAGE; 0 when stdout is not a terminal. */
int sp_cli_stdout_is_safe(void);
/* Report callback for a note that is not a warning (a file that is no
 * dataset file, passed over): "prog: KEY: REASON" on stderr unless -q; the
 * status stays as it is (ctx unused). */
void sp_cli_report_key(void *ctx, const char *key, const char *reason);

/* ---- defaults and output for people and scripts ---- */
/* The threads a tool uses when --threads is not given: OMP_NUM_THREADS when
 * set to a number in 1..256, else SLURM_CPUS_PER_TASK when set (at most the
 * CPUs sched_getaffinity allows), else the CPUs sched_getaffinity allows
 * this process (1 if it fails); at most 256. *source names where the number
 * came from ("sched_getaffinity", "OMP_NUM_THREADS", ...). */
int sp_cli_default_threads(const char **source);
/* v as the shortest decimal that reads back as the same number: a value
 * that is exactly a float32 (a float32 learning rate) as the shortest that
 * reads back as that float32 ("0.001", not "0.0010000000474974513"), every
 * other as the shortest that reads back as the double; "null" when not
 * finite (JSON has no inf or nan). Returns buf. */
const char *sp_format_real(char *buf, size_t n, double v);
/* j as JSON text with every real printed by sp_format_real: on one line
 * (indent 0, members in their order: a JSONL line) or indented with keys
 * sorted (indent > 0: a file for people). A new string to free, or NULL
 * when out of memory. */
char *sp_json_text(const json_t *j, int indent);
/* Writes sp_json_text(j, 2) and a newline to path atomically (sp_atomic);
 * -1 with err naming path and the reason. */
int sp_write_json_text(const char *path, const json_t *j, sp_err *err);

/* ---- the parser's pieces ---- */
/* Prints "prog (shardpipe) VERSION" on stdout; returns SP_EXIT_OK. */
int sp_cli_version(void);
int sp_parse_size(const char *s, uint64_t *out); /* 0 or -1 */
int sp_parse_part(const char *s, int *i, int *n); /* 0 or -1 */
int sp_parse_u64(const char *s, uint64_t *out);   /* 0 or -1 */

#endif
