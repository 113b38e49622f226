/* Shared helpers for shardpipe's library code and tools.
 *
 * Contracts:
 *  - Library code never prints or exits: it returns an error and fills an
 *    sp_err with a one-line message ("what: why"), which the tool prints.
 *  - Tools print diagnostics as "progname: message" on stderr only, through
 *    common/sp_cli.h, which is not part of the library.
 *  - Exit codes are the same for every tool (SP_EXIT_*).
 */
#ifndef SP_COMMON_H
#define SP_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define SP_VERSION "0.1.0"

/* Exit codes shared by every tool; documented in docs/tools.md and --help. */
enum {
    SP_EXIT_OK = 0,      /* success */
    SP_EXIT_DATA = 1,    /* bad input data, failed verification, rejects under --strict */
    SP_EXIT_USAGE = 2,   /* bad command line */
    SP_EXIT_SYSTEM = 3,  /* I/O error, out of memory, library failure */
};

/* An error message kept by the library for the caller to print. */
typedef struct sp_err {
    int code;            /* one of SP_EXIT_* (DATA or SYSTEM) once set, else 0 */
    char msg[1024];
} sp_err;

/* Sets err (if not NULL) and returns -1, so callers can `return sp_fail(...)`. */
int sp_fail(sp_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes the message already in err with "context: ". Returns -1. */
int sp_fail_context(sp_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Monotonic seconds. (The tools' diagnostics and progress line are in
 * common/sp_cli.h, outside the library.) */
double sp_now(void);

/* Formats a one-line note and hands it to a tool's callback (library code
 * never prints; the tool decides where notes go). Does nothing when cb is
 * NULL. The line is cut at 2047 bytes. */
void sp_notef(void (*cb)(void *ctx, const char *line), void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A test-only hook for the crash tests: when the environment variable env
 * names phase, creates the empty file DIR/.sp-pause-PHASE (DIR: dir, or the
 * directory of the file dir names when file is 1) and waits for a signal to
 * end the process; otherwise does nothing. The tests kill the process there,
 * knowing which phase the kill hit (SP_WRITER_PAUSE, SP_CKPT_PAUSE,
 * SP_FETCH_PAUSE; see the tests that set them). */
void sp_test_pause(const char *env, const char *dir, int file, const char *phase);

/* ---- growable byte buffer; owns its memory ---- */
typedef struct sp_buf {
    uint8_t *data;
    size_t len, cap;
} sp_buf;
int sp_buf_reserve(sp_buf *b, size_t cap);       /* 0 or -1 (ENOMEM) */
int sp_buf_append(sp_buf *b, const void *p, size_t n);
void sp_buf_free(sp_buf *b);

/* The n bytes of d as 2n lowercase hex digits and a NUL in out (a digest's
 * usual spelling: sha256's 32 bytes need 65 chars). */
void sp_hex(const unsigned char *d, size_t n, char *out);
/* A scratch buffer *p of *cap bytes made to hold at least need: realloc'd to
 * exactly need when smaller, kept (never shrunk) otherwise. 0, or -1 when out
 * of memory (*p and *cap as they were). */
int sp_grow(void **p, size_t *cap, size_t need);

/* ---- small I/O helpers ---- */
/* write(2) all n bytes, retrying on EINTR/partial writes. 0 or -1 (errno). */
int sp_write_all(int fd, const void *p, size_t n);
/* read(2) until n bytes or EOF. Returns bytes read (< n only at EOF) or -1. */
ssize_t sp_read_full(int fd, void *p, size_t n);
/* mkdir -p: creates dir and its missing parents (0755). 0 or -1 (errno). */
int sp_mkdirs(const char *dir);
/* Base name of a path (pointer into path). */
const char *sp_basename(const char *path);

/* Little-endian encode/decode. */
static inline void sp_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void sp_put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void sp_put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint16_t sp_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t sp_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t sp_get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline uint32_t sp_get_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

#endif
