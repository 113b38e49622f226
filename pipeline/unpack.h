/* The unpack stage: archives in, one blob record per regular file out.
 *
 * Inputs are files, stdin, or blob records of a record stream. Archives are
 * read through libarchive (tar in all its dialects, zip, cpio; gzip, bzip2,
 * xz, zstd, lz4 compression; a compressed single file such as a bare .gz).
 * A member that is itself a tar or a compressed file is streamed through a
 * nested reader (never extracted to disk, never held whole in memory), up to
 * a fixed depth; its members' keys keep the outer names:
 *     ILSVRC2012_img_train.tar/n01440764.tar/n01440764_10026.JPEG
 * A bare compressed file's key drops the compression suffix.
 *
 * Entries with absolute paths or "..", links, devices and fifos are skipped
 * and reported through opts->report, never followed or written.
 *
 * Limits (each an SP_EXIT_DATA error naming the member and the limit):
 * archives nested more than SP_UNPACK_MAX_DEPTH deep; a compressed input or
 * member expanding more than opts->max_ratio to 1; a member of unknown size
 * over opts->max_buffered; more than opts->max_empty empty members in one
 * archive.
 */
#ifndef SP_UNPACK_H
#define SP_UNPACK_H

#include "formats/recstream.h"
#include "pipeline/stage.h"

#define SP_UNPACK_MAX_DEPTH 8 /* archives inside archives */
#define SP_UNPACK_MAX_DIR_DEPTH 64 /* directories inside a directory given by name */

typedef struct sp_unpack_opts {
    int recurse;                /* open nested tars/compressed members (default 1) */
    int follow;                 /* a directory walk follows symbolic links (default 0: skipped, reported) */
    int keep_paths;             /* a plain file named by a relative path is keyed by that path (default 0:
                                 * by its base name, so keys do not depend on where the inputs lie) */
    uint64_t max_buffered;      /* a member of unknown size is buffered up to this (default 4 GiB) */
    uint32_t max_ratio;         /* a compressed archive or file may give at most this many bytes per
                                 * compressed byte read, once past max_ratio_floor bytes (default 100;
                                 * 0: no limit): a decompression bomb stops here */
    uint64_t max_ratio_floor;   /* default 64 MiB */
    uint64_t max_empty;         /* empty members one archive may hold (default 100,000) */
    void (*report)(void *ctx, const char *key, const char *reason); /* skipped entries */
    void *report_ctx;
    void (*progress)(void *ctx, uint64_t records, uint64_t bytes); /* may be NULL */
    void *progress_ctx;
} sp_unpack_opts;
void sp_unpack_opts_default(sp_unpack_opts *o);

typedef struct sp_unpack_stats {
    uint64_t files;   /* blob records written */
    uint64_t skipped; /* entries reported and not written */
    uint64_t bytes;   /* payload bytes written */
    uint64_t in_bytes; /* bytes read from named files and stdin (not from streams): the input consumed */
} sp_unpack_stats;

/* Unpacks one input: fd is read to its end (not closed), name is its path
 * ("-" for stdin) for messages and base the key prefix of its members. If
 * the input is a record stream, each blob record is unpacked in turn (its key
 * is the prefix; split and labels carry over to its members) and other
 * records pass through; the stream's metadata is kept. The members of
 * overrides (may be NULL) are set on the output metadata in every case. */
int sp_unpack_fd(int fd, const char *name, const char *base, const json_t *overrides, sp_stage *out,
                 const sp_unpack_opts *opts, sp_unpack_stats *stats, sp_err *err);

/* Unpacks one named input: "-" is stdin (keyed stdin_name), a directory is
 * walked, anything else is opened and unpacked as by sp_unpack_fd.
 *
 * A directory's files come in a fixed order, whatever order the file system
 * lists them in: at each level its files, then its subdirectories, each by
 * the byte order of their names. Their keys are their paths under the
 * directory ("train/cat/001.jpg"); an archive among them keys its members
 * under its own path. Symbolic links are reported and passed over unless
 * opts->follow (a link back to a directory above it is reported even then),
 * as are fifos, sockets and devices. Before the files, the output metadata
 * gets "folder_classes": the sorted names of the subdirectories of its
 * top-level train/, val/ and test/ directories (their union), or of the
 * directory itself when it has none of these: the classes of torchvision's
 * ImageFolder on the same tree (empty class directories included); not set
 * when there are none.
 *
 * A file named by path is keyed by its base name (an archive's members by
 * the archive's base name and their paths in it), so the same files give
 * the same keys wherever they lie; with opts->keep_paths, a plain file (not
 * an archive, not a stream) named by a relative path without ".." keeps that
 * path as its key ("train/cat/001.jpg", for --labels-from dirs). */
int sp_unpack_path(const char *path, const char *stdin_name, const json_t *overrides, sp_stage *out,
                   const sp_unpack_opts *opts, sp_unpack_stats *stats, sp_err *err);
/* The bytes of the regular files under dir (links followed with follow),
 * for a progress line's percent: a walk as sp_unpack_path's, stat only. */
int sp_unpack_tree_bytes(const char *dir, int follow, uint64_t *bytes, sp_err *err);
/* The "folder_classes" list of the directory dir (new reference), or NULL
 * with err set. */
json_t *sp_unpack_folder_classes(const char *dir, int follow, sp_err *err);

#endif
