/* Batches for the trainer: one split of a shard set through
 * libshardpipe-reader, as float32 (B, C, H, W) tensors.
 *
 * uint8 pixels become (x/255 - mean[c]) / std[c] with the normalization the
 * shards record (sp-normalize), or x/255 when they record none; float
 * pixels that sp-normalize already normalized are taken as they are. An
 * epoch reads the shards in an order and through a shuffle window both
 * permuted by its seed, with the reader's prefetch thread preparing the next
 * batch; memory stays at a few batches and one shard's chunk whatever the
 * dataset size.
 *
 * Encoded sets (JPEGs decoded at load) come through the reader's views at
 * view_size x view_size x 3: a crop-flip training pass is the reader's
 * train view (torchvision's RandomResizedCrop, scale (0.08, 1), + flip, on
 * the whole source image), every other pass the eval view (Resize(size /
 * 0.875) + CenterCrop(size)), a flip pass flipping that. */
#ifndef SP_NN_DATA_H
#define SP_NN_DATA_H

#include <jansson.h>

#include "nn/nn.h"
#include "shardpipe/reader.h"

/* Augmentation on load, for training passes. */
enum nn_augment {
    NN_AUG_NONE = 0,
    NN_AUG_FLIP,      /* horizontal flip with probability 1/2 */
    NN_AUG_CROP_FLIP, /* random-resized-crop as torchvision's RandomResizedCrop (area
                       * scale [crop_scale, 1], aspect ratio [3/4, 4/3], 10 tries, else the
                       * centre crop), resized back to H x W bilinearly, then the flip */
    NN_AUG_PAD_CROP_FLIP, /* torchvision's RandomCrop((H, W), padding=pad): the image padded by pad
                           * pixels of value 0 on every side (the stored pixel 0, before
                           * normalization, as torchvision pads before Normalize), an H x W window
                           * of it at an offset (top, left) drawn uniformly from 0..2*pad each,
                           * then the flip */
};

typedef struct nn_data {
    spr_set *set;
    char split[8];
    uint32_t h, w, c, batch;
    int dtype, classes;
    uint64_t count;
    float scale[4], shift[4]; /* per channel: value = raw * scale + shift */
    int normalized;           /* the shards record normalization parameters */
    void *raw;                /* one batch as the reader gives it (B, H, W, C) */
    int32_t *labels;
    spr_iter *it;
    int augment;              /* enum nn_augment, for this pass */
    float crop_scale;         /* the smallest crop area, as a fraction */
    int pad;                  /* pad-crop-flip: the padding in pixels, 0..NN_MAX_PAD */
    nn_rng aug_rng;           /* seeded per pass: the same augmentation on a rerun */
    float *scratch;           /* one image (C, H, W) */
    int encoded;              /* the set holds encoded images: h = w = the view's size, c = 3 */
    /* data parallel (nn_data_set_rank): rank part of nparts, each reading its
     * partitions of the canonical order (docs/elastic-order.md); batch is the
     * rank's share of a global batch of nparts x batch */
    uint32_t part, nparts, partitions, per_step;
    uint64_t step;       /* the global step the next nn_data_next reads */
    uint64_t bytes_read; /* image bytes the finished passes' iterators read */
    uint64_t step_global; /* records of every rank at the step nn_data_next read last */
    /* A mix of sets (nn_data_open_mix; nsets 0 otherwise): sets[0] is set, the
     * others owned here too; each set's normalization and its labels' map
     * into the trainer's classes (NULL: as stored); count is every set's
     * records, mix_steps the global steps of one pass of the mix. */
    uint32_t nsets;
    spr_set **sets;
    double *weights;
    int *policies;
    float (*set_scale)[4], (*set_shift)[4];
    int32_t **maps;       /* nsets maps, or NULL; a single set's eval split may have one too (maps[0]) */
    int nmaps;
    json_t *names;        /* the trainer's class names when not the set's own (a union), or NULL */
    spr_mix *mix;
    int32_t *sources;     /* each record's set, for one batch */
    uint64_t *positions;  /* each record's index in its step's global batch, for one batch (spr_mix_layout) */
    uint64_t mix_steps;
    json_t *mix_record;   /* the mix as the trainer's checkpoints record it (owned), or NULL */
} nn_data;

#define NN_MAX_PAD 64

/* One image's augmentation draws, in the order the generator gives them:
 * crop-flip's box (in source pixels), pad-crop-flip's window offset in the
 * padded image (top and left in 0..2*pad, ch = H and cw = W), and the flip. */
