/* Dataset manifests (manifests/README.md): what sp-fetch downloads and
 * verifies, and the class names of datasets whose files carry none. */
#ifndef SP_DATASETS_H
#define SP_DATASETS_H

#include <jansson.h>

#include "common/sp_common.h"

/* The manifest of the dataset called name: from the directories in
 * $SP_MANIFESTS (colon-separated) first, then the built-in ones; a name
 * ending in ".json" is read as a path. Returns a new reference, or NULL with
 * err set (err->code SP_EXIT_USAGE when there is no such dataset). The
 * manifest's structure is checked: name, mirrors, files with names. */
json_t *sp_dataset_manifest(const char *name, sp_err *err);
/* 1 if a manifest of that name exists. */
int sp_dataset_known(const char *name);
/* Class names "0".."n-1" for classes nothing names, as a JSON array (a new
 * reference; NULL when out of memory). */
json_t *sp_numbered_classes(int n);

#endif
