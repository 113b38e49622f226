/* The training loop (nn/train.h): the recipe and its JSON form, learning-rate schedules, epochs, evaluation, checkpoints. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sp_xxh.h"
#include "nn/dist.h"
#include "nn/metrics.h"
#include "nn/train.h"
#include "nn/class_names.h"
#include "shards/manifest.h"
#include "shards/verify.h"

static const char *const schedule_names[] = {"constant", "step", "cosine", "multistep"};
static const char *const augment_names[] = {"none", "flip", "crop-flip", "pad-crop-flip"};

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

int nn_schedule_from_name(const char *name) { return name_index(schedule_names, 4, name); }
int nn_augment_from_name(const char *name) { return name_index(augment_names, 4, name); }

int nn_wd_skip_parse(const char *s, unsigned *skip)
{
    if (!strcmp(s, "none"))
        return *skip = 0, 0;
    unsigned v = 0;
    for (const char *p = s;;) {
        size_t n = strcspn(p, ",");
        if (n == 2 && !strncmp(p, "bn", 2))
            v |= NN_WD_SKIP_BN;
        else if (n == 4 && !strncmp(p, "bias", 4))
            v |= NN_WD_SKIP_BIAS;
        else
            return -1;
        if (!p[n])
            break;
        p += n + 1;
    }
    *skip = v;
    return 0;
}

const char *nn_wd_skip_name(unsigned skip)
{
    static const char *const names[] = {"none", "bn", "bias", "bn,bias"};
    return names[skip & 3];
}

json_t *nn_recipe_json(const nn_recipe *r)
{
    json_t *j = json_pack("{s:I, s:i, s:f, s:s, s:i, s:i, s:f, s:f, s:s, s:f, s:b, s:I, s:I, s:b}", "seed", (json_int_t)r->seed,
                     "batch", (int)r->batch, "lr", (double)r->lr, "schedule", schedule_names[r->schedule], "warmup",
                     r->warmup, "step_size", r->step_size, "gamma", (double)r->gamma, "label_smoothing",
                     (double)r->label_smoothing, "augment", augment_names[r->augment], "crop_scale",
                     (double)r->crop_scale, "freeze", r->freeze, "steps_per_epoch", (json_int_t)r->steps_per_epoch,
                     "eval_steps", (json_int_t)r->eval_steps, "sync_bn", r->sync_bn);
    if (j)
        json_object_set_new(j, "wd_skip", json_string(nn_wd_skip_name(r->wd_skip)));
    if (j && r->augment == NN_AUG_PAD_CROP_FLIP)
        json_object_set_new(j, "pad", json_integer(r->pad));
    if (j && r->schedule == NN_SCHED_MULTISTEP) {
        json_t *m = json_array();
        for (int i = 0; i < r->milestones_n; i++)
            json_array_append_new(m, json_integer(r->milestones[i]));
        json_object_set_new(j, "milestones", m);
        json_object_set_new(j, "milestones_unit", json_string(r->milestones_steps ? "steps" : "epochs"));
    }
    return j;
}

int nn_milestones_parse(const char *s, int steps, nn_recipe *r, char *why, size_t why_len)
{
    int n = 0;
    long prev = 0;
    for (const char *p = s;; p++) {
        char *end;
        long v = *p >= '0' && *p <= '9' ? strtol(p, &end, 10) : -1;
        if (v < 1 || v > NN_MAX_STEPS || (*end && *end != ',')) {
            snprintf(why, why_len, "not a list of whole numbers from 1 to %ld split by commas: %s", NN_MAX_STEPS, s);
            return -1;
        }
        if (v <= prev || n == NN_MAX_MILESTONES) {
            snprintf(why, why_len, "%s: %s", v <= prev ? "not increasing" : "more than 16 milestones", s);
            return -1;
        }
        r->milestones[n++] = prev = v;
        p = end;
        if (!*p)
            break;
    }
    r->milestones_n = n, r->milestones_steps = steps;
    return 0;
}

const char *nn_milestones_show(const nn_recipe *r, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < r->milestones_n && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%ld", i ? "," : "", r->milestones[i]);
    return buf;
}

/* A checkpoint's multistep milestones: an increasing array of 1..NN_MAX_STEPS
 * and their unit. */
static int recipe_milestones(const json_t *j, const char *path, nn_recipe *r, sp_err *err)
{
    const json_t *m = json_object_get(j, "milestones");
    const char *unit = json_string_value(json_object_get(j, "milestones_unit"));
    size_t n = json_array_size(m);
    if (!json_is_array(m) || n < 1 || n > NN_MAX_MILESTONES || !unit ||
        (strcmp(unit, "steps") && strcmp(unit, "epochs")))
        return sp_fail(err, SP_EXIT_DATA, "%s: header field extra.recipe.milestones: missing, or not 1 to %d "
                       "milestones in steps or epochs", path, NN_MAX_MILESTONES);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(m, i);
        if (!json_is_integer(v) || json_integer_value(v) < (i ? r->milestones[i - 1] + 1 : 1) ||
            json_integer_value(v) > NN_MAX_STEPS)
            return sp_fail(err, SP_EXIT_DATA, "%s: header field extra.recipe.milestones[%zu]: not an increasing "
                           "whole number from 1 to %ld", path, i, NN_MAX_STEPS);
        r->milestones[i] = (long)json_integer_value(v);
    }
    r->milestones_n = (int)n, r->milestones_steps = !strcmp(unit, "steps");
    return 0;
}

/* j's integer member key, "extra.recipe.KEY" in messages, in lo..hi. */
static int recipe_int(const json_t *j, const char *key, const char *path, long long lo, long long hi, long long *out,
                      sp_err *err)
{
    char field[64];
    snprintf(field, sizeof field, "extra.recipe.%s", key);
    return nn_header_int(path, json_object_get(j, key), field, lo, hi, out, err);
}

/* j's number member key, finite, between lo and hi with each end open or closed. */
static int recipe_real(const json_t *j, const char *key, const char *path, double lo, int lo_open, double hi,
                       int hi_open, float *out, sp_err *err)
{
    char field[64];
    snprintf(field, sizeof field, "extra.recipe.%s", key);
    return nn_header_real(path, json_object_get(j, key), field, lo, lo_open, hi, hi_open, out, err);
}