typedef struct nn_aug_draw {
    double top, left, ch, cw;
    int crop, flip;
} nn_aug_draw;

/* The split a model is evaluated on: "test", else "val" (ImageNet has no
 * labelled test split), as dir's manifest lists them; NULL when it has
 * neither, or with err set when the manifest cannot be read. */
const char *nn_data_eval_split(const char *dir, sp_err *err);

/* Opens dir's split for batches of at most batch records. 0 or -1 (err set,
 * naming dir and split, e.g. when the split is not there). */
int nn_data_open(nn_data *d, const char *dir, const char *split, uint32_t batch, sp_err *err);
/* The same, with the size an encoded set's views give (0: 224); pixel sets
 * ignore it. */
int nn_data_open_view(nn_data *d, const char *dir, const char *split, uint32_t batch, uint32_t view_size,
                      sp_err *err);
/* Opens the split of n sets mixed by weight (spr_mix_open; policies
 * SPR_MIX_STOP or SPR_MIX_REPEAT each) for global batches of batch records:
 * a pass of d is one epoch of the mix (mix_steps steps), its records
 * normalized by their own set's parameters. The sets must hold records of
 * one shape and dtype. Their class lists must be the same, else, with
 * union_classes, each set's labels are mapped into one list, the union of
 * their class names in byte order (strcmp), which d's classes and
 * nn_data_class_name then give. 0 or -1 (err naming the set). */
int nn_data_open_mix(nn_data *d, const char *const *dirs, const double *weights, const int *policies, uint32_t n,
                     const char *split, uint32_t batch, uint32_t view_size, int union_classes, sp_err *err);
/* Maps d's labels (a single set, e.g. the eval split of a mix's training)
 * into the class names `names` (a JSON array of strings): every class of d
 * must be among them; d's classes become their number. 0 or -1 (err naming
 * dir and the class not found). */
int nn_data_map_classes(nn_data *d, const json_t *names, const char *dir, sp_err *err);
/* Class i of the trainer's classes (the set's own, or the mix's union);
 * NULL when out of range. */
const char *nn_data_class_name(const nn_data *d, int i);
/* Starts a pass: shuffled by seed, or in manifest order; augment (enum
 * nn_augment) draws from a generator seeded by seed as well. Evaluation
 * passes use NN_AUG_NONE: the centre view, which is the stored image. */
int nn_data_start(nn_data *d, uint64_t seed, int shuffle, int augment, sp_err *err);
/* The same pass, from its record skip on: the reader skips the windows before
 * it unread and the pixel augmentation's draws for the skipped records are
 * replayed without their pixels, so the batches that follow are exactly those
 * of a pass read from its start (a resume costs no decoding of what it skips). */
int nn_data_start_at(nn_data *d, uint64_t seed, int shuffle, int augment, uint64_t skip, sp_err *err);
/* Makes d rank part of nparts (after nn_data_open with the rank's share of
 * the global batch): its passes read only its partitions of each global
 * batch (of a mix: of each slot). 0, or -1 with err (SP_EXIT_USAGE) when
 * nparts does not divide the global batch's partitions, or a rank would get
 * no record of a step (of a mix, whose steps are not walked here, the
 * step's nn_data_next fails so on every rank). */
int nn_data_set_rank(nn_data *d, uint32_t part, uint32_t nparts, sp_err *err);
/* A pass from global step `steps` on: the rank's records of the steps
 * before are skipped unread, and the pixel augmentation's draws of every
 * rank's records before are replayed (each rank draws for the whole global
 * batch, in order, and keeps its own share's), so the batches are those of
 * one process reading the same global batches. */
int nn_data_start_step(nn_data *d, uint64_t seed, int shuffle, int augment, uint64_t steps, sp_err *err);
/* Records of every rank together at the global step the next nn_data_next reads. */
uint64_t nn_data_step_records(const nn_data *d);
/* Image bytes read from the shards so far (compressed, as stored). */
uint64_t nn_data_bytes_read(const nn_data *d);
/* The next image's draws from d's generator (as nn_data_next takes them for
 * each record of a pass, in record order): for checks that redo an
 * augmentation elsewhere from the same draws. */
void nn_data_draw(nn_data *d, nn_aug_draw *a);
/* The next batch into x (B, C, H, W) and labels (B); returns B, 0 at the
 * end of the pass, -1 on a read error (err set). */
int nn_data_next(nn_data *d, float *x, int32_t *labels, sp_err *err);
void nn_data_close(nn_data *d); /* accepts a zeroed or closed d */

#endif
