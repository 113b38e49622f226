/* Helpers for the tools' mains (cmd/): never used by library code. */
#ifndef SP_CLI_H
#define SP_CLI_H

#include <stdint.h>

#include "common/sp_common.h"

/* Sets the program name for diagnostics. */
void sp_cli_init(int argc, char **argv);
/* The options every tool has, for getopt_long's result c: -q, -v, -h
 * (prints usage), -V, and unknown ones. Returns -1 to go on parsing, or the
 * status main should exit with. */
int sp_cli_common_option(int c, const char *usage);
/* "sp-unpack (shardpipe) 0.1.0" on stdout; returns SP_EXIT_OK. */
int sp_cli_version(void);
/* Prints "try 'prog --help'" for a usage error; returns SP_EXIT_USAGE. */
int sp_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Refuses to write a binary stream to a terminal (like zstd). 0 if fine. */
int sp_cli_stdout_is_safe(void);
/* Report callback: "prog: KEY: REASON" on stderr (ctx unused). */
void sp_cli_report_key(void *ctx, const char *key, const char *reason);
/* Parses a size like 1000, 64k, 256M, 2G (powers of 1024). 0 or -1. */
int sp_parse_size(const char *s, uint64_t *out);
/* Parses "I/N" (0 <= I < N <= 100000) for --part; 0 or -1. */
int sp_parse_part(const char *s, int *i, int *n);
/* Parses a non-negative integer; 0 or -1. */
int sp_parse_u64(const char *s, uint64_t *out);

#endif
