/* An ordered parallel map over the records of a stream: records go in one
 * at a time, are transformed by N worker threads, and come out in the order
 * they went in. Memory is bounded: at most `depth` records are in flight.
 *
 * The transform gets a record and its payload and fills an output record and
 * payload; it runs on a worker thread with that worker's own scratch
 * (created by new_scratch, freed by free_scratch), so it must touch no other
 * shared state. The first error stops the map; it is reported by the next
 * push or the finish. */
#ifndef SP_PARALLEL_H
#define SP_PARALLEL_H

#include "formats/recstream.h"

typedef struct sp_pmap_ops {
    /* in/in_len: the payload; out_rec starts as a copy of rec; out gets the
     * output payload (out_rec->payload_len is set from out->len). */
    int (*transform)(void *ctx, void *scratch, const sp_record *rec, const uint8_t *in, size_t in_len,
                     sp_record *out_rec, sp_buf *out, sp_err *err);
    void *(*new_scratch)(void *ctx);
    void (*free_scratch)(void *scratch);
    void *ctx;
} sp_pmap_ops;

typedef struct sp_pmap sp_pmap;

/* threads >= 1; with 1 the transform runs on the calling thread. */
sp_pmap *sp_pmap_create(int threads, int depth, const sp_pmap_ops *ops, sp_err *err);
/* Queues one record (its payload is copied); writes finished records to w
 * in input order as they complete. */
int sp_pmap_push(sp_pmap *p, const sp_record *rec, const uint8_t *payload, sp_writer *w, sp_err *err);
/* Waits for every queued record and writes them. */
int sp_pmap_finish(sp_pmap *p, sp_writer *w, sp_err *err);
void sp_pmap_free(sp_pmap *p); /* accepts NULL; stops the workers */

#endif
