/* What sp-inspect shows of a shard set: counts per split and class, and a
 * contact sheet of sample images per class. */
#ifndef SP_INSPECT_H
#define SP_INSPECT_H

#include <jansson.h>

#include "common/sp_common.h"

/* A summary of dir as JSON (a new reference): dataset, classes, recipe,
 * shuffle, normalize, stats, and per split: kind, records, shards, shape
 * (encoded: the largest image's), dtype, bytes on disk, bytes_per_record (on
 * disk), pixel bytes (encoded: of the decoded images), encoded_bytes
 * (encoded only: the images' bytes), and the record count of every class
 * (from the labels themselves, not the manifest). Every record is read and
 * checked against its checksum. NULL with err set. */
json_t *sp_inspect(const char *dir, sp_err *err);

/* A PNG contact sheet: one row per class that has records (in class order,
 * at most max_classes rows), labelled "N name" on its left, then the first
 * per_class images of that class (train split first, then the others), each
 * scaled to fit tile x tile. uint8 shards only; encoded shards' samples
 * are decoded (formats/image.h). *rows gets the rows drawn,
 * *present the classes that have records (either may be NULL). */
int sp_inspect_grid(const char *dir, const char *png_path, int per_class, int tile, int max_classes, int *rows,
                    int *present, sp_err *err);

#endif
