/* The training loop of the reference trainer: recipe, learning-rate schedules, epochs, checkpoints; no process needed. */
#ifndef SP_NN_TRAIN_H
#define SP_NN_TRAIN_H

#include <jansson.h>
#include <signal.h>
#include <stdint.h>

#include "nn/data.h"
#include "nn/nn.h"

/* Learning-rate schedules over the steps of a run. */
enum nn_schedule { NN_SCHED_CONSTANT, NN_SCHED_STEP, NN_SCHED_COSINE, NN_SCHED_MULTISTEP };
#define NN_MAX_MILESTONES 16

/* What shapes a run besides the weights: kept in the checkpoint, so that a
 * resumed run goes on exactly as the uninterrupted one would. */
typedef struct nn_recipe {
    uint64_t seed;
    uint32_t batch;          /* 1..NN_MAX_BATCH */
    float lr;                /* the base learning rate (> 0, finite); the schedule scales it per step */
    int schedule;            /* enum nn_schedule */
    int warmup;              /* epochs of linear warm-up, 0..NN_MAX_EPOCHS */
    int step_size;           /* step schedule: epochs between decays, 1..NN_MAX_EPOCHS */
    float gamma;             /* step and multistep schedules: the decay, (0, 1] */
    int milestones_n;        /* multistep: 1..NN_MAX_MILESTONES milestones (recorded with it only) */
    long milestones[NN_MAX_MILESTONES]; /* multistep: increasing, >= 1: the rate is lr * gamma^k from the
                              * k-th one on (PyTorch's MultiStepLR) */
    int milestones_steps;    /* 1: milestones count optimizer steps (0-based step m is the first at the
                              * lower rate); 0: epochs (epoch m, 0-based, is) */
    float label_smoothing;   /* [0, 1) */
    int augment;             /* enum nn_augment */
    float crop_scale;        /* crop-flip: the smallest crop area, (0, 1] */
    int pad;                 /* pad-crop-flip: the padding, 0..NN_MAX_PAD pixels (recorded with it only;
                              * absent: 4) */
    int freeze;              /* 1: the model's base is frozen (nn_net_freeze_base); absent in older checkpoints: 0 */
    long steps_per_epoch;    /* 0: an epoch is a pass over the train split; else N batches of the stream of
                              * passes (Keras' steps_per_epoch), 1..NN_MAX_STEPS */
    long eval_steps;         /* 0: evaluate on the whole split; else on its first N batches (validation_steps) */
    int sync_bn;             /* 1: batchnorm statistics over the global batch (nn_dist_set_sync_bn); absent: 0 */
    unsigned wd_skip;        /* NN_WD_SKIP_*: parameters the weight decay leaves alone (nn_opt.wd_skip); absent
                              * from a checkpoint: batchnorm and biases, as the trainer did before it was
                              * recorded */
} nn_recipe;
#define NN_MAX_STEPS 1000000000L

/* Names of schedules and augmentations as the command line and the
 * checkpoint spell them; the index, or -1 for an unknown name. */
int nn_schedule_from_name(const char *name);
int nn_augment_from_name(const char *name);
/* Parses "M1,M2,..." (increasing integers of 1..NN_MAX_STEPS, at most
 * NN_MAX_MILESTONES) into r's milestones, in steps or epochs. 0, or -1 with
 * why (the reason, naming the bad item). */
int nn_milestones_parse(const char *s, int steps, nn_recipe *r, char *why, size_t why_len);
/* r's milestones as "M1,M2,..." into buf. */
const char *nn_milestones_show(const nn_recipe *r, char *buf, size_t n);
/* --wd-skip's list ("bn", "bias", "bn,bias" or "none") into *skip: 0, or
 * -1 for another word. nn_wd_skip_name: the list of skip, "none" for 0. */
int nn_wd_skip_parse(const char *s, unsigned *skip);
const char *nn_wd_skip_name(unsigned skip);
/* The recipe as JSON (a new reference). */
json_t *nn_recipe_json(const nn_recipe *r);
/* The recipe a checkpoint's header recorded, every field type- and
 * range-checked as in nn_recipe. -1 with err (SP_EXIT_DATA, naming path and
 * the field) when one is missing or out of range. */
