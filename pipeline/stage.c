/* The output side of every stage: the record stream's header with the recipe, records out, counts and progress callbacks. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/stage.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

void sp_stage_init(sp_stage *s, const json_t *step, int fd)
{
    s->step = step;
    s->fd = fd;
    s->w = NULL;
    s->last = NULL;
}

int sp_stage_meta(sp_stage *s, const json_t *meta, sp_err *err)
{
    json_t *m = meta ? json_deep_copy(meta) : json_object();
    if (!m || sp_meta_add_recipe(m, s->step)) {
        json_decref(m);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    if (s->last && json_equal(m, s->last)) {
        json_decref(m);
        return 0;
    }
    int rc;
    if (!s->w) {
        s->w = sp_writer_open(s->fd, m, err);
        rc = s->w ? 0 : -1;
    } else {
        rc = sp_writer_meta(s->w, m, err);
    }
    json_decref(s->last);
    s->last = m;
    return rc;
}

int sp_stage_finish(sp_stage *s, sp_err *err)
{
    if (!s->w && sp_stage_meta(s, NULL, err))
        return -1;
    return sp_writer_finish(s->w, err);
}

void sp_stage_free(sp_stage *s)
{
    sp_writer_free(s->w);
    json_decref(s->last);
    s->w = NULL;
    s->last = NULL;
}

int sp_open_input(const char *path, sp_err *err)
{
    if (!strcmp(path, "-"))
        return STDIN_FILENO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sp_fail(err, errno == ENOENT || errno == EACCES ? SP_EXIT_DATA : SP_EXIT_SYSTEM, "%s: %s",
                       path, strerror(errno));
    return fd;
}

static int each_stream(const char *path, sp_meta_fn on_meta, sp_record_fn on_record, void *ctx,
                       sp_count_fn progress, void *progress_ctx, uint64_t *records, uint64_t *bytes, sp_err *err)
{
    int fd = sp_open_input(path, err);
    if (fd < 0)
        return -1;
    sp_reader *r = sp_reader_open(fd, path, NULL, err);
    int rc = r ? 0 : -1;
    uint64_t serial = 0;
    if (rc == 0) {
        serial = sp_reader_meta_serial(r);
        rc = on_meta(ctx, sp_reader_meta(r), err);
    }
    sp_record rec;
    while (rc == 0) {
        int got = sp_reader_next(r, &rec, err);
        if (got < 0) {
            rc = -1;
            break;
        }
        /* metadata frames read on the way apply to this record and all after */
        if (sp_reader_meta_serial(r) != serial) {
            serial = sp_reader_meta_serial(r);
            if ((rc = on_meta(ctx, sp_reader_meta(r), err)))
                break;
        }
        if (got == 0)
            break;
        if ((rc = on_record(ctx, r, &rec, err)))
            break;
        *records += 1;
        *bytes += rec.payload_len;
        if (progress)
            progress(progress_ctx, *records, *bytes);
    }
    sp_reader_free(r);
    if (fd != STDIN_FILENO)
        close(fd);
    return rc < 0 ? -1 : 0;
}

int sp_stage_each(int nfiles, char **files, sp_meta_fn on_meta, sp_record_fn on_record, void *ctx,
                  sp_count_fn progress, void *progress_ctx, sp_err *err)
{
    uint64_t records = 0, bytes = 0;
    if (nfiles == 0)
        return each_stream("-", on_meta, on_record, ctx, progress, progress_ctx, &records, &bytes, err);
    for (int i = 0; i < nfiles; i++)
        if (each_stream(files[i], on_meta, on_record, ctx, progress, progress_ctx, &records, &bytes, err))
            return -1;
    return 0;
}
