/* libshardpipe-reader used the way garbage collectors, forks and careless
 * callers use it; built in the test through pkg-config (under the build's
 * sanitizers). Prints "ok" and exits 0 when the library behaved; else a
 * line saying what went wrong and exit 1.
 * usage: reader_hostile MODE DIR [SPLIT]
 *   close-first  spr_close while an iterator with 4 threads reads, then the
 *                epoch to its end and spr_iter_free (the set must outlive it)
 *   batch0       spr_iter_open with batch 0 must fail, naming the batch
 *   labels-null  spr_iter_next with labels NULL: pixels only
 *   fork         20 forks while 4 reader threads read: each child's use of
 *                the parent's iterator fails (SPR_ERR_USAGE), and a set and
 *                iterator of its own read a whole epoch; a child stuck for
 *                30 s dies of SIGALRM
 *   fork-nothreads  the same, the child's own iterator reading in the
 *                caller's thread (ThreadSanitizer follows no thread a child
 *                of a multi-threaded fork starts)
 *   errcode      spr_open_ex of a missing split: SPR_ERR_DATA; a record out
 *                of range: SPR_ERR_USAGE */
#define _POSIX_C_SOURCE 200809L
#include <shardpipe/reader.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int bad(const char *what, const char *why)
{
    printf("%s: %s\n", what, why);
    fflush(stdout); /* a child leaves by _exit */
    return 1;
}

static spr_iter *open_iter(spr_set *s, uint32_t batch, uint32_t threads)
{
    spr_iter_options o = {.batch = batch, .seed = 7, .flags = SPR_SHUFFLE, .window_records = 8, .threads = threads};
    return spr_iter_open(s, &o, sizeof o);
}

/* Reads it to the end of its epoch; the records read, or -1. */
static long long drain(spr_iter *it, void *px, int32_t *labels)
{
    long long total = 0;
    uint32_t n;
    int st;
    while ((st = spr_iter_next(it, px, labels, &n)) > 0)
        total += n;
    return st < 0 ? -1 : total;
}

static int close_first(spr_set *s)
{
    uint64_t count = spr_count(s);
    spr_iter *it = open_iter(s, 8, 4);
    if (!it)
        return bad("spr_iter_open", spr_error(s));
    uint8_t *px = malloc(8 * spr_iter_record_bytes(it));
    int32_t labels[8];
    uint32_t n;
    if (spr_iter_next(it, px, labels, &n) != 8)
        return bad("first batch", spr_iter_error(it));
    spr_close(s);
    long long rest = drain(it, px, labels);
    if (rest < 0)
        return bad("after spr_close", spr_iter_error(it));
    if ((uint64_t)rest + 8 != count)
        return bad("after spr_close", "the epoch lost records");
    spr_iter_free(it);
    free(px);
    return 0;
}

static int batch0(spr_set *s)
{
    spr_iter *it = open_iter(s, 0, 0);
    if (it)
        return bad("batch 0", "accepted");
    if (spr_errcode(s) != SPR_ERR_USAGE || !strstr(spr_error(s), "batch of 0"))
        return bad("batch 0", spr_error(s));
    spr_close(s);
    return 0;
}

/* One whole epoch of s in batches of 8 with `threads` threads, labels
 * wanted or not; then s is closed. 0, or 1 saying what failed. */
static int read_epoch(spr_set *s, uint32_t threads, int want_labels, const char *what)
{
    spr_iter *it = open_iter(s, 8, threads);
    if (!it)
        return bad(what, spr_error(s));
    uint8_t *px = malloc(8 * spr_iter_record_bytes(it));
    int32_t labels[8];
    long long total = drain(it, px, want_labels ? labels : NULL);
    if (total < 0 || (uint64_t)total != spr_count(s))
        return bad(what, total < 0 ? spr_error(s) : "records lost");
    spr_iter_free(it);
    spr_close(s);
    free(px);
    return 0;
}

/* A child of fork(): the parent's iterator must refuse, a new one must read. */
static int child(spr_iter *parent_it, const char *dir, const char *split, uint32_t threads)
{
    alarm(30);
    uint8_t *px = malloc(8 * spr_iter_record_bytes(parent_it));
    int32_t labels[8];
    uint32_t n;
    if (spr_iter_next(parent_it, px, labels, &n) != -1)
        return bad("child", "the parent's iterator read on after fork()");
    if (!strstr(spr_iter_error(parent_it), "fork()"))
        return bad("child: the parent's iterator", spr_iter_error(parent_it));
    spr_iter_free(parent_it);
    free(px);
    char err[1024];
    spr_set *s = spr_open(dir, split, err, sizeof err);
    if (!s)
        return bad("child: spr_open", err);
    return read_epoch(s, threads, 1, "child: epoch");
}

static int forks(spr_set *s, const char *dir, const char *split, uint32_t child_threads)
{
    uint8_t *px = NULL;
    int32_t labels[4];
    uint32_t n;
    spr_iter *it = NULL;
    for (int k = 0; k < 20; k++) {
        if (!it) {
            if (!(it = open_iter(s, 4, 4)))
                return bad("spr_iter_open", spr_error(s));
            if (!px)
                px = malloc(4 * spr_iter_record_bytes(it));
        }
        int st = spr_iter_next(it, px, labels, &n); /* frees a window now and then: the threads read */
        if (st < 0)
            return bad("parent", spr_error(s));
        if (st == 0) {
            spr_iter_free(it);
            it = NULL;
            continue;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            return bad("fork", "failed");
        if (pid == 0)
            _exit(child(it, dir, split, child_threads));
        int ws;
        if (waitpid(pid, &ws, 0) != pid)
            return bad("waitpid", "failed");
        if (WIFSIGNALED(ws))
            return bad("child", WTERMSIG(ws) == SIGALRM ? "hung (killed after 30 s)" : "killed by a signal");
        if (WEXITSTATUS(ws))
            return bad("child", "failed");
    }
    spr_iter_free(it);
    spr_close(s);
    free(px);
    return 0;
}

static int errcode(spr_set *s, const char *dir)
{
    char err[1024];
    int code = -1;
    if (spr_open_ex(dir, "nosuch", err, sizeof err, &code) || code != SPR_ERR_DATA)
        return bad("spr_open_ex of a missing split", err);
    uint8_t px[1];
    int32_t label;
    if (spr_errcode(s) != SPR_ERR_NONE)
        return bad("spr_errcode", "not SPR_ERR_NONE before any failure");
    if (spr_read(s, spr_count(s), px, &label) != -1 || spr_errcode(s) != SPR_ERR_USAGE)
        return bad("spr_read out of range", spr_error(s));
    spr_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    const char *split = argc > 3 ? argv[3] : "train";
    char err[1024];
    spr_set *s = spr_open(argv[2], split, err, sizeof err);
    if (!s)
        return bad("spr_open", err);
    int rc = !strcmp(argv[1], "close-first") ? close_first(s)
             : !strcmp(argv[1], "batch0")    ? batch0(s)
             : !strcmp(argv[1], "labels-null") ? read_epoch(s, 2, 0, "labels NULL")
             : !strcmp(argv[1], "fork")      ? forks(s, argv[2], split, 2)
             : !strcmp(argv[1], "fork-nothreads") ? forks(s, argv[2], split, 0)
             : !strcmp(argv[1], "errcode")   ? errcode(s, argv[2])
                                             : 2;
    if (!rc)
        printf("ok\n");
    return rc;
}