int nn_recipe_from_json(const json_t *j, const char *path, nn_recipe *r, sp_err *err);
/* The learning rate of global step s (0-based) of a run of total steps,
 * steps_per_epoch an epoch: linear warm-up over the first warmup epochs, then
 * the schedule. */
float nn_learning_rate(const nn_recipe *r, long s, long steps_per_epoch, long total);

/* What a run is about to do, for the caller to report. */
typedef struct nn_train_info {
    const char *model;
    size_t params;
    double bytes;            /* nn_net_bytes */
    uint32_t batch, h, w, c;
    uint64_t train_records;
    int classes;
    const char *test_split;  /* NULL: no evaluation split */
    int layout_block;        /* nn_net_layout_block: the blocked layout's channels a block, 0 for NCHW */
} nn_train_info;

/* The figures of one finished epoch. */
typedef struct nn_epoch_report {
    int epoch, epochs;       /* 1-based epoch of epochs */
    double loss, train_accuracy, lr, seconds, images_per_second;
    const char *test_split;  /* NULL: no evaluation */
    double test_accuracy;
    int has_top5;            /* more than 10 classes: test_top5 is meaningful */
    double test_top5;
} nn_epoch_report;

/* The options a command line gave (nn_train_options.given). A resumed run
 * refuses (SP_EXIT_USAGE, naming the option and both values) a given value
 * that differs from the checkpoint's for those that shape what is trained:
 * model and head, --init, batch, optimizer, momentum, weight decay and wd-skip, seed,
 * augment, crop scale, pad, smoothing, freeze, steps per epoch, view size,
 * sync-bn; it takes the new value, from its first step on, for the rate and
 * its schedule (lr, schedule, warmup, step size, gamma, milestones) and eval steps, and
 * says so through on_note. In every run, a given view size on a pixel set
 * and a given crop scale without crop-flip (pad without pad-crop-flip) are
 * usage errors. */
enum nn_given {
    NN_GIVEN_MODEL = 1u << 0, NN_GIVEN_HEAD = 1u << 1, NN_GIVEN_INIT = 1u << 2, NN_GIVEN_BATCH = 1u << 3,
    NN_GIVEN_OPTIMIZER = 1u << 4, NN_GIVEN_MOMENTUM = 1u << 5, NN_GIVEN_WEIGHT_DECAY = 1u << 6,
    NN_GIVEN_SEED = 1u << 7, NN_GIVEN_AUGMENT = 1u << 8, NN_GIVEN_CROP_SCALE = 1u << 9,
    NN_GIVEN_SMOOTHING = 1u << 10, NN_GIVEN_FREEZE = 1u << 11, NN_GIVEN_STEPS = 1u << 12,
    NN_GIVEN_VIEW_SIZE = 1u << 13, NN_GIVEN_SYNC_BN = 1u << 14, NN_GIVEN_LR = 1u << 15,
    NN_GIVEN_SCHEDULE = 1u << 16, NN_GIVEN_WARMUP = 1u << 17, NN_GIVEN_STEP_SIZE = 1u << 18,
    NN_GIVEN_GAMMA = 1u << 19, NN_GIVEN_EVAL_STEPS = 1u << 20, NN_GIVEN_PAD = 1u << 21,
    NN_GIVEN_MILESTONES = 1u << 22, /* --milestones or --milestones-steps */
    NN_GIVEN_WD_SKIP = 1u << 23,
};

