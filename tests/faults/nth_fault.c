/* LD_PRELOAD shim for the writer's fault tests: fails (or shortens) the Nth call of one POSIX I/O function.
 *
 * libfiu (fiu-run) fails a call point from its first call on, or at random; to reach each call
 * site of a run in turn, this shim fails exactly one call, counted from the start of the process:
 *   SP_FAULT_CALL   write | pwrite | fsync | rename   (write and pwrite only on fds above 2)
 *   SP_FAULT_NTH    which call fails (1 = the first)
 *   SP_FAULT_ERRNO  the errno it fails with (default EIO); 0 with write/pwrite: a short write
 *                   of half the bytes instead of a failure
 *   SP_FAULT_MARK   a file created when the fault fires, so the test knows the call was reached
 * Built by tests/tools/test_writer_faults.sh with cc -shared -fPIC. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long calls;

/* 1 when this call of fn is the one to fail; creates the mark then. */
static int fire(const char *fn)
{
    const char *want = getenv("SP_FAULT_CALL"), *nth = getenv("SP_FAULT_NTH");
    if (!want || !nth || strcmp(want, fn))
        return 0;
    if (++calls != atol(nth))
        return 0;
    const char *mark = getenv("SP_FAULT_MARK");
    if (mark) {
        int (*real_open)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
        int fd = real_open(mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
    }
    return 1;
}

static int fault_errno(void)
{
    const char *e = getenv("SP_FAULT_ERRNO");
    return e ? atoi(e) : EIO;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (fd > 2 && n > 0 && fire("write")) {
        if (fault_errno() == 0)
            return real(fd, buf, (n + 1) / 2);
        errno = fault_errno();
        return -1;
    }
    return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    if (fd > 2 && n > 0 && fire("pwrite")) {
        if (fault_errno() == 0)
            return real(fd, buf, (n + 1) / 2, off);
        errno = fault_errno();
        return -1;
    }
    return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) { return pwrite(fd, buf, n, off); }

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    if (fire("fsync")) {
        errno = fault_errno();
        return -1;
    }
    return real(fd);
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real)
        real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    if (fire("rename")) {
        errno = fault_errno();
        return -1;
    }
    return real(from, to);
}
