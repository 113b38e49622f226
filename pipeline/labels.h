/* ImageNet-style labels: classes named by WordNet IDs (WNIDs, "n01440764").
 *
 * The class list is a synset file, one "nXXXXXXXX words" a line (the form of
 * LOC_synset_mapping.txt); class index = line number from 0. The project ships
 * ILSVRC2012's 1000 classes sorted by WNID (torchvision ImageFolder's order) as
 * manifests/imagenet/classes.txt, built in.
 *
 * Training images are labelled by the WNID in their key: a file name
 * "n01440764_10026.JPEG", or a member of "n01440764.tar" or of a directory
 * "n01440764/". Validation images by their number (ILSVRC2012_val_00000001)
 * through a labels file in one of three forms, told apart by content:
 *   - Kaggle's LOC_val_solution.csv: "ImageId,PredictionString" then
 *     "ILSVRC2012_val_00008726,n02119789 255 142 454 329 ..." (first WNID wins);
 *   - TensorFlow's: one WNID a line, line i for image i+1;
 *   - the devkit's ILSVRC2012_validation_ground_truth.txt: one ILSVRC2012_ID
 *     (1..1000) a line, mapped to WNIDs through the devkit's own table: the
 *     devkit archive itself (ILSVRC2012_devkit_t12.tar.gz, whose
 *     data/meta.mat lists every synset's ID and WNID), that meta.mat, or a
 *     text table ("WNID ID [words]" a line, the form of map_clsloc.txt).
 */
#ifndef SP_LABELS_H
#define SP_LABELS_H

#include <jansson.h>

#include "common/sp_common.h"

/* Every file these read is refused, naming file and line, when it holds a
 * NUL byte, cannot be read to its end (a directory, an I/O error), or is
 * over SP_LABELS_MAX_FILE bytes. */
#define SP_LABELS_MAX_FILE (256u << 20)
/* The highest validation image number a labels file may give a label to
 * (ILSVRC2012 has 50,000); the table of labels is sized by it. */
#define SP_LABELS_MAX_VAL_IMAGE 10000000u

typedef struct sp_labels sp_labels;

sp_labels *sp_labels_create(void);
void sp_labels_free(sp_labels *l); /* accepts NULL */

/* Loads the class list from path, or the built-in ImageNet list when path is
 * NULL. Replaces any list loaded before. */
int sp_labels_load_classes(sp_labels *l, const char *path, sp_err *err);
/* The class list as JSON arrays (new references): WNIDs, and their words. */
json_t *sp_labels_wnids(const sp_labels *l);
json_t *sp_labels_words(const sp_labels *l);

/* The ID -> WNID table for the devkit's form: the devkit archive, its
 * data/meta.mat, or "WNID ID [words]" lines; told apart by content. */
int sp_labels_load_ids(sp_labels *l, const char *path, sp_err *err);
/* A validation labels file in any of the three forms. */
int sp_labels_load_val(sp_labels *l, const char *path, sp_err *err);

/* The class index for the image with this key: from its validation number
 * when a labels file gave one, else from a WNID in the key. Returns the
 * index, or -1 with why set (no WNID in the key, a WNID not in the list, no
 * label for that validation image). */
int sp_labels_lookup(const sp_labels *l, const char *key, char *why, size_t why_len);

/* ---- image folders: classes named by directories ----
 * The layout torchvision's ImageFolder reads: train/cat/001.jpg. The class
 * of a key is the directory right below its split directory (the first
 * directory part that is exactly "train", "val" or "test"), or, when it has
 * none, its first directory part that is not an archive's name (pets.tar/,
 * pets.zip/); files in that directory's subdirectories belong to it too
 * (train/cat/kitten/002.jpg is a cat), as with ImageFolder.
 * Class names are plain names; a list of them replaces the WNID list above. */

/* The split directory and class of key: writes the class name into cls (n
 * bytes) and the split (enum sp_split, SP_SPLIT_NONE without a split
 * directory) into *split. Returns 0, or -1 with why set when the key has no
 * directory to name a class (a file at the top, or right in train/). */
int sp_labels_folder_of(const char *key, char *cls, size_t n, int *split, char *why, size_t why_len);
/* 1 when the n bytes at s name an archive (".tar", ".tar.gz", ".zip", ...):
 * sp-unpack keys its members' records below that name. */
int sp_labels_archive_name(const char *s, size_t n);
/* Loads plain class names, one a line (blank lines skipped, no name twice);
 * class index = order. Replaces any list loaded before. */
int sp_labels_load_names(sp_labels *l, const char *path, sp_err *err);
/* The same from a JSON array of strings (the stream's "folder_classes"). */
int sp_labels_set_names(sp_labels *l, const json_t *names, sp_err *err);
/* The class names as a JSON array (new reference). */
json_t *sp_labels_names(const sp_labels *l);
/* The index of class name; when it is not in the list: -1, or with grow it
 * is appended (*added set to 1). -2 with err set when out of memory. */
int sp_labels_name_index(sp_labels *l, const char *name, int grow, int *added, sp_err *err);

#endif
