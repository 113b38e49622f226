/* Mixing sets (spr_mix_*, include/shardpipe/reader.h) over two shard sets
 * written here (A: 1000 records in 7 shards, B: 300 in 3): at 0.7/0.3 over
 * 10,000 global batches each set's share is within 1% of its weight and
 * each pass of a repeat-set holds its records once, a new order each pass;
 * the same seed gives the same batches; a mix saved at world size 1 after
 * k steps resumes at world size 2 with the same records at every step
 * (k = 0, inside a pass, past passes, the last step; 1,000 steps each);
 * stop-sets end the epoch when the first of them runs out, each of its
 * records once; sets of other shapes and world sizes that do not divide
 * the partitions are refused; at world sizes 2 and 4 each rank's records,
 * placed where spr_mix_layout says, make one process's global batch in
 * order, over a set of 75 records (its passes end in short slots). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/sp_xxh.h"
#include "shardpipe/reader.h"
#include "shards/shard.h"

#define B 16 /* the global batch: 2 partitions (spr_mix_default_partitions), 8 slots a step */
#define STEPS 10000

/* Writes a set of n records of side x side x 1 uint8 into dir/name, 150 a shard. */
static void write_set(const char *dir, const char *name, int n, uint32_t side)
{
    char path[512], key[64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sp_err err = {0};
    sp_shard_opts o;
    sp_shard_opts_default(&o);
    o.max_records = 150;
    sp_shardset *s = sp_shardset_create(path, &o, &err);
    CHECK(s != NULL, "%s", err.msg);
    uint8_t px[16] = {0};
    for (int i = 0; s && i < n; i++) {
        sp_record rec;
        snprintf(key, sizeof key, "%s/%05d", name, i);
        sp_record_init(&rec, SP_KIND_PIXELS, key, NULL);
        rec.dtype = SP_DTYPE_U8, rec.h = rec.w = side, rec.c = 1, rec.label = i % 3;
        rec.payload_len = side * side, rec.split = SP_SPLIT_TRAIN;
        px[0] = (uint8_t)i;
        rec.checksum = SP_XXH3_64(px, rec.payload_len);
        CHECK(sp_shardset_add(s, &rec, px, &err) == 0, "%s", err.msg);
    }
    json_t *meta = json_pack("{s:s, s:[s,s,s]}", "dataset", name, "classes", "a", "b", "c");
    CHECK(s && sp_shardset_commit(s, meta, &err) == 0, "%s", err.msg);
    json_decref(meta);
    sp_shardset_free(s);
}

static spr_set *open_set(const char *dir, const char *name)
{
    char path[512], msg[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    spr_set *s = spr_open(path, "train", msg, sizeof msg);
    CHECK(s != NULL, "%s", msg);
    return s;
}

/* One record of a step: its set and its index there. */
typedef struct rec_id {
    int32_t src;
    uint64_t idx;
} rec_id;

static int rec_cmp(const void *a, const void *b)
{
    const rec_id *x = a, *y = b;
    return x->src != y->src ? (x->src < y->src ? -1 : 1) : x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Steps [skip, skip + steps) of the mix at world size `world` (every rank
 * simulated here), each step's records sorted, into out (steps x B; n[s]
 * records at step s). Returns the steps given before the end. */
static uint64_t run(spr_set **sets, const double *w, const int *pol, uint64_t seed, uint32_t world, uint64_t skip,
                    uint64_t steps, uint64_t epoch_steps, rec_id *out, uint32_t *n, uint64_t *total)
{
    spr_mix *m[2] = {0};
    char msg[512];
    for (uint32_t r = 0; r < world; r++) {
        spr_iter_options o = {.batch = B / world, .seed = seed, .flags = SPR_SHUFFLE, .part = r, .nparts = world,
                              .threads = r};
        m[r] = spr_mix_open(sets, w, pol, 2, &o, sizeof o, skip, epoch_steps, msg, sizeof msg, NULL);
        CHECK(m[r] != NULL, "%s", msg);
        if (!m[r])
            return 0;
        CHECK(spr_mix_partitions(m[r]) == 2, "%u partitions", spr_mix_partitions(m[r]));
    }
    *total = spr_mix_steps(m[0]);
    uint8_t px[B];
    int32_t labels[B], src[B];
    uint64_t idx[B], s = 0;
    for (; s < steps; s++) {
        uint32_t got = 0, k;
        int st = 0;
        for (uint32_t r = 0; r < world; r++) {
            st = spr_mix_next(m[r], px, labels, NULL, idx, src, &k);
            CHECK(st >= 0, "%s", spr_mix_error(m[r]));
            for (uint32_t i = 0; st > 0 && i < k; i++) {
                CHECK(px[i] == (uint8_t)idx[i] && labels[i] == (int32_t)(idx[i] % 3), "record %llu of set %d",
                      (unsigned long long)idx[i], src[i]);
                out[s * B + got++] = (rec_id){src[i], idx[i]};
            }
        }
        if (st <= 0)
            break;
        n[s] = got;
        qsort(out + s * B, got, sizeof *out, rec_cmp);
    }
    for (uint32_t r = 0; r < world; r++)
        spr_mix_free(m[r]);
    return s;
}

/* spr_mix_layout over `steps` steps of sets at weights w, both repeating,
 * with 4 partitions: at world 1 the step's records in order, and at world
 * 2 and 4 each rank's records put at their positions give that order, each
 * position once; *global is every rank's records and *fewest the fewest
 * a rank got. */
static void check_layout(spr_set **sets, const double *w, uint64_t steps)
{
    int repeat[2] = {SPR_MIX_REPEAT, SPR_MIX_REPEAT};
    rec_id one[B], placed[B];
    uint32_t n1 = 0, short_steps = 0;
    spr_mix *m[5] = {0}; /* m[0]: one process; m[1..world]: the ranks */
    char msg[512];
    for (uint32_t world = 2; world <= 4; world += 2) {
        for (uint32_t r = 0; r <= world; r++) {
            spr_iter_options o = {.batch = r ? B / world : B, .seed = 7, .flags = SPR_SHUFFLE, .partitions = 4,
                                  .part = r ? r - 1 : 0, .nparts = r ? world : 1};
            m[r] = spr_mix_open(sets, w, repeat, 2, &o, sizeof o, 0, steps, msg, sizeof msg, NULL);
            CHECK(m[r] != NULL, "%s", msg);
            if (!m[r])
                return;
        }
        uint8_t px[B];
        int32_t src[B];
        uint64_t idx[B], pos[B], global = 0;
        for (uint64_t s = 0; s < steps; s++) {
            CHECK(spr_mix_next(m[0], px, NULL, NULL, idx, src, &n1) == 1, "%s", spr_mix_error(m[0]));
            for (uint32_t i = 0; i < n1; i++)
                one[i] = (rec_id){src[i], idx[i]}, placed[i] = (rec_id){-1, 0};
            short_steps += n1 < B;
            uint32_t least = B, fewest = 0, k = 0;
            for (uint32_t r = 1; r <= world; r++) {
                CHECK(spr_mix_next(m[r], px, NULL, NULL, idx, src, &k) == 1, "%s", spr_mix_error(m[r]));
                CHECK(spr_mix_layout(m[r], pos, &global, &fewest) == k && global == n1, "world %u, step %llu: rank "
                      "%u: %u records, %llu in all, one process %u", world, (unsigned long long)s, r - 1, k,
                      (unsigned long long)global, n1);
                least = k < least ? k : least;
                for (uint32_t i = 0; i < k; i++) {
                    CHECK(pos[i] < n1 && placed[pos[i]].src < 0 && (!i || pos[i] > pos[i - 1]),
                          "world %u, step %llu: rank %u's record %u at %llu", world, (unsigned long long)s, r - 1, i,
                          (unsigned long long)pos[i]);
                    if (pos[i] < n1)
                        placed[pos[i]] = (rec_id){src[i], idx[i]};
                }
            }
            CHECK(fewest == least, "world %u, step %llu: fewest %u, %u", world, (unsigned long long)s, fewest, least);
            for (uint32_t i = 0; i < n1; i++)
                CHECK(!rec_cmp(&placed[i], &one[i]), "world %u, step %llu, record %u: set %d's %llu placed there by "
                      "spr_mix_layout, one process's is set %d's %llu", world, (unsigned long long)s, i, placed[i].src,
                      (unsigned long long)placed[i].idx, one[i].src, (unsigned long long)one[i].idx);
        }
        for (uint32_t r = 0; r <= world; r++)
            spr_mix_free(m[r]);
    }
    CHECK(short_steps > 0, "no short step: the layout check saw no short slot");
}

int main(void)
{
    char dir[] = "/tmp/sp-mix.XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    write_set(dir, "A", 1000, 1);
    write_set(dir, "B", 300, 1);
    write_set(dir, "C", 10, 2);
    spr_set *sets[2] = {open_set(dir, "A"), open_set(dir, "B")};
    double w[2] = {0.7, 0.3};
    int repeat[2] = {SPR_MIX_REPEAT, SPR_MIX_REPEAT};
    rec_id *ref = calloc(STEPS * B, sizeof *ref), *got = calloc(STEPS * B, sizeof *got);
    uint32_t *nref = calloc(STEPS, sizeof *nref), *ngot = calloc(STEPS, sizeof *ngot);
    uint64_t total = 0;

    /* 0.7/0.3 over 10,000 steps, both repeating */
    CHECK(run(sets, w, repeat, 5, 1, 0, STEPS, STEPS, ref, nref, &total) == STEPS && total == STEPS, "%llu steps",
          (unsigned long long)total);
    uint64_t count[2] = {0}, all = 0;
    for (uint64_t s = 0; s < STEPS; s++) {
        CHECK(nref[s] == B, "step %llu: %u records", (unsigned long long)s, nref[s]);
        for (uint32_t i = 0; i < nref[s]; i++)
            count[ref[s * B + i].src]++, all++;
    }
    for (int i = 0; i < 2; i++)
        CHECK(abs((int)((double)count[i] / (double)all * 1e4) - (int)(w[i] * 1e4)) <= 100, "set %d: %llu of %llu", i,
              (unsigned long long)count[i], (unsigned long long)all);
    printf("shares over %d steps: %.4f %.4f\n", STEPS, (double)count[0] / (double)all, (double)count[1] / (double)all);
    /* each pass of B (its first two, in step order) holds its 300 records once, in another order */
    {
        spr_iter_options o = {.batch = B, .seed = 5, .flags = SPR_SHUFFLE};
        char msg[512];
        spr_mix *m = spr_mix_open(sets, w, repeat, 2, &o, sizeof o, 0, STEPS, msg, sizeof msg, NULL);
        uint64_t seq[600], k = 0, idx[B];
        int32_t src[B];
        uint8_t px[B];
        uint32_t n;
        while (m && k < 600 && spr_mix_next(m, px, NULL, NULL, idx, src, &n) > 0)
            for (uint32_t i = 0; i < n && k < 600; i++)
                if (src[i] == 1)
                    seq[k++] = idx[i];
        spr_mix_free(m);
        char seen[2][300] = {{0}};
        int same = 1;
        for (int i = 0; i < 600; i++) {
            CHECK(seq[i] < 300 && !seen[i / 300][seq[i]]++, "pass %d: record %llu twice", i / 300,
                  (unsigned long long)seq[i]);
            same &= i < 300 && seq[i] == seq[i + 300];
        }
        CHECK(!same, "two passes of B in the same order");
    }

    /* the same seed, the same batches; another seed, others */
    CHECK(run(sets, w, repeat, 5, 1, 0, 2000, STEPS, got, ngot, &total) == 2000 &&
              !memcmp(got, ref, 2000 * B * sizeof *got),
          "seed 5 twice: other batches");
    run(sets, w, repeat, 6, 1, 0, 100, STEPS, got, ngot, &total);
    CHECK(memcmp(got, ref, 100 * B * sizeof *got), "seeds 5 and 6: the same batches");

    /* resume at world size 2 from a position at world size 1 */
    static const uint64_t at[] = {0, 37, 4321, STEPS - 1};
    for (size_t a = 0; a < sizeof at / sizeof *at; a++) { /* up to 1,000 steps from each */
        uint64_t k = at[a], left = STEPS - k < 1000 ? STEPS - k : 1000;
        CHECK(run(sets, w, repeat, 5, 2, k, left, STEPS, got, ngot, &total) == left, "k=%llu: short",
              (unsigned long long)k);
        CHECK(!memcmp(got, ref + k * B, left * B * sizeof *got) && !memcmp(ngot, nref + k, left * sizeof *ngot),
              "k=%llu: world size 2 resumed other records", (unsigned long long)k);
    }

    /* stop-sets (policies NULL): the epoch ends when B runs out, every one of its records once, A's at most once */
    uint64_t steps = run(sets, w, NULL, 9, 1, 0, STEPS, 0, got, ngot, &total);
    CHECK(steps == total && steps > 0 && steps < 100, "%llu steps, %llu stated", (unsigned long long)steps,
          (unsigned long long)total);
    {
        char *seen[2] = {calloc(1000, 1), calloc(300, 1)};
        uint64_t nb = 0;
        for (uint64_t s = 0; s < steps; s++)
            for (uint32_t i = 0; i < ngot[s]; i++) {
                rec_id r = got[s * B + i];
                CHECK(!seen[r.src][r.idx]++, "set %d record %llu twice", r.src, (unsigned long long)r.idx);
                nb += r.src == 1;
            }
        CHECK(nb == 300, "B gave %llu records in an epoch of stop-sets", (unsigned long long)nb);
        CHECK(ngot[steps - 1] < B || steps * B == 1300, "the last step is full");
        free(seen[0]), free(seen[1]);
    }
    /* A repeats, B stops: the same end; both repeat without epoch_steps: the step of A's last slot of its pass
     * ends it (its later slots there begin its next pass), B repeated */
    int mixed[2] = {SPR_MIX_REPEAT, SPR_MIX_STOP};
    CHECK(run(sets, w, mixed, 9, 1, 0, STEPS, 0, got, ngot, &total) == steps, "repeat/stop: another end");
    uint64_t longest = run(sets, w, repeat, 9, 1, 0, STEPS, 0, got, ngot, &total);
    {
        uint64_t na = 0, nb = 0;
        for (uint64_t s = 0; s < longest; s++)
            for (uint32_t i = 0; i < ngot[s]; i++)
                got[s * B + i].src ? nb++ : na++;
        CHECK(na >= 1000 && na < 1000 + B && nb > 300, "repeat/repeat: A %llu, B %llu records", (unsigned long long)na,
              (unsigned long long)nb);
    }

    /* the layout of the ranks' records in each global batch, over D's short slots (75 records, 4 partitions) */
    write_set(dir, "D", 75, 1);
    spr_set *odd[2] = {sets[0], open_set(dir, "D")};
    check_layout(odd, w, 300);
    spr_close(odd[1]);

    /* refusals: another shape, a world size that does not divide the partitions, a weight of 0 */
    char msg[512];
    spr_set *other[2] = {sets[0], open_set(dir, "C")};
    spr_iter_options o = {.batch = B, .seed = 1, .flags = SPR_SHUFFLE};
    int code = 0;
    CHECK(!spr_mix_open(other, w, NULL, 2, &o, sizeof o, 0, 0, msg, sizeof msg, &code) && code == SPR_ERR_DATA &&
              strstr(msg, "set 1: records of 2x2x1 uint8, set 0's are 1x1x1 uint8"),
          "%s", msg);
    o.batch = B / 4, o.nparts = 4;
    CHECK(!spr_mix_open(sets, w, NULL, 2, &o, sizeof o, 0, 0, msg, sizeof msg, &code) && code == SPR_ERR_USAGE &&
              strstr(msg, "world size 4: it must divide the 2 partitions"),
          "%s", msg);
    double zero[2] = {1, 0};
    o.batch = B, o.nparts = 1;
    CHECK(!spr_mix_open(sets, zero, NULL, 2, &o, sizeof o, 0, 0, msg, sizeof msg, NULL) && strstr(msg, "set 1: weight 0"),
          "%s", msg);
    spr_close(other[1]);
    spr_close(sets[0]);
    spr_close(sets[1]);
    free(ref), free(got), free(nref), free(ngot);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    return CHECK_DONE("test_mix");
}
