/* The class names a checkpoint keeps (its extra JSON's "class_names", written
 * by sp-train) held to a shard set's: a model trained on cat, dog is refused
 * on a set of dog, cat even though both have two classes. */
#ifndef SP_NN_CLASS_NAMES_H
#define SP_NN_CLASS_NAMES_H

#include <jansson.h>

#include "nn/data.h"

/* d's set's class names in class order, as a JSON array of strings (a new
 * reference; NULL when out of memory). A class the set leaves unnamed is "". */
json_t *nn_data_class_names(const nn_data *d);
/* The "class_names" member of a checkpoint's extra JSON text (extra_json may
 * be NULL): a new reference to the array, or NULL when there is none (a
 * checkpoint from before the names were kept) or it is not an array of
 * strings. */
json_t *nn_extra_class_names(const char *extra_json);
/* 0 when names (a checkpoint's, or NULL: nothing to hold to) equal d's set's
 * class names, one by one in order; else -1 with err (SP_EXIT_DATA): "CKPT:
 * its classes differ from those of DIR: class 0 is cat in the checkpoint, dog
 * in the shards; ..." (the first few that differ, or the counts). */
int nn_class_names_check(const json_t *names, const nn_data *d, const char *ckpt, const char *dir, sp_err *err);

#endif
