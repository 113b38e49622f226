/* Write-to-temporary, fsync, rename, fsync-directory: see sp_atomic.h. */
#define _POSIX_C_SOURCE 200809L
#include "common/sp_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sp_fsync_path(const char *path, sp_err *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc && e != EINVAL) /* some file systems cannot sync a directory */
        return sp_fail(err, SP_EXIT_SYSTEM, "fsync %s: %s", path, strerror(e));
    return 0;
}

int sp_fsync_parent(const char *path, sp_err *err)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        return sp_fsync_path(".", err);
    if (slash == path)
        return sp_fsync_path("/", err);
    if ((size_t)(slash - path) >= sizeof dir)
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, strerror(ENAMETOOLONG));
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = 0;
    return sp_fsync_path(dir, err);
}

int sp_atomic_temporary_of(const char *name, char *final, size_t n)
{
    size_t len = strlen(name); /* "." NAME ".tmp-" XXXXXX */
    if (len <= 12 || name[0] != '.' || strncmp(name + len - 11, ".tmp-", 5) || len - 12 >= n)
        return 0;
    memcpy(final, name + 1, len - 12);
    final[len - 12] = 0;
    return 1;
}

int sp_atomic_open(sp_atomic_file *f, const char *path, sp_err *err)
{
    f->fd = -1;
    f->tmp[0] = 0;
    if (snprintf(f->path, sizeof f->path, "%s", path) >= (int)sizeof f->path)
        return sp_fail(err, SP_EXIT_SYSTEM, "%.200s...: %s", path, strerror(ENAMETOOLONG));
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    if (snprintf(f->tmp, sizeof f->tmp, "%.*s.%s.tmp-XXXXXX", dirlen, path, path + dirlen) >= (int)sizeof f->tmp)
        return sp_fail(err, SP_EXIT_SYSTEM, "%.200s...: %s", path, strerror(ENAMETOOLONG));
    f->fd = mkstemp(f->tmp);
    if (f->fd < 0) {
        int e = errno;
        f->tmp[0] = 0;
        return sp_fail(err, SP_EXIT_SYSTEM, "cannot create a temporary for %s: %s", path, strerror(e));
    }
    if (fchmod(f->fd, 0644)) {
        int e = errno;
        sp_atomic_abort(f);
        return sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", f->tmp, strerror(e));
    }
    return 0;
}

void sp_atomic_abort(sp_atomic_file *f)
{
    int e = errno;
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (f->tmp[0])
        unlink(f->tmp);
    f->tmp[0] = 0;
    errno = e;
}

int sp_atomic_commit(sp_atomic_file *f, sp_err *err)
{
    if (fsync(f->fd)) {
        int e = errno;
        sp_atomic_abort(f);
        return sp_fail(err, SP_EXIT_SYSTEM, "fsync %s: %s", f->path, strerror(e));
    }
    int rc = close(f->fd);
    f->fd = -1;
    if (rc) {
        int e = errno;
        sp_atomic_abort(f);
        return sp_fail(err, SP_EXIT_SYSTEM, "close %s: %s", f->path, strerror(e));
    }
    if (rename(f->tmp, f->path)) {
        int e = errno;
        sp_atomic_abort(f);
        return sp_fail(err, SP_EXIT_SYSTEM, "rename %s: %s", f->path, strerror(e));
    }
    f->tmp[0] = 0;
    return sp_fsync_parent(f->path, err);
}

int sp_atomic_check(const char *path, sp_err *err)
{
    sp_atomic_file f;
    if (sp_atomic_open(&f, path, err))
        return -1;
    sp_atomic_abort(&f);
    return 0;
}

int sp_atomic_write(const char *path, const void *data, size_t len, sp_err *err)
{
    sp_atomic_file f;
    if (sp_atomic_open(&f, path, err))
        return -1;
    if (sp_write_all(f.fd, data, len)) {
        int e = errno;
        sp_atomic_abort(&f);
        return sp_fail(err, SP_EXIT_SYSTEM, "writing %s: %s", path, strerror(e));
    }
    return sp_atomic_commit(&f, err);
}

int sp_atomic_rename(const char *tmp, const char *path, sp_err *err)
{
    int fd = open(tmp, O_RDONLY);
    int rc = fd < 0 ? -1 : fsync(fd);
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (rc) {
        unlink(tmp);
        return sp_fail(err, SP_EXIT_SYSTEM, "fsync %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path)) {
        e = errno;
        unlink(tmp);
        return sp_fail(err, SP_EXIT_SYSTEM, "rename %s: %s", path, strerror(e));
    }
    return sp_fsync_parent(path, err);
}
