/* An ordered parallel map over a stream's records: worker threads, results written back in input order. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/parallel.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_FREE, SLOT_READY, SLOT_BUSY, SLOT_DONE };

typedef struct slot {
    int state;
    int failed;
    sp_record rec, out_rec;
    sp_buf in, out;
    sp_err err;
} slot;

struct sp_pmap {
    sp_pmap_ops ops;
    int nthreads, depth;
    int started; /* threads running (joined by free) */
    slot *slots;
    uint64_t next_in, next_out; /* sequence numbers; slot = seq % depth */
    uint64_t next_work;         /* the next READY slot a worker takes */
    pthread_t *threads;
    void **scratch;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    int stop;
    int failed;
    sp_err err;
};

static void run_slot(sp_pmap *p, slot *s, void *scratch)
{
    s->out_rec = s->rec;
    s->out.len = 0;
    s->failed = p->ops.transform(p->ops.ctx, scratch, &s->rec, s->in.data, s->in.len, &s->out_rec, &s->out,
                                 &s->err) != 0;
    s->out_rec.payload_len = s->out.len;
}

static void *worker(void *arg)
{
    sp_pmap *p = ((void **)arg)[0];
    void *scratch = ((void **)arg)[1];
    free(arg);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->next_work == p->next_in)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->stop)
            break;
        slot *s = &p->slots[p->next_work % (uint64_t)p->depth];
        p->next_work++;
        s->state = SLOT_BUSY;
        pthread_mutex_unlock(&p->mu);
        run_slot(p, s, scratch);
        pthread_mutex_lock(&p->mu);
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

sp_pmap *sp_pmap_create(int threads, int depth, const sp_pmap_ops *ops, sp_err *err)
{
    sp_pmap *p = calloc(1, sizeof *p);
    if (!p) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    p->ops = *ops;
    p->nthreads = threads < 1 ? 1 : threads;
    p->depth = depth < p->nthreads * 2 ? p->nthreads * 2 : depth;
    p->slots = calloc((size_t)p->depth, sizeof *p->slots);
    p->threads = calloc((size_t)p->nthreads, sizeof *p->threads);
    p->scratch = calloc((size_t)p->nthreads, sizeof *p->scratch);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    if (!p->slots || !p->threads || !p->scratch) {
        sp_pmap_free(p);
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < p->nthreads; i++)
        p->scratch[i] = ops->new_scratch ? ops->new_scratch(ops->ctx) : NULL;
    if (p->nthreads > 1) {
        for (int i = 0; i < p->nthreads; i++) {
            void **arg = malloc(2 * sizeof *arg);
            if (arg) {
                arg[0] = p;
                arg[1] = p->scratch[i];
            }
            if (!arg || pthread_create(&p->threads[i], NULL, worker, arg)) {
                free(arg);
                sp_pmap_free(p); /* stops the ones started */
                sp_fail(err, SP_EXIT_SYSTEM, "cannot start a thread");
                return NULL;
            }
            p->started++;
        }
    }
    return p;
}

/* Writes the oldest slot once it is done. Called with the lock held. */
static int write_oldest(sp_pmap *p, sp_writer *w, sp_err *err)
{
    slot *s = &p->slots[p->next_out % (uint64_t)p->depth];
    while (s->state != SLOT_DONE)
        pthread_cond_wait(&p->done, &p->mu);
    p->next_out++;
    s->state = SLOT_FREE;
    if (s->failed) {
        *err = s->err;
        return -1;
    }
    pthread_mutex_unlock(&p->mu);
    int rc = sp_writer_record(w, &s->out_rec, s->out.data, s->out.len, err);
    pthread_mutex_lock(&p->mu);
    return rc;
}

int sp_pmap_push(sp_pmap *p, const sp_record *rec, const uint8_t *payload, sp_writer *w, sp_err *err)
{
    if (p->nthreads == 1) { /* no threads: in place */
        slot *s = &p->slots[0];
        s->rec = *rec;
        s->in.len = 0;
        if (sp_buf_append(&s->in, payload, (size_t)rec->payload_len))
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        run_slot(p, s, p->scratch[0]);
        if (s->failed) {
            *err = s->err;
            return -1;
        }
        return sp_writer_record(w, &s->out_rec, s->out.data, s->out.len, err);
    }
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    /* a full ring: write the oldest first */
    if (p->next_in - p->next_out == (uint64_t)p->depth)
        rc = write_oldest(p, w, err);
    if (rc == 0) {
        slot *s = &p->slots[p->next_in % (uint64_t)p->depth];
        pthread_mutex_unlock(&p->mu);
        s->rec = *rec;
        s->in.len = 0;
        rc = sp_buf_append(&s->in, payload, (size_t)rec->payload_len) ? sp_fail(err, SP_EXIT_SYSTEM, "out of memory")
                                                                       : 0;
        pthread_mutex_lock(&p->mu);
        if (rc == 0) {
            s->state = SLOT_READY;
            p->next_in++;
            pthread_cond_signal(&p->work);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int sp_pmap_finish(sp_pmap *p, sp_writer *w, sp_err *err)
{
    if (p->nthreads == 1)
        return 0;
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (rc == 0 && p->next_out < p->next_in)
        rc = write_oldest(p, w, err);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void sp_pmap_free(sp_pmap *p)
{
    if (!p)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->started; i++)
            pthread_join(p->threads[i], NULL);
    }
    for (int i = 0; p->scratch && i < p->nthreads; i++)
        if (p->ops.free_scratch)
            p->ops.free_scratch(p->scratch[i]);
    for (int i = 0; p->slots && i < p->depth; i++) {
        sp_buf_free(&p->slots[i].in);
        sp_buf_free(&p->slots[i].out);
    }
    free(p->slots);
    free(p->threads);
    free(p->scratch);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p);
}
