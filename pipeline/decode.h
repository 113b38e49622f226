/* The decode stage: source files (blob records) in, pixel records out.
 *
 * Recognised by content, not by name:
 *  - IDX files (MNIST family): an images file (uint8, N x H x W [x C]) is
 *    paired with the labels file (uint8, N) of the same name with "images"
 *    and "labels" (and idx3/idx1) swapped; each image becomes one pixel record
 *    keyed "<images key>#<index>". Split from the name: "t10k" or "test" ->
 *    test, "train" -> train, else opts.default_split.
 *  - CIFAR-10/100 binary batches (formats/cifar.h), by name, size-checked.
 *  - Images: JPEG and PNG by content (formats/image.h), to HxWx3 uint8;
 *    BMP, TIFF, WebP and GIF (by content or name) are rejected as
 *    unsupported, naming the format.
 *    Split from the first key component (the outer archive or directory):
 *    "train" -> train, "val" -> val, "test" -> test, else
 *    opts.default_split. Labels by WNID
 *    (pipeline/labels.h). An image that cannot be decoded, or has no label
 *    (without --unlabeled), is rejected: counted by reason and reported,
 *    never written; records in = records out + rejected.
 *  - WebDataset tars (opts.labels_from_wds): members grouped by key, one
 *    record a key (see labels_from_wds below; docs/webdataset.md).
 * Pixel records pass through untouched. Other blobs are skipped and reported.
 * Errors in a dataset file (bad header, size, mismatched counts, label out of
 * range) are fatal: the stage fails and writes no trailer.
 */
#ifndef SP_DECODE_H
#define SP_DECODE_H

#include "formats/recstream.h"
#include "pipeline/stage.h"

#include "formats/image.h"
#include "pipeline/resize.h"

#define SP_WDS_MAX_CLS 64u          /* bytes of a .cls member */
#define SP_WDS_MAX_JSON (1u << 20)  /* bytes of a .json member */
#define SP_WDS_MAX_NAME 1024u      /* bytes of a class name in a .json member */
#define SP_WDS_MAX_CLASSES 1000000u /* classes numbered or named as seen (--classes: any) */

typedef struct sp_decode_opts {
    const char *dataset; /* overrides the stream's dataset name; NULL keeps it */
    /* Called for each record that is skipped (not used); may be NULL. */
    void (*report)(void *ctx, const char *key, const char *reason);
    /* Called for each rejected image, reason an enum sp_reject; may be NULL. */
    void (*reject)(void *ctx, const char *key, int reason, const char *detail);
    void *report_ctx;
    const char *classes;    /* synset list for WNID labels; NULL = built-in ImageNet */
    const char *labels;     /* validation labels file, or NULL */
    const char *synset_ids; /* ILSVRC2012_ID -> WNID table, or NULL */
    int unlabeled;          /* keep images without a label (label -1) */
    int default_split;      /* enum sp_split of the records whose keys name no split (images outside
                             * train/, val/ and test/, IDX files named neither train nor test);
                             * sp_decode_opts_default sets SP_SPLIT_TRAIN. Never SP_SPLIT_NONE: the
                             * readers take train, val and test only */
    int labels_from_dirs;   /* image folders: label and split by directory (pipeline/labels.h), classes
                             * from `classes` as plain names, else the stream's "folder_classes", else
                             * named in the order they are first seen */
    /* WebDataset tars (pipeline/wds.h, docs/webdataset.md): blob records are
     * tar members, grouped by key; each key's members must be adjacent. A
     * group gives one record: its image (jpg, jpeg or png; ppm is rejected as
     * unsupported) labelled by wds_label; the record's key is the WebDataset
     * key with sp-cat --tar's %XX escapes undone; its split the .json's
     * "split" (train, val or test), else the tar's name, else default_split.
     * Classes: `classes` (plain
     * names) when given, else "0".."n-1" for integer labels, else the class
     * names of the json field in the order first seen. A group with no image,
     * no label, or a label that cannot be read is rejected (one reject, the
     * key and tar named); a key met again after other keys is an error. Memory:
     * one group at a time (its image, a .cls of at most SP_WDS_MAX_CLS bytes
     * or a .json of at most SP_WDS_MAX_JSON), and 8 bytes a key seen. */
    int labels_from_wds;
    const char *wds_label;  /* NULL or "cls": the .cls member; "json:FIELD": that field of the .json
                             * member, a class index or a class name */
    double val_fraction;    /* 0, or this fraction of the images not in val/ or test/ go to val, chosen
                             * by a hash of the key (stable across runs and input orders); the rest train */
    int strict;             /* a reject stops the stage with an error */
    sp_image_opts image;
    /* When set, images are resized as they are decoded (sp-resize's options),
     * JPEGs at the smallest DCT scale that does not go below the target:
     * one stage, no second pass over the full-size pixels. */
    const sp_resize_opts *resize;
    /* 1: images come out as encoded records (formats/recstream.md), not
     * pixels. Every image is still decoded in full first, so damage is
     * rejected as in pixel mode. A JPEG that decodes straight to RGB
     * (sp_jpeg_keepable) and that the resize (if any) leaves at its size is
     * kept as shipped, byte for byte; any other image (CMYK or YCCK JPEG,
     * PNG, or one the resize changes) is re-encoded from its RGB pixels as a
     * JPEG of jpeg_quality. Records already encoded are decoded and handled
     * the same way, keeping their label and split. */
    int encoded;
    int jpeg_quality; /* 1..100; 0 = SP_JPEG_QUALITY_DEFAULT (90) */
    /* Keep only part `part` of `parts` of the output records (by the hash of
     * their keys that sp-shard --part uses); images of other parts are not
     * even decoded. parts = 0: everything. */
    int part, parts;
} sp_decode_opts;
void sp_decode_opts_default(sp_decode_opts *o);

typedef struct sp_decode_stats {
    uint64_t in, out, skipped;
    uint64_t rejected[SP_REJECT_COUNT]; /* by enum sp_reject */
    uint64_t rejected_total;
    uint64_t other_parts; /* records left to the other parts (--part) */
    uint64_t grouped; /* --labels-from wds: members joined to their key's record or reject */
    uint64_t kept, reencoded; /* encoded mode: images kept as shipped, and re-encoded */
} sp_decode_stats;

typedef struct sp_decoder sp_decoder;

/* out: the stage to write to (borrowed; opened by the decoder as needed). */
sp_decoder *sp_decoder_create(const sp_decode_opts *opts, sp_stage *out, sp_err *err);
void sp_decoder_free(sp_decoder *d); /* accepts NULL */
/* Call with the input's metadata at the start and whenever it changes. */
int sp_decoder_input_meta(sp_decoder *d, const json_t *meta, sp_err *err);
/* Consumes one input record (its payload is read from r). */
int sp_decoder_record(sp_decoder *d, sp_reader *r, sp_record *rec, sp_err *err);
/* Fails if a dataset file is still waiting for its partner. Does not finish
 * the stage. */
int sp_decoder_finish(sp_decoder *d, sp_err *err);
const sp_decode_stats *sp_decoder_stats(const sp_decoder *d);

#endif
