/* Built-in knowledge of the datasets shardpipe names: class names for the
 * IDX family, whose files carry none. */
#ifndef SP_DATASETS_H
#define SP_DATASETS_H

typedef struct sp_dataset_info {
    const char *name;           /* "fashion-mnist" */
    int nclasses;
    const char *const *classes; /* nclasses names, index = label */
} sp_dataset_info;

/* NULL when the name is not known. */
const sp_dataset_info *sp_dataset_find(const char *name);

#endif