typedef struct nn_train_options {
    const char *dir;         /* the shard set */
    const char *model;       /* nn_net_create's names, without a head (new runs) */
    int head;                /* new runs: 0, or the width of the seed's head in place of the classifier ("+headN") */
    const char *init;        /* new runs: the checkpoint to take the weights from (nn_net_init_from), or NULL */
    const char *out;         /* a checkpoint after every epoch, or NULL */
    const char *resume;      /* continue from this checkpoint, or NULL */
    int epochs;              /* train until this epoch, 1..NN_MAX_EPOCHS */
    int threads;             /* nn_set_threads */
    int verify;              /* check the shards against their manifest first */
    int optimizer;           /* NN_SGD or NN_ADAM (new runs) */
    float momentum, weight_decay; /* new runs */
    int view_size;           /* encoded sets: the views' side (0: 224; a resumed run: the checkpoint's input) */
    nn_recipe recipe;        /* new runs; a resumed run takes the checkpoint's (but see given) */
    unsigned given;          /* enum nn_given: the options the command line set */
    long checkpoint_every;   /* > 0: also write -o after every N-th step of the run (counted from its very first
                              * step, so the same steps whether resumed or not), inside an epoch with its
                              * position; 0: at epoch ends only */
    /* A mix of sets as the train split (nmix > 0: nn_data_open_mix): set i
     * at mix_dirs[i], mix_weights[i], mix_policies[i] (SPR_MIX_STOP or
     * SPR_MIX_REPEAT); an epoch is one epoch of the mix (or
     * recipe.steps_per_epoch); dir is then the set whose test (or val) split
     * evaluates, its labels mapped into the training classes by name.
     * mix_union: the training classes are the union of the sets' class
     * names, sorted by strcmp; else the sets' class lists must be the same.
     * The checkpoint records the mix (each set's records, weight and
     * policy, and mix_union): a resume must give the same. One process. */
    const char *const *mix_dirs;
    const double *mix_weights;
    const int *mix_policies;
    int nmix, mix_union;
    const volatile sig_atomic_t *stop; /* NULL, or a flag a signal handler sets: once it is non-zero (on any rank,
                                        * the ranks agreeing after each step on the first step that saw it), the
                                        * step in progress ends, -o is written with its position and nn_train
                                        * returns 0 with result->stopped set */
    /* Callbacks (each may be NULL), all on the calling thread: */
    void (*on_note)(void *ctx, const char *note); /* a resumed run's option that changes from the checkpoint's */
    void (*on_start)(void *ctx, const nn_train_info *info);
    void (*on_progress)(void *ctx, uint64_t records, uint64_t bytes); /* within an epoch; end: on_progress_done */
    void (*on_running_loss)(void *ctx, double loss); /* before each on_progress after the epoch's first batch:
                                                      * the mean loss of its records so far */
    void (*on_progress_done)(void *ctx);
    void (*on_epoch)(void *ctx, const nn_epoch_report *report);
    void *ctx;
} nn_train_options;

/* The outcome of a run. summary: a new JSON object (the caller decrefs)
 * with shards, model, epochs, batch, optimizer, lr, seed, loss,
 * train_accuracy, train_seconds, per_epoch (every epoch of the run and of
 * the runs it resumed), recipe, test_accuracy (null without a test split),
 * test_top5_accuracy (more than 10 classes) and test_split. */
typedef struct nn_train_result {
    json_t *summary;         /* NULL when stopped */
    int stopped;             /* 1: o->stop ended the run early (summary NULL) */
    int stop_epoch;          /* stopped: the 1-based epoch in progress */
    long stop_step, epoch_steps; /* stopped: the steps of that epoch done, of epoch_steps */
    int saved;               /* stopped: 1 when o->out holds the position (rank 0 with -o) */
} nn_train_result;

/* A mid-epoch checkpoint (o->stop, o->checkpoint_every) is the epoch-end one
 * with the epoch before it as its epoch and extra.position: epoch_step (the
 * steps of the next epoch done, 1..its steps), seconds, records (the global
 * batches' records) and the running figures of each rank (loss_sum, right,
 * seen: arrays of one entry a rank). A run resumed from it goes on from the
 * next step and ends with the uninterrupted run's weights, optimizer state
 * and per-epoch figures (but seconds) bit for bit; on another number of ranks
 * the epoch's loss may differ in its last bits (the ranks' sums are added in
 * another order). */

/* Trains as o says. Before the first step: -o is checked writable
 * (SP_EXIT_SYSTEM), the shards verified, the splits checked to agree, a
 * resumed checkpoint checked to fit. Never prints. 0, or -1 with err set
 * (result->summary NULL). */
int nn_train(const nn_train_options *o, nn_train_result *result, sp_err *err);

#endif
