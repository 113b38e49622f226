/* The output side every stage shares: a record stream on an fd whose
 * metadata is the input's plus this stage's recipe entry. */
#ifndef SP_STAGE_H
#define SP_STAGE_H

#include "formats/recstream.h"

typedef struct sp_stage {
    const json_t *step; /* this stage's recipe entry (not owned), see sp_meta_add_recipe */
    int fd;           /* output; not closed */
    sp_writer *w;     /* NULL until the first sp_stage_meta */
    json_t *last;     /* metadata last written (owned) */
} sp_stage;

/* Initialises s; nothing is written yet. step must outlive s. */
void sp_stage_init(sp_stage *s, const json_t *step, int fd);
/* Announces the metadata for the records that follow: a copy of meta (NULL =
 * empty) with this stage's recipe entry appended. Opens the stream on the
 * first call; later calls write a metadata frame only if it changed. */
int sp_stage_meta(sp_stage *s, const json_t *meta, sp_err *err);
/* Writes the trailer; the output is complete only after this succeeds. */
int sp_stage_finish(sp_stage *s, sp_err *err);
void sp_stage_free(sp_stage *s);

/* Reads each input stream in turn (files; none or "-" = stdin) and calls
 * on_meta with the metadata at the start of each and whenever it changes,
 * then on_record for every record (whose payload the callback reads from r
 * or leaves to be skipped). Stops at the first error. progress (may be
 * NULL) hears after every record the records and payload bytes read so far,
 * over all inputs; the stage itself never prints. */
typedef int (*sp_meta_fn)(void *ctx, const json_t *meta, sp_err *err);
typedef int (*sp_record_fn)(void *ctx, sp_reader *r, sp_record *rec, sp_err *err);
typedef void (*sp_count_fn)(void *ctx, uint64_t records, uint64_t bytes);
int sp_stage_each(int nfiles, char **files, sp_meta_fn on_meta, sp_record_fn on_record, void *ctx,
                  sp_count_fn progress, void *progress_ctx, sp_err *err);

/* Opens a named input for reading ("-" = stdin). Returns an fd or -1. */
int sp_open_input(const char *path, sp_err *err);

#endif
