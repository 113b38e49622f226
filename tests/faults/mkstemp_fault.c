/* LD_PRELOAD shim for the checkpoint and fetch fault tests: fails the Nth call of mkstemp.
 *
 * mkstemp (the temporary of common/sp_atomic.c) opens its file inside glibc, beyond libfiu's
 * wrappers and tests/faults/nth_fault.c; this shim fails exactly one call, counted from the
 * start of the process:
 *   SP_FAULT_NTH    which call fails (1 = the first)
 *   SP_FAULT_ERRNO  the errno it fails with (default EIO)
 *   SP_FAULT_MARK   a file created when the fault fires, so the test knows the call was reached
 * Built by the tests with cc -shared -fPIC. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static long calls;

int mkstemp(char *tmpl)
{
    static int (*real)(char *);
    if (!real)
        real = (int (*)(char *))dlsym(RTLD_NEXT, "mkstemp");
    const char *nth = getenv("SP_FAULT_NTH"), *mark = getenv("SP_FAULT_MARK"), *e = getenv("SP_FAULT_ERRNO");
    if (nth && ++calls == atol(nth)) {
        if (mark) {
            int fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd >= 0)
                close(fd);
        }
        errno = e ? atoi(e) : EIO;
        return -1;
    }
    return real(tmpl);
}
