/* The global shuffle of sp-shard: records come out ordered by
 * XXH3-64(key, seed), ties broken by key, so the order depends on the seed
 * and the keys only, never on the input order (a class-ordered ImageNet tar
 * comes out mixed).
 *
 * Memory is bounded by mem_limit: records are gathered up to that many bytes;
 * when the next one does not fit, the oldest quarter of them (all of them once
 * 16 runs are on disk) is sorted and written as a run file (a record stream,
 * so every byte is checksummed on the way back) under tmpdir. At the end the
 * records still in memory are sorted and merged with the runs, so a set of up
 * to 5 times mem_limit writes about its size less mem_limit to disk, not all of
 * it. At most mem_limit plus 1 MiB of read buffer per run is held at once; a
 * dataset that fits in mem_limit never touches the disk. */
#ifndef SP_SHUFFLE_H
#define SP_SHUFFLE_H

#include <stddef.h>
#include <stdint.h>

#include "formats/recstream.h"

typedef struct sp_shuffler sp_shuffler;

/* tmpdir must exist; run files are named .sp-tmp-run-N there. */
sp_shuffler *sp_shuffler_create(const char *tmpdir, uint64_t seed, size_t mem_limit, sp_err *err);
/* Takes a copy of the record and its payload. */
int sp_shuffler_add(sp_shuffler *s, const sp_record *rec, const uint8_t *payload, sp_err *err);
/* Calls emit for every record in shuffled order. Once. */
int sp_shuffler_drain(sp_shuffler *s, int (*emit)(void *ctx, const sp_record *rec, const uint8_t *payload, sp_err *err),
                      void *ctx, sp_err *err);
uint64_t sp_shuffler_count(const sp_shuffler *s);
uint64_t sp_shuffler_runs(const sp_shuffler *s);    /* run files written (0: all in memory) */
uint64_t sp_shuffler_spilled(const sp_shuffler *s); /* bytes of records written to them */
/* Removes the run files; accepts NULL. */
void sp_shuffler_free(sp_shuffler *s);

#endif