static int recipe_name(const json_t *j, const char *key, const char *path, int (*lookup)(const char *), int *out,
                       sp_err *err)
{
    const char *s = json_string_value(json_object_get(j, key));
    if ((*out = lookup(s)) < 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: header field extra.recipe.%s: missing or unknown", path, key);
    return 0;
}

int nn_recipe_from_json(const json_t *j, const char *path, nn_recipe *r, sp_err *err)
{
    if (!json_is_object(j))
        return sp_fail(err, SP_EXIT_DATA, "%s: the checkpoint does not record its training recipe", path);
    long long seed = 0, batch = 0, warmup = 0, step_size = 0;
    /* the seed is a uint64 the JSON holds as int64: any bit pattern */
    if (recipe_int(j, "seed", path, INT64_MIN, INT64_MAX, &seed, err) ||
        recipe_int(j, "batch", path, 1, NN_MAX_BATCH, &batch, err) ||
        recipe_real(j, "lr", path, 0, 1, 1e6, 0, &r->lr, err) ||
        recipe_name(j, "schedule", path, nn_schedule_from_name, &r->schedule, err) ||
        recipe_int(j, "warmup", path, 0, NN_MAX_EPOCHS, &warmup, err) ||
        recipe_int(j, "step_size", path, 1, NN_MAX_EPOCHS, &step_size, err) ||
        recipe_real(j, "gamma", path, 0, 1, 1, 0, &r->gamma, err) ||
        recipe_real(j, "label_smoothing", path, 0, 0, 1, 1, &r->label_smoothing, err) ||
        recipe_name(j, "augment", path, nn_augment_from_name, &r->augment, err) ||
        recipe_real(j, "crop_scale", path, 0, 1, 1, 0, &r->crop_scale, err))
        return -1;
    r->seed = (uint64_t)seed, r->batch = (uint32_t)batch, r->warmup = (int)warmup, r->step_size = (int)step_size;
    const json_t *freeze = json_object_get(j, "freeze"); /* absent before --freeze existed */
    if (freeze && !json_is_boolean(freeze))
        return sp_fail(err, SP_EXIT_DATA, "%s: header field extra.recipe.freeze: not true or false", path);
    r->freeze = json_is_true(freeze);
    const json_t *sync_bn = json_object_get(j, "sync_bn"); /* absent before it was recorded */
    if (sync_bn && !json_is_boolean(sync_bn))
        return sp_fail(err, SP_EXIT_DATA, "%s: header field extra.recipe.sync_bn: not true or false", path);
    r->sync_bn = json_is_true(sync_bn);
    long long steps = 0, eval_steps = 0; /* absent before the options existed: 0, whole passes */
    if ((json_object_get(j, "steps_per_epoch") &&
         recipe_int(j, "steps_per_epoch", path, 0, NN_MAX_STEPS, &steps, err)) ||
        (json_object_get(j, "eval_steps") && recipe_int(j, "eval_steps", path, 0, NN_MAX_STEPS, &eval_steps, err)))
        return -1;
    r->steps_per_epoch = (long)steps, r->eval_steps = (long)eval_steps;
    long long pad = 4; /* recorded with pad-crop-flip only */
    if (json_object_get(j, "pad") && recipe_int(j, "pad", path, 0, NN_MAX_PAD, &pad, err))
        return -1;
    r->pad = (int)pad;
    const json_t *skip = json_object_get(j, "wd_skip");
    r->wd_skip = NN_WD_SKIP_BN | NN_WD_SKIP_BIAS; /* absent: what the trainer did then */
    if (skip && (!json_is_string(skip) || nn_wd_skip_parse(json_string_value(skip), &r->wd_skip)))
        return sp_fail(err, SP_EXIT_DATA, "%s: header field extra.recipe.wd_skip: not none, bn, bias or bn,bias", path);
    r->milestones_n = 0;
    if (r->schedule == NN_SCHED_MULTISTEP && recipe_milestones(j, path, r, err))
        return -1;
    return 0;
}

float nn_learning_rate(const nn_recipe *r, long s, long steps_per_epoch, long total)
{
    long warm = (long)r->warmup * steps_per_epoch;
    if (s < warm)
        return r->lr * (float)(s + 1) / (float)warm;
    switch (r->schedule) {
    case NN_SCHED_STEP: return r->lr * powf(r->gamma, (float)(s / steps_per_epoch / r->step_size));
    case NN_SCHED_MULTISTEP: {
        long at = r->milestones_steps ? s : s / steps_per_epoch; /* a milestone m: from step or epoch m on */
        int k = 0;
        while (k < r->milestones_n && at >= r->milestones[k])
            k++;
        return r->lr * powf(r->gamma, (float)k);
    }
    case NN_SCHED_COSINE:
        return total > warm ? r->lr * 0.5f * (1.0f + cosf(3.14159265358979f * (float)(s - warm) / (float)(total - warm)))
                            : r->lr;
    default: return r->lr;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The seed of epoch e's record order: the same for a resumed run. */
static uint64_t epoch_seed(uint64_t seed, int e)
{
    uint64_t v[2] = {seed, (uint64_t)e};
    return sp_xxh3(v, sizeof v);
}

/* The training stream: passes over the train split one after another, pass
 * p shuffled (and augmented) by epoch_seed(seed, p), per_pass batches each
 * (the last one short). Epoch e trains on the stream's batches [e*N,
 * (e+1)*N), N the recipe's steps_per_epoch, or per_pass when that is 0 (pass
 * e whole): a resumed run reads on from the same batch. */
typedef struct train_stream {
    long pass; /* the pass being read, -1 before the first */
    long pos;  /* batches of it read */
} train_stream;

/* Makes the next nn_data_next read the stream's batch global: when another
 * pass, or another place of this one, is being read, starts the pass at that
 * batch (nn_data_start_at: the batches before it are skipped unread, in
 * constant time but for their augmentation draws), so that the order and
 * augmentation are exactly those of an uninterrupted run. 0, or -1 with err. */
static int stream_seek(nn_data *tr, train_stream *s, const nn_recipe *r, long global, long per_pass, sp_err *err)
{
    long pass = global / per_pass, off = global % per_pass;
    if (s->pass != pass || s->pos != off) {
        if (nn_data_start_step(tr, epoch_seed(r->seed, (int)pass), 1, r->augment, (uint64_t)off, err))
            return -1;
        s->pass = pass, s->pos = off;
    }
    return 0;
}

/* Appends field name to f (*n of them so far): shown is the value as fmt
 * formats it, the digest that of shown and of extra (the bytes behind a
 * value shown short: the weights, the manifest). */
static void __attribute__((format(printf, 5, 6)))
agree_field(nn_dist_field *f, int *n, const char *name, uint64_t extra, const char *fmt, ...)
{
    nn_dist_field *d = &f[(*n)++];
    memset(d, 0, sizeof *d);
    d->name = name;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->shown, sizeof d->shown, fmt, ap);
    va_end(ap);
    uint64_t v[2] = {sp_xxh3(d->shown, strlen(d->shown)), extra};
    d->digest = sp_xxh3(v, sizeof v);
}

/* Every rank checks that it trains what rank 0 trains: the same shard set,
 * model, recipe, optimizer, position and weights (nn_dist_agree). Ranks that
 * differed would wait for each other forever, overrun each other's sums, or
 * train apart silently. 0, or -1 with err on every rank. */
static int ranks_agree(const nn_train_options *o, const nn_recipe *r, const nn_net *net, const nn_opt *opt,
                       const nn_data *tr, int start_epoch, long start_step, const nn_rng *rng, sp_err *err)
{
    json_t *m = sp_manifest_load(o->dir, err);
    char *ms = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(m);
    if (!ms)
        return err->code ? -1 : sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    uint64_t set = sp_xxh3(ms, strlen(ms)), weights = 0;
    free(ms);
    for (int i = 0; i < net->nparams; i++) {
        const nn_param *p = net->params[i];
        uint64_t v[4] = {weights, sp_xxh3(p->w, p->n * sizeof *p->w), sp_xxh3(p->m, p->n * sizeof *p->m),
                         sp_xxh3(p->v, p->n * sizeof *p->v)};
        weights = sp_xxh3(v, sizeof v);
    }
    nn_dist_field f[32];
    int n = 0;
    agree_field(f, &n, "the shard set", set, "manifest %016llx", (unsigned long long)set);
    agree_field(f, &n, "the train records", 0, "%llu", (unsigned long long)tr->count);
    agree_field(f, &n, "--model", 0, "%s", net->model);
    agree_field(f, &n, "the input", 0, "%dx%dx%d, %d classes", net->c, net->h, net->w, net->classes);
    agree_field(f, &n, "--batch", 0, "%u", r->batch);
    agree_field(f, &n, "--epochs", 0, "%d", o->epochs);
    agree_field(f, &n, "the epoch resumed from", 0, "%d", start_epoch);
    agree_field(f, &n, "the step of the epoch resumed from", 0, "%ld", start_step);
    agree_field(f, &n, "--checkpoint-every", 0, "%ld", o->checkpoint_every);
    agree_field(f, &n, "the stop signal", 0, "%s", o->stop ? "watched" : "not watched");
    agree_field(f, &n, "the optimizer step", 0, "%lld", (long long)opt->step);
    agree_field(f, &n, "--steps-per-epoch", 0, "%ld", r->steps_per_epoch);
    agree_field(f, &n, "--seed", 0, "%llu", (unsigned long long)r->seed);
    agree_field(f, &n, "--optimizer", 0, "%s", opt->kind == NN_SGD ? "sgd" : "adam");
    agree_field(f, &n, "--lr", 0, "%.9g", (double)r->lr);
    agree_field(f, &n, "--momentum", 0, "%.9g", (double)opt->momentum);
    agree_field(f, &n, "--weight-decay", 0, "%.9g, skipping %s", (double)opt->weight_decay,
                nn_wd_skip_name(opt->wd_skip));
    char mls[NN_MAX_MILESTONES * 12];
    agree_field(f, &n, "--schedule", 0, "%s, warm-up %d, step size %d, gamma %.9g, milestones %s %s",
                schedule_names[r->schedule], r->warmup, r->step_size, (double)r->gamma,
                nn_milestones_show(r, mls, sizeof mls), r->milestones_steps ? "steps" : "epochs");
    agree_field(f, &n, "--label-smoothing", 0, "%.9g", (double)r->label_smoothing);
    agree_field(f, &n, "--augment", 0, "%s", augment_names[r->augment]);
    agree_field(f, &n, "--crop-scale", 0, "%.9g", (double)r->crop_scale);
    agree_field(f, &n, "--pad", 0, "%d", r->pad);
    agree_field(f, &n, "--freeze", 0, "%s", r->freeze ? "base" : "none");
    agree_field(f, &n, "--sync-bn", 0, "%s", nn_dist_sync_bn() ? "on" : "off");
    agree_field(f, &n, "SP_ALLREDUCE_OVERLAP", 0, "%s", nn_dist_overlap() ? "on" : "0");
    agree_field(f, &n, "the layout", 0, "channel blocks of %d", nn_net_layout_block(net));
    agree_field(f, &n, "the weights", weights, "digest %016llx", (unsigned long long)weights);
    uint64_t rs = sp_xxh3(rng->s, sizeof rng->s);
    agree_field(f, &n, "the random state", rs, "digest %016llx", (unsigned long long)rs);
    return nn_dist_agree(f, n, err);
}

static int check_labels(const int32_t *labels, int n, int classes, const char *dir, sp_err *err)
{
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return sp_fail(err, SP_EXIT_DATA, "%s: a train record has label %d, outside 0..%d", dir, labels[i],
                           classes - 1);
    return 0;
}

/* A resumed run's option name given as mine where the checkpoint says
 * theirs: 0 when not given or the same, else the usage error. */
static int refuse(const nn_train_options *o, unsigned bit, const char *name, const char *mine, const char *theirs,
                  sp_err *err)
{
    if (!(o->given & bit) || !strcmp(mine, theirs))
        return 0;
    return sp_fail(err, SP_EXIT_USAGE, "%s %s: the checkpoint %s was trained with %s %s, which a resumed run keeps "
                   "(leave %s out)", name, mine, o->resume, name, theirs, name);
}

/* The same for an option that may change: reports the change (on_note). */
static void change(const nn_train_options *o, unsigned bit, const char *name, const char *mine, const char *theirs,
                   int from_epoch)
{
    if (!(o->given & bit) || !strcmp(mine, theirs) || !o->on_note)
        return;
    char note[640];
    snprintf(note, sizeof note, "%s %s from epoch %d on, in place of the checkpoint's %s", name, mine, from_epoch + 1,
             theirs);
    o->on_note(o->ctx, note);
}

#define SHOW(buf, fmt, ...) (snprintf(buf, sizeof buf, fmt, __VA_ARGS__), buf)

/* f in buf as the shortest decimal that reads back as the same float32 */
static const char *show_float(char *buf, size_t n, float f)
{
    for (int digits = 6; digits < 9; digits++) {
        snprintf(buf, n, "%.*g", digits, (double)f);
        if ((float)strtod(buf, NULL) == f)
            return buf;
    }
    snprintf(buf, n, "%.9g", (double)f);
    return buf;
}
#define SHOWF(buf, f) show_float(buf, sizeof buf, f)

/* The command line's options against the resumed checkpoint's (nn_given):
 * refuses those that cannot change, takes into *r the ones that may. */
static int resume_options(const nn_train_options *o, nn_recipe *r, const nn_net *net, const nn_opt *opt, int epoch,
                          sp_err *err)
{
    const nn_recipe *c = &o->recipe;
    char a[NN_MAX_MILESTONES * 12 + 8], b[NN_MAX_MILESTONES * 12 + 8], model[32];
    if (o->given & NN_GIVEN_INIT)
        return sp_fail(err, SP_EXIT_USAGE, "--init: not with --resume (the weights come from the checkpoint %s)",
                       o->resume);
    if ((o->given & (NN_GIVEN_MODEL | NN_GIVEN_HEAD)) && nn_model_with_head(model, sizeof model, o->model, o->head, err))
        return -1;
    if (refuse(o, NN_GIVEN_MODEL | NN_GIVEN_HEAD, "--model", model, net->model, err) ||
        refuse(o, NN_GIVEN_BATCH, "--batch", SHOW(a, "%u", c->batch), SHOW(b, "%u", r->batch), err) ||
        refuse(o, NN_GIVEN_OPTIMIZER, "--optimizer", o->optimizer == NN_SGD ? "sgd" : "adam",
               opt->kind == NN_SGD ? "sgd" : "adam", err) ||
        refuse(o, NN_GIVEN_MOMENTUM, "--momentum", SHOWF(a, o->momentum),
               SHOWF(b, opt->momentum), err) ||
        refuse(o, NN_GIVEN_WEIGHT_DECAY, "--weight-decay", SHOWF(a, o->weight_decay),
               SHOWF(b, opt->weight_decay), err) ||
        refuse(o, NN_GIVEN_WD_SKIP, "--wd-skip", nn_wd_skip_name(c->wd_skip), nn_wd_skip_name(r->wd_skip), err) ||
        refuse(o, NN_GIVEN_SEED, "--seed", SHOW(a, "%llu", (unsigned long long)c->seed),
               SHOW(b, "%llu", (unsigned long long)r->seed), err) ||
        refuse(o, NN_GIVEN_AUGMENT, "--augment", augment_names[c->augment], augment_names[r->augment], err) ||
        refuse(o, NN_GIVEN_CROP_SCALE, "--crop-scale", SHOWF(a, c->crop_scale),
               SHOWF(b, r->crop_scale), err) ||
        refuse(o, NN_GIVEN_PAD, "--pad", SHOW(a, "%d", c->pad), SHOW(b, "%d", r->pad), err) ||
        refuse(o, NN_GIVEN_SMOOTHING, "--label-smoothing", SHOWF(a, c->label_smoothing),
               SHOWF(b, r->label_smoothing), err) ||
        refuse(o, NN_GIVEN_FREEZE, "--freeze", c->freeze ? "base" : "none", r->freeze ? "base" : "none", err) ||
        refuse(o, NN_GIVEN_STEPS, "--steps-per-epoch", SHOW(a, "%ld", c->steps_per_epoch),
               SHOW(b, "%ld", r->steps_per_epoch), err) ||
        refuse(o, NN_GIVEN_SYNC_BN, "--sync-bn", c->sync_bn ? "on" : "off", r->sync_bn ? "on" : "off", err))
        return -1;
    change(o, NN_GIVEN_LR, "--lr", SHOWF(a, c->lr), SHOWF(b, r->lr), epoch);
    change(o, NN_GIVEN_SCHEDULE, "--schedule", schedule_names[c->schedule], schedule_names[r->schedule], epoch);
    change(o, NN_GIVEN_WARMUP, "--warmup", SHOW(a, "%d", c->warmup), SHOW(b, "%d", r->warmup), epoch);
    change(o, NN_GIVEN_STEP_SIZE, "--step-size", SHOW(a, "%d", c->step_size), SHOW(b, "%d", r->step_size), epoch);
    change(o, NN_GIVEN_GAMMA, "--gamma", SHOWF(a, c->gamma), SHOWF(b, r->gamma), epoch);
    if (o->given & NN_GIVEN_MILESTONES) {
        char ma[NN_MAX_MILESTONES * 12], mb[NN_MAX_MILESTONES * 12];
        change(o, NN_GIVEN_MILESTONES, "--milestones",
               SHOW(a, "%s %s", nn_milestones_show(c, ma, sizeof ma), c->milestones_steps ? "steps" : "epochs"),
               r->milestones_n ? SHOW(b, "%s %s", nn_milestones_show(r, mb, sizeof mb),
                                      r->milestones_steps ? "steps" : "epochs") : "none", epoch);
        memcpy(r->milestones, c->milestones, sizeof r->milestones);
        r->milestones_n = c->milestones_n, r->milestones_steps = c->milestones_steps;
    }
    change(o, NN_GIVEN_EVAL_STEPS, "--eval-steps", SHOW(a, "%ld", c->eval_steps), SHOW(b, "%ld", r->eval_steps), epoch);
    if (o->given & NN_GIVEN_LR)
        r->lr = c->lr;
    if (o->given & NN_GIVEN_SCHEDULE)
        r->schedule = c->schedule;
    if (o->given & NN_GIVEN_WARMUP)
        r->warmup = c->warmup;
    if (o->given & NN_GIVEN_STEP_SIZE)
        r->step_size = c->step_size;
    if (o->given & NN_GIVEN_GAMMA)
        r->gamma = c->gamma;
    if (o->given & NN_GIVEN_EVAL_STEPS)
        r->eval_steps = c->eval_steps;
    return 0;
}

/* Where a mid-epoch checkpoint stopped (nn_train.h: extra.position), and
 * this rank's running figures of that epoch. */
typedef struct epoch_position {
    long step;               /* steps of the epoch done; 0: none (an epoch-end checkpoint) */
    double seconds;          /* the epoch's training time so far */
    uint64_t records;        /* the global batches' records so far */
    double total;            /* this rank's sum of loss x records */
    uint64_t right, seen;    /* this rank's correct and trained records */
} epoch_position;

/* extra.position's array key (one number a rank): with as many entries as
 * ranks, this rank's; else all of them summed on rank 0 (0 on the others). */
static int position_figure(const json_t *pos, const char *key, const char *path, int rank, int ranks, double *out,
                           sp_err *err)
{
    const json_t *a = json_object_get(pos, key);
    size_t n = json_array_size(a);
    if (!json_is_array(a) || n < 1 || n > 65536)
        return sp_fail(err, SP_EXIT_DATA, "%s: header field extra.position.%s: missing or not an array of 1 to "
                       "65536 numbers", path, key);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(a, i);
        double d = json_number_value(v);
        if (!json_is_number(v) || !isfinite(d) || d < 0)
            return sp_fail(err, SP_EXIT_DATA, "%s: header field extra.position.%s[%zu]: not a finite number of at "
                           "least 0", path, key, i);
        sum += d;
    }
    *out = n == (size_t)ranks ? json_number_value(json_array_get(a, (size_t)rank)) : rank == 0 ? sum : 0;
    return 0;
}

/* A mid-epoch checkpoint's position (extra.position), checked against the
 * epoch's steps; no position: p->step 0. 0, or -1 with err (SP_EXIT_DATA). */
static int position_from_json(const json_t *pos, const char *path, long epoch_steps, epoch_position *p, sp_err *err)
{
    memset(p, 0, sizeof *p);
    if (!pos)
        return 0;
    long long step = 0, records = 0;
    float seconds = 0;
    double right = 0, seen = 0;
    int rank = nn_dist_rank(), ranks = nn_dist_size();
    if (nn_header_int(path, json_object_get(pos, "epoch_step"), "extra.position.epoch_step", 1, epoch_steps, &step,
                      err) ||
        nn_header_int(path, json_object_get(pos, "records"), "extra.position.records", 0, INT64_MAX, &records, err) ||
        nn_header_real(path, json_object_get(pos, "seconds"), "extra.position.seconds", 0, 0, 1e12, 0, &seconds,
                       err) ||
        position_figure(pos, "loss_sum", path, rank, ranks, &p->total, err) ||
        position_figure(pos, "right", path, rank, ranks, &right, err) ||
        position_figure(pos, "seen", path, rank, ranks, &seen, err))
        return -1;
    p->step = (long)step, p->records = (uint64_t)records, p->seconds = seconds;
    p->right = (uint64_t)right, p->seen = (uint64_t)seen;
    return 0;
}

/* Reads the recipe and the earlier epochs' figures of a checkpoint to resume
 * (into *r and epochs_json) and a mid-epoch checkpoint's position (a new
 * reference in *position, else NULL), then loads it for batches of the
 * recipe's size. */
/* The mix of o's train split as a checkpoint records it (a new array), or NULL without one. */
static json_t *mix_json(const nn_train_options *o, const nn_data *tr)
{
    if (!o->nmix)
        return NULL;
    json_t *a = json_array();
    for (int i = 0; a && i < o->nmix; i++)
        json_array_append_new(a, json_pack("{s:s, s:f, s:s, s:I, s:s}", "dir", o->mix_dirs[i], "weight",
                                           o->mix_weights[i], "policy",
                                           o->mix_policies[i] == SPR_MIX_REPEAT ? "repeat" : "stop", "records",
                                           (json_int_t)spr_count(tr->sets[i]), "classes",
                                           o->mix_union ? "union" : "same"));
    return a;
}

/* A resumed run's mix (mine, NULL: none) against its checkpoint's (theirs): the same sets by records, weight,
 * policy and classes, in the same order (their directories may have moved). */
static int mix_check(const json_t *mine, const json_t *theirs, const char *ckpt, sp_err *err)
{
    if (!mine && !theirs)
        return 0;
    if (!mine || !theirs)
        return sp_fail(err, SP_EXIT_USAGE, "%s: %s", ckpt, mine ? "trained on one set, not a mix: leave --mix out"
                                                             : "trained on a mix of sets: give the same --mix options");
    int same = json_array_size(mine) == json_array_size(theirs);
    static const char *const keys[] = {"weight", "policy", "records", "classes"};
    for (size_t i = 0; same && i < json_array_size(mine); i++)
        for (int k = 0; k < 4; k++)
            same &= json_equal(json_object_get(json_array_get(mine, i), keys[k]),
                               json_object_get(json_array_get(theirs, i), keys[k]));
    if (same)
        return 0;
    char *want = json_dumps(theirs, JSON_COMPACT | JSON_REAL_PRECISION(9));
    sp_fail(err, SP_EXIT_USAGE, "%s: trained on another mix (%.600s): give the same --mix options and --mix-classes",
            ckpt, want ? want : "?");
    free(want);
    return -1;
}

static int resume_from(const nn_train_options *o, nn_recipe *r, json_t *epochs_json, json_t **class_names,
                       json_t **position, json_t **mix, nn_net **net, nn_opt *opt, int *start_epoch, nn_rng *rng,
                       sp_err *err)
{
    char *extra = NULL;
    /* the batch is the checkpoint's: read it from there first */
    if (nn_checkpoint_load(o->resume, 1, net, opt, start_epoch, rng, &extra, err))
        return -1;
    nn_net_free(*net);
    *net = NULL;
    json_t *ex = extra ? json_loads(extra, JSON_DECODE_ANY, NULL) : NULL;
    *class_names = nn_extra_class_names(extra);
    free(extra);
    int bad = nn_recipe_from_json(json_object_get(ex, "recipe"), o->resume, r, err);
    json_t *old = json_object_get(ex, "epochs");
    if (!bad && json_is_array(old))
        json_array_extend(epochs_json, old);
    *position = json_incref(json_object_get(ex, "position")); /* a mid-epoch checkpoint's: nn_train checks it */
    *mix = json_incref(json_object_get(ex, "mix"));
    json_decref(ex);
    if (bad || nn_checkpoint_load(o->resume, (int)r->batch, net, opt, start_epoch, rng, NULL, err))
        return -1;
    if (resume_options(o, r, *net, opt, *start_epoch, err))
        return -1;
    if (*start_epoch >= o->epochs)
        return sp_fail(err, SP_EXIT_USAGE, "%s: already trained %d epochs; ask for more with --epochs", o->resume,
                       *start_epoch);
    return 0;
}

/* --init kept the classifier of the checkpoint at path: its classes (when it
 * names them) must be the set's, in the same order. */
static int init_names_check(const char *path, const nn_data *tr, const char *dir, sp_err *err)
{
    nn_net *src = NULL;
    nn_opt opt;
    nn_rng rng;
    int epoch;
    char *extra = NULL;
    if (nn_checkpoint_load(path, 1, &src, &opt, &epoch, &rng, &extra, err))
        return -1;
    nn_net_free(src);
    json_t *names = nn_extra_class_names(extra);
    free(extra);
    int rc = nn_class_names_check(names, tr, path, dir, err);
    json_decref(names);
    return rc;
}

/* Writes the checkpoint at path: the weights, optimizer and random state
 * after epoch epochs, extra's recipe, the epochs' figures, the class names
 * and (a mid-epoch checkpoint) position, which the call takes. */
static int save_checkpoint(const char *path, const nn_net *net, const nn_opt *opt, int epoch, const nn_rng *rng,
                           const nn_recipe *r, json_t *epochs_json, const nn_data *tr, json_t *position, sp_err *err)
{
    json_t *ex = json_pack("{s:o, s:O, s:o*}", "recipe", nn_recipe_json(r), "epochs", epochs_json, "class_names",
                           nn_data_class_names(tr));
    if (ex && tr->mix_record)
        json_object_set(ex, "mix", tr->mix_record);
    if (ex && position)
        json_object_set(ex, "position", position);
    json_decref(position);
    char *exs = ex ? json_dumps(ex, JSON_COMPACT) : NULL;
    json_decref(ex);
    if (!exs)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    int rc = nn_checkpoint_save(path, net, opt, epoch, rng, exs, err);
    free(exs);
    return rc;
}

/* Every rank's loss sum, correct and trained records of p, one array each
 * (a new object), gathered from every rank: collective, every rank calls it
 * at the same step. Adding the others' zeros keeps each value exact. */
static json_t *position_json(const epoch_position *p)
{
    int rank = nn_dist_rank(), ranks = nn_dist_size();
    double *v = calloc((size_t)ranks * 3, sizeof *v);
    if (!v)
        return NULL;
    v[rank * 3] = p->total, v[rank * 3 + 1] = (double)p->right, v[rank * 3 + 2] = (double)p->seen;
    nn_dist_sum_doubles(v, (size_t)ranks * 3);
    json_t *j = json_pack("{s:I, s:f, s:I, s:[], s:[], s:[]}", "epoch_step", (json_int_t)p->step, "seconds", p->seconds,
                          "records", (json_int_t)p->records, "loss_sum", "right", "seen");
    for (int i = 0; j && i < ranks; i++) {
        json_array_append_new(json_object_get(j, "loss_sum"), json_real(v[i * 3]));
        json_array_append_new(json_object_get(j, "right"), json_integer((json_int_t)v[i * 3 + 1]));
        json_array_append_new(json_object_get(j, "seen"), json_integer((json_int_t)v[i * 3 + 2]));
    }
    free(v);
    return j;
}

/* A mid-epoch checkpoint after p->step steps of epoch e + 1 (0-based e): every
 * rank gathers the figures, rank 0 writes o->out when given. */
static int save_position(const nn_train_options *o, const nn_net *net, const nn_opt *opt, int e, const nn_rng *rng,
                         const nn_recipe *r, json_t *epochs_json, const nn_data *tr, const epoch_position *p,
                         sp_err *err)
{
    json_t *pos = position_json(p);
    if (!pos)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (!o->out || nn_dist_rank() != 0) {
        json_decref(pos);
        return 0;
    }
    return save_checkpoint(o->out, net, opt, e, rng, r, epochs_json, tr, pos, err);
}

/* Whether the run stops after this step: the flag on any rank (one sum over
 * the ranks, so that all of them stop at the same step). */
static int stop_agreed(const volatile sig_atomic_t *stop)
{
    if (!stop)
        return 0;
    double v = *stop ? 1 : 0;
    nn_dist_sum_doubles(&v, 1);
    return v > 0;
}

int nn_train(const nn_train_options *o, nn_train_result *result, sp_err *err)
{
    memset(result, 0, sizeof *result);
    int rank = nn_dist_rank(), ranks = nn_dist_size(); /* data parallel over MPI ranks: nn/dist.h */
    if (o->out && rank == 0 && nn_checkpoint_check_writable(o->out, err))
        return -1;
    if (o->verify && sp_verify_or_fail(o->dir, err))
        return -1;
    nn_set_threads(o->threads);
    nn_data tr = {0}, te = {0};
    int have_test = 0;
    nn_net *net = NULL;
    nn_opt opt;
    nn_rng rng;
    float *x = NULL, *dlogits = NULL;
    int32_t *labels = NULL;
    json_t *epochs_json = json_array(), *summary = NULL;
    int start_epoch = 0, rc = -1;
    nn_recipe r = o->recipe;
    nn_metrics eval = {0};
    int init_whole = 0;
    json_t *ckpt_names = NULL; /* the resumed checkpoint's class names, or NULL */
    json_t *ckpt_position = NULL; /* a resumed mid-epoch checkpoint's position, or NULL */
    json_t *ckpt_mix = NULL;      /* a resumed checkpoint's mix of sets, or NULL */
    if (o->resume &&
        (resume_from(o, &r, epochs_json, &ckpt_names, &ckpt_position, &ckpt_mix, &net, &opt, &start_epoch, &rng,
                     err) ||
                      (r.freeze && nn_net_freeze_base(net, err))))
        goto out;
    if ((o->given & NN_GIVEN_CROP_SCALE) && r.augment != NN_AUG_CROP_FLIP) {
        sp_fail(err, SP_EXIT_USAGE, "--crop-scale: only with --augment crop-flip (this run's augment is %s)",
                augment_names[r.augment]);
        goto out;
    }
    if (r.schedule == NN_SCHED_MULTISTEP && !r.milestones_n) {
        sp_fail(err, SP_EXIT_USAGE, "--schedule multistep: give where the rate drops (--milestones EPOCHS or "
                "--milestones-steps STEPS)");
        goto out;
    }
    if ((o->given & NN_GIVEN_MILESTONES) && r.schedule != NN_SCHED_MULTISTEP) {
        sp_fail(err, SP_EXIT_USAGE, "--milestones: only with --schedule multistep (this run's schedule is %s)",
                schedule_names[r.schedule]);
        goto out;
    }
    if ((o->given & NN_GIVEN_PAD) && r.augment != NN_AUG_PAD_CROP_FLIP) {
        sp_fail(err, SP_EXIT_USAGE, "--pad: only with --augment pad-crop-flip (this run's augment is %s)",
                augment_names[r.augment]);
        goto out;
    }
    nn_dist_set_sync_bn(r.sync_bn);
    uint32_t batch = r.batch;
    uint32_t view_size = net ? (uint32_t)net->h : (uint32_t)o->view_size; /* resumed: the model's own input size */
    if (o->nmix ? nn_data_open_mix(&tr, o->mix_dirs, o->mix_weights, o->mix_policies, (uint32_t)o->nmix, "train",
                                   batch, view_size, o->mix_union, err)
                : nn_data_open_view(&tr, o->dir, "train", batch, view_size, err))
        goto out;
    tr.mix_record = mix_json(o, &tr);
    if (o->resume && mix_check(tr.mix_record, ckpt_mix, o->resume, err))
        goto out;
    tr.crop_scale = r.crop_scale;
    tr.pad = r.pad;
    if ((o->given & NN_GIVEN_VIEW_SIZE) && !tr.encoded) {
        sp_fail(err, SP_EXIT_USAGE, "--view-size: %s holds pixels, not encoded images: the model sees them as stored",
                o->dir);
        goto out;
    }
    if ((o->given & NN_GIVEN_VIEW_SIZE) && net && o->view_size != net->h) {
        sp_fail(err, SP_EXIT_USAGE, "--view-size %d: the checkpoint %s was trained with --view-size %d, which a "
                "resumed run keeps (leave --view-size out)", o->view_size, o->resume, net->h);
        goto out;
    }
    const char *test_split = nn_data_eval_split(o->dir, err);
    if (err->code)
        goto out;
    if (test_split) {
        if (nn_data_open_view(&te, o->dir, test_split, batch, view_size, err))
            goto out;
        have_test = 1;
        if (o->nmix) { /* the eval split's labels into the training classes, by name */
            json_t *names = nn_data_class_names(&tr);
            int bad = !names || nn_data_map_classes(&te, names, o->dir, err);
            json_decref(names);
            if (bad) {
                if (!err->code)
                    sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
                goto out;
            }
        }
    }
    if (have_test && (te.h != tr.h || te.w != tr.w || te.c != tr.c || te.classes != tr.classes)) {
        sp_fail(err, SP_EXIT_DATA, "%s: the %s split is %ux%ux%u with %d classes, train %ux%ux%u with %d", o->dir,
                test_split, te.h, te.w, te.c, te.classes, tr.h, tr.w, tr.c, tr.classes);
        goto out;
    }
    if (tr.classes < 2) {
        sp_fail(err, SP_EXIT_DATA, "%s: the shards name %d classes; training needs at least 2", o->dir, tr.classes);
        goto out;
    }
    if (net && (net->c != (int)tr.c || net->h != (int)tr.h || net->w != (int)tr.w || net->classes != tr.classes)) {
        sp_fail(err, SP_EXIT_DATA, "%s: a %s for %dx%dx%d inputs and %d classes; the shards hold %ux%ux%u and %d",
                o->resume, net->model, net->h, net->w, net->c, net->classes, tr.h, tr.w, tr.c, tr.classes);
        goto out;
    }
    if (net && nn_class_names_check(ckpt_names, &tr, o->resume, o->dir, err))
        goto out;
    if (!net) {
        char model[32];
        nn_rng_seed(&rng, r.seed);
        if (nn_model_with_head(model, sizeof model, o->model, o->head, err) ||
            !(net = nn_net_create(model, (int)tr.c, (int)tr.h, (int)tr.w, tr.classes, (int)batch, &rng, err)) ||
            (o->init && nn_net_init_from(net, o->init, &init_whole, err)) ||
            (init_whole && init_names_check(o->init, &tr, o->dir, err)) ||
            (r.freeze && nn_net_freeze_base(net, err)))
            goto out;
        nn_opt_init(&opt, o->optimizer, r.lr);
        opt.momentum = o->optimizer == NN_SGD ? o->momentum : 0;
        opt.weight_decay = o->weight_decay;
    }
    opt.wd_skip = r.wd_skip;
    if (ranks > 1 &&
        (batch < (uint32_t)ranks || (!tr.nsets && tr.count % batch && tr.count % batch < (uint64_t)ranks))) {
        sp_fail(err, SP_EXIT_USAGE, "%d ranks need at least one record each of every batch: batch %u over %llu records",
                ranks, batch, (unsigned long long)tr.count);
        goto out;
    }
    long per_pass = tr.nsets ? (long)tr.mix_steps : (long)((tr.count + batch - 1) / batch);
    long steps_per_epoch = r.steps_per_epoch ? r.steps_per_epoch : per_pass, total_steps = steps_per_epoch * o->epochs;
    epoch_position at; /* where a mid-epoch checkpoint stopped inside epoch start_epoch + 1 */
    if (position_from_json(ckpt_position, o->resume, steps_per_epoch, &at, err))
        goto out;
    if (ranks > 1 && ranks_agree(o, &r, net, &opt, &tr, start_epoch, at.step, &rng, err))
        goto out;
    if (ranks > 1 && batch % (uint32_t)ranks) {
        sp_fail(err, SP_EXIT_USAGE, "--batch %u: %d ranks must divide it (each reads its share of every batch)", batch,
                ranks);
        goto out;
    }
    if (ranks > 1) { /* each rank reads only its partitions of every global batch */
        tr.batch = batch / (uint32_t)ranks;
        if (nn_data_set_rank(&tr, (uint32_t)rank, (uint32_t)ranks, err))
            goto out;
    }
    size_t in = (size_t)tr.c * tr.h * tr.w;
    x = malloc((size_t)batch * in * sizeof *x);
    dlogits = malloc((size_t)batch * (size_t)net->classes * sizeof *dlogits);
    labels = malloc((size_t)batch * sizeof *labels);
    if (!x || !dlogits || !labels || !epochs_json) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        goto out;
    }
    if (o->on_start) {
        nn_train_info info = {net->model, nn_net_param_count(net), nn_net_bytes(net), batch, tr.h, tr.w, tr.c,
                              tr.count, tr.classes, have_test ? test_split : NULL, nn_net_layout_block(net)};
        o->on_start(o->ctx, &info);
    }
    double train_seconds = 0, test_acc = -1, test_top5 = -1, train_acc = 0, loss = 0;
    int top5 = net->classes >= NN_TOP5_MIN_CLASSES;
    train_stream stream = {-1, 0};
    for (int e = start_epoch; e < o->epochs; e++) {
        double t0 = now();
        /* a resumed mid-epoch checkpoint's first epoch goes on from its position */
        epoch_position from = {0};
        if (e == start_epoch)
            from = at;
        long step = (long)e * steps_per_epoch + from.step;
        uint64_t seen = from.seen, right = from.right, done = from.records; /* seen: this rank's records; done: the
                                                                            * global batches' */
        double total = from.total;
        int n = 1, stopping = 0;
        for (long k = from.step; k < steps_per_epoch; k++) {
            uint64_t global = 0; /* the global batch's records, every rank's */
            if (stream_seek(&tr, &stream, &r, step, per_pass, err) || (!tr.nsets && !nn_data_step_records(&tr)) ||
                (n = nn_data_next(&tr, x, labels, err)) <= 0)
                break;
            global = tr.step_global;
            stream.pos++;
            if (check_labels(labels, n, net->classes, o->dir, err))
                break;
            if (o->on_running_loss && seen)
                o->on_running_loss(o->ctx, total / (double)seen);
            if (o->on_progress)
                o->on_progress(o->ctx, done, done * in * sizeof(float));
            /* each rank trains on its share, the m records it read of the
             * global batch: its gradients, scaled by 1/global, are summed over the ranks */
            int correct, m = n;
            const float *logits = nn_forward(net, x, m, 1, &rng, err);
            if (!logits) {
                sp_fail_context(err, "epoch %d, step %ld", e + 1, k + 1);
                goto out;
            }
            total += (double)nn_softmax_xent_smooth(logits, labels, m, net->classes, r.label_smoothing, dlogits,
                                                    &correct) *
                     m;
            for (size_t i = 0; (uint64_t)m < global && i < (size_t)m * (size_t)net->classes; i++)
                dlogits[i] *= (float)m / (float)global; /* the rank's mean to its share of the global mean */
            /* the gradients' sums over the ranks start as their layers finish (nn/dist.h) */
            if (nn_dist_grad_begin(net, err))
                goto out;
            if (nn_backward_each(net, dlogits, m, nn_dist_grad_ready, NULL, err)) {
                sp_fail_context(err, "epoch %d, step %ld", e + 1, k + 1);
                goto out;
            }
            if (nn_dist_grad_end(net, err))
                goto out;
            opt.lr = nn_learning_rate(&r, step++, steps_per_epoch, total_steps);
            nn_opt_step(&opt, net);
            right += (uint64_t)correct;
            seen += (uint64_t)m;
            done += global;
            stopping = stop_agreed(o->stop);
            int every = o->checkpoint_every > 0 && step % o->checkpoint_every == 0 && k + 1 < steps_per_epoch;
            if (stopping || every) { /* the same step on every rank: the gather is collective */
                epoch_position pos = {k + 1, from.seconds + now() - t0, done, total, right, seen};
                if (save_position(o, net, &opt, e, &rng, &r, epochs_json, &tr, &pos, err))
                    goto out;
            }
            if (stopping) {
                result->stopped = 1, result->stop_epoch = e + 1, result->stop_step = k + 1;
                result->epoch_steps = steps_per_epoch, result->saved = o->out != NULL;
                rc = 0;
                goto out;
            }
        }
        if (o->on_progress_done)
            o->on_progress_done(o->ctx);
        if (n <= 0 || err->code) { /* a read error, or a label out of range (n: 1 when no step ran) */
            if (!err->code)
                sp_fail(err, SP_EXIT_DATA, "%s: the train split ended before its count of records", o->dir);
            goto out;
        }
        double figures[3] = {total, (double)right, (double)seen}; /* the epoch's, over every rank */
        nn_dist_sum_doubles(figures, 3);
        total = figures[0], right = (uint64_t)figures[1], seen = (uint64_t)figures[2];
        double secs = from.seconds + now() - t0;
        train_seconds += secs;
        loss = seen ? total / (double)seen : 0;
        train_acc = seen ? (double)right / (double)seen : 0;
        if (!isfinite(loss)) { /* nothing after this point means anything: stop, as Keras' TerminateOnNaN */
            sp_fail(err, SP_EXIT_DATA, "epoch %d: the loss is not finite: the training diverged (try a lower --lr)",
                    e + 1);
            goto out;
        }
        if (have_test && rank == 0) { /* rank 0 alone evaluates and reports */
            nn_metrics_free(&eval);
            if (nn_metrics_init(&eval, net->classes, 0, err) ||
                nn_evaluate_each(net, &te, o->dir, x, labels, &eval, r.eval_steps, NULL, NULL, err))
                goto out;
            test_acc = nn_metrics_accuracy(&eval), test_top5 = nn_metrics_top5(&eval);
        }
        double ips = (double)seen / secs;
        if (o->on_epoch) {
            nn_epoch_report rep = {e + 1, o->epochs, loss, train_acc, (double)opt.lr, secs, ips,
                                   have_test ? test_split : NULL, test_acc, top5, test_top5};
            o->on_epoch(o->ctx, &rep);
        }
        json_t *ej = json_pack("{s:i, s:f, s:f, s:f, s:f, s:f}", "epoch", e + 1, "loss", loss, "train_accuracy",
                               train_acc, "seconds", secs, "images_per_second", ips, "lr", (double)opt.lr);
        if (have_test)
            json_object_set_new(ej, "test_accuracy", json_real(test_acc));
        if (have_test && top5)
            json_object_set_new(ej, "test_top5_accuracy", json_real(test_top5));
        json_array_append_new(epochs_json, ej);
        if (o->out && rank == 0 && save_checkpoint(o->out, net, &opt, e + 1, &rng, &r, epochs_json, &tr, NULL, err))
            goto out;
    }
    json_t *read_bytes = json_array(); /* the image bytes each rank read from the shards */
    double *per_rank = calloc((size_t)ranks, sizeof *per_rank);
    if (per_rank) {
        per_rank[rank] = (double)nn_data_bytes_read(&tr);
        nn_dist_sum_doubles(per_rank, (size_t)ranks);
        for (int i = 0; i < ranks; i++)
            json_array_append_new(read_bytes, json_integer((json_int_t)per_rank[i]));
        free(per_rank);
    }
    summary = json_pack("{s:s, s:s, s:i, s:i, s:s, s:f, s:I, s:f, s:f, s:f, s:O, s:o}", "shards", o->dir, "model",
                        net->model, "epochs", o->epochs, "batch", (int)batch, "optimizer",
                        opt.kind == NN_SGD ? "sgd" : "adam", "lr", (double)r.lr, "seed", (json_int_t)r.seed, "loss",
                        loss, "train_accuracy", train_acc, "train_seconds", train_seconds, "per_epoch", epochs_json,
                        "recipe", nn_recipe_json(&r));
    if (!summary) {
        json_decref(read_bytes);
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        goto out;
    }
    json_object_set_new(summary, "test_accuracy", have_test && test_acc >= 0 ? json_real(test_acc) : json_null());
    if (top5)
        json_object_set_new(summary, "test_top5_accuracy",
                            have_test && test_top5 >= 0 ? json_real(test_top5) : json_null());
    if (have_test)
        json_object_set_new(summary, "test_split", json_string(test_split));
    if (o->init && !o->resume) /* whether the head came from the file too, or was initialised anew */
        json_object_set_new(summary, "init", json_pack("{s:s, s:b}", "checkpoint", o->init, "head_copied", init_whole));
    if (ranks > 1) {
        json_object_set_new(summary, "ranks", json_integer(ranks));
        json_object_set_new(summary, "allreduce_seconds", json_real(nn_dist_reduce_seconds()));
        json_object_set_new(summary, "allreduce_overlap", json_boolean(nn_dist_overlap()));
        json_object_set_new(summary, "allreduce_buckets", json_integer(nn_dist_buckets_summed()));
        json_object_set_new(summary, "allreduce_buckets_early", json_integer(nn_dist_buckets_early()));
    }
    json_object_set_new(summary, "read_bytes", read_bytes);
    result->summary = summary;
    summary = NULL;
    rc = 0;
out:
    nn_metrics_free(&eval);
    json_decref(ckpt_names);
    json_decref(ckpt_position);
    json_decref(ckpt_mix);
    json_decref(summary);
    json_decref(epochs_json);
    free(x), free(dlogits), free(labels);
    nn_net_free(net);
    nn_data_close(&tr);
    nn_data_close(&te);
    return rc;
}
