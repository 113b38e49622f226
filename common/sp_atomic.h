/* Files that appear only complete: write under a temporary name in the same
 * directory, fsync the file, rename it over the final name, fsync the
 * directory. Every writer of the project (shards, manifests, journals, the
 * fetch cache, checkpoints) goes through these, so all give one guarantee:
 * after a crash or a failed call the final name holds either its old content
 * or the whole new one, and no temporary is left behind by a failed call.
 *
 * Temporary names are "DIR/.NAME.tmp-XXXXXX" (mkstemp), so two writers of
 * the same name never share a temporary. Errors fill err (SP_EXIT_SYSTEM)
 * with the path and strerror(errno); the functions never print. */
#ifndef SP_ATOMIC_H
#define SP_ATOMIC_H

#include <stddef.h>

#include "common/sp_common.h"

/* A file being written under a temporary name. */
typedef struct sp_atomic_file {
    int fd;          /* open for writing; -1 once committed or aborted */
    char tmp[4096];  /* the temporary's path */
    char path[4096]; /* the final path */
} sp_atomic_file;

/* Creates the temporary beside path (mode 0644). 0, or -1 with err set. */
int sp_atomic_open(sp_atomic_file *f, const char *path, sp_err *err);
/* fsync, close, rename onto the final path, fsync its directory. On any
 * failure the temporary is removed and the final path is left as it was
 * (unless the directory fsync failed: the rename happened but may not be
 * durable). 0 or -1. */
int sp_atomic_commit(sp_atomic_file *f, sp_err *err);
/* Closes and removes the temporary; safe after commit or on a zeroed f
 * whose fd is -1. Keeps errno. */
void sp_atomic_abort(sp_atomic_file *f);

/* Whether path can be written as sp_atomic_open writes it: a temporary made
 * beside it and removed again, nothing else touched. For a tool's outputs,
 * checked before the work that fills them. 0, or -1 with err set. */
int sp_atomic_check(const char *path, sp_err *err);

/* The whole file at once: data[0..len) becomes path. 0 or -1. */
int sp_atomic_write(const char *path, const void *data, size_t len, sp_err *err);

/* For files written by name by another library (HDF5): fsync tmp, rename it
 * onto path, fsync the directory. tmp is removed on failure. 0 or -1. */
int sp_atomic_rename(const char *tmp, const char *path, sp_err *err);

/* If name (a bare file name) is one of sp_atomic_open's temporaries,
 * ".NAME.tmp-XXXXXX", copies NAME into final (n bytes) and returns 1; else 0
 * (also when NAME does not fit). For cleaning up after a killed writer. */
int sp_atomic_temporary_of(const char *name, char *final, size_t n);

/* fsync of a file or directory by name (EINVAL from a file system that
 * cannot sync directories is not an error). 0 or -1. */
int sp_fsync_path(const char *path, sp_err *err);
/* fsync of the directory that holds path. 0 or -1. */
int sp_fsync_parent(const char *path, sp_err *err);

#endif
